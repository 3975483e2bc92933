/**
 * A sound file's PCM written to the leg `loop` times (0 = until stopped) without piling audio up on it: after
 * the first copy, the next one waits (on the media clock) until no more than `leadMs` of the play is still
 * queued. Both pipelines play files this way; a stop (`stopped()`, or the signal) ends the loop at once.
 */
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";

/** A looping `play` keeps about this much audio queued on the leg ahead of the playout. */
export const PLAY_LEAD_MS = 1000;

export interface LoopedWriteHost {
  readonly leg: Pick<MediaLeg, "status">;
  readonly clock: MediaClock;
  /** How often the backlog is looked at (ms, media clock). */
  readonly tickMs: number;
}

export interface LoopedWrite {
  playId: string;
  pcm: Int16Array;
  /** Times to play; 0 = until stopped. */
  loop: number;
  signal: AbortSignal;
  /** The play was stopped (cut, replaced, the call ended): no more copies. */
  stopped(): boolean;
  /** Writes one copy (the caller's own bookkeeping, then the leg). */
  write(pcm: Int16Array): void;
}

/** Writes the copies; resolves with how many were written. */
export async function writeLooped(h: LoopedWriteHost, w: LoopedWrite, leadMs = PLAY_LEAD_MS): Promise<number> {
  let copies = 0;
  for (let i = 0; w.pcm.length > 0 && (w.loop === 0 || i < w.loop); i++) {
    if (i > 0 && !(await waitForBacklog(h, w, leadMs))) break;
    if (w.signal.aborted || w.stopped()) break;
    w.write(w.pcm);
    copies++;
  }
  return copies;
}

/** Waits until no more than `maxMs` of the play is queued on the leg; false when it was stopped meanwhile. */
async function waitForBacklog(h: LoopedWriteHost, w: LoopedWrite, maxMs: number): Promise<boolean> {
  const { signal } = w;
  for (;;) {
    if (signal.aborted || w.stopped()) return false;
    const s = h.leg.status(w.playId);
    if (!s || s.totalMs - s.playedMs <= maxMs) return true;
    await new Promise<void>((resolve) => {
      const onAbort = (): void => {
        h.clock.clearTimer(handle);
        resolve();
      };
      const handle = h.clock.setTimer(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, h.tickMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
