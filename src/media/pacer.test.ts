import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../audio/index.js";
import { ManualClock } from "./clock.js";
import type { TrackEndEvent, TrackStartEvent } from "./pacer.js";
import { AgentPacer } from "./pacer.js";

const RATE = 16000;
const SPF = 320; // samples per 20 ms frame

/** A ramp 1, 2, 3, ... so that any reordering, loss or duplication shows. */
function ramp(samples: number, from = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = ((from + i) % 30000) + 1;
  return a;
}

interface Sent {
  pcm: Int16Array;
  timestampMs: number;
  sentAtMs: number;
  playId: string | undefined;
  speaking: boolean;
  last: boolean;
}

function setup(options: { leadMs?: number; idleSilence?: boolean; maxQueuedMs?: number; transform?: (p: Int16Array, s: boolean) => void } = {}) {
  const clock = new ManualClock(1000); // the pacer's media time starts at its creation, not at clock 0
  const sent: Sent[] = [];
  const buffers = new Set<Int16Array>();
  const starts: TrackStartEvent[] = [];
  const ends: TrackEndEvent[] = [];
  const pacer: AgentPacer = new AgentPacer({
    sampleRate: RATE,
    clock,
    leadMs: options.leadMs ?? 40,
    idleSilence: options.idleSilence ?? false,
    maxQueuedMs: options.maxQueuedMs ?? 60_000,
    transform: options.transform,
    sink: (frame: AudioFrame, info) => {
      buffers.add(frame.pcm);
      sent.push({ pcm: frame.pcm.slice(), timestampMs: frame.timestampMs, sentAtMs: pacer.nowMs, playId: info.playId, speaking: info.speaking, last: info.last });
    },
  });
  pacer.events.on("trackStart", (e) => starts.push(e));
  pacer.events.on("trackEnd", (e) => ends.push(e));
  const audio = (): Int16Array => {
    const out = new Int16Array(sent.reduce((n, s) => n + s.pcm.length, 0));
    let o = 0;
    for (const s of sent) {
      out.set(s.pcm, o);
      o += s.pcm.length;
    }
    return out;
  };
  return { clock, pacer, sent, buffers, starts, ends, audio };
}

describe("AgentPacer last frame", () => {
  it("flags exactly the final frame of an ended utterance, also a padded partial one; never silence", () => {
    const { clock, pacer, sent } = setup({ leadMs: 40, idleSilence: true });
    pacer.write("a", ramp(3 * SPF + 10)); // 3 frames and a partial one, padded at endPlay
    pacer.endPlay("a");
    pacer.write("b", ramp(2 * SPF));
    pacer.endPlay("b");
    clock.advance(200);
    const speech = sent.filter((f) => f.speaking);
    expect(speech.map((f) => `${f.playId}:${f.last}`)).toEqual(["a:false", "a:false", "a:false", "a:true", "b:false", "b:true"]);
    expect(sent.filter((f) => !f.speaking).every((f) => !f.last)).toBe(true);
  });

  it("an utterance ended after its audio was all sent has no last frame (its trackEnd is the moment)", () => {
    const { clock, pacer, sent, ends } = setup({ leadMs: 40 });
    pacer.write("late", ramp(2 * SPF));
    clock.advance(100);
    pacer.endPlay("late");
    clock.advance(100);
    expect(sent.map((f) => f.last)).toEqual([false, false]);
    expect(ends.map((e) => e.playId)).toEqual(["late"]);
  });
});

describe("AgentPacer pacing", () => {
  it("releases 20 ms frames at most leadMs ahead of real time, contiguous and lossless", () => {
    const { clock, pacer, sent, audio } = setup({ leadMs: 40 });
    const input = ramp(10 * SPF + 100); // 10 frames and a bit
    pacer.write("a", input);
    pacer.endPlay("a");
    clock.advance(0);
    expect(sent.map((s) => s.timestampMs)).toEqual([0, 20]);
    clock.advance(20);
    expect(sent).toHaveLength(3);
    clock.advance(1000);
    expect(sent).toHaveLength(11);
    for (const [i, s] of sent.entries()) {
      expect(s.timestampMs).toBe(i * 20);
      expect(s.timestampMs + 20 - s.sentAtMs).toBeLessThanOrEqual(40); // never more than the lead ahead
      expect(s.sentAtMs).toBeLessThanOrEqual(s.timestampMs); // never late
    }
    const out = audio();
    expect(Array.from(out.subarray(0, input.length))).toEqual(Array.from(input));
    expect(out.subarray(input.length).every((x) => x === 0)).toBe(true); // last frame padded with silence
  });

  it("emits trackStart with the first frame and trackEnd when the last frame has played out", () => {
    const { clock, pacer, starts, ends } = setup();
    pacer.write("a", ramp(5 * SPF));
    pacer.endPlay("a");
    clock.advance(0);
    expect(starts).toEqual([{ playId: "a", atMs: 0 }]);
    clock.advance(99);
    expect(ends).toEqual([]);
    clock.advance(1);
    expect(ends).toEqual([{ playId: "a", reason: "finished", playedMs: 100, totalMs: 100, atMs: 100 }]);
  });

  it("plays queued utterances in order, back to back", () => {
    const { clock, pacer, sent, ends } = setup();
    pacer.write("a", ramp(2 * SPF));
    pacer.write("b", ramp(3 * SPF, 5000)); // written while "a" is still open: queued after it
    pacer.write("a", ramp(SPF, 9000));
    pacer.endPlay("a");
    pacer.endPlay("b");
    clock.advance(200);
    expect(sent.map((s) => s.playId)).toEqual(["a", "a", "a", "b", "b", "b"]);
    expect(sent.map((s) => s.timestampMs)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(ends.map((e) => [e.playId, e.atMs, e.playedMs])).toEqual([
      ["a", 60, 60],
      ["b", 120, 60],
    ]);
  });

  it("starts a new talk spurt at the current time after being idle (timestamps follow real time)", () => {
    const { clock, pacer, sent } = setup();
    pacer.write("a", ramp(SPF));
    pacer.endPlay("a");
    clock.advance(500);
    pacer.write("b", ramp(SPF));
    pacer.endPlay("b");
    clock.advance(0);
    expect(sent.map((s) => s.timestampMs)).toEqual([0, 500]);
  });

  it("waits (sends nothing) on underrun without skipping to the next utterance", () => {
    const { clock, pacer, sent } = setup();
    pacer.write("a", ramp(SPF));
    pacer.write("b", ramp(SPF));
    pacer.endPlay("b");
    clock.advance(100);
    expect(sent.map((s) => s.playId)).toEqual(["a"]);
    pacer.endPlay("a");
    clock.advance(0);
    expect(sent.map((s) => s.playId)).toEqual(["a", "b"]);
    expect(sent[1]?.timestampMs).toBe(100);
  });

  it("sends idle silence through the transform when idleSilence is set", () => {
    const seen: boolean[] = [];
    const { clock, pacer, sent } = setup({ idleSilence: true, transform: (_p, speaking) => seen.push(speaking) });
    clock.advance(40);
    expect(sent.length).toBe(4); // 0..80 released by t=40 with a 40 ms lead
    expect(sent.every((s) => !s.speaking && s.playId === undefined)).toBe(true);
    pacer.write("a", ramp(SPF));
    pacer.endPlay("a");
    clock.advance(20);
    expect(sent.map((s) => s.timestampMs)).toEqual([0, 20, 40, 60, 80]);
    expect(sent[4]?.playId).toBe("a");
    expect(seen).toEqual([false, false, false, false, true]);
  });

  it("reuses a handful of frame buffers in the steady state (no per-frame allocation)", () => {
    const { clock, pacer, buffers, sent } = setup();
    const chunk = ramp(SPF);
    for (let i = 0; i < 250; i++) {
      pacer.write("a", chunk);
      clock.advance(20);
    }
    expect(sent.length).toBeGreaterThan(240);
    expect(buffers.size).toBeLessThanOrEqual(4);
  });
});

describe("AgentPacer marks", () => {
  it("resolves a mark when the audio before it has played out", async () => {
    const { clock, pacer } = setup();
    pacer.write("a", ramp(3 * SPF));
    let result: unknown;
    void pacer.mark("m1", "a").then((r) => (result = r));
    pacer.write("a", ramp(2 * SPF));
    pacer.endPlay("a");
    clock.advance(59);
    await Promise.resolve();
    expect(result).toBeUndefined();
    clock.advance(1);
    await Promise.resolve();
    expect(result).toEqual({ name: "m1", played: true, atMs: 60 });
  });

  it("resolves marks with played:false when their audio is cleared", async () => {
    const { clock, pacer } = setup();
    pacer.write("a", ramp(20 * SPF));
    const m = pacer.mark("end-of-a", "a");
    clock.advance(100);
    pacer.clear();
    await expect(m).resolves.toMatchObject({ name: "end-of-a", played: false });
  });

  it("a mark with nothing queued resolves once the released audio has played out", async () => {
    const { clock, pacer } = setup();
    pacer.write("a", ramp(2 * SPF));
    pacer.endPlay("a");
    clock.advance(0); // both frames released (lead 40)
    const m = pacer.mark("after");
    clock.advance(39);
    let done = false;
    void m.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await expect(m).resolves.toEqual({ name: "after", played: true, atMs: 40 });
  });
});

describe("AgentPacer clear (barge-in)", () => {
  it("hard cut: nothing is sent after the clear; audio stops at the end of the released lead", () => {
    const { clock, pacer, sent, ends } = setup({ leadMs: 20 });
    pacer.write("a", ramp(50 * SPF));
    clock.advance(205);
    const before = sent.length;
    const result = pacer.clear();
    clock.advance(500);
    expect(sent.length).toBe(before);
    expect(result.clearedAtMs).toBe(205);
    expect(result.stopAtMs).toBe(220); // within one frame of the clear
    expect(result.stopAtMs - result.clearedAtMs).toBeLessThanOrEqual(20);
    expect(result.plays).toEqual([{ playId: "a", playedMs: 220, totalMs: 1000, started: true, interrupted: true }]);
    expect(ends).toEqual([{ playId: "a", reason: "interrupted", playedMs: 220, totalMs: 1000, atMs: 205 }]);
    expect(pacer.active).toBe(false);
  });

  it("reports exact played ms per playId, including queued utterances that never started", () => {
    const { clock, pacer } = setup({ leadMs: 40 });
    pacer.write("a", ramp(10 * SPF));
    pacer.endPlay("a");
    pacer.write("b", ramp(10 * SPF));
    pacer.write("c", ramp(5 * SPF));
    clock.advance(180); // "a" ends at 200: all of it released by now (lead 40), "b" starts at 200
    const r = pacer.clear();
    expect(r.plays).toEqual([
      { playId: "a", playedMs: 200, totalMs: 200, started: true, interrupted: false },
      { playId: "b", playedMs: 20, totalMs: 200, started: true, interrupted: true },
      { playId: "c", playedMs: 0, totalMs: 100, started: false, interrupted: true },
    ]);
  });

  it("graceful fade: the queued audio beyond the lead is faded linearly and stops within 40 ms", () => {
    const { clock, pacer, sent } = setup({ leadMs: 20 });
    const loud = new Int16Array(50 * SPF).fill(10000);
    pacer.write("a", loud);
    clock.advance(205); // released up to 220
    const r = pacer.clear({ fadeOutMs: 30 }); // fade reaches 0 at 235
    clock.advance(500);
    expect(r.stopAtMs).toBe(235);
    expect(r.stopAtMs - r.clearedAtMs).toBeLessThanOrEqual(40);
    expect(r.plays[0]?.playedMs).toBe(235);
    const last = sent[sent.length - 1];
    expect(last?.timestampMs).toBe(220);
    const tail = last?.pcm as Int16Array;
    // t = 220 + i/16: gain (235 - t) / 30, i.e. 0.5 at the start of the frame, 0 from 235 on.
    expect(tail[0]).toBe(5000);
    for (let i = 1; i < 240; i++) expect(tail[i]).toBeLessThanOrEqual(tail[i - 1] as number);
    expect(Math.abs((tail[120] as number) - Math.round(10000 * ((235 - 227.5) / 30)))).toBeLessThanOrEqual(1);
    expect(tail.subarray(240).every((x) => x === 0)).toBe(true);
    expect(sent.length).toBe(12);
  });

  it("fade shorter than the released lead is a hard cut at the lead", () => {
    const { clock, pacer, sent } = setup({ leadMs: 40 });
    pacer.write("a", ramp(50 * SPF));
    clock.advance(200); // released up to 240
    const n = sent.length;
    const r = pacer.clear({ fadeOutMs: 20 });
    clock.advance(100);
    expect(sent.length).toBe(n);
    expect(r.stopAtMs).toBe(240);
  });

  it("audio written after a clear plays after the fade tail", () => {
    const { clock, pacer, sent, starts } = setup({ leadMs: 20 });
    pacer.write("a", new Int16Array(50 * SPF).fill(1000));
    clock.advance(200);
    pacer.clear({ fadeOutMs: 40 });
    pacer.write("b", ramp(2 * SPF));
    pacer.endPlay("b");
    clock.advance(200);
    const ids = sent.map((s) => `${s.playId}@${s.timestampMs}`);
    expect(ids.slice(-4)).toEqual(["a@200", "a@220", "b@240", "b@260"]);
    expect(starts.map((s) => s.playId)).toEqual(["a", "b"]);
  });
});

describe("AgentPacer pause/resume and play()", () => {
  it("pause freezes at the current frame and resume continues from the same sample", () => {
    const { clock, pacer, sent, audio } = setup();
    const input = ramp(20 * SPF);
    pacer.write("a", input);
    pacer.endPlay("a");
    clock.advance(100);
    pacer.pause();
    const n = sent.length;
    clock.advance(300);
    expect(sent.length).toBe(n);
    pacer.pause(); // twice: nothing
    pacer.resume();
    clock.advance(1000);
    expect(Array.from(audio())).toEqual(Array.from(input));
    expect(sent[n]?.timestampMs).toBe(400); // resumed at the current time
  });

  it("play() consumes an async source with backpressure and resolves after playout", async () => {
    const { clock, pacer, sent } = setup({ maxQueuedMs: 100 });
    let produced = 0;
    async function* tts(): AsyncGenerator<Int16Array> {
      for (let i = 0; i < 50; i++) {
        produced++;
        yield ramp(SPF, i * SPF);
      }
    }
    const outcome = pacer.play(tts(), { playId: "t" });
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(produced).toBeLessThan(12); // held back at ~100 ms queued
    for (let t = 0; t < 1200; t += 20) {
      clock.advance(20);
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    await expect(outcome).resolves.toEqual({ playId: "t", playedMs: 1000, totalMs: 1000, interrupted: false });
    expect(sent).toHaveLength(50);
  });

  it("play() resamples frames at another rate", async () => {
    const { clock, pacer, sent } = setup();
    const frame: AudioFrame = { pcm: new Int16Array(2400).fill(8000), sampleRate: 24000, timestampMs: 0 };
    const done = pacer.play(frame, { playId: "r" });
    clock.advance(200);
    const o = await done;
    expect(o.totalMs).toBeGreaterThanOrEqual(100); // 100 ms plus the resampler's flushed filter tail
    expect(o.totalMs).toBeLessThan(105);
    expect(sent.length).toBeGreaterThanOrEqual(5);
    expect(sent[2]?.pcm[100]).toBeGreaterThan(7000);
  });

  it("play() of a cleared utterance resolves interrupted", async () => {
    const { clock, pacer } = setup();
    const done = pacer.play(ramp(50 * SPF), { playId: "x" });
    clock.advance(100);
    pacer.clear();
    await expect(done).resolves.toMatchObject({ playId: "x", interrupted: true, playedMs: 140 });
  });
});
