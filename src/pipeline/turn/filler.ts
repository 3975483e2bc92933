/**
 * Filler words (playbook.md §2.7 `fillerWords`): backchannels such as "uh-huh" or "嗯" that must not count as
 * the caller taking the floor. Used by the interruption policy (filler-only transcripts do not interrupt; a
 * barge-in whose transcript is filler-only was a false interruption) and available to the pipeline for the same
 * judgement on whole turns.
 */
import { isWide, words } from "./text.js";

/** The config/playbook shape: one list for every language, or a list per language code. */
export type FillerWordsSetting = readonly string[] | Readonly<Record<string, readonly string[]>>;

/**
 * The list that applies to `language` (the ASR language, e.g. "en", "en-US", "zh"): the exact key, else its
 * primary subtag; every list when the language is empty or unset. A language without a list gets none, rather
 * than all of them: "er" is a filler in English but the word "he" in German.
 */
export function fillerWordsFor(setting: FillerWordsSetting | undefined, language?: string): string[] {
  if (setting === undefined) return [];
  if (isList(setting)) return [...setting];
  const lang = (language ?? "").trim();
  if (lang === "") return Object.values(setting).flat();
  const byLower = new Map(Object.entries(setting).map(([k, v]) => [k.toLowerCase(), v]));
  const primary = lang.toLowerCase().split(/[-_]/)[0] ?? "";
  return [...(byLower.get(lang.toLowerCase()) ?? byLower.get(primary) ?? [])];
}

function isList(s: FillerWordsSetting): s is readonly string[] {
  return Array.isArray(s);
}

/**
 * Tokens for the filler test: runs of letters/digits, keeping inner hyphens and apostrophes ("uh-huh") and
 * keeping CJK runs whole (they are covered by list entries below, since "嗯嗯" has no separator).
 */
function tokens(text: string): string[] {
  return [...text.normalize("NFKC").toLowerCase().matchAll(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu)].map((m) => m[0]);
}

export class FillerFilter {
  private readonly set: ReadonlySet<string>;
  private readonly longest: number;

  constructor(list: readonly string[]) {
    const normalized = list.map((w) => w.normalize("NFKC").toLowerCase().trim()).filter((w) => w !== "");
    this.set = new Set(normalized);
    this.longest = Math.max(0, ...normalized.map((w) => w.length));
  }

  get size(): number {
    return this.set.size;
  }

  /**
   * True when the text has at least one word and every word is a filler (case-insensitive, punctuation around
   * and between them ignored). A token may be several fillers written together ("嗯嗯", "嗯啊"), which is how
   * CJK recognisers write repeated backchannels.
   */
  isFillerOnly(text: string): boolean {
    const t = tokens(text);
    return t.length > 0 && t.every((tok) => this.covers(tok));
  }

  /**
   * The words that are not fillers (see text.ts `words`: CJK characters count one each), for the `minWords`
   * rule: "uh wait" is one word of content.
   */
  contentWordCount(text: string): number {
    let n = 0;
    for (const tok of tokens(text)) if (!this.covers(tok)) n += words(tok).length;
    return n;
  }

  /** Whether `tok` is a concatenation of list entries (dynamic programming over end positions). */
  private covers(tok: string): boolean {
    if (this.set.has(tok)) return true;
    // Latin words are only matched whole (a word that merely starts like a filler, "umbrella", or glues two
    // of them, "uhum", is not one); only wide (CJK) runs, which have no spaces, are split into entries.
    if (![...tok].some((ch) => isWide(ch))) return false;
    const ok: boolean[] = [true];
    for (let end = 1; end <= tok.length; end++) {
      ok[end] = false;
      for (let len = 1; len <= Math.min(this.longest, end); len++) {
        if (ok[end - len] === true && this.set.has(tok.slice(end - len, end))) {
          ok[end] = true;
          break;
        }
      }
    }
    return ok[tok.length] === true;
  }
}
