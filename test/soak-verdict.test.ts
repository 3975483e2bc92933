/** The pure parts of `npm run soak`: the fit, the verdict on growth, the accounting of calls and hooks, the chart. */
import { describe, expect, it } from "vitest";
import { account, linearFit, renderSvg, verdict, type CallRecord, type SoakSample } from "../bench/soak-verdict.js";

/** A deterministic pseudo-random noise in [-1, 1). */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** `n` load samples every 10 s: heap = base + slope·t(min) + noise; RSS likewise, 150 MB higher. */
function series(n: number, heapSlopeMbPerMin: number, noiseMb: number, seed = 1): SoakSample[] {
  const r = noise(seed);
  return Array.from({ length: n }, (_, i) => {
    const t = i * 10;
    const heap = 40 + (heapSlopeMbPerMin * t) / 60 + noiseMb * r();
    return { t, heapUsedMb: heap, rssMb: heap + 150 + noiseMb * r(), liveCalls: 200, cpuPct: 120, lagMs: 3, phase: "load" as const };
  });
}

const call = (id: string, events: string[], tracks: CallRecord["tracks"] = [{ event: "trackStart", playId: "greeting" }, { event: "trackEnd", playId: "greeting" }]): CallRecord => ({ id, events, tracks });
const ok = (id: string) => call(id, ["answer", "trackStart", "trackEnd", "hangup"]);
const clean = account([ok("a"), ok("b")], ["b", "a"]);
const opts = { warmupFraction: 0.2, maxHeapSlopeMbPerMin: 1, maxRssSlopeMbPerMin: 2 };

describe("linearFit", () => {
  it("recovers slope and intercept of an exact line, and gives slope 0 for one point", () => {
    const fit = linearFit([0, 1, 2, 3], [5, 7, 9, 11]);
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(5, 12);
    expect(linearFit([4], [9])).toEqual({ slope: 0, intercept: 9 });
    expect(() => linearFit([1, 2], [1])).toThrow(/2 x but 1 y/);
  });
});

describe("verdict", () => {
  it("a heap growing 3 MB/min fails, naming the slope", () => {
    const v = verdict(series(60, 3, 0.5), clean, opts);
    expect(v.pass).toBe(false);
    expect(v.heap.slopeMbPerMin).toBeCloseTo(3, 0);
    expect(v.rss.slopeMbPerMin).toBeCloseTo(3, 0);
    expect(v.reasons.join("\n")).toMatch(/heap grows 3\.\d\d MB\/min \(limit 1\)/);
    expect(v.reasons.join("\n")).toMatch(/RSS grows/);
  });

  it("a flat series with ±4 MB noise passes; the warm-up is skipped", () => {
    const samples = series(60, 0, 4, 7);
    // A steep warm-up (first 20 %) must not count.
    for (let i = 0; i < 12; i++) (samples[i] as SoakSample).heapUsedMb = 10 + i * 3;
    const v = verdict(samples, clean, opts);
    expect(v.reasons).toEqual([]);
    expect(v.pass).toBe(true);
    expect(v.measured).toBe(48);
    expect(Math.abs(v.heap.slopeMbPerMin)).toBeLessThan(0.5);
    // Without the warm-up skipped, the same samples fail.
    expect(verdict(samples, clean, { ...opts, warmupFraction: 0 }).pass).toBe(false);
  });

  it("drain samples are not fitted, and too few samples fail", () => {
    const samples = [...series(30, 0, 0.2), ...series(2, 0, 0).map((s, i) => ({ ...s, t: 300 + i * 10, heapUsedMb: 500, phase: "drain" as const }))];
    expect(verdict(samples, clean, opts).pass).toBe(true);
    const few = verdict(series(3, 0, 0), clean, opts);
    expect(few.pass).toBe(false);
    expect(few.reasons[0]).toMatch(/only 3 samples after the warm-up/);
  });

  it("flat memory still fails when a hook, a hangup or a trackEnd was lost", () => {
    const calls = [ok("a"), call("b", ["answer", "trackStart"], [{ event: "trackStart", playId: "greeting" }]), ok("c")];
    const acc = account(calls, ["a", "c", "c", "zz"], 1);
    expect(acc).toMatchObject({ callsStarted: 3, callsAnswered: 3, callsEnded: 2, hooksReceived: 4, missingHooks: ["b"], duplicateHooks: ["c"], strayHooks: ["zz"], lostCalls: ["b"], unbalancedTracks: [], openAtHangup: ["b"], noGreeting: [], leftoverSessions: 1 });
    const v = verdict(series(30, 0, 0.2), acc, opts);
    expect(v.pass).toBe(false);
    expect(v.reasons).toEqual([
      "1 calls lost (no answer or no hangup event): b",
      "1 post-call hooks missing: b",
      "1 calls got more than one hook: c",
      "1 hooks for unknown calls: zz",
      "1 calls hung up with a started track that never got its trackEnd: b",
      "1 sessions still live after the soak",
    ]);
  });

  it("tracks pair by playId: a second trackEnd, a track open at hangup, a missing greeting are counted", () => {
    const greeting = [{ event: "trackStart", playId: "greeting" }, { event: "trackEnd", playId: "greeting" }] as const;
    const acc = account(
      [
        // p1 ends twice (finished, then interrupted).
        call("x", ["answer", "hangup"], [...greeting, { event: "trackStart", playId: "p1" }, { event: "trackEnd", playId: "p1" }, { event: "trackEnd", playId: "p1" }]),
        // A queued utterance dropped before it started reports only its trackEnd: fine. No greeting, one error.
        call("y", ["answer", "error", "hangup"], [{ event: "trackStart", playId: "p2" }, { event: "trackEnd", playId: "p2" }, { event: "trackEnd", playId: "p3" }]),
        // p4 was playing when the call hung up.
        call("z", ["answer", "hangup"], [...greeting, { event: "trackStart", playId: "p4" }]),
      ],
      ["x", "y", "z"],
    );
    expect(acc.unbalancedTracks).toEqual(["x"]);
    expect(acc.openAtHangup).toEqual(["z"]);
    expect(acc.noGreeting).toEqual(["y"]);
    expect(acc.errorEvents).toBe(1);
  });
});

describe("renderSvg", () => {
  it("draws both series as polylines with one point per sample, axes labels and the title", () => {
    const samples = series(37, 1, 1);
    const svg = renderSvg(samples, { title: "soak <200 calls>", warmupEndT: 70 });
    expect(svg.startsWith("<svg ")).toBe(true);
    const lines = [...svg.matchAll(/<polyline data-series="(\w+)"[^>]* points="([^"]*)"/g)];
    expect(lines.map((m) => m[1])).toEqual(["heap", "rss"]);
    for (const m of lines) {
      const pts = (m[2] as string).split(" ").map((p) => p.split(",").map(Number));
      expect(pts).toHaveLength(37);
      expect(pts.every((p) => p.length === 2 && p.every(Number.isFinite))).toBe(true);
      // Time goes left to right.
      expect(pts.every((p, i) => i === 0 || (p[0] as number) > ((pts[i - 1] as number[])[0] as number))).toBe(true);
    }
    // RSS (higher in MB) is drawn above the heap: smaller y on every sample.
    const ys = lines.map((m) => (m[2] as string).split(" ").map((p) => Number(p.split(",")[1])));
    expect((ys[1] as number[]).every((y, i) => y < ((ys[0] as number[])[i] as number))).toBe(true);
    expect(svg).toContain("time (min)");
    expect(svg).toContain(">MB<");
    expect(svg).toContain("soak &lt;200 calls&gt;");
    expect(svg).toContain("warm-up");
    expect(svg.trim().endsWith("</svg>")).toBe(true);
  });
});
