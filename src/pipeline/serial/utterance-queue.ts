/**
 * The serial pipeline's agent utterances in playback order, and how they are cut. A cut (barge-in, `interrupt`,
 * a replacing `tts`/`play`, a failed play) aborts their synthesis, clears the leg (fading over `fadeOutMs`), and
 * works out from what the leg says was played what the caller heard of each (heardText over the per-sentence
 * audio lengths): the `interruption` event for the audible one (every one when replaced), then `trackEnd`.
 * A VAD barge-in holds the utterances until the verdict: stopped for good, or re-spoken from the cut sentence.
 */
import type { MediaLeg } from "../../media/leg.js";
import type { Logger } from "../../log.js";
import type { MediaClock } from "../../media/clock.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import type { CutReason } from "../core/index.js";
import { heardText, type Heard, type SpokenSentence } from "../turn/index.js";
import { OPEN_UTTERANCE_IDLE_MS } from "../core/commands.js";
import type { Utterance } from "./utterance.js";

export interface QueueHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly log?: Logger | undefined;
  ended(): boolean;
  readonly pbxPlayer?: PbxPlayer | undefined;
  nextSeq(): number;
  interruption(playId: string, reason: Exclude<CutReason, "error">, heard: Heard): void;
  trackEnd(playId: string, durationMs: number, reason: "interrupted" | "replaced" | "error"): void;
  /** An explicit `interrupt` stopped `u`: its `waitInputTimeout` starts now. */
  stoppedByCommand(u: Utterance): void;
  /** `u` was stopped for good after the caller heard `heard` of it (`after`: the cleared mark, for a barge-in). */
  speechEnded(u: Utterance, heard: string | undefined, after: Promise<unknown> | undefined): void;
  /** The voice worker looks at the queue again. */
  wake(): void;
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

  constructor(private readonly h: QueueHost) {}

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

  /** Ends an utterance's text (endOfStream, a non-streaming tts, or 30 s without text). */
  close(u: Utterance): void {
    if (u.idleTimer !== undefined) this.h.clock.clearTimer(u.idleTimer);
    u.idleTimer = undefined;
    if (this.open.get(u.playId) === u) this.open.delete(u.playId);
    u.open = false;
    if (!u.pcm) for (const s of u.splitter.flush()) u.sentences.push({ text: s, durationMs: undefined });
    this.h.wake();
  }

  /** An open utterance that gets no more text for 30 s is closed. */
  armIdleClose(u: Utterance): void {
    if (u.idleTimer !== undefined) this.h.clock.clearTimer(u.idleTimer);
    u.idleTimer = this.h.clock.setTimer(() => {
      u.idleTimer = undefined;
      if (this.h.ended()) return;
      this.h.log?.info({ playId: u.playId }, "open utterance closed after 30 s without text");
      this.close(u);
    }, OPEN_UTTERANCE_IDLE_MS);
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
    const played = this.clearLeg(targets, fadeOutMs);
    // The audio already released (lead + fade) still plays out: the cleared mark resolves when it has.
    const cleared = reason === "bargeIn" && !leg.closed ? leg.mark(`cleared-${this.h.nextSeq()}`).catch(() => undefined) : undefined;
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

  /** Clears the leg: what each of `targets` played (a PBX-side sound: the time since the PBX started it). */
  private clearLeg(targets: Utterance[], fadeOutMs: number): Map<string, number> {
    const { leg } = this.h;
    const result = leg.closed ? undefined : leg.clear({ fadeOutMs });
    const played = new Map((result?.plays ?? []).map((p) => [p.playId, p.playedMs]));
    for (const u of targets) if (u.pbxStartedAtMs !== undefined) played.set(u.playId, Math.max(0, leg.nowMs - u.pbxStartedAtMs));
    return played;
  }

  /**
   * The call hangs up: every utterance still playing or queued is stopped and ends with `trackEnd
   * {interrupted}` and what of it was played (no `interruption`: nobody is left to take the turn).
   */
  endAll(): void {
    const targets = this.active();
    if (targets.length === 0) return;
    for (const u of targets) {
      u.stopped = true;
      u.ctrl.abort();
    }
    if (targets.some((u) => u.pbx)) void this.h.pbxPlayer?.stopPlayback().catch(() => undefined);
    const played = this.clearLeg(targets, 0);
    for (const u of targets) this.h.trackEnd(u.playId, played.get(u.playId) ?? 0, "interrupted");
  }

  /** Stops utterances for good and tells the runner what was heard. `interruptibleOnly` for caller barge-in. */
  stopAll(reason: CutReason, fadeOutMs: number, interruptibleOnly = false): void {
    let targets = this.active();
    if (interruptibleOnly && targets[0] && !targets[0].interruptible) return;
    if (interruptibleOnly) targets = targets.filter((u) => u.interruptible);
    for (const u of targets) u.stopped = true;
    const heard = this.cut(targets, reason, fadeOutMs);
    this.h.wake();
    for (const u of targets) this.h.speechEnded(u, heard.get(u), u.cleared);
  }

  /** A VAD barge-in: the interruptible utterances are cut and held until the policy's verdict. */
  holdAll(fadeOutMs: number): void {
    const targets = this.active().filter((u) => u.interruptible);
    if (targets.length === 0) return;
    const heard = this.cut(targets, "bargeIn", fadeOutMs);
    for (const u of targets) {
      u.suspended = true;
      u.heldHeard = heard.get(u);
    }
    this.h.wake();
  }

  /** The barge-in was real (or moot): the held utterances are stopped for good. */
  releaseHeld(): void {
    for (const u of this.held()) {
      u.suspended = false;
      u.stopped = true;
      this.h.speechEnded(u, u.heldHeard, u.cleared);
    }
    this.h.wake();
  }

  /** False interruption: re-speak each held utterance from its cut sentence, under the same playId. */
  resumeHeld(): void {
    for (const u of this.held()) {
      const h = heardText(u.sentences, u.cutAtMs);
      const from = h.cutSentence ?? u.sentences.length;
      u.baseMs = h.cutSentenceStartMs;
      for (let i = from; i < u.sentences.length; i++) u.sentences[i] = { text: (u.sentences[i] as SpokenSentence).text, durationMs: undefined };
      u.next = from;
      u.ctrl = new AbortController();
      u.synthDone = false;
      u.ended = false;
      u.suspended = false;
      u.heldHeard = undefined;
      u.writtenSamples = 0;
    }
    this.h.wake();
  }

  /** The call ended: synthesis aborted, idle timers stopped, nothing tracked any more. */
  clear(clock: MediaClock): void {
    for (const u of this.items) u.ctrl.abort();
    for (const u of [...this.items, ...this.open.values()]) if (u.idleTimer !== undefined) clock.clearTimer(u.idleTimer);
    this.open.clear();
    this.items = [];
  }
}
