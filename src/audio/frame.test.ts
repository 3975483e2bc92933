import { describe, expect, it } from "vitest";
import { durationMs, frameDurationMs, samplesForMs, samplesPerMs } from "./frame.js";

describe("frame helpers", () => {
  it("converts between durations and sample counts", () => {
    expect(samplesForMs(8000, 20)).toBe(160);
    expect(samplesForMs(16000, 20)).toBe(320);
    expect(samplesForMs(44100, 20)).toBe(882);
    expect(samplesPerMs(24000)).toBe(24);
    expect(durationMs(480, 24000)).toBe(20);
    expect(frameDurationMs({ pcm: new Int16Array(960), sampleRate: 48000, timestampMs: 0 })).toBe(20);
  });

  it("refuses durations that are not a whole number of samples", () => {
    expect(() => samplesForMs(44100, 1)).toThrow(RangeError);
    expect(() => samplesForMs(8000, -20)).toThrow(RangeError);
  });
});
