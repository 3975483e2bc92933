/**
 * The model's function calls (media-protocols.md §5.4 "Function calls"): each runs through RealtimeScenes (the
 * playbook's built-in and HTTP tools, scene switches), its output goes back to the session that asked, and its
 * effects (DTMF out, a sound, a collector, a scene switch, a terminal action) are handed to the conversation.
 * Once a response with tool calls is done and every tool has answered, the model goes on: a new response, unless a
 * terminal action or a collector brings what comes next.
 */
import type { RealtimeSession } from "../../providers/types.js";
import type { ConversationEnd, ControlRequest } from "../conversation.js";
import type { EventBody } from "../core/index.js";
import type { Responses } from "./responses.js";
import type { RealtimeScenes, Terminal, ToolOutcome } from "./scenes.js";
import type { Response } from "./types.js";

export interface ToolCallsHost {
  readonly agentTrack: string;
  readonly scenes: RealtimeScenes;
  readonly responses: Responses;
  session(): RealtimeSession | undefined;
  ended(): boolean;
  /** A terminal action is waiting for the playout: no collector starts, the model does not go on. */
  ending(): boolean;
  /** Wall-clock ms (a tool's `durationMs`). */
  wall(): number;
  emit(e: EventBody): void;
  control(c: ControlRequest): void;
  /** `play_audio`: a sound through the leg, not interruptible. */
  play(file: string): void;
  /** `collect_digits`: a DTMF collector starts. */
  collect(c: NonNullable<ToolOutcome["collect"]>): void;
  /** The scene changed: the session gets its instructions and tools (and, with `plays`, its sounds start). */
  sceneChanged(plays: boolean): void;
  /** hangup, refer or transfer once the agent's speech before it has been heard. */
  terminal(t: Terminal, hangup?: ConversationEnd): void;
}

export class ToolCalls {
  private count = 0;

  constructor(private readonly h: ToolCallsHost) {}

  /** Tools still running (the agent is not idle). */
  get running(): number {
    return this.count;
  }

  call(responseId: string, callId: string, name: string, args: string): void {
    const h = this.h;
    const r = h.responses.get(responseId);
    h.emit({ event: "functionCall", trackId: h.agentTrack, callId, name, arguments: args });
    h.scenes.add({ role: "assistant", content: null, toolCalls: [{ id: callId, name, arguments: args }] });
    if (r) {
      r.pendingTools++;
      r.hadTools = true;
    }
    this.count++;
    const session = h.session();
    const started = h.wall();
    void h.scenes
      .runTool(name, args)
      .catch((err: unknown): ToolOutcome => ({ ok: false, content: JSON.stringify({ error: (err as Error).message }) }))
      .then((out) => {
        this.count--;
        if (h.ended()) return;
        // The output goes to the session that asked (after a reconnect the new one has never heard of this call).
        if (session === h.session()) session?.sendFunctionOutput(callId, out.content);
        h.scenes.add({ role: "tool", toolCallId: callId, content: out.content }, { name });
        h.emit({ event: "functionResult", callId, name, ok: out.ok, result: out.content.slice(0, 2000), durationMs: h.wall() - started });
        if (out.dtmf !== undefined) h.control({ command: "dtmf", digits: out.dtmf });
        if (out.play !== undefined) h.play(out.play);
        if (out.collect && !h.ending()) {
          if (r) r.collecting = true;
          h.collect(out.collect);
        }
        if (r) {
          if (out.sceneChanged) r.sceneChanged = true;
          if (out.terminal && !r.terminal) r.terminal = out.terminal;
          r.pendingTools--;
          this.maybeContinue(r);
        } else if (out.sceneChanged) h.sceneChanged(false);
      });
  }

  /**
   * After a response is done and every tool it called has answered (called at its `response.done` and at each
   * tool's answer): a scene switch updates the session; a terminal tool, or the `autoHangup` of a `tts`, runs after
   * playout (no new response); otherwise, if it called tools, the model goes on.
   */
  maybeContinue(r: Response): void {
    if (!r.done || r.pendingTools > 0 || r.continued) return;
    r.continued = true;
    if (r.sceneChanged) this.h.sceneChanged(true);
    if (r.terminal) {
      this.h.terminal(r.terminal);
      return;
    }
    if (r.autoHangup) {
      this.h.terminal({ kind: "hangup" }, { reason: "autohangup", initiator: "client" });
      return;
    }
    if (r.hadTools && !this.h.ending() && !r.collecting) this.h.responses.request({});
  }
}
