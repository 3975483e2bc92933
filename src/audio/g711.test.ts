import { describe, expect, it } from "vitest";
import {
  aLawDecode,
  aLawDecodeSample,
  aLawEncode,
  aLawEncodeSample,
  muLawDecode,
  muLawDecodeSample,
  muLawEncode,
  muLawEncodeSample,
} from "./g711.js";

/**
 * Expected values are built from the segment tables of ITU-T G.711 (Tables 1a/2a: segment end points and step
 * sizes, reconstruction at the middle of each step), not from the codec's bit manipulation.
 * mu-law is defined on 14-bit magnitudes (16-bit values / 4), A-law on 13-bit signed values (16-bit / 8).
 */
interface Interval {
  lo: number; // first magnitude in the interval (law units)
  level: number; // reconstruction magnitude (law units)
  segment: number;
  step: number; // index within the segment
}

function muLawIntervals(): Interval[] {
  const out: Interval[] = [];
  // Segment 1 of the standard: levels 0, 2, ..., 30; the zero interval is half as wide as the others.
  for (let m = 0; m < 16; m++) out.push({ lo: m === 0 ? 0 : 2 * m - 1, level: 2 * m, segment: 0, step: m });
  const ends = [31, 95, 223, 479, 991, 2015, 4063, 8159];
  for (let s = 1; s < 8; s++) {
    const width = ((ends[s] as number) - (ends[s - 1] as number)) / 16; // 4, 8, ..., 256
    for (let m = 0; m < 16; m++) {
      const lo = (ends[s - 1] as number) + m * width;
      out.push({ lo, level: lo + width / 2, segment: s, step: m });
    }
  }
  return out;
}

function aLawIntervals(): Interval[] {
  const out: Interval[] = [];
  // Segments 1 and 2 of the standard are one linear range 0..63 with step 2; then the step doubles.
  const starts = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096];
  for (let s = 0; s < 8; s++) {
    const width = ((starts[s + 1] as number) - (starts[s] as number)) / 16;
    for (let m = 0; m < 16; m++) {
      const lo = (starts[s] as number) + m * width;
      out.push({ lo, level: lo + width / 2, segment: s, step: m });
    }
  }
  return out;
}

const MU = muLawIntervals();
const A = aLawIntervals();

/** G.711 character signal: mu-law inverts all bits (bit 7 set = positive), A-law inverts the even bits. */
function muCode(positive: boolean, iv: Interval): number {
  return (positive ? 0x80 : 0) | (0x7f - ((iv.segment << 4) | iv.step));
}
function aCode(positive: boolean, iv: Interval): number {
  return ((positive ? 0x80 : 0) | (iv.segment << 4) | iv.step) ^ 0x55;
}

function find(intervals: Interval[], magnitude: number): Interval {
  let found = intervals[0] as Interval;
  for (const iv of intervals) if (iv.lo <= magnitude) found = iv;
  return found;
}

describe("G.711 decode", () => {
  it("matches the known code points of the standard", () => {
    expect(muLawDecodeSample(0xff)).toBe(0);
    expect(muLawDecodeSample(0x7f)).toBe(0);
    expect(muLawDecodeSample(0x80)).toBe(32124);
    expect(muLawDecodeSample(0x00)).toBe(-32124);
    expect(muLawDecodeSample(0xf0)).toBe(120); // 30 * 4, top of segment 1
    expect(muLawDecodeSample(0xef)).toBe(132); // 33 * 4, bottom of segment 2
    expect(aLawDecodeSample(0xd5)).toBe(8);
    expect(aLawDecodeSample(0x55)).toBe(-8);
    expect(aLawDecodeSample(0xd4)).toBe(24);
    expect(aLawDecodeSample(0xc5)).toBe(264); // 33 * 8, bottom of segment 2
    expect(aLawDecodeSample(0xaa)).toBe(32256);
    expect(aLawDecodeSample(0x2a)).toBe(-32256);
  });

  it("decodes every mu-law code to the standard's reconstruction level", () => {
    for (const iv of MU) {
      expect(muLawDecodeSample(muCode(true, iv))).toBe(iv.level * 4);
      expect(muLawDecodeSample(muCode(false, iv))).toBe(0 - iv.level * 4);
    }
  });

  it("decodes every A-law code to the standard's reconstruction level", () => {
    for (const iv of A) {
      expect(aLawDecodeSample(aCode(true, iv))).toBe(iv.level * 8);
      expect(aLawDecodeSample(aCode(false, iv))).toBe(0 - iv.level * 8);
    }
  });

  it("is strictly monotonic in the quantiser level order", () => {
    const mu = [...MU].reverse().map((iv) => muLawDecodeSample(muCode(false, iv)));
    mu.push(...MU.slice(1).map((iv) => muLawDecodeSample(muCode(true, iv))));
    const a = [...A].reverse().map((iv) => aLawDecodeSample(aCode(false, iv)));
    a.push(...A.map((iv) => aLawDecodeSample(aCode(true, iv))));
    for (const levels of [mu, a]) {
      for (let i = 1; i < levels.length; i++) expect(levels[i]).toBeGreaterThan(levels[i - 1] as number);
    }
    expect(mu).toHaveLength(255); // +0 and -0 are one level
    expect(a).toHaveLength(256);
  });
});

describe("G.711 encode", () => {
  it("puts every 16-bit value in the standard's decision interval (one's complement for negatives)", () => {
    const wrong: string[] = [];
    for (let x = -32768; x <= 32767; x++) {
      const positive = x >= 0;
      // G.191 reference convention: a negative value uses ~x = -x - 1 as its magnitude.
      const mag = positive ? x : ~x;
      const mu = muCode(positive, find(MU, mag >> 2));
      const a = aCode(positive, find(A, mag >> 3));
      if (muLawEncodeSample(x) !== mu) wrong.push(`mu-law ${x}: got ${muLawEncodeSample(x)}, want ${mu}`);
      if (aLawEncodeSample(x) !== a) wrong.push(`A-law ${x}: got ${aLawEncodeSample(x)}, want ${a}`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
  });

  it("maps the extremes to the top codes", () => {
    expect(muLawEncodeSample(32767)).toBe(0x80);
    expect(muLawEncodeSample(-32768)).toBe(0x00);
    expect(aLawEncodeSample(32767)).toBe(0xaa);
    expect(aLawEncodeSample(-32768)).toBe(0x2a);
    expect(muLawEncodeSample(0)).toBe(0xff);
    expect(aLawEncodeSample(0)).toBe(0xd5);
  });

  it("is monotonic: decode(encode(x)) never decreases as x grows", () => {
    let prevMu = -Infinity;
    let prevA = -Infinity;
    let drops = 0;
    for (let x = -32768; x <= 32767; x++) {
      const mu = muLawDecodeSample(muLawEncodeSample(x));
      const a = aLawDecodeSample(aLawEncodeSample(x));
      if (mu < prevMu || a < prevA) drops++;
      prevMu = mu;
      prevA = a;
    }
    expect(drops).toBe(0);
    expect(prevMu).toBe(32124);
    expect(prevA).toBe(32256);
  });

  it("round-trips all 256 codes decode -> encode (except mu-law negative zero)", () => {
    for (let code = 0; code < 256; code++) {
      expect(aLawEncodeSample(aLawDecodeSample(code))).toBe(code);
      const expected = code === 0x7f ? 0xff : code;
      expect(muLawEncodeSample(muLawDecodeSample(code))).toBe(expected);
    }
  });
});

describe("G.711 buffer functions", () => {
  const pcm = Int16Array.from({ length: 1000 }, (_, i) => Math.round(30000 * Math.sin(i / 7)));

  it("encode and decode whole buffers like the per-sample functions", () => {
    const mu = muLawEncode(pcm);
    const a = aLawEncode(pcm);
    expect(Array.from(mu)).toEqual(Array.from(pcm, muLawEncodeSample));
    expect(Array.from(a)).toEqual(Array.from(pcm, aLawEncodeSample));
    expect(Array.from(muLawDecode(mu))).toEqual(Array.from(mu, muLawDecodeSample));
    expect(Array.from(aLawDecode(a))).toEqual(Array.from(a, aLawDecodeSample));
  });

  it("write into the caller's output and return it", () => {
    const bytes = new Uint8Array(1200).fill(7);
    expect(muLawEncode(pcm, bytes)).toBe(bytes);
    expect(bytes[1000]).toBe(7); // untouched beyond the input length
    const out = new Int16Array(1000);
    expect(aLawDecode(aLawEncode(pcm, bytes).subarray(0, 1000), out)).toBe(out);
    expect(out[10]).toBe(aLawDecodeSample(aLawEncodeSample(pcm[10] as number)));
  });

  it("reject an output that is too short", () => {
    expect(() => muLawEncode(pcm, new Uint8Array(999))).toThrow(RangeError);
    expect(() => aLawDecode(new Uint8Array(10), new Int16Array(9))).toThrow(RangeError);
  });
});
