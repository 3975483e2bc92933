import { describe, expect, it } from "vitest";
import { Rechunker } from "./rechunk.js";

function collect(sampleRate: number, frameMs?: number) {
  const frames: Int16Array[] = [];
  const stamps: number[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const r = new Rechunker({ sampleRate, frameMs }, (frame, timestampMs) => {
    buffers.add(frame.buffer);
    frames.push(frame.slice()); // the callee copies: the frame buffer is reused
    stamps.push(timestampMs);
  });
  return { r, frames, stamps, buffers };
}

function concat(parts: Int16Array[]): number[] {
  return parts.flatMap((p) => Array.from(p));
}

describe("Rechunker", () => {
  it("turns random input sizes into exact 20 ms frames whose concatenation is the input", () => {
    const { r, frames, stamps, buffers } = collect(8000);
    const sizes = [0, 1, 159, 160, 161, 0, 1, 1, 800, 1000, 3, 7, 2000, 0, 333];
    let seed = 9;
    const input: number[] = [];
    for (const size of sizes) {
      const chunk = Int16Array.from({ length: size }, () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 16) - 32768;
      });
      input.push(...chunk);
      r.push(chunk);
    }
    const full = Math.floor(input.length / 160);
    expect(frames).toHaveLength(full);
    expect(frames.every((f) => f.length === 160)).toBe(true);
    expect(r.pending).toBe(input.length - full * 160);
    expect(stamps).toEqual(frames.map((_, k) => k * 20));
    expect(buffers.size).toBe(1); // one reused buffer: no allocation per frame
    r.flush();
    expect(concat(frames)).toEqual(input);
    expect(frames.at(-1)).toHaveLength(input.length - full * 160);
  });

  it("pads the last frame with silence on request", () => {
    const { r, frames, stamps } = collect(16000, 10);
    r.push(Int16Array.from({ length: 200 }, (_, i) => i + 1));
    expect(frames).toHaveLength(1);
    r.flush(true);
    expect(frames).toHaveLength(2);
    const last = frames[1] as Int16Array;
    expect(last).toHaveLength(160);
    expect(Array.from(last.subarray(0, 40))).toEqual(Array.from({ length: 40 }, (_, i) => 161 + i));
    expect(last.subarray(40).every((v) => v === 0)).toBe(true);
    expect(stamps).toEqual([0, 10]);
    r.flush(true); // nothing pending: nothing emitted
    expect(frames).toHaveLength(2);
  });

  it("reset drops pending samples and restarts the clock", () => {
    const { r, frames, stamps } = collect(8000);
    r.push(new Int16Array(250));
    r.reset();
    expect(r.pending).toBe(0);
    r.push(new Int16Array(160));
    expect(frames).toHaveLength(2);
    expect(stamps).toEqual([0, 0]);
  });

  it("rejects frame sizes that are not whole samples", () => {
    expect(() => new Rechunker({ sampleRate: 44100, frameMs: 1 }, () => undefined)).toThrow(RangeError);
    expect(() => new Rechunker({ sampleRate: 8000, frameMs: 0 }, () => undefined)).toThrow(RangeError);
    expect(new Rechunker({ sampleRate: 48000 }, () => undefined).frameSamples).toBe(960);
  });
});
