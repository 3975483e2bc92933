/**
 * Caller barge-in policy (playbook.md §2.7): VAD and ASR events plus the agent's playback state in, decisions
 * out. Pure and synchronous like the turn detector: inputs carry `atMs`, and `tick(nowMs)` returns what became
 * due (speech reaching minSpeechMs, the protection period ending). It only decides; the pipeline does the
 * graceful `interrupt` (fade over `fadeOutMs`, clear, cancel the reply, cut the history with heardText()).
 *
 * Rules:
 *  - `vad`: caller speech lasting `minSpeechMs` (from its onset, the VAD segment start) interrupts;
 *    `asr`: a transcript with at least `minWords` words interrupts; `both`: whichever comes first; `none`: never.
 *  - Nothing interrupts during the first `ignoreFirstMs` of an utterance's playout (from `trackStart`): the
 *    caller often finishes a word as the agent starts. Speech or an unfinished transcript still there when the
 *    period ends is judged at that moment.
 *  - With `fillerWordFilter`, filler words do not count: a filler-only transcript never interrupts, and
 *    `minWords` counts only the other words. The VAD cannot tell "uh-huh" from "wait": a VAD barge-in on a
 *    backchannel is caught afterwards as a false interruption (below), so set `minSpeechMs` above the length
 *    of a typical backchannel, or use `asr`, where that matters.
 *  - Utterances with `interruptible: false` are never cut (the caller's words are answered after them).
 *  - After a VAD barge-in the policy watches the caller's segment: if its final is empty or filler-only (or no
 *    final arrives within `verdictTimeoutMs` after the speech ended), it was a false interruption and, with
 *    `resumeOnFalse`, the pipeline re-speaks the cut sentence; as soon as a transcript has real words, the
 *    interruption is confirmed.
 *
 * ASR results must be those of the call's session, in order. Results of utterances that belong to an already
 * decided caller turn (TurnDetector.isDecided) should not be fed: they are not new speech.
 */
import type { InterruptionSection } from "../../config/sections.js";
import type { AsrResult } from "../../providers/types.js";
import { FillerFilter, fillerWordsFor } from "./filler.js";
import { words } from "./text.js";

export type InterruptionStrategy = "both" | "vad" | "asr" | "none";

export interface InterruptionOptions {
  strategy: InterruptionStrategy;
  minSpeechMs: number;
  /** 0 behaves as 1: an empty transcript never interrupts. */
  minWords: number;
  ignoreFirstMs: number;
  fillerWordFilter: boolean;
  /** The list for the call's language (see fillerWordsFor). */
  fillerWords: readonly string[];
  fadeOutMs: number;
  resumeOnFalse: boolean;
  /** How long after the caller's speech ended a VAD barge-in waits for a transcript before calling it false. */
  verdictTimeoutMs: number;
}

export const DEFAULT_INTERRUPTION_OPTIONS: Readonly<InterruptionOptions> = {
  strategy: "both",
  minSpeechMs: 300,
  minWords: 1,
  ignoreFirstMs: 800,
  fillerWordFilter: false,
  fillerWords: [],
  fadeOutMs: 20,
  resumeOnFalse: true,
  // eou.silenceMs + eou.maxWaitMs (600 + 2000) with a margin: by then the turn detector has given up too.
  verdictTimeoutMs: 3000,
};

/** The effective `interruption` section (config defaults merged with the playbook) for an ASR language. */
export function interruptionOptions(section: InterruptionSection = {}, language?: string): InterruptionOptions {
  const d = DEFAULT_INTERRUPTION_OPTIONS;
  return {
    strategy: section.strategy ?? d.strategy,
    minSpeechMs: section.minSpeechMs ?? d.minSpeechMs,
    minWords: section.minWords ?? d.minWords,
    ignoreFirstMs: section.ignoreFirstMs ?? d.ignoreFirstMs,
    fillerWordFilter: section.fillerWordFilter ?? d.fillerWordFilter,
    fillerWords: fillerWordsFor(section.fillerWords, language),
    fadeOutMs: section.fadeOutMs ?? d.fadeOutMs,
    resumeOnFalse: section.resumeOnFalse ?? d.resumeOnFalse,
    verdictTimeoutMs: d.verdictTimeoutMs,
  };
}

export type InterruptionInput =
  /** The first audio frame of an utterance was sent (the `trackStart` event). */
  | { type: "trackStart"; atMs: number; playId: string; interruptible: boolean }
  /** A streamed `tts` changed the utterance's `interruptible` (the last value given wins). */
  | { type: "interruptible"; atMs: number; playId: string; interruptible: boolean }
  /** The utterance ended or was stopped (`trackEnd`). */
  | { type: "trackEnd"; atMs: number; playId: string }
  /** VAD `speaking`; `startMs` is the segment's start (VadEvent.startMs), i.e. the speech onset. */
  | { type: "speaking"; atMs: number; startMs: number }
  /** VAD `silence`: the caller's speech segment ended. */
  | { type: "silence"; atMs: number }
  | { type: "asr"; atMs: number; result: AsrResult };

export type InterruptionOutput =
  /** Interrupt `playId` now: graceful, over `fadeOutMs`; then emit `interruption {reason:"bargeIn"}`. */
  | { type: "bargeIn"; playId: string; trigger: "vad" | "asr"; fadeOutMs: number; atMs: number; text: string }
  /** The VAD barge-in on `playId` yielded no words. `resume`: re-speak the cut sentence (resumeOnFalse). */
  | { type: "falseInterruption"; playId: string; resume: boolean; atMs: number }
  /** The VAD barge-in on `playId` was real: the caller said `text` (so far). */
  | { type: "interruptionConfirmed"; playId: string; atMs: number; text: string };

export interface InterruptionStats {
  bargeIns: number;
  falseInterruptions: number;
}

interface Track {
  playId: string;
  /** End of the protection period, or when the utterance last became interruptible, whichever is later. */
  allowedFromMs: number;
  interruptible: boolean;
}

interface Verdict {
  playId: string;
  /** The first utterance that can carry the barge-in's words (the one in progress at the barge-in). */
  fromUtterance: number;
  /** Set when the caller's speech ended: the deadline for a transcript. */
  deadlineMs: number | undefined;
}

const NOTHING: readonly InterruptionOutput[] = Object.freeze([]);

export class InterruptionPolicy {
  readonly options: Readonly<InterruptionOptions>;
  private readonly filler: FillerFilter;
  private track: Track | undefined;
  /** Onset of the caller's current speech, while speaking. */
  private speechStartMs: number | undefined;
  /** Highest utterance whose final (or failure) was seen: its text, and older ones', are settled. */
  private lastDone = -1;
  /** The latest text of the utterance in progress (not yet final): judged again when the protection ends. */
  private pending: { utterance: number; text: string } | undefined;
  /** The text of the result being processed, final or not (a non-streaming ASR only ever gives finals). */
  private fresh: string | undefined;
  private verdict: Verdict | undefined;
  private readonly counters: InterruptionStats = { bargeIns: 0, falseInterruptions: 0 };
  /** The decisions of the call in progress (process or tick), emptied by drain. */
  private readonly outputs: InterruptionOutput[] = [];

  constructor(options: Partial<InterruptionOptions> = {}) {
    this.options = { ...DEFAULT_INTERRUPTION_OPTIONS, ...options };
    this.filler = new FillerFilter(this.options.fillerWordFilter ? this.options.fillerWords : []);
  }

  get stats(): Readonly<InterruptionStats> {
    return { ...this.counters };
  }

  /** Whether `text` alone would interrupt (strategy aside): enough words, not filler-only. */
  qualifies(text: string): boolean {
    const needed = Math.max(1, this.options.minWords);
    if (!this.options.fillerWordFilter) return words(text).length >= needed;
    return !this.filler.isFillerOnly(text) && this.filler.contentWordCount(text) >= needed;
  }

  process(input: InterruptionInput): readonly InterruptionOutput[] {
    const out = this.outputs;
    this.due(input.atMs, out);
    switch (input.type) {
      case "trackStart":
        this.track = { playId: input.playId, allowedFromMs: input.atMs + this.options.ignoreFirstMs, interruptible: input.interruptible };
        // A new playout makes a pending verdict moot (either it resumed, or the reply moved on).
        this.verdict = undefined;
        break;
      case "interruptible":
        if (this.track?.playId === input.playId) {
          // Speech already going on when it becomes interruptible may cut it from now on, not retroactively.
          if (input.interruptible && !this.track.interruptible) this.track.allowedFromMs = Math.max(this.track.allowedFromMs, input.atMs);
          this.track.interruptible = input.interruptible;
        }
        break;
      case "trackEnd":
        if (this.track?.playId === input.playId) this.track = undefined;
        break;
      case "speaking":
        this.speechStartMs = input.startMs;
        if (this.verdict) this.verdict.deadlineMs = undefined;
        break;
      case "silence":
        this.speechStartMs = undefined;
        if (this.verdict) this.verdict.deadlineMs = input.atMs + this.options.verdictTimeoutMs;
        break;
      case "asr":
        this.onAsr(input.result, input.atMs, out);
        break;
    }
    this.decide(input.atMs, out);
    this.fresh = undefined;
    return this.drain();
  }

  /**
   * The time is now `nowMs`: returns the decisions that became due. Pipelines call it every few media ms, so a
   * tick with nothing due allocates nothing.
   */
  tick(nowMs: number): readonly InterruptionOutput[] {
    this.due(nowMs, this.outputs);
    return this.drain();
  }

  private due(nowMs: number, out: InterruptionOutput[]): void {
    const v = this.verdict;
    if (v?.deadlineMs !== undefined && nowMs >= v.deadlineMs) this.settle(false, "", v.deadlineMs, out);
    this.decide(nowMs, out);
  }

  /** What this call decided, handed over (a fresh array only when there is something in it). */
  private drain(): readonly InterruptionOutput[] {
    return this.outputs.length === 0 ? NOTHING : this.outputs.splice(0);
  }

  private onAsr(result: AsrResult, atMs: number, out: InterruptionOutput[]): void {
    if (result.utterance <= this.lastDone) return;
    const done = result.type !== "partial";
    const text = result.type === "error" ? (this.pending?.utterance === result.utterance ? this.pending.text : "") : result.text;
    this.fresh = text;
    if (done) {
      this.lastDone = result.utterance;
      this.pending = undefined;
    } else {
      this.pending = { utterance: result.utterance, text };
    }
    const v = this.verdict;
    if (v !== undefined && result.utterance >= v.fromUtterance) {
      if (this.qualifies(text)) this.settle(true, text, atMs, out);
      else if (done) this.settle(false, text, atMs, out);
    }
  }

  private settle(real: boolean, text: string, atMs: number, out: InterruptionOutput[]): void {
    const v = this.verdict;
    if (v === undefined) return;
    this.verdict = undefined;
    if (real) {
      out.push({ type: "interruptionConfirmed", playId: v.playId, atMs, text });
      return;
    }
    this.counters.falseInterruptions++;
    out.push({ type: "falseInterruption", playId: v.playId, resume: this.options.resumeOnFalse, atMs });
  }

  /** Barge-in, if the rules allow one by `nowMs`. */
  private decide(nowMs: number, out: InterruptionOutput[]): void {
    const t = this.track;
    const { strategy, minSpeechMs, fadeOutMs } = this.options;
    if (t === undefined || !t.interruptible || strategy === "none") return;
    if (nowMs < t.allowedFromMs) return;
    const byVad = strategy !== "asr" && this.speechStartMs !== undefined ? Math.max(this.speechStartMs + minSpeechMs, t.allowedFromMs) : undefined;
    const text = this.fresh ?? this.pending?.text ?? "";
    const byAsr = strategy !== "vad" && this.qualifies(text);
    if (byAsr) {
      this.bargeIn(t, "asr", nowMs, text, fadeOutMs, out);
    } else if (byVad !== undefined && nowMs >= byVad) {
      // Reported at the moment the speech reached minSpeechMs (or barge-in became allowed), whatever the tick rate.
      this.bargeIn(t, "vad", Math.min(nowMs, byVad), text, fadeOutMs, out);
      this.verdict = { playId: t.playId, fromUtterance: this.lastDone + 1, deadlineMs: undefined };
      // The words may already be known (strategy "vad" does not act on them, but they settle the verdict).
      if (this.pending !== undefined && this.qualifies(this.pending.text)) this.settle(true, this.pending.text, Math.min(nowMs, byVad), out);
    }
  }

  private bargeIn(t: Track, trigger: "vad" | "asr", atMs: number, text: string, fadeOutMs: number, out: InterruptionOutput[]): void {
    this.track = undefined;
    this.counters.bargeIns++;
    out.push({ type: "bargeIn", playId: t.playId, trigger, fadeOutMs, atMs, text });
  }
}
