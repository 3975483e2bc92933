/**
 * The Realtime session's set-up and its one reconnect (media-protocols.md §5.4).
 *
 * `sessionConfigOf`: what `session.update` (and the connect) carries: the current scene's instructions and tools,
 * the voice, the audio format, turn detection and input transcription.
 *
 * `reconnect`: after a dropped socket, a short pause, a new session with the current set-up (within a time
 * limit), and the history replayed into it as text items (tool calls and their outputs left out: the new session
 * never heard of them). The conversation decides whether to try (only once) and what the lost socket took with it.
 */
import type { Logger } from "../../log.js";
import type { MediaClock } from "../../media/clock.js";
import type { HistoryEntry } from "../../playbook/runner/index.js";
import type { Playbook } from "../../playbook/types.js";
import type { RealtimeAudioFormat, RealtimeProvider, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import { deadline } from "../../util/deadline.js";
import type { RealtimeScenes } from "./scenes.js";

const DEFAULT_TRANSCRIPTION = { model: "gpt-4o-mini-transcribe" };

/** The session set-up now (`settings.realtime` of the playbook, the scene's instructions and tools). */
export function sessionConfigOf(
  rt: NonNullable<Playbook["settings"]["realtime"]>,
  scenes: Pick<RealtimeScenes, "instructions" | "tools">,
  format: RealtimeAudioFormat,
  bargeInEnabled: boolean,
): RealtimeSessionConfig {
  const td = rt.turnDetection;
  return {
    instructions: scenes.instructions(),
    voice: rt.voice ?? "alloy",
    audioFormat: format,
    // Without barge-in the server must not cut its own response when the caller speaks either.
    turnDetection: { ...td, type: td?.type ?? "server_vad", ...(bargeInEnabled ? {} : { interruptResponse: false }) },
    inputTranscription: rt.inputTranscription === false ? false : (rt.inputTranscription ?? DEFAULT_TRANSCRIPTION),
    tools: scenes.tools,
    toolChoice: "auto",
  };
}

export interface ReconnectHost {
  readonly clock: MediaClock;
  readonly provider: RealtimeProvider;
  /** Aborted at hangup. */
  readonly signal: AbortSignal;
  /** Pause before connecting again. */
  readonly delayMs: number;
  /** Time allowed for the connect itself. */
  readonly timeoutMs: number;
  readonly log?: Logger | undefined;
  ended(): boolean;
  config(): RealtimeSessionConfig;
  history(): readonly HistoryEntry[];
  /** The reconnect failed: the call ends with `error`. */
  fail(message: string, cause: unknown): void;
}

/** The new session, history replayed; undefined when the call ended meanwhile or the connect failed (`fail` was called). */
export async function reconnect(h: ReconnectHost, why: string): Promise<RealtimeSession | undefined> {
  h.log?.warn({ why }, "realtime connection dropped; reconnecting");
  await new Promise<void>((resolve) => h.clock.setTimer(resolve, h.delayMs));
  if (h.ended()) return undefined;
  let session: RealtimeSession;
  const limit = deadline(h.timeoutMs, h.signal);
  try {
    session = await h.provider.connect(h.config(), { signal: limit.signal });
  } catch (err) {
    h.fail(`realtime ${why} and the reconnect failed: ${(err as Error).message}`, err);
    return undefined;
  } finally {
    limit.clear();
  }
  if (h.ended()) {
    await session.close();
    return undefined;
  }
  const history = h.history();
  for (const e of history) {
    const m = e.message;
    if (m.role === "tool" || typeof m.content !== "string" || m.content === "") continue;
    session.addMessage(m.role, m.content);
  }
  h.log?.info({ replayed: history.length }, "realtime reconnected");
  return session;
}
