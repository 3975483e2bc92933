/**
 * What ends a Realtime call or hands it over (hangup, refer, transfer: a tool's, a key action's, a `tts autoHangup`,
 * the follow-up's `maxFollowUp`), run once the agent's speech before it has been heard: no response still
 * streaming, then a mark on the leg after everything written so far. Meanwhile the call is `ending`: no new answers,
 * key actions, collectors or follow-ups start. After a transfer request the call stays ending until the call layer
 * reports that the transfer failed (a successful one ends the call).
 */
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { ConversationEnd } from "../conversation.js";
import type { TransferRequest } from "../core/index.js";
import type { Responses } from "./responses.js";
import type { RealtimeScenes, Terminal } from "./scenes.js";

export interface TerminalHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly responses: Responses;
  readonly scenes: Pick<RealtimeScenes, "recordTransfer">;
  ended(): boolean;
  nextSeq(): number;
  finish(end: ConversationEnd): void;
  requestTransfer(t: TransferRequest): void;
}

export class Terminals {
  private pending = false;
  /** A transfer was requested and its outcome is not known. */
  private transferring = false;

  constructor(private readonly h: TerminalHost) {}

  /** A terminal action is waiting for the playout. */
  get ending(): boolean {
    return this.pending;
  }

  /** Resolves once what was written to the leg so far (and any response still streaming) has played out. */
  async afterPlayout(): Promise<void> {
    const h = this.h;
    while (!h.ended() && (h.responses.active || h.responses.requested)) {
      await new Promise<void>((resolve) => h.clock.setTimer(resolve, 20));
    }
    if (h.ended() || h.leg.closed) return;
    await h.leg.mark(`playout-${h.nextSeq()}`).catch(() => undefined);
  }

  /** `t` once the agent's speech before it has been heard (a second one meanwhile is ignored). */
  async run(t: Terminal, trigger: "tool" | "dtmf", hangup?: ConversationEnd): Promise<void> {
    if (this.pending) return;
    this.pending = true;
    await this.afterPlayout();
    if (this.h.ended()) return;
    if (t.kind === "hangup") {
      this.h.finish(hangup ?? { reason: "agent", initiator: "agent", detail: t.detail });
      return;
    }
    this.h.scenes.recordTransfer(t, trigger);
    // Still ending: the call layer carries the transfer out, or reports that it failed (transferFailed).
    this.h.requestTransfer(t);
    this.transferring = true;
  }

  /** The transfer requested did not happen: the call is the agent's again. False when none was requested. */
  transferFailed(): boolean {
    if (!this.transferring) return false;
    this.transferring = false;
    this.pending = false;
    return true;
  }
}
