import { describe, expect, it } from "vitest";
import { DEFAULT_DETECTOR_OPTIONS, detectSegments, SegmentTracker, segmentsOf, SpeechDetector, type VadEvent } from "./detector.js";
import { createVadEngine } from "./index.js";
import type { VadStream } from "./types.js";
import { vadFixture } from "./testutil.js";

/** 1 kHz, 10-sample chunks: one chunk = 10 ms, so the numbers below are easy to follow. */
function run(probs: number[], options: ConstructorParameters<typeof SegmentTracker>[2]): VadEvent[] {
  const t = new SegmentTracker(1000, 10, options);
  const events: VadEvent[] = [];
  for (const p of probs) {
    const e = t.push(p);
    if (e) events.push(e);
  }
  return [...events, ...t.finish(probs.length * 10)];
}

describe("segment rules (hand-made probabilities)", () => {
  it("threshold, neg threshold, min speech (strict), min silence, pad, end of audio", () => {
    const probs = [
      0.1, // 0
      0.6, // 1  speech starts at 10
      0.4, // 2  between the thresholds: still speech
      0.9, // 3
      0.2, // 4  below neg: possible end at 40
      0.45, // 5 between the thresholds: the mark stays
      0.1, // 6  60 - 40 >= minSilence: ends at 40, but 40 - 10 = 30 is not > minSpeech 30: dropped
      0.7, // 7  speech starts at 70
      0.8, // 8
      0.8, // 9
      0.8, // 10 110 - 70 > 30: speaking (padded start 65)
      0.3, // 11 possible end at 110
      0.6, // 12 >= threshold clears it
      0.2, // 13 possible end at 130
      0.2, // 14
      0.2, // 15 150 - 130 >= 20: silence, segment [65, 135]
      0.9, // 16 starts at 160 (padded 155)
      0.9, // 17
      0.9, // 18 190 - 160 = 30: not yet
      0.9, // 19 200 - 160 > 30: speaking; then the audio ends at 200 inside speech
    ];
    const events = run(probs, { threshold: 0.5, minSpeechMs: 30, minSilenceMs: 20, speechPadMs: 5 });
    expect(events).toEqual([
      { type: "speaking", startMs: 65, durationMs: 45, atMs: 110 },
      { type: "silence", startMs: 65, durationMs: 70, atMs: 160 },
      { type: "speaking", startMs: 155, durationMs: 45, atMs: 200 },
      { type: "silence", startMs: 155, durationMs: 45, atMs: 200 },
    ]);
    expect(detectSegments(probs, 1000, 10, { threshold: 0.5, minSpeechMs: 30, minSilenceMs: 20, speechPadMs: 5 })).toEqual([
      { startMs: 65, endMs: 135, durationMs: 70 },
      { startMs: 155, endMs: 200, durationMs: 45 },
    ]);
  });

  it("negThreshold defaults to threshold - 0.15 and can be set", () => {
    const probs = [0.9, 0.9, 0.9, 0.4, 0.4, 0.4, 0.4];
    const opts = { threshold: 0.5, minSpeechMs: 0, minSilenceMs: 20, speechPadMs: 0 };
    // 0.4 >= 0.35: still speech until the end of the audio
    expect(detectSegments(probs, 1000, 10, opts)).toEqual([{ startMs: 0, endMs: 70, durationMs: 70 }]);
    // with negThreshold 0.45 the 0.4 chunks are silence: ends at 30
    expect(detectSegments(probs, 1000, 10, { ...opts, negThreshold: 0.45 })).toEqual([{ startMs: 0, endMs: 30, durationMs: 30 }]);
  });

  it("a gap shorter than 2 x speechPad: the later segment starts where the earlier one's pad ends", () => {
    const events = run([0.9, 0.1, 0.1, 0.9, 0.1, 0.1], { minSpeechMs: 0, minSilenceMs: 10, speechPadMs: 20 });
    expect(segmentsOf(events)).toEqual([
      { startMs: 0, endMs: 30, durationMs: 30 },
      { startMs: 30, endMs: 60, durationMs: 30 },
    ]);
  });

  it("rejects out-of-range settings", () => {
    expect(() => new SegmentTracker(16000, 512, { threshold: 1.5 })).toThrow(/threshold/);
    expect(() => new SegmentTracker(16000, 512, { minSilenceMs: -1 })).toThrow(/minSilenceMs/);
  });
});

describe("SpeechDetector over an engine", () => {
  for (const sr of [16000, 8000] as const) {
    for (const type of ["tinysilero", "onnx"]) {
      it(`${type} at ${sr} Hz: segments equal those the reference probabilities imply`, async () => {
        const f = await vadFixture(sr);
        const engine = await createVadEngine(type);
        const probs: number[] = [];
        const detector = new SpeechDetector(engine.createStream(sr), { ...DEFAULT_DETECTOR_OPTIONS, onProbability: (p) => probs.push(p) });
        const events: VadEvent[] = [];
        // odd frame sizes: the detector re-chunks
        const sizes = [160, 333, 1, 1024, 77];
        for (let o = 0, k = 0; o < f.pcm.length; k++) {
          const n = sizes[k % sizes.length] as number;
          events.push(...detector.push(f.pcm.subarray(o, o + n)));
          o += n;
        }
        events.push(...detector.end());
        expect(probs.length).toBe(f.reference.length);
        const expected = detectSegments(f.reference, sr, f.chunk, DEFAULT_DETECTOR_OPTIONS);
        expect(expected.length).toBeGreaterThan(3);
        expect(segmentsOf(events)).toEqual(expected);
        // every segment was announced by exactly one `speaking` first, minSpeechMs after its onset
        const speaking = events.filter((e) => e.type === "speaking");
        expect(speaking.map((e) => e.startMs)).toEqual(expected.map((s) => s.startMs));
        for (const e of events) expect(e.atMs).toBeGreaterThanOrEqual(e.startMs);
        expect(detector.timeMs).toBe(60000);
      });
    }
  }

  it("zero-pads a partial last chunk at end() and closes open speech at the audio length", () => {
    const calls: number[] = [];
    const stream: VadStream = {
      sampleRate: 8000,
      chunkSamples: 256,
      stateBytes: 0,
      process: (s) => {
        calls.push(s.length);
        return 0.9;
      },
      reset: () => {},
      close: () => {},
    };
    const d = new SpeechDetector(stream, { minSpeechMs: 0, speechPadMs: 0 });
    expect(d.push(new Int16Array(100))).toEqual([]);
    expect(d.push(new Float32Array(200)).map((e) => e.type)).toEqual(["speaking"]);
    const end = d.end();
    expect(calls).toEqual([256, 256]);
    expect(end).toEqual([{ type: "silence", startMs: 0, durationMs: 37.5, atMs: 37.5 }]); // 300 samples at 8 kHz
  });
});
