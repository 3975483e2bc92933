import { describe, expect, it } from "vitest";
import { createVadEngine, type TinySileroEngine, type VadEngine, type VadStream } from "./index.js";
import { maxAbsDiff, vadFixture } from "./testutil.js";

const RATES = [16000, 8000] as const;

/** Runs a fresh stream over the whole file, one chunk per call (the reference convention). */
function probabilities(engine: VadEngine, sampleRate: number, pcm: Int16Array | Float32Array): number[] {
  const s = engine.createStream(sampleRate);
  const out: number[] = [];
  for (let o = 0; o + s.chunkSamples <= pcm.length; o += s.chunkSamples) out.push(s.process(pcm, o));
  s.close();
  return out;
}

describe("Silero v5 engines match the onnxruntime reference (max abs diff <= 1e-4)", () => {
  const cases: [string, () => Promise<VadEngine>][] = [
    ["tinysilero native (best isa)", () => createVadEngine("tinysilero", { tinysilero: { kernel: "native" } })],
    ["tinysilero native (portable baseline)", () => createVadEngine("tinysilero", { tinysilero: { kernel: "native", isa: 0 } })],
    ["tinysilero TypeScript fallback", () => createVadEngine("tinysilero", { tinysilero: { kernel: "ts" } })],
    ["onnx", () => createVadEngine("onnx")],
  ];
  for (const [name, make] of cases) {
    for (const sr of RATES) {
      it(`${name} at ${sr} Hz`, async () => {
        const engine = await make();
        const f = await vadFixture(sr);
        const p = probabilities(engine, sr, f.pcm);
        expect(p.length).toBe(f.reference.length);
        expect(maxAbsDiff(p, f.reference)).toBeLessThanOrEqual(1e-4);
      });
    }
  }

  it("the native kernel is the one `npm ci` built, with the expected description", async () => {
    const engine = (await createVadEngine("tinysilero")) as TinySileroEngine;
    expect(engine.kernelKind).toBe("native");
    expect(engine.description).toMatch(/^tinysilero \(native, (avx2\+fma|baseline)\)$/);
    expect((await createVadEngine("silero")) === engine).toBe(true); // alias, one shared engine
  });
});

describe("streams", () => {
  it("are independent: two interleaved streams give the same results as separate runs", async () => {
    const engine = await createVadEngine("tinysilero");
    const a = await vadFixture(16000);
    const reversed = a.pcm.slice().reverse();
    const aloneA = probabilities(engine, 16000, a.pcm);
    const aloneB = probabilities(engine, 16000, reversed);
    const sa = engine.createStream(16000);
    const sb = engine.createStream(16000);
    const pa: number[] = [];
    const pb: number[] = [];
    for (let o = 0; o + 512 <= a.pcm.length; o += 512) {
      pa.push(sa.process(a.pcm, o));
      pb.push(sb.process(reversed, o));
    }
    expect(pa).toEqual(aloneA);
    expect(pb).toEqual(aloneB);
  });

  it("interleaving works for the onnx engine and across sample rates too", async () => {
    const engine = await createVadEngine("onnx");
    const f16 = await vadFixture(16000);
    const f8 = await vadFixture(8000);
    const s16 = engine.createStream(16000);
    const s8 = engine.createStream(8000);
    const p16: number[] = [];
    const p8: number[] = [];
    for (let k = 0; k < 200; k++) {
      p16.push(s16.process(f16.pcm, k * 512));
      p8.push(s8.process(f8.pcm, k * 256));
    }
    expect(maxAbsDiff(p16, f16.reference.slice(0, 200))).toBe(0);
    expect(maxAbsDiff(p8, f8.reference.slice(0, 200))).toBe(0);
  });

  it("reset() makes a stream new again; state stays a few KB", async () => {
    const engine = await createVadEngine("tinysilero");
    const f = await vadFixture(8000);
    const s: VadStream = engine.createStream(8000);
    const first = [0, 1, 2, 3].map((k) => s.process(f.pcm, 4000 + k * 256));
    s.reset();
    const again = [0, 1, 2, 3].map((k) => s.process(f.pcm, 4000 + k * 256));
    expect(again).toEqual(first);
    expect(s.stateBytes).toBeLessThan(4096);
    expect(engine.createStream(16000).stateBytes).toBeLessThan(4096);
  });

  it("accepts PCM16 and float chunks (sample / 32768) alike, at any offset", async () => {
    const engine = await createVadEngine("tinysilero");
    const f = await vadFixture(16000);
    const floats = Float32Array.from(f.pcm, (v) => v / 32768);
    const a = engine.createStream(16000);
    const b = engine.createStream(16000);
    for (let k = 0; k < 50; k++) expect(a.process(f.pcm, k * 512)).toBe(b.process(floats.subarray(k * 512, k * 512 + 512)));
  });

  it("rejects a chunk that is too short, and unsupported rates", async () => {
    const engine = await createVadEngine("tinysilero");
    const s = engine.createStream(16000);
    expect(() => s.process(new Int16Array(100))).toThrow(RangeError);
    expect(() => s.process(new Int16Array(512), 1)).toThrow(RangeError);
    expect(() => engine.createStream(44100)).toThrow(/8000 or 16000/);
    expect(engine.chunkSamples(16000)).toBe(512);
    expect(engine.chunkSamples(8000)).toBe(256);
  });
});

describe("webrtc", () => {
  for (const sr of RATES) {
    it(`finds speech where the reference does, at ${sr} Hz`, async () => {
      const engine = await createVadEngine("webrtc");
      const f = await vadFixture(sr);
      const s = engine.createStream(sr);
      expect(s.chunkSamples).toBe((sr * 30) / 1000);
      let speechHits = 0, speechFrames = 0, silenceHits = 0, silenceFrames = 0;
      for (let o = 0; o + s.chunkSamples <= f.pcm.length; o += s.chunkSamples) {
        const p = s.process(f.pcm, o);
        expect(p === 0 || p === 1).toBe(true);
        // reference chunk that holds the middle of this frame
        const ref = f.reference[Math.floor((o + s.chunkSamples / 2) / f.chunk)] as number;
        if (ref > 0.8) { speechFrames++; speechHits += p; }
        else if (ref < 0.2) { silenceFrames++; silenceHits += p; }
      }
      s.close();
      expect(speechFrames).toBeGreaterThan(100);
      expect(silenceFrames).toBeGreaterThan(50);
      const speechRate = speechHits / speechFrames;
      const silenceRate = silenceHits / silenceFrames;
      expect(speechRate).toBeGreaterThan(0.6);
      expect(speechRate).toBeGreaterThan(silenceRate + 0.2);
    });
  }
});

describe("createVadEngine", () => {
  it("rejects an unknown type with an INTERNAL AppError naming it", async () => {
    await expect(createVadEngine("bogus")).rejects.toMatchObject({ code: "INTERNAL", message: expect.stringContaining('"bogus"') });
  });
});
