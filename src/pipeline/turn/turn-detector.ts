/**
 * User turns and end-of-utterance (playbook.md §2.6): VAD events and ASR results in, decisions out. Pure and
 * synchronous: every input carries its time (`atMs`, on the same clock as the VAD's), and the passing of time is
 * reported with `tick(nowMs)`, which returns whatever became due. No LLM is called here; the pipeline acts on
 * the outputs.
 *
 * A turn opens at the first `speaking`, and ends when the caller has been silent for `silenceMs` after a VAD
 * `silence` (speech that resumes before that continues the same turn). Its text is its utterances' finals joined.
 *
 * Modes:
 *  - `vad`: the ASR utterance is the whole turn: `endUtterance` is emitted at the turn end, and `reply` when the
 *    final arrives.
 *  - `early`: every VAD segment is an ASR utterance (`endUtterance` at each VAD `silence`), and as soon as there
 *    is text (the latest partial, or the segment's final for a non-streaming ASR) a `speculate` lets the
 *    pipeline start the LLM, minSilenceMs after the caller stopped instead of silenceMs + ASR time later. The
 *    speculative reply is never played before `commit`:
 *      - speech resumes before `silenceMs`: `eou {completed:false}` and `discard` (a miss);
 *      - a segment's final differs from the speculated text (case, punctuation and spacing ignored): `discard`
 *        (a miss) and a new `speculate` on the new text;
 *      - the turn ends and its transcript equals the speculated text: `commit` (a hit);
 *      - the turn ends and its transcript differs: `discard` (a miss) then `reply` with the transcript.
 *    Hits and misses are counted per speculation, so one turn can count a miss and then a hit.
 *
 * After the turn ended the detector waits at most `maxWaitMs` for the missing finals; then the latest partials
 * stand in for them (`reply {source:"partial"}`), or the turn is dropped if there is no text at all. Turns are
 * decided in order, and results that arrive for an already decided turn are ignored.
 */
import type { AsrResult } from "../../providers/types.js";
import { joinText, normalizeForCompare } from "./text.js";
import { UtteranceTranscripts } from "./transcripts.js";

export type EouMode = "vad" | "early";

export interface TurnDetectorOptions {
  /** Default `early` (playbook.md §2.6). */
  mode: EouMode;
  /** Silence after speech that ends the turn. Default 600. */
  silenceMs: number;
  /** Longest wait for the finals after the turn ended. Default 2000. */
  maxWaitMs: number;
  /**
   * The VAD's `minSilenceMs`: the VAD reports `silence` this long after the speech stopped, so the turn ends
   * `silenceMs - vadMinSilenceMs` after that event. Default 100 (the VAD default).
   */
  vadMinSilenceMs: number;
}

export const DEFAULT_TURN_OPTIONS: Readonly<TurnDetectorOptions> = {
  mode: "early",
  silenceMs: 600,
  maxWaitMs: 2000,
  vadMinSilenceMs: 100,
};

/** The playbook's `eou` section (and the VAD's minSilenceMs) as detector options, defaults filled in. */
export function turnDetectorOptions(
  eou: { type?: EouMode | undefined; silenceMs?: number | undefined; maxWaitMs?: number | undefined } = {},
  vadMinSilenceMs: number = DEFAULT_TURN_OPTIONS.vadMinSilenceMs,
): TurnDetectorOptions {
  return {
    mode: eou.type ?? DEFAULT_TURN_OPTIONS.mode,
    silenceMs: eou.silenceMs ?? DEFAULT_TURN_OPTIONS.silenceMs,
    maxWaitMs: eou.maxWaitMs ?? DEFAULT_TURN_OPTIONS.maxWaitMs,
    vadMinSilenceMs,
  };
}

export type TurnInput =
  /** VAD `speaking`: caller speech confirmed. */
  | { type: "speaking"; atMs: number }
  /** VAD `silence`: the speech segment ended (decided `vadMinSilenceMs` after the speech stopped). */
  | { type: "silence"; atMs: number }
  /** A result from the call's AsrSession, in the session's order. */
  | { type: "asr"; atMs: number; result: AsrResult };

/** Times of a decided turn, for the `turn` metric (ws-call-api.md §4). */
export interface TurnTiming {
  /** When the caller stopped speaking (estimated: VAD `silence` minus vadMinSilenceMs). */
  speechEndMs: number;
  /** When the turn was decided over (`eou {completed:true}`). */
  eouAtMs: number;
  /** When the text used was known (the last final, or the maxWaitMs deadline). */
  transcriptAtMs: number;
}

export type TurnOutput =
  /** Call the AsrSession's `endUtterance()` now: the audio so far is utterance number `utterance`. */
  | { type: "endUtterance"; turn: number; utterance: number; atMs: number }
  /** Emit the `eou` event: turn over (`true`), or speech resumed after a provisional end (`false`, early mode). */
  | { type: "eou"; turn: number; completed: boolean; atMs: number }
  /** Start generating a reply to `text`, but do not play it until `commit`. Replaces any earlier speculation. */
  | { type: "speculate"; turn: number; text: string; atMs: number }
  /** Cancel the speculative reply unplayed (a miss). A `speculate` or `reply` may follow. */
  | { type: "discard"; turn: number; reason: "speechResumed" | "transcriptChanged" | "noTranscript"; atMs: number }
  /** The speculative reply was right (a hit): play it; `text` is the caller's turn for the history. */
  | { type: "commit"; turn: number; text: string; atMs: number; timing: TurnTiming }
  /** Reply to `text` and play as it comes. `source` says whether maxWaitMs forced a partial transcript. */
  | { type: "reply"; turn: number; text: string; source: "final" | "partial"; atMs: number; timing: TurnTiming }
  /** The turn ended without any text (noise, or the ASR heard nothing): nothing to answer. */
  | { type: "drop"; turn: number; atMs: number };

export interface TurnStats {
  turns: number;
  speculations: number;
  hits: number;
  misses: number;
  dropped: number;
}

interface Turn {
  id: number;
  /** ASR utterances ended for this turn, in order. */
  utterances: number[];
  speaking: boolean;
  speechEndMs: number;
  /** When the silence reaches silenceMs (undefined while speaking). */
  endDueMs: number | undefined;
  /** Set when the turn is over: the deadline for its finals. */
  waitUntilMs: number | undefined;
  eouAtMs: number;
  /** The text of the reply being generated speculatively, if any. */
  speculation: string | undefined;
}

const NOTHING: readonly TurnOutput[] = Object.freeze([]);

export class TurnDetector {
  readonly options: Readonly<TurnDetectorOptions>;
  /** The decisions of the call in progress (process or tick), emptied by drain. */
  private readonly outputs: TurnOutput[] = [];
  private readonly transcripts = new UtteranceTranscripts();
  /** The turn being spoken (not yet over). */
  private current: Turn | undefined;
  /** Turns that are over and wait for their transcripts, oldest first. */
  private readonly waiting: Turn[] = [];
  private nextTurn = 0;
  /** Utterances ended so far: the number the AsrSession gives the next one. */
  private nextUtterance = 0;
  /** Decisions come in turn order, so their times never go backwards. */
  private lastDecidedAtMs = 0;
  /** Utterances below this number belong to decided turns (turns, hence utterances, are decided in order). */
  private decidedBelow = 0;
  private readonly counters: TurnStats = { turns: 0, speculations: 0, hits: 0, misses: 0, dropped: 0 };

  constructor(options: Partial<TurnDetectorOptions> = {}) {
    this.options = { ...DEFAULT_TURN_OPTIONS, ...options };
    const { silenceMs, vadMinSilenceMs, maxWaitMs } = this.options;
    if (!(silenceMs >= vadMinSilenceMs)) throw new RangeError(`eou.silenceMs (${silenceMs}) must be >= vad.minSilenceMs (${vadMinSilenceMs})`);
    if (!(maxWaitMs >= 0)) throw new RangeError(`eou.maxWaitMs must be >= 0, not ${maxWaitMs}`);
  }

  get stats(): Readonly<TurnStats> {
    return { ...this.counters };
  }

  /**
   * Whether the utterance belongs to a turn already decided: its late results are ignored here, and should not
   * reach the interruption policy either (a final that maxWaitMs gave up on is not new caller speech).
   */
  isDecided(utterance: number): boolean {
    return utterance < this.decidedBelow;
  }

  /** Whether a caller turn is open (speaking, or in the silence before silenceMs). */
  get inTurn(): boolean {
    return this.current !== undefined;
  }

  /** Feeds one event; returns the decisions it caused (time-driven ones up to `input.atMs` first). */
  process(input: TurnInput): readonly TurnOutput[] {
    const out = this.outputs;
    this.due(input.atMs, out);
    if (input.type === "speaking") this.onSpeaking(input.atMs, out);
    else if (input.type === "silence") this.onSilence(input.atMs, out);
    else this.onAsr(input.result, input.atMs, out);
    return this.drain();
  }

  /**
   * The time is now `nowMs`: returns the decisions that became due (turn end, maxWaitMs). Pipelines call it every
   * few media ms, so a tick with nothing due allocates nothing.
   */
  tick(nowMs: number): readonly TurnOutput[] {
    this.due(nowMs, this.outputs);
    return this.drain();
  }

  private due(nowMs: number, out: TurnOutput[]): void {
    const t = this.current;
    if (t !== undefined && !t.speaking && t.endDueMs !== undefined && nowMs >= t.endDueMs) this.endTurn(t, out);
    this.resolveWaiting(nowMs, out);
  }

  /** What this call decided, handed over (a fresh array only when there is something in it). */
  private drain(): readonly TurnOutput[] {
    return this.outputs.length === 0 ? NOTHING : this.outputs.splice(0);
  }

  /** Forgets every turn (e.g. the call ended, or the pipeline was restarted). Counters are kept. */
  reset(): void {
    this.current = undefined;
    this.waiting.length = 0;
    this.transcripts.clear();
    this.decidedBelow = this.nextUtterance;
  }

  private onSpeaking(atMs: number, out: TurnOutput[]): void {
    const t = this.current;
    if (t === undefined) {
      this.current = this.newTurn(atMs);
      return;
    }
    if (t.speaking) return;
    t.speaking = true;
    t.endDueMs = undefined;
    if (this.options.mode === "early") {
      // In early mode the VAD silence was a provisional end: tell the client it was not the end after all.
      out.push({ type: "eou", turn: t.id, completed: false, atMs });
      if (t.speculation !== undefined) this.discard(t, "speechResumed", atMs, out);
    }
  }

  private onSilence(atMs: number, out: TurnOutput[]): void {
    // A `silence` without a `speaking` (a detector reset in between) still ends the speech it reports.
    const t = (this.current ??= this.newTurn(atMs));
    t.speaking = false;
    t.speechEndMs = Math.max(t.speechEndMs, atMs - this.options.vadMinSilenceMs);
    t.endDueMs = t.speechEndMs + this.options.silenceMs;
    if (this.options.mode === "early") {
      this.endUtterance(t, atMs, out);
      this.speculate(t, atMs, out);
    }
    if (atMs >= t.endDueMs) this.endTurn(t, out);
  }

  private onAsr(result: AsrResult, atMs: number, out: TurnOutput[]): void {
    if (!this.transcripts.apply(result, atMs)) return;
    const t = this.current;
    if (t !== undefined && !t.speaking && t.utterances.includes(result.utterance)) {
      // A final can change the text the speculation was based on: restart it now rather than at the turn end.
      if (t.speculation !== undefined && result.type !== "partial") {
        const text = this.textOf(t);
        if (normalizeForCompare(text) !== normalizeForCompare(t.speculation)) {
          this.discard(t, "transcriptChanged", atMs, out);
          this.speculate(t, atMs, out);
        }
      } else {
        this.speculate(t, atMs, out);
      }
    }
    this.resolveWaiting(atMs, out);
  }

  private newTurn(atMs: number): Turn {
    this.counters.turns++;
    return {
      id: this.nextTurn++,
      utterances: [],
      speaking: true,
      speechEndMs: atMs,
      endDueMs: undefined,
      waitUntilMs: undefined,
      eouAtMs: 0,
      speculation: undefined,
    };
  }

  private endUtterance(t: Turn, atMs: number, out: TurnOutput[]): void {
    const utterance = this.nextUtterance++;
    t.utterances.push(utterance);
    out.push({ type: "endUtterance", turn: t.id, utterance, atMs });
  }

  /** Early mode: start (or restart) the speculative reply when there is text and none is running. */
  private speculate(t: Turn, atMs: number, out: TurnOutput[]): void {
    if (this.options.mode !== "early" || t.speculation !== undefined) return;
    const text = this.textOf(t);
    if (text === "") return;
    t.speculation = text;
    this.counters.speculations++;
    out.push({ type: "speculate", turn: t.id, text, atMs });
  }

  private discard(t: Turn, reason: "speechResumed" | "transcriptChanged" | "noTranscript", atMs: number, out: TurnOutput[]): void {
    t.speculation = undefined;
    this.counters.misses++;
    out.push({ type: "discard", turn: t.id, reason, atMs });
  }

  private endTurn(t: Turn, out: TurnOutput[]): void {
    const atMs = t.endDueMs ?? t.speechEndMs;
    if (this.options.mode === "vad") this.endUtterance(t, atMs, out);
    out.push({ type: "eou", turn: t.id, completed: true, atMs });
    t.eouAtMs = atMs;
    t.waitUntilMs = atMs + this.options.maxWaitMs;
    this.current = undefined;
    this.waiting.push(t);
  }

  /** Decides the waiting turns, oldest first, as far as their transcripts (or deadlines) allow. */
  private resolveWaiting(nowMs: number, out: TurnOutput[]): void {
    for (let t = this.waiting[0]; t !== undefined; t = this.waiting[0]) {
      const complete = t.utterances.every((u) => this.transcripts.isDone(u));
      const deadline = t.waitUntilMs ?? Number.POSITIVE_INFINITY;
      if (!complete && nowMs < deadline) return;
      this.waiting.shift();
      // The moment the decision became possible (the last final, the turn end, or the deadline), not the
      // moment of this call: keeps the outputs' times exact whatever the tick rate.
      const atMs = complete
        ? Math.max(t.eouAtMs, this.lastDecidedAtMs, ...t.utterances.map((u) => this.transcripts.doneAtMs(u) ?? 0))
        : Math.max(deadline, this.lastDecidedAtMs);
      this.lastDecidedAtMs = atMs;
      this.decide(t, atMs, out);
      this.transcripts.forget(t.utterances);
      this.decidedBelow = Math.max(this.decidedBelow, ...t.utterances.map((u) => u + 1));
    }
  }

  private decide(t: Turn, atMs: number, out: TurnOutput[]): void {
    const text = this.textOf(t);
    const timing: TurnTiming = { speechEndMs: t.speechEndMs, eouAtMs: t.eouAtMs, transcriptAtMs: atMs };
    if (text === "") {
      if (t.speculation !== undefined) this.discard(t, "noTranscript", atMs, out);
      this.counters.dropped++;
      out.push({ type: "drop", turn: t.id, atMs });
      return;
    }
    if (t.speculation !== undefined) {
      if (normalizeForCompare(text) === normalizeForCompare(t.speculation)) {
        this.counters.hits++;
        out.push({ type: "commit", turn: t.id, text, atMs, timing });
        return;
      }
      this.discard(t, "transcriptChanged", atMs, out);
    }
    const source = t.utterances.every((u) => this.transcripts.hasFinal(u)) ? "final" : "partial";
    out.push({ type: "reply", turn: t.id, text, source, atMs, timing });
  }

  private textOf(t: Turn): string {
    return joinText(t.utterances.map((u) => this.transcripts.best(u)));
  }
}
