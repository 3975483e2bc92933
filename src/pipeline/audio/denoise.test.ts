import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import { readWav, rms } from "../../audio/index.js";
import { DenoiseProcessor } from "./denoise.js";
import { createProcessorRegistry } from "./index.js";
import { sharedFixturesUrl } from "../../../test/shared-fixtures.js";

const FIXTURES = sharedFixturesUrl("vad");
const CHUNK = 512; // the reference probabilities are per 512 samples at 16 kHz

/** Deterministic white noise (LCG), uniform in [-a, a]. */
function noise(samples: number, amplitude: number, seed = 12345): Int16Array {
  const out = new Int16Array(samples);
  let s = seed >>> 0;
  for (let i = 0; i < samples; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round((s / 2 ** 32 - 0.5) * 2 * amplitude);
  }
  return out;
}

function gather(pcm: Int16Array, chunks: number[], shift = 0): Int16Array {
  const out = new Int16Array(chunks.length * CHUNK);
  chunks.forEach((c, k) => out.set(pcm.subarray(c * CHUNK + shift, c * CHUNK + shift + CHUNK), k * CHUNK));
  return out;
}

describe("DenoiseProcessor (RNNoise WASM)", () => {
  it("removes most of the noise in noise-only parts and keeps most of the speech", async () => {
    const wav = await readWav(new URL("vad-bench-16k.wav", FIXTURES).pathname);
    const probs = JSON.parse(await readFile(new URL("vad-reference-probs.json", FIXTURES), "utf8")) as number[];
    expect(wav.sampleRate).toBe(16000);
    const clean = wav.pcm;
    const n = noise(clean.length, 2000); // about -30 dBFS of white noise
    const noisy = new Int16Array(clean.length);
    for (let i = 0; i < clean.length; i++) noisy[i] = Math.max(-32768, Math.min(32767, (clean[i] as number) + (n[i] as number)));

    const dn = await DenoiseProcessor.create(16000);
    const out = new Int16Array(noisy.length);
    for (let off = 0; off + 320 <= noisy.length; off += 320) {
      const frame: AudioFrame = { pcm: noisy.slice(off, off + 320), sampleRate: 16000, timestampMs: off / 16 };
      dn.process(frame);
      out.set(frame.pcm, off);
    }
    dn.close();
    expect(dn.underrunCount).toBe(0);
    const shift = Math.round((dn.latencyMs * 16000) / 1000);

    // Skip the first 2 s (adaptation) and chunks next to a speech/non-speech change.
    const stable = (c: number, pred: (p: number) => boolean): boolean =>
      c > 62 && c + 2 < probs.length && [-2, -1, 0, 1, 2].every((d) => pred(probs[c + d] as number));
    const idx = probs.map((_p, i) => i);
    const quiet = idx.filter((c) => stable(c, (p) => p < 0.1));
    const speech = idx.filter((c) => stable(c, (p) => p > 0.9));
    expect(quiet.length).toBeGreaterThan(100);
    expect(speech.length).toBeGreaterThan(300);

    const noiseIn = rms(gather(noisy, quiet));
    const noiseOut = rms(gather(out, quiet, shift));
    const speechIn = rms(gather(clean, speech));
    const speechOut = rms(gather(out, speech, shift));
    // Measured: noise -33 dB, speech RMS kept at 96 % (of the clean speech).
    expect(noiseOut / noiseIn).toBeLessThan(0.1); // at least 20 dB less noise
    expect(speechOut / speechIn).toBeGreaterThan(0.75);
  });

  it("keeps frames the same length at 8 kHz and is registered as `denoise`", async () => {
    const chain = await createProcessorRegistry().createChain(["denoise"], { sampleRate: 8000 });
    const frame: AudioFrame = { pcm: noise(160, 1000), sampleRate: 8000, timestampMs: 0 };
    for (let i = 0; i < 10; i++) chain.process(frame);
    expect(frame.pcm.length).toBe(160);
    expect(chain.names).toEqual(["denoise"]);
    chain.close();
  });
});
