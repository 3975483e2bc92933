/**
 * The serial pipeline's agent utterances in playback order, and how they are cut. A cut (barge-in, `interrupt`,
 * a replacing `tts`/`play`, a failed play) aborts their synthesis, clears the leg (fading over `fadeOutMs`), and
 * works out from what the leg says was played what the caller heard of each (heardText over the per-sentence
 * audio lengths): the `interruption` event for the audible one (every one when replaced), then `trackEnd`.
 */
import type { MediaLeg } from "../../media/leg.js";
import type { MediaClock } from "../../media/clock.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import type { CutReason } from "../core/index.js";
import { heardText, type Heard } from "../turn/index.js";
import type { Utterance } from "./utterance.js";

export interface CutHost {
  readonly leg: MediaLeg;
  readonly pbxPlayer?: PbxPlayer | undefined;
  nextSeq(): number;
  interruption(playId: string, reason: Exclude<CutReason, "error">, heard: Heard): void;
  trackEnd(playId: string, durationMs: number, reason: "interrupted" | "replaced" | "error"): void;
  /** An explicit `interrupt` stopped `u`: its `waitInputTimeout` starts now. */
  stoppedByCommand(u: Utterance): void;
}

export class UtteranceQueue {
  /** Utterances not yet ended, in playback order. */
  items: Utterance[] = [];
  /** The utterance a playId names, while it is tracked. */
  private readonly byId = new Map<string, Utterance>();
  /** Open streaming utterances by playId (§3.4 rule 1), including stopped ones still waiting for endOfStream. */
  readonly open = new Map<string, Utterance>();
  /** `base64` odd trailing byte per playId, carried to the next command of that playId. */
  readonly pcmCarry = new Map<string, number>();

  constructor(private readonly h: CutHost) {}

  add(u: Utterance): void {
    this.byId.set(u.playId, u);
    this.items.push(u);
  }

  get(playId: string): Utterance | undefined {
    return this.byId.get(playId);
  }

  /** The utterance a leg event is about: the first not ended with that playId (a closed playId may be reused). */
  find(playId: string): Utterance | undefined {
    return this.items.find((u) => u.playId === playId && !u.ended && !u.stopped) ?? this.byId.get(playId);
  }

  remove(u: Utterance): void {
    const i = this.items.indexOf(u);
    if (i >= 0) this.items.splice(i, 1);
    if (this.byId.get(u.playId) === u) this.byId.delete(u.playId);
  }

  /** Active utterances (not ended, stopped or held), in order. */
  active(): Utterance[] {
    return this.items.filter((u) => !u.ended && !u.stopped && !u.suspended);
  }

  /** Held after a VAD barge-in, waiting for the verdict. */
  held(): Utterance[] {
    return this.items.filter((u) => u.suspended);
  }

  /** Another utterance than `u` is already playing (the pacer sends it while `u`'s last frame is in the lead). */
  otherStarted(u: Utterance): boolean {
    return this.items.some((q) => q !== u && q.started && !q.ended && !q.stopped);
  }

  /** Something is still to be synthesised. */
  writing(): boolean {
    return this.items.some((u) => !u.synthDone && !u.stopped);
  }

  /**
   * Clears the leg for `targets` and reports what was heard of each: `interruption` for the audible one (unless
   * `reason` is "error"), then `trackEnd` for each. Returns the heard text per utterance.
   */
  cut(targets: Utterance[], reason: CutReason, fadeOutMs: number): Map<Utterance, string> {
    const heard = new Map<Utterance, string>();
    if (targets.length === 0) return heard;
    const { leg } = this.h;
    for (const u of targets) u.ctrl.abort();
    if (targets.some((u) => u.pbx)) void this.h.pbxPlayer?.stopPlayback().catch(() => undefined);
    const result = leg.clear({ fadeOutMs });
    // The audio already released (lead + fade) still plays out: the cleared mark resolves when it has.
    const cleared = reason === "bargeIn" && !leg.closed ? leg.mark(`cleared-${this.h.nextSeq()}`).catch(() => undefined) : undefined;
    const played = new Map(result.plays.map((p) => [p.playId, p.playedMs]));
    const audible = targets.find((u) => (played.get(u.playId) ?? 0) > 0) ?? targets[0];
    const trackReason = reason === "replaced" ? "replaced" : reason === "error" ? "error" : "interrupted";
    for (const u of targets) {
      u.cleared = cleared;
      u.cutAtMs = u.baseMs + (played.get(u.playId) ?? 0);
      const h = heardText(u.sentences, u.cutAtMs);
      heard.set(u, h.text);
      // A replacing tts/play reports every stopped utterance; interrupt/barge-in only the audible one.
      if ((u === audible || reason === "replaced") && reason !== "error") this.h.interruption(u.playId, reason, h);
      this.h.trackEnd(u.playId, played.get(u.playId) ?? 0, trackReason);
      if (reason === "command") this.h.stoppedByCommand(u);
    }
    return heard;
  }

  /** The call ended: synthesis aborted, idle timers stopped, nothing tracked any more. */
  clear(clock: MediaClock): void {
    for (const u of this.items) u.ctrl.abort();
    for (const u of [...this.items, ...this.open.values()]) if (u.idleTimer !== undefined) clock.clearTimer(u.idleTimer);
    this.open.clear();
    this.items = [];
  }
}
