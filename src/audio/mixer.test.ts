import { describe, expect, it } from "vitest";
import { GainRamp, dbToGain, mixInto } from "./mixer.js";

const RATE = 8000;

function constant(n: number, v = 10000): Int16Array {
  return new Int16Array(n).fill(v);
}

/** Runs `total` samples of constant input through `g` in chunks of `chunk`, returning the output. */
function run(g: GainRamp, total: number, chunk: number, v = 10000): Int16Array {
  const out = new Int16Array(total);
  for (let pos = 0; pos < total; pos += chunk) {
    const n = Math.min(chunk, total - pos);
    out.set(g.process(constant(n, v)), pos);
  }
  return out;
}

describe("GainRamp", () => {
  it("fades out to exactly 0 at N ms and stays there", () => {
    const g = new GainRamp(RATE);
    g.setTarget(0, 50); // 50 ms = 400 samples
    expect(g.done).toBe(false);
    const out = run(g, 1000, 160);
    for (let i = 0; i < 400; i++) {
      expect(out[i]).toBeGreaterThan(0);
      // Linear: gain 1 - i/400.
      expect(Math.abs((out[i] as number) - 10000 * (1 - i / 400))).toBeLessThanOrEqual(0.5);
      if (i > 0) expect(out[i]).toBeLessThan(out[i - 1] as number);
    }
    expect(out.subarray(400).every((v) => v === 0)).toBe(true);
    expect(g.done).toBe(true);
    expect(g.gain).toBe(0);
    expect(run(g, 500, 7).every((v) => v === 0)).toBe(true);
  });

  it("ducks to a level, holds it, then restores unity exactly", () => {
    const g = new GainRamp(RATE);
    const duck = dbToGain(-12);
    g.setTarget(duck, 100); // 800 samples
    const down = run(g, 1600, 160);
    expect(down[0]).toBe(10000);
    expect(down.subarray(800).every((v) => v === Math.round(10000 * duck))).toBe(true);
    expect(g.done).toBe(true);
    g.setTarget(1, 25); // 200 samples
    const up = run(g, 400, 33);
    for (let i = 1; i < 200; i++) expect(up[i]).toBeGreaterThan(up[i - 1] as number);
    expect(up.subarray(200).every((v) => v === 10000)).toBe(true);
    expect(g.gain).toBe(1);
  });

  it("starts a new ramp from where the previous one had got to", () => {
    const g = new GainRamp(RATE);
    g.setTarget(0, 100); // 800 samples
    run(g, 400, 400); // half way: gain 0.5
    expect(g.gain).toBeCloseTo(0.5, 12);
    g.setTarget(1, 100);
    const out = run(g, 800, 800);
    expect(out[0]).toBe(5000); // no jump
    expect(out[400]).toBe(7500);
    expect(g.target).toBe(1);
  });

  it("jumps immediately with a zero ramp and saturates gains above 1", () => {
    const g = new GainRamp(RATE, 0.5);
    expect(Array.from(g.process(Int16Array.of(1000, -1000)))).toEqual([500, -500]);
    g.setTarget(4);
    expect(g.done).toBe(true);
    expect(Array.from(g.process(Int16Array.of(10000, -10000, 5)))).toEqual([32767, -32768, 20]);
    expect(() => g.setTarget(-1)).toThrow(RangeError);
    expect(() => g.setTarget(1, Number.NaN)).toThrow(RangeError);
  });
});

describe("mixInto", () => {
  it("adds with saturation instead of wrapping", () => {
    const dst = Int16Array.of(30000, -30000, 100, 32767, -32768);
    mixInto(dst, Int16Array.of(10000, -10000, -50, 1, -1));
    expect(Array.from(dst)).toEqual([32767, -32768, 50, 32767, -32768]);
  });

  it("applies the gain to the mixed-in signal only", () => {
    const dst = Int16Array.of(1000, 1000, 30000);
    expect(mixInto(dst, Int16Array.of(2000, -3000, 20000), 0.5)).toBe(dst);
    expect(Array.from(dst)).toEqual([2000, -500, 32767]);
  });

  it("mixes over the shorter of the two arrays", () => {
    const dst = Int16Array.of(1, 2, 3);
    mixInto(dst, Int16Array.of(10));
    expect(Array.from(dst)).toEqual([11, 2, 3]);
  });

  it("converts dB to linear gain", () => {
    expect(dbToGain(0)).toBe(1);
    expect(dbToGain(-20)).toBeCloseTo(0.1, 12);
    expect(dbToGain(6)).toBeCloseTo(1.9953, 4);
  });
});
