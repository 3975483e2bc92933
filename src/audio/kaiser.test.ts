import { describe, expect, it } from "vitest";
import { besselI0, kaiserBeta, kaiserLength, kaiserLowPass } from "./kaiser.js";

describe("Kaiser design", () => {
  it("computes I0 (reference values from Abramowitz & Stegun, table 9.8)", () => {
    expect(besselI0(0)).toBe(1);
    expect(besselI0(1)).toBeCloseTo(1.266065878, 9);
    expect(besselI0(5)).toBeCloseTo(27.23987182, 7);
    expect(besselI0(10) / 2815.716628).toBeCloseTo(1, 9);
  });

  it("uses Kaiser's beta and length formulas", () => {
    expect(kaiserBeta(70)).toBeCloseTo(0.1102 * 61.3, 12);
    expect(kaiserBeta(30)).toBeCloseTo(0.5842 * 9 ** 0.4 + 0.07886 * 9, 12);
    expect(kaiserBeta(20)).toBe(0);
    // 70 dB, transition 0.05 of the rate: (70 - 7.95) / (2.285 * 2 * pi * 0.05) = 86.4 -> 88 taps.
    expect(kaiserLength(70, 0.05)).toBe(88);
  });

  it("designs a symmetric low-pass with unity DC gain and the requested stop band", () => {
    const h = kaiserLowPass(101, 0.2, kaiserBeta(60));
    for (let k = 0; k < 50; k++) expect(h[k]).toBeCloseTo(h[100 - k] as number, 15);
    expect(h.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const gainAt = (f: number) => {
      let re = 0;
      let im = 0;
      h.forEach((c, k) => {
        re += c * Math.cos(2 * Math.PI * f * k);
        im -= c * Math.sin(2 * Math.PI * f * k);
      });
      return Math.hypot(re, im);
    };
    expect(gainAt(0.1)).toBeCloseTo(1, 2);
    expect(20 * Math.log10(gainAt(0.3))).toBeLessThan(-55);
    expect(() => kaiserLowPass(100, 0.2, 5)).toThrow(RangeError);
  });
});
