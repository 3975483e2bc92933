/**
 * What the caller heard of an interrupted agent utterance (DESIGN.md "Interruption": the history keeps only the
 * heard text; ws-call-api.md §4 `interruption {subtitle, position, totalDuration, current}` and `llmFinal.heard`).
 *
 * The utterance is the sentences sent to TTS, each with the length of its audio. Sentences wholly before the
 * played time were heard; in the one being played the cut is placed by the word timings when the TTS gave them,
 * else proportionally (played share of the sentence's audio = share of its characters), and moved back to a
 * word boundary: a half-heard word was not heard. CJK characters are each a word, so CJK text cuts between any
 * two characters.
 */
import { isSpace, isWide, joinWithOffsets } from "./text.js";

export interface WordTiming {
  /** Start and end (exclusive) of the word in the sentence's text, in UTF-16 code units. */
  start: number;
  end: number;
  /** When the word's audio ends, in ms from the start of the sentence's audio. */
  endMs: number;
}

export interface SpokenSentence {
  text: string;
  /** Length of the sentence's audio; undefined while it is not synthesised (not heard, not in totalMs). */
  durationMs: number | undefined;
  /** Word timings from the TTS, when it gives them. */
  words?: readonly WordTiming[] | undefined;
}

export interface Heard {
  /** The heard text (the utterance's text up to `position`): what the history keeps, the `subtitle`. */
  text: string;
  /** Characters of `fullText` heard (`interruption.position`). */
  position: number;
  /** The whole utterance's text: its sentences joined (a space between Latin ones, none next to CJK). */
  fullText: string;
  /** Audio played, at most totalMs (`interruption.current`). */
  playedMs: number;
  /** Audio known so far: the sum of the synthesised sentences (`interruption.totalDuration`). */
  totalMs: number;
  /** Whether every sentence was synthesised and played to its end. */
  complete: boolean;
  /**
   * The sentence that was cut (the first one not heard to its end), for re-speaking it from its start after a
   * false interruption; undefined when complete.
   */
  cutSentence: number | undefined;
  /** Where the cut sentence starts in the utterance's audio (ms); totalMs when complete. */
  cutSentenceStartMs: number;
}

export function heardText(sentences: readonly SpokenSentence[], playedMs: number): Heard {
  const { text: fullText, offsets, trimmed } = joinWithOffsets(sentences.map((s) => s.text));
  let totalMs = 0;
  let firstUnsynthesised: number | undefined;
  for (const [i, s] of sentences.entries()) {
    if (s.durationMs === undefined) firstUnsynthesised ??= i;
    // A sentence after a gap is not playable yet either (audio of sentence N+1 never plays before N).
    else if (firstUnsynthesised === undefined) totalMs += Math.max(0, s.durationMs);
  }
  const played = Math.min(Math.max(0, playedMs), totalMs);

  let startMs = 0;
  for (const [i, s] of sentences.entries()) {
    const duration = s.durationMs === undefined || i >= (firstUnsynthesised ?? Infinity) ? undefined : Math.max(0, s.durationMs);
    if (duration !== undefined && startMs + duration <= played) {
      startMs += duration;
      continue;
    }
    // Sentence i is the one being played (or the first one not synthesised, which is heard not at all).
    const sentence = trimmed[i] ?? "";
    const rawOffset = s.text.length - s.text.trimStart().length;
    const cut = duration === undefined ? 0 : cutWithin(sentence, s.words, rawOffset, played - startMs, duration);
    const text = fullText.slice(0, (offsets[i] ?? 0) + cut).trimEnd();
    return { text, position: text.length, fullText, playedMs: played, totalMs, complete: false, cutSentence: i, cutSentenceStartMs: startMs };
  }
  return { text: fullText, position: fullText.length, fullText, playedMs: played, totalMs, complete: true, cutSentence: undefined, cutSentenceStartMs: totalMs };
}

/** Characters of `text` heard after `offsetMs` of its `durationMs` of audio, at a word boundary. */
function cutWithin(text: string, timings: readonly WordTiming[] | undefined, rawOffset: number, offsetMs: number, durationMs: number): number {
  if (timings !== undefined && timings.length > 0) {
    // Timings index the untrimmed sentence; the heard text is the trimmed one.
    let end = 0;
    for (const w of timings) if (w.endMs <= offsetMs) end = Math.max(end, w.end - rawOffset);
    return Math.min(Math.max(0, end), text.length);
  }
  if (durationMs <= 0) return 0;
  const estimate = Math.floor((text.length * offsetMs) / durationMs);
  for (let k = Math.min(estimate, text.length); k > 0; k--) if (isWordEnd(text, k)) return k;
  return 0;
}

/** Whether a word ends just before index k: after a non-space, before a space, the end, or next to CJK. */
function isWordEnd(text: string, k: number): boolean {
  const before = text[k - 1];
  const after = text[k];
  if (before === undefined || isSpace(before)) return false;
  if (after === undefined || isSpace(after)) return true;
  // Between the halves of a surrogate pair is no boundary, CJK or not.
  if (/[\uD800-\uDBFF]/.test(before)) return false;
  return isWide(before) || isWide(after);
}
