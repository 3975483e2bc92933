import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeWav, resample } from "../audio/index.js";
import { runVadCommand, type VadDefaults } from "./cli.js";
import { detectSegments, DEFAULT_DETECTOR_OPTIONS } from "./detector.js";
import { maxAbsDiff, vadFixture } from "./testutil.js";

const defaults: VadDefaults = { type: "tinysilero", threshold: 0.5, minSpeechMs: 250, minSilenceMs: 100, speechPadMs: 30 };

async function cli(argv: string[], d: VadDefaults = defaults): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runVadCommand(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), defaults: d });
  return { code, out, err };
}

describe("active-call vad", () => {
  it("usage errors exit 2 with a one-line message naming the flag or file", async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/^active-call vad: missing <file.wav>\n/);
    const unknown = await cli(["x.wav", "--frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("--frobnicate");
    const engine = await cli(["x.wav", "--engine", "vosk"]);
    expect(engine.code).toBe(2);
    expect(engine.err).toContain("--engine");
    const missingValue = await cli(["x.wav", "--engine"]);
    expect(missingValue.code).toBe(2);
    expect(missingValue.err).toContain("--engine");
    const two = await cli(["a.wav", "b.wav"]);
    expect(two.code).toBe(2);
    const unreadable = await cli(["/nonexistent/file.wav"]);
    expect(unreadable.code).toBe(2);
    expect(unreadable.err).toContain("/nonexistent/file.wav");
    const dir = mkdtempSync(join(tmpdir(), "vad-cli-"));
    writeFileSync(join(dir, "junk.wav"), "not a wav file at all");
    const junk = await cli([join(dir, "junk.wav")]);
    expect(junk.code).toBe(2);
    expect(junk.err).toContain("junk.wav");
    expect((await cli(["--help"])).code).toBe(0);
  });

  it("--json prints the probabilities array and the segments", async () => {
    const f = await vadFixture(8000);
    const { code, out } = await cli([f.wav, "--json"]);
    expect(code).toBe(0);
    const j = JSON.parse(out) as {
      sampleRate: number;
      engine: string;
      chunkSamples: number;
      probabilities: number[];
      segments: { startMs: number; endMs: number; durationMs: number }[];
    };
    expect(j.sampleRate).toBe(8000);
    expect(j.engine).toBe("tinysilero");
    expect(j.chunkSamples).toBe(256);
    expect(j.probabilities).toHaveLength(1875);
    expect(maxAbsDiff(j.probabilities, f.reference)).toBeLessThanOrEqual(1e-4);
    expect(j.segments).toEqual(detectSegments(f.reference, 8000, 256, DEFAULT_DETECTOR_OPTIONS));
  });

  it("human output: one t=… p=… line per chunk, then the segments; --engine picks the engine", async () => {
    const f = await vadFixture(16000);
    const { code, out } = await cli([f.wav, "--engine", "webrtc"]);
    expect(code).toBe(0);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toContain("engine webrtc");
    expect(lines.filter((l) => /^t=\d+\.\d{3}s p=[01]\.0000$/.test(l))).toHaveLength(2000);
    expect(lines[1]).toMatch(/^t=0\.000s p=[01]\.0000$/);
    expect(lines[2]).toMatch(/^t=0\.030s /);
    expect(lines.at(-1)).toMatch(/^\d+ segments, [\d.]+s of speech in 60\.000s$/);
  });

  it("resamples other rates to 16 kHz, mixes stereo down, and applies [defaults.vad]", async () => {
    const f = await vadFixture(16000);
    const pcm = resample(f.pcm.subarray(0, 16000 * 10), 16000, 22050);
    const stereo = new Int16Array(pcm.length * 2);
    pcm.forEach((v, i) => {
      stereo[2 * i] = v;
      stereo[2 * i + 1] = v;
    });
    const dir = mkdtempSync(join(tmpdir(), "vad-cli-"));
    const file = join(dir, "stereo-22k.wav");
    writeFileSync(file, encodeWav(stereo, 22050, 2));
    const { code, out } = await cli([file, "--json"], { ...defaults, type: "silero", threshold: 0.9 });
    expect(code).toBe(0);
    const j = JSON.parse(out) as { sampleRate: number; sourceSampleRate: number; probabilities: number[]; detector: { threshold: number; negThreshold: number } };
    expect(j.sampleRate).toBe(16000);
    expect(j.sourceSampleRate).toBe(22050);
    expect(j.probabilities.length).toBe(Math.ceil((16000 * 10) / 512)); // the partial last chunk is zero-padded
    expect(j.detector.threshold).toBe(0.9);
    expect(j.detector.negThreshold).toBeCloseTo(0.75);
  });
});
