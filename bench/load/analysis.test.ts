import { describe, expect, it } from "vitest";
import { LagHistogram } from "../../src/media/frame-lag.js";
import { bargeInStops, frameGaps, histPercentile, turnLatencies, lagDelta, percentile, renderLoadSvg, textHistogram, verdictLine, type LoadStep } from "./analysis.js";

const step = (n: number, o: Partial<LoadStep> = {}): LoadStep => ({ n, answered: n, cpuPct: 50, lagP50Ms: 1, lagP99Ms: 5, loopDelayP99Ms: 2, rssMbPerCall: 1, late: 0, missing: 0, agentFrames: 100, ...o });

describe("bench:load analysis", () => {
  it("percentile by nearest rank", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([], 50)).toBeNaN();
  });

  it("reads percentiles of a window of the frame-lag histogram", () => {
    const h = new LagHistogram();
    h.record(30); // before the window
    const a = h.snapshot();
    for (let i = 0; i < 98; i++) h.record(0.42);
    h.record(12.3);
    h.record(3000);
    const w = lagDelta(a, h.snapshot());
    expect(w.count).toBe(100);
    expect(histPercentile(w, 50)).toBeCloseTo(0.5, 6);
    expect(histPercentile(w, 99)).toBeCloseTo(12.4, 6);
    expect(histPercentile(w, 100)).toBe(Infinity);
  });

  it("counts gaps over 1.5 periods inside an utterance as late, and frames missing from its span", () => {
    const u1 = [0, 20, 40, 60, 100, 120]; // one 40 ms gap: late, and one frame missing (span 120 ms = 7 frames)
    const u2 = [5000, 5020, 5029, 5060]; // a 31 ms gap is late, 9 ms early is not; 4 frames for a 60 ms span: none missing
    const r = frameGaps([...u1, ...u2], 20);
    expect(r).toMatchObject({ frames: 10, utterances: 2, late: 2, missing: 1, maxGapMs: 40 });
    expect(frameGaps([0, 20, 40], 20)).toMatchObject({ late: 0, missing: 0, utterances: 1 });
    expect(frameGaps([], 20)).toMatchObject({ frames: 0, utterances: 0 });
  });

  it("names the largest N that met every goal", () => {
    expect(verdictLine([step(50), step(100), step(200, { lagP99Ms: 25 })])).toMatch(/: 100$/);
    expect(verdictLine([step(50), step(100, { late: 1 }), step(200)])).toMatch(/: 200$/);
    expect(verdictLine([step(50, { answered: 49 })])).toMatch(/none of 50$/);
    expect(verdictLine([step(50, { fellOver: "controller exited" })])).toMatch(/none/);
  });

  it("draws one point per step in each series and a text histogram", () => {
    const svg = renderLoadSvg([step(50), step(100), step(200)], "t");
    for (const s of ["lag-p50", "lag-p99", "cpu"]) expect(svg.match(new RegExp(`data-series="${s}"[^>]*points="([^"]*)"`))?.[1]?.split(" ")).toHaveLength(3);
    const text = textHistogram([1, 2, 2, 30], [1, 5, 20]);
    expect(text.split("\n").map((l) => /ms\s+(\d+)/.exec(l)?.[1])).toEqual(["1", "2", "0", "1"]);
  });
});

describe("bench:latency analysis", () => {
  it("times each answered turn from the silence decision to its first agent frame", () => {
    const arrivals = [100, 120, 140, /* reply 1 */ 1003, 1023, /* reply 2 after a decision while the agent spoke */ 1040];
    expect(turnLatencies([1000, 130, 5000], arrivals)).toEqual([3]);
  });

  it("measures the agent audio still arriving after a barge-in decision", () => {
    const arrivals = [0, 20, 40, 60, 65, 2000];
    expect(bargeInStops([50, 500, 1990], arrivals)).toEqual([15, 0, 10]);
  });
});
