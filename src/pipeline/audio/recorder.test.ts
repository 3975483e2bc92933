import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import { decodeWav } from "../../audio/index.js";
import { Recorder } from "./recorder.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "recorder-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function frame(rate: number, atMs: number, fill = 0): AudioFrame {
  return { pcm: new Int16Array(rate / 50).fill(fill), sampleRate: rate, timestampMs: atMs };
}

function channel(pcm: Int16Array, ch: number, channels = 2): Int16Array {
  const out = new Int16Array(pcm.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = pcm[i * channels + ch] as number;
  return out;
}

function peakIndex(pcm: Int16Array): number {
  let best = 0;
  for (let i = 1; i < pcm.length; i++) if (Math.abs(pcm[i] as number) > Math.abs(pcm[best] as number)) best = i;
  return best;
}

describe("Recorder", () => {
  it("aligns the channels: a click at the same media time lands on the same sample in both", async () => {
    const path = join(dir, "click.wav");
    const rec = await Recorder.open({ path, sampleRate: 16000 });
    // Caller: continuous 8 kHz frames for 2 s (resampled to 16 kHz), click at 1000 ms.
    // Agent: 16 kHz frames only from 900 ms to 1300 ms (paced, ahead of the caller), click at 1000 ms + 5 ms.
    for (let t = 0; t < 1300; t += 20) {
      if (t >= 900) {
        const f = frame(16000, t);
        if (t === 1000) f.pcm[80] = 20000; // 1005 ms
        rec.writeAgent(f);
      }
      const c = frame(8000, t);
      if (t === 1000) c.pcm[40] = 20000; // 1005 ms
      rec.writeCaller(c);
    }
    for (let t = 1300; t < 2000; t += 20) rec.writeCaller(frame(8000, t));
    await rec.close();
    const wav = decodeWav(await readFile(path));
    expect(wav.channels).toBe(2);
    expect(wav.sampleRate).toBe(16000);
    const left = channel(wav.pcm, 0);
    const right = channel(wav.pcm, 1);
    expect(left.length).toBeGreaterThanOrEqual(32000);
    expect(peakIndex(right)).toBe(16080);
    expect(peakIndex(left)).toBe(16080);
    // Silence where the agent sent nothing.
    expect(right.subarray(0, 900 * 16).every((x) => x === 0)).toBe(true);
  });

  it("is readable while recording (crash-safe) and complete after close", async () => {
    const path = join(dir, "live.wav");
    const rec = await Recorder.open({ path, sampleRate: 8000, latencyMs: 100, batchMs: 100 });
    for (let t = 0; t < 1000; t += 20) {
      rec.writeCaller(frame(8000, t, 1000));
      if (t >= 200 && t < 400) rec.writeAgent(frame(8000, t, -2000));
    }
    await new Promise((r) => setTimeout(r, 50)); // let the queued batches reach the file
    const partial = decodeWav(await readFile(path));
    // Up to the horizon (1000 - 100 ms), in whole batches.
    expect(partial.pcm.length / 2).toBeGreaterThanOrEqual(800 * 8);
    expect(partial.pcm.length / 2).toBeLessThanOrEqual(900 * 8);
    expect(channel(partial.pcm, 0).every((x) => x === 1000)).toBe(true);
    const r = channel(partial.pcm, 1);
    expect(r[199 * 8]).toBe(0);
    expect(r[200 * 8]).toBe(-2000);
    expect(r[400 * 8]).toBe(0);
    await rec.close();
    const full = decodeWav(await readFile(path));
    expect(full.pcm.length / 2).toBe(8000);
    expect(rec.lateSamples).toBe(0);
  });

  it("mono mode mixes both sides", async () => {
    const path = join(dir, "mono.wav");
    const rec = await Recorder.open({ path, sampleRate: 16000, stereo: false });
    rec.writeCaller(frame(16000, 0, 100));
    rec.writeAgent(frame(16000, 10, 50));
    await rec.close();
    const wav = decodeWav(await readFile(path));
    expect(wav.channels).toBe(1);
    expect(wav.pcm.length).toBe(480);
    expect(wav.pcm[0]).toBe(100);
    expect(wav.pcm[200]).toBe(150);
    expect(wav.pcm[400]).toBe(50);
  });

  it("drops (and counts) audio that arrives after its position was written", async () => {
    const path = join(dir, "late.wav");
    const rec = await Recorder.open({ path, sampleRate: 8000, latencyMs: 100, batchMs: 100 });
    for (let t = 0; t < 1000; t += 20) rec.writeCaller(frame(8000, t));
    rec.writeAgent(frame(8000, 0, 5)); // a whole second late
    expect(rec.lateSamples).toBe(160);
    await rec.close();
  });

  it("reports a write error once and does not throw on the audio path", async () => {
    const path = join(dir, "fail.wav");
    const errors: Error[] = [];
    const rec = await Recorder.open({ path, sampleRate: 8000, latencyMs: 0, batchMs: 20, onError: (e) => errors.push(e) });
    // Simulate the disk going away: close the underlying file behind the recorder's back.
    await (rec as unknown as { writer: { close(): Promise<void> } }).writer.close();
    for (let t = 0; t < 200; t += 20) rec.writeCaller(frame(8000, t));
    await expect(rec.close()).rejects.toThrow();
    expect(errors).toHaveLength(1);
  });
});
