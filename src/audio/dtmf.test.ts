import { describe, expect, it } from "vitest";
import { dtmfTones } from "./dtmf.js";

/** Goertzel power of `freq` in `pcm`. */
function power(pcm: Int16Array, freq: number, rate: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const x of pcm) {
    const s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

describe("dtmfTones", () => {
  it("lays out tones, gaps and w pauses with the requested lengths", () => {
    expect(dtmfTones("1", 8000, 100, 100).length).toBe(1600);
    expect(dtmfTones("1w2", 8000, 80, 50).length).toBe(2 * (640 + 400) + 4000);
    expect(dtmfTones("x", 8000).length).toBe(0);
  });

  it("each digit carries its row and column frequency and no other", () => {
    const rate = 8000;
    for (const [digit, row, col] of [
      ["1", 697, 1209],
      ["5", 770, 1336],
      ["9", 852, 1477],
      ["#", 941, 1477],
      ["D", 941, 1633],
    ] as const) {
      const tone = dtmfTones(digit, rate, 100, 0);
      const all = [697, 770, 852, 941, 1209, 1336, 1477, 1633].map((f) => ({ f, p: power(tone, f, rate) }));
      const top = all.sort((a, b) => b.p - a.p).slice(0, 2).map((x) => x.f).sort((a, b) => a - b);
      expect(top).toEqual([row, col]);
    }
  });

  it("never clips and the gap is silent", () => {
    const pcm = dtmfTones("0", 16000, 100, 50);
    expect(Math.max(...pcm.map(Math.abs))).toBeLessThan(32767);
    expect(pcm.subarray(1600).every((s) => s === 0)).toBe(true);
  });
});
