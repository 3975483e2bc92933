import { describe, expect, it } from "vitest";
import { FramePool, InflightRing, Play, fadeEnvelope, flushPartial, writeFrames } from "./pacer-queue.js";

describe("InflightRing", () => {
  it("counts a frame's samples as played for its utterance once its end has passed, oldest first", () => {
    const ring = new InflightRing(3);
    const a = new Play("a");
    const b = new Play("b");
    expect(ring.nextEndMs).toBe(Infinity);
    ring.push(a, 20, 160);
    ring.push(b, 40, 100);
    expect(ring.count).toBe(2);
    expect(ring.nextEndMs).toBe(20);
    ring.retireUntil(19.9);
    expect(a.playedSamples).toBe(0);
    ring.retireUntil(20);
    expect([a.playedSamples, b.playedSamples, ring.count, ring.nextEndMs]).toEqual([160, 0, 1, 40]);
    ring.retireUntil(100);
    expect([b.playedSamples, ring.count, ring.nextEndMs]).toEqual([100, 0, Infinity]);
  });

  it("wraps around, and when full retires the oldest frame to make room instead of overwriting it", () => {
    const ring = new InflightRing(2);
    const p = new Play("p");
    for (let i = 1; i <= 5; i++) ring.push(p, i * 20, 10);
    // Five frames through two slots: three were retired early (counted as played), two are in flight.
    expect(ring.count).toBe(2);
    expect(p.playedSamples).toBe(30);
    expect(ring.nextEndMs).toBe(80);
    ring.retireUntil(100);
    expect(p.playedSamples).toBe(50);
  });
});

describe("writeFrames / flushPartial", () => {
  it("cuts any chunk size into whole frames, keeps the rest partial, pads it with silence on flush, and reuses freed buffers", () => {
    const pool = new FramePool(4);
    const p = new Play("p");
    expect(writeFrames(p, Int16Array.from([1, 2, 3]), pool)).toBe(0);
    expect(writeFrames(p, Int16Array.from([4, 5, 6, 7, 8, 9, 10]), pool)).toBe(8);
    expect(p.writtenSamples).toBe(10);
    expect(flushPartial(p)).toBe(true);
    expect(flushPartial(p)).toBe(false);
    const frames = [p.entries.shift(), p.entries.shift(), p.entries.shift()].map((e) => (e && "pcm" in e ? Array.from(e.pcm) : e));
    expect(frames).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 0, 0],
    ]);
    const f = pool.alloc();
    pool.free(f);
    expect(pool.alloc()).toBe(f);
  });
});

describe("fadeEnvelope", () => {
  it("keeps samples before the fade, ramps linearly to zero at its end, and zeroes the padding", () => {
    // 1 kHz: one sample per ms. The fade runs from 2 ms to 6 ms (fadeMs 4); 6 real samples, then padding.
    const pcm = Int16Array.from([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    fadeEnvelope(pcm, 0, 6, 4, 6, 1000);
    expect(Array.from(pcm)).toEqual([1000, 1000, 1000, 750, 500, 250, 0, 0]);
  });
});
