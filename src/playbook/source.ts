/**
 * The raw file: size and encoding checks, line:column positions, and the front matter / body split of
 * playbook.md §1. Everything downstream works with offsets into the text returned here.
 */
import type { Position } from "./diagnostics.js";

export const MAX_PLAYBOOK_BYTES = 1024 * 1024;

/** Offsets to 1-based line:column, by binary search over the line starts. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  positionAt(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: o - (this.starts[lo] ?? 0) + 1 };
  }

  /** Offset of the start of a 1-based line (the end of the text past the last line). */
  offsetOf(line: number): number {
    return this.starts[line - 1] ?? this.text.length;
  }
}

export type DecodeResult =
  | { ok: true; text: string }
  | { ok: false; message: string; position: Position };

/**
 * Checks size and UTF-8, and drops a leading BOM (columns on line 1 count from after it).
 * A string input is already decoded; only its encoded size is checked.
 */
export function decodePlaybook(input: string | Uint8Array): DecodeResult {
  const size = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.byteLength;
  if (size > MAX_PLAYBOOK_BYTES) {
    return { ok: false, message: `the file is ${size} bytes; a playbook must be at most 1 MiB`, position: { line: 1, column: 1 } };
  }
  let text: string;
  if (typeof input === "string") text = input;
  else {
    const bad = firstInvalidUtf8(input);
    if (bad >= 0) {
      const before = new TextDecoder().decode(input.subarray(0, bad));
      return {
        ok: false,
        message: `the file is not valid UTF-8 (byte 0x${(input[bad] ?? 0).toString(16).padStart(2, "0")} at offset ${bad})`,
        position: new LineIndex(before).positionAt(before.length),
      };
    }
    text = new TextDecoder().decode(input);
  }
  return { ok: true, text: text.startsWith("\uFEFF") ? text.slice(1) : text };
}

/** Offset of the first byte that starts an invalid UTF-8 sequence, or -1 (RFC 3629: no overlongs, no surrogates). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min, cp] = [1, 0x80, b & 0x1f];
    else if (b >= 0xe0 && b <= 0xef) [need, min, cp] = [2, 0x800, b & 0x0f];
    else if (b >= 0xf0 && b <= 0xf4) [need, min, cp] = [3, 0x10000, b & 0x07];
    else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

export interface Parts {
  /** Offsets of the front matter text (between the delimiter lines). */
  frontStart: number;
  frontEnd: number;
  /** Offset where the body starts (after the closing delimiter line). */
  bodyStart: number;
}

export type SplitResult = { ok: true; parts: Parts } | { ok: false; message: string; offset: number };

const isDelimiter = (line: string) => line === "---" || line === "---\r";

/** Line 1 is `---`; the front matter runs to the first later line that is exactly `---`. */
export function splitFrontMatter(text: string): SplitResult {
  const firstEnd = text.indexOf("\n");
  const first = firstEnd < 0 ? text : text.slice(0, firstEnd);
  if (!isDelimiter(first)) {
    return { ok: false, message: 'the first line must be exactly "---"', offset: 0 };
  }
  if (firstEnd < 0) return { ok: false, message: 'the front matter has no closing "---" line', offset: 0 };
  const frontStart = firstEnd + 1;
  for (let start = frontStart; start <= text.length; ) {
    const nl = text.indexOf("\n", start);
    const end = nl < 0 ? text.length : nl;
    if (isDelimiter(text.slice(start, end))) {
      return { ok: true, parts: { frontStart, frontEnd: start, bodyStart: nl < 0 ? text.length : nl + 1 } };
    }
    if (nl < 0) break;
    start = nl + 1;
  }
  return { ok: false, message: 'the front matter has no closing "---" line', offset: 0 };
}
