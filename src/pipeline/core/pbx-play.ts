/**
 * A `pbx:<target>` sound played by the PBX itself (FreeSWITCH `playback`/`tone_stream`, Asterisk `sound:`), not
 * through our leg: `loop` times (0 = until stopped), its start reported once when the PBX says it started. Both
 * pipelines play `pbx:` sounds this way; each decides before it when the PBX may start (after the audio queued
 * ahead of it has been heard) and reports the trackStart/trackEnd its own way. A stop reaches the PBX through
 * `PbxPlayer.stopPlayback`; the signal ends the wait even if the PBX never answers it.
 */
import type { PbxPlayer } from "../../pbx/call-control.js";

export interface PbxPlay {
  player: PbxPlayer;
  /** The target after `pbx:`. */
  target: string;
  playId: string;
  /** Times to play; 0 = until stopped (or the PBX breaks it off). */
  loop: number;
  signal: AbortSignal;
  /** The play was stopped (cut, replaced, the call ended): no more rounds, no start reported. */
  stopped(): boolean;
  /** The leg's media time (ms): played time is measured on it. */
  nowMs(): number;
  /** The PBX started the first round. */
  started(atMs: number): void;
}

/** Plays the rounds; resolves with the ms played, or undefined when it was stopped before its end. */
export async function playOnPbx(p: PbxPlay): Promise<number | undefined> {
  const stoppedNow = (): boolean => p.signal.aborted || p.stopped();
  const aborted = new Promise<"aborted">((resolve) => {
    if (p.signal.aborted) resolve("aborted");
    else p.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  let startedAt: number | undefined;
  for (let i = 0; p.loop === 0 || i < p.loop; i++) {
    if (stoppedNow()) return undefined;
    const run = p.player.play(p.target, p.playId);
    const first = i === 0;
    void run.started.then(
      () => {
        if (!first || stoppedNow()) return;
        startedAt = p.nowMs();
        p.started(startedAt);
      },
      () => undefined,
    );
    const end = await Promise.race([run.ended.then((r) => r.status), aborted]);
    if (end !== "done") break;
  }
  if (stoppedNow()) return undefined;
  return Math.max(0, p.nowMs() - (startedAt ?? p.nowMs()));
}
