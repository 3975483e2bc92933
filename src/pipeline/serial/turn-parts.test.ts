import { describe, expect, it } from "vitest";
import { HeldNotices } from "./held-notices.js";
import { TurnMetric } from "./turn-metric.js";

const timing = { speechEndMs: 1000, eouAtMs: 1600, transcriptAtMs: 1750 };

describe("TurnMetric", () => {
  it("reports the turn once, at the reply's first audio, with each stage's share", () => {
    const m = new TurnMetric();
    m.decided(timing, true);
    m.llmResponded(2050);
    m.llmResponded(2400); // only the first text counts
    const tts = m.ttsRequested(2100);
    tts?.(2180);
    expect(m.ttsRequested(2200)).toBeUndefined(); // later sentences do not re-measure
    tts?.(2190); // nor does a second frame of the first
    expect(m.firstAudio(2250)).toEqual({
      event: "metrics",
      key: "turn",
      duration: 1250,
      data: { eouMs: 600, asrMs: 150, llmTtftMs: 300, ttsTtfbMs: 80, early: true },
    });
    expect(m.firstAudio(2300)).toBeUndefined();
  });

  it("gives nulls for stages that never happened, and a late TTS callback cannot touch the next turn", () => {
    const m = new TurnMetric();
    m.decided(timing, false);
    const stale = m.ttsRequested(1800);
    m.decided({ speechEndMs: 5000, eouAtMs: 5600, transcriptAtMs: 5700 }, false);
    stale?.(1900);
    expect(m.firstAudio(6000)).toMatchObject({ duration: 1000, data: { llmTtftMs: null, ttsTtfbMs: null, early: false } });
  });
});

describe("HeldNotices", () => {
  it("runs a notice once its mark resolves, or at flush, never twice; it is held meanwhile", async () => {
    const h = new HeldNotices();
    const runs: string[] = [];
    let release!: () => void;
    h.hold("a", new Promise<void>((r) => (release = r)), () => runs.push("a"));
    h.hold("b", new Promise<void>(() => undefined), () => runs.push("b"));
    expect(h.has("a")).toBe(true);
    release();
    await Promise.resolve();
    await Promise.resolve();
    expect(runs).toEqual(["a"]);
    expect(h.has("a")).toBe(false);
    expect(h.has("b")).toBe(true);
    h.flush();
    h.flush();
    expect(runs).toEqual(["a", "b"]);
    expect(h.has("b")).toBe(false);
  });
});
