/**
 * Small text facts shared by the turn-taking modules. CJK text has no spaces between words, so every place that
 * joins, compares, counts or cuts words needs to know which characters are "wide" (each one a word of its own).
 */

/**
 * Han, kana, CJK punctuation and the full-width forms. Hangul is left out on purpose: Korean separates words
 * with spaces, so it behaves like Latin text for joining and cutting.
 */
const WIDE = /[\u2E80-\u2FFF\u3000-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFFEF]/u;

export function isWide(ch: string | undefined): boolean {
  return ch !== undefined && WIDE.test(ch);
}

export function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && /\s/u.test(ch);
}

/**
 * Joins transcript pieces (ASR segments, sentences) the way they would be written: a space between two Latin
 * pieces, nothing where either side is CJK ("你好" + "世界" is "你好世界", not "你好 世界").
 */
export function joinText(pieces: readonly string[]): string {
  return joinWithOffsets(pieces).text;
}

/**
 * joinText, also telling where each (trimmed) piece starts in the result and the trimmed pieces themselves
 * (an empty piece starts where the next one would).
 */
export function joinWithOffsets(pieces: readonly string[]): { text: string; offsets: number[]; trimmed: string[] } {
  let text = "";
  const offsets: number[] = [];
  const trimmed: string[] = [];
  for (const raw of pieces) {
    const piece = raw.trim();
    if (piece !== "" && text !== "" && !isWide(text.at(-1)) && !isWide(piece[0])) text += " ";
    offsets.push(text.length);
    trimmed.push(piece);
    text += piece;
  }
  return { text, offsets, trimmed };
}

/**
 * The form in which two transcripts are compared (eou: "case and punctuation ignored"): NFKC (full-width
 * letters equal ASCII ones), lower case, punctuation and symbols removed, and all white space removed, so that
 * a recogniser that spaces CJK text differently, or joins segments differently, still matches.
 */
export function normalizeForCompare(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[\p{P}\p{S}\s]+/gu, "");
}

/**
 * The words of a transcript: runs of letters/digits (apostrophes and inner hyphens kept: "don't", "uh-huh"),
 * and each CJK character on its own (Chinese has no spaces, and one character is the unit a listener hears).
 */
export function words(text: string): string[] {
  const out: string[] = [];
  const re = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
  for (const m of text.normalize("NFKC").matchAll(re)) {
    let latin = "";
    for (const ch of m[0]) {
      if (isWide(ch)) {
        if (latin !== "") out.push(latin);
        latin = "";
        out.push(ch);
      } else {
        latin += ch;
      }
    }
    if (latin !== "") out.push(latin);
  }
  return out;
}
