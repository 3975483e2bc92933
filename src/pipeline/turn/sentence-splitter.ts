/**
 * Incremental sentence splitter for streamed LLM text: token deltas cut anywhere go in, sentences come out as
 * soon as they are certain, so each can go to TTS while the model is still writing the next one.
 *
 * The result does not depend on how the text was chunked: a delta boundary never creates or hides a sentence
 * end, because every decision that needs the next character waits for it (or for `flush()`).
 *
 * Rules (ws-call-api.md §3.4 rule 4, extended):
 *  - a sentence ends after a run of `.`, `!`, `?`, `…` (so "..." and "?!" are one end) plus any closing quotes or
 *    brackets, when the next character is white space, a CJK character, or the end of the text. "3.14" and
 *    "example.com" therefore never split; neither do known abbreviations ("Dr.", "Mrs.", "vs.") nor dotted ones
 *    ("e.g.", "i.e.", "U.S.", "a.m."), at the price of not splitting when such a word really ends a sentence;
 *  - CJK `。`, `！`, `？`, `；` end a sentence without needing a space (closing `」』）”` are kept with it);
 *  - a newline ends a sentence (lists, paragraphs);
 *  - a sentence shorter than `minChars` is merged with the following one (a lone "1." or "Hi." would be a TTS
 *    request of its own, with a pause around it), unless the merge would exceed `maxChars`;
 *  - a piece longer than `maxChars` (no sentence end in time) is cut at the last comma in the second half of the
 *    window, else at the last space, else hard at `maxChars`, so one huge sentence cannot delay the first audio.
 * Lengths are in UTF-16 code units (a hard cut never splits a surrogate pair), after trimming.
 */
import { isWide } from "./text.js";

export interface SentenceSplitterOptions {
  /** Sentences shorter than this are merged with the next one. Default 5 ("Sure." stands alone, "Hi." not). */
  minChars?: number;
  /** Longest sentence; longer text is cut at a comma or space. Default 250 (ws-call-api.md §3.4). */
  maxChars?: number;
  /** Lower-case words (without their dot) that a "." does not end. Default: ABBREVIATIONS. */
  abbreviations?: Iterable<string>;
}

/** Titles and short forms that are almost never the last word of a sentence in a spoken reply. */
export const ABBREVIATIONS: readonly string[] = [
  "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "fig", "approx", "dept", "cf",
];

const TERMINATORS = ".!?…";
const CJK_TERMINATORS = "。！？；";
const CLOSERS = "\"'”’)]}」』）】》〉";
const COMMAS = ",，、;；:：";
/** How far back the abbreviation test looks; also how much consumed text is kept for it. */
const LOOKBACK = 24;

/** The end of the next piece, or "wait" when it depends on text that has not arrived yet. */
type Cut = { end: number } | "wait" | "none";

export class SentenceSplitter {
  private readonly minChars: number;
  private readonly maxChars: number;
  private readonly abbreviations: ReadonlySet<string>;
  /** Unconsumed text from `pos`, plus up to LOOKBACK consumed characters before it (for abbreviations). */
  private buf = "";
  private pos = 0;
  /** Raw (untrimmed) consecutive pieces held back because they are shorter than `minChars`. */
  private pending = "";

  constructor(options: SentenceSplitterOptions = {}) {
    this.minChars = options.minChars ?? 5;
    this.maxChars = options.maxChars ?? 250;
    if (!(this.maxChars >= 1)) throw new RangeError(`maxChars must be >= 1, not ${this.maxChars}`);
    this.abbreviations = new Set([...(options.abbreviations ?? ABBREVIATIONS)].map((a) => a.toLowerCase()));
  }

  /** Adds a delta; returns the sentences it completed (trimmed, non-empty), in order. */
  push(delta: string): string[] {
    this.buf += delta;
    return this.drain(false);
  }

  /** End of the text: everything left, as sentences (the last may be shorter than `minChars`). */
  flush(): string[] {
    const out = this.drain(true);
    const rest = this.pending.trim();
    this.pending = "";
    if (rest !== "") out.push(rest);
    this.buf = "";
    this.pos = 0;
    return out;
  }

  private drain(final: boolean): string[] {
    const out: string[] = [];
    for (;;) {
      const cut = this.nextCut(final);
      if (cut === "wait") break;
      if (cut === "none") {
        if (final && this.pos < this.buf.length) this.accept(this.buf.slice(this.pos), out);
        this.pos = this.buf.length;
        break;
      }
      this.accept(this.buf.slice(this.pos, cut.end), out);
      this.pos = cut.end;
    }
    // Keep only what is unconsumed plus the look-back, so a long reply does not make each push slower.
    const keepFrom = Math.max(0, this.pos - LOOKBACK);
    if (keepFrom > 0) {
      this.buf = this.buf.slice(keepFrom);
      this.pos -= keepFrom;
    }
    return out;
  }

  /** The min-length merge, applied to the stream of raw pieces. */
  private accept(piece: string, out: string[]): void {
    if (piece.trim() === "") {
      if (this.pending !== "") this.pending += piece;
      return;
    }
    const merged = this.pending + piece;
    if (this.pending !== "" && merged.trim().length > this.maxChars) {
      out.push(this.pending.trim());
      this.pending = "";
      this.accept(piece, out);
      return;
    }
    if (merged.trim().length >= this.minChars) {
      out.push(merged.trim());
      this.pending = "";
    } else {
      this.pending = merged;
    }
  }

  /** Where the piece starting at `pos` ends. */
  private nextCut(final: boolean): Cut {
    const text = this.buf;
    let start = this.pos;
    while (start < text.length && /\s/u.test(text[start] as string)) start++;
    // Leading white space is consumed on its own (it only matters as the spacing inside a merged sentence).
    if (start >= text.length) return start > this.pos ? { end: start } : "wait";
    for (let i = start; i < text.length; i++) {
      const end = this.sentenceEndAt(i, final);
      if (end === undefined) continue;
      if (end === "wait") {
        // The character that decides lies beyond the text. The end would be at or after the text's end, so if
        // that is already past the limit the piece is too long whatever comes next.
        return text.length - start > this.maxChars ? this.forceCut(start) : "wait";
      }
      return text.slice(start, end).trimEnd().length <= this.maxChars ? { end } : this.forceCut(start);
    }
    if (text.length - start > this.maxChars) return this.forceCut(start);
    return final ? "none" : "wait";
  }

  /**
   * If a sentence end starts at `i`: the index after it, "wait" when the next character is needed, else
   * undefined.
   */
  private sentenceEndAt(i: number, final: boolean): number | "wait" | undefined {
    const text = this.buf;
    const ch = text[i] as string;
    if (ch === "\n") return i + 1;
    const cjk = CJK_TERMINATORS.includes(ch);
    if (!cjk && !TERMINATORS.includes(ch)) return undefined;
    // Only the first character of a run starts an end: "..." is one end, not three.
    if (i > this.pos && (TERMINATORS + CJK_TERMINATORS).includes(text[i - 1] as string)) return undefined;
    let j = i;
    while (j < text.length && (TERMINATORS + CJK_TERMINATORS).includes(text[j] as string)) j++;
    while (j < text.length && CLOSERS.includes(text[j] as string)) j++;
    if (j >= text.length) return final ? j : "wait";
    const next = text[j] as string;
    if (cjk || /[。！？；]/u.test(text.slice(i, j))) return j;
    if (!/\s/u.test(next) && !isWide(next)) return undefined;
    if (j - i === 1 && ch === "." && this.isAbbreviation(i)) return undefined;
    return j;
  }

  /** Whether the word before the "." at `dot` is an abbreviation (known, or dotted like "e.g"). */
  private isAbbreviation(dot: number): boolean {
    const before = this.buf.slice(Math.max(0, dot - LOOKBACK), dot);
    const word = /[\p{L}.]*$/u.exec(before)?.[0] ?? "";
    if (word === "") return false;
    if (/\p{L}\.\p{L}/u.test(word)) return true;
    return this.abbreviations.has(word.toLowerCase());
  }

  /** A cut for a piece longer than `maxChars`: last comma in the second half, else last space, else hard. */
  private forceCut(start: number): Cut {
    const window = this.buf.slice(start, start + this.maxChars);
    let comma = -1;
    for (let k = window.length - 1; k >= 0; k--) {
      if (COMMAS.includes(window[k] as string)) {
        comma = k;
        break;
      }
    }
    if (comma >= 0 && comma + 1 >= window.length / 2) return { end: start + comma + 1 };
    const space = window.search(/\s\S*$/u);
    if (space > 0) return { end: start + space };
    let end = start + this.maxChars;
    // Do not separate the two halves of a surrogate pair (an emoji, a rare CJK character).
    if (/[\uDC00-\uDFFF]/.test(this.buf[end] ?? "") && end - 1 > start) end--;
    return { end };
  }
}

/** Splits a whole text (the same sentences as feeding it in any chunks and flushing). */
export function splitSentences(text: string, options?: SentenceSplitterOptions): string[] {
  const s = new SentenceSplitter(options);
  return [...s.push(text), ...s.flush()];
}
