import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../audio/index.js";
import { g722Decode, g722Encode, muLawDecode, muLawEncode } from "../audio/index.js";
import { ManualClock } from "./clock.js";
import type { WsCallLegOptions } from "./ws-call-leg.js";
import { WsCallLeg } from "./ws-call-leg.js";

/** A ramp 1, 2, 3, ... so that loss, duplication or reordering shows. */
function ramp(samples: number, from = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = ((from + i) % 30000) + 1;
  return a;
}

function le(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i] as number, 2 * i);
  return out;
}

function fromLe(buf: Buffer): Int16Array {
  const out = new Int16Array(buf.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(2 * i);
  return out;
}

interface Sent {
  bytes: Buffer;
  atMs: number;
}

function setup(options: Partial<WsCallLegOptions> = {}) {
  const clock = new ManualClock(5000); // media time starts at the leg's creation, not at clock 0
  const sent: Sent[] = [];
  const leg: WsCallLeg = new WsCallLeg({
    id: "ws-1",
    codec: "pcm",
    sampleRate: 16000,
    outputCodec: "pcm",
    outputSampleRate: 16000,
    clock,
    send: (bytes) => sent.push({ bytes, atMs: leg.nowMs }),
    ...options,
  });
  return { clock, leg, sent };
}

async function drain(leg: WsCallLeg): Promise<AudioFrame[]> {
  const frames: AudioFrame[] = [];
  for await (const f of leg.callerAudio) frames.push(f);
  return frames;
}

describe("WsCallLeg caller side", () => {
  it("turns pcm messages of arbitrary (odd) sizes into exact 20 ms frames with sample-counted timestamps", async () => {
    const { leg } = setup({ sampleRate: 8000 });
    expect(leg.callerRate).toBe(8000);
    const input = ramp(160 * 5 + 40); // 105 ms
    const bytes = le(input);
    const sizes = [1, 333, 2, 7, 100, 41, 1000];
    let i = 0;
    for (let k = 0; i < bytes.length; k++) {
      const n = Math.min(sizes[k % sizes.length] as number, bytes.length - i);
      leg.pushCallerBytes(bytes.subarray(i, i + n));
      i += n;
    }
    await leg.close();
    const frames = await drain(leg);
    expect(frames.map((f) => [f.timestampMs, f.pcm.length, f.sampleRate])).toEqual([
      [0, 160, 8000],
      [20, 160, 8000],
      [40, 160, 8000],
      [60, 160, 8000],
      [80, 160, 8000],
      [100, 160, 8000], // the last 40 samples, padded at close
    ]);
    const joined = new Int16Array(frames.length * 160);
    frames.forEach((f, k) => joined.set(f.pcm, k * 160));
    expect(Array.from(joined.subarray(0, input.length))).toEqual(Array.from(input));
    expect(joined.subarray(input.length).every((x) => x === 0)).toBe(true);
  });

  it("decodes g722 caller audio with state across messages", async () => {
    const { leg } = setup({ codec: "g722", sampleRate: 16000 });
    const pcm = new Int16Array(640);
    for (let k = 0; k < pcm.length; k++) pcm[k] = Math.round(9000 * Math.sin(k / 5));
    const coded = g722Encode(pcm); // 320 bytes = 40 ms
    leg.pushCallerBytes(coded.subarray(0, 17));
    leg.pushCallerBytes(coded.subarray(17, 200));
    leg.pushCallerBytes(coded.subarray(200));
    await leg.close();
    const frames = await drain(leg);
    expect(frames.map((f) => f.timestampMs)).toEqual([0, 20]);
    const joined = new Int16Array(640);
    frames.forEach((f, k) => joined.set(f.pcm, k * 320));
    expect(joined).toEqual(g722Decode(coded));
  });

  it("counts time in samples, not wall clock, and drops the oldest frames when nobody reads", async () => {
    const { leg } = setup({ codec: "pcmu", sampleRate: 8000, callerCapacity: 3 });
    const mu = muLawEncode(ramp(160 * 5));
    leg.pushCallerBytes(mu); // 100 ms at once, faster than real time
    expect(leg.droppedCallerFrames).toBe(2);
    await leg.close();
    const frames = await drain(leg);
    expect(frames.map((f) => f.timestampMs)).toEqual([40, 60, 80]);
    expect(Array.from(frames[0]?.pcm ?? [])).toEqual(Array.from(muLawDecode(mu.subarray(320, 480))));
  });

  it("emits dtmf (source pbx) and close once; ignores audio after close", async () => {
    const { leg } = setup();
    const events: string[] = [];
    leg.events.on("dtmf", (e) => events.push(`dtmf:${e.digit}:${e.source}:${e.atMs}:${e.durationMs}`));
    leg.events.on("close", (e) => events.push(`close:${e.reason}:${e.detail}`));
    leg.pushCallerBytes(le(new Int16Array(320)));
    leg.pushDtmf("7", 120);
    await leg.close("bye");
    await leg.close();
    leg.hangup();
    leg.pushCallerBytes(le(new Int16Array(320)));
    leg.pushDtmf("8");
    expect(events).toEqual(["dtmf:7:pbx:20:120", "close:local:bye"]);
    expect(leg.closed).toBe(true);
    expect((await drain(leg)).length).toBe(1);
  });

  it("rejects unsupported formats naming the field", () => {
    expect(() => setup({ codec: "pcm", sampleRate: 44100 })).toThrow("sampleRate 44100 is not supported for pcm");
    expect(() => setup({ outputCodec: "pcmu", outputSampleRate: 16000 })).toThrow("outputSampleRate 16000 is not supported for pcmu");
    expect(() => setup({ ptime: 30 as 20 })).toThrow("ptime 30 is not supported");
  });
});

describe("WsCallLeg agent side", () => {
  it("sends ptime-sized encoded frames paced at leadMs, the last one padded", () => {
    const { clock, leg, sent } = setup({ outputCodec: "pcm", outputSampleRate: 24000, ptime: 40, leadMs: 80 });
    expect(leg.agentRate).toBe(24000);
    const input = ramp(960 * 3 + 100); // 3 frames of 40 ms and a bit
    leg.write("p1", input);
    leg.endPlay("p1");
    expect(sent).toHaveLength(0); // never synchronously inside write
    clock.advance(0);
    expect(sent.map((s) => [s.atMs, s.bytes.length])).toEqual([
      [0, 1920],
      [0, 1920],
    ]);
    clock.advance(39);
    expect(sent).toHaveLength(2);
    clock.advance(1);
    expect(sent.map((s) => s.atMs)).toEqual([0, 0, 40]);
    clock.advance(40);
    expect(sent.map((s) => s.atMs)).toEqual([0, 0, 40, 80]);
    clock.advance(1000);
    expect(sent).toHaveLength(4); // nothing while the agent is quiet
    const out = new Int16Array(4 * 960);
    sent.forEach((s, k) => out.set(fromLe(s.bytes), k * 960));
    expect(Array.from(out.subarray(0, input.length))).toEqual(Array.from(input));
    expect(out.subarray(input.length).every((x) => x === 0)).toBe(true);
    expect(sent.every((s) => s.bytes.length === 1920)).toBe(true);
    expect(leg.sentFrames).toBe(4);
  });

  it("encodes pcmu output at 160 bytes per 20 ms and reports trackStart/trackEnd", () => {
    const { clock, leg, sent } = setup({ outputCodec: "pcmu", outputSampleRate: 8000 });
    const ends: string[] = [];
    leg.events.on("trackStart", (e) => ends.push(`start:${e.playId}:${e.atMs}`));
    leg.events.on("trackEnd", (e) => ends.push(`end:${e.playId}:${e.reason}:${e.playedMs}:${e.atMs}`));
    const input = ramp(320, 2000);
    leg.write("a", input);
    leg.endPlay("a");
    clock.advance(100);
    expect(sent.map((s) => s.bytes.length)).toEqual([160, 160]);
    expect(Buffer.concat(sent.map((s) => s.bytes))).toEqual(Buffer.from(muLawEncode(input)));
    expect(ends).toEqual(["start:a:0", "end:a:finished:40:40"]);
  });

  it("sends g722 frames with encoder state kept across frames", () => {
    const { clock, leg, sent } = setup({ outputCodec: "g722", outputSampleRate: 16000, ptime: 10 });
    const input = new Int16Array(1600);
    for (let k = 0; k < input.length; k++) input[k] = Math.round(7000 * Math.sin(k / 7));
    leg.write("g", input);
    leg.endPlay("g");
    clock.advance(200);
    expect(sent.map((s) => s.bytes.length)).toEqual(new Array(10).fill(80));
    expect(Buffer.concat(sent.map((s) => s.bytes))).toEqual(Buffer.from(g722Encode(input)));
  });

  it("sendSilence: silence frames while idle, agent audio in between", () => {
    const { clock, leg, sent } = setup({ outputCodec: "pcmu", outputSampleRate: 8000, sendSilence: true, leadMs: 20 });
    clock.advance(0);
    clock.advance(60);
    expect(sent.length).toBe(4); // frames for 0..80 ms (lead one frame)
    const silence = muLawEncode(new Int16Array(160));
    expect(sent.every((s) => s.bytes.equals(silence))).toBe(true);
    leg.write("a", new Int16Array(160).fill(5000));
    leg.endPlay("a");
    clock.advance(20);
    clock.advance(20);
    const coded = muLawEncode(new Int16Array(160).fill(5000));
    expect(sent.slice(4).map((s) => s.bytes.equals(coded))).toEqual([true, false]);
  });

  it("without sendSilence nothing is sent when idle", () => {
    const { clock, sent } = setup({ sendSilence: false });
    clock.advance(0);
    clock.advance(1000);
    expect(sent).toHaveLength(0);
  });

  it("clear() stops the stream within one frame and resolves marks unplayed", async () => {
    const { clock, leg, sent } = setup({ leadMs: 40 });
    leg.write("a", ramp(16000)); // 1 s
    const mark = leg.mark("after-a", "a");
    clock.advance(0);
    clock.advance(100);
    const before = sent.length;
    expect(before).toBe(7); // 0..140 ms released at t=100 (lead 40)
    const result = leg.clear();
    expect(result.plays).toEqual([{ playId: "a", playedMs: 140, totalMs: 1000, started: true, interrupted: true }]);
    expect(result.stopAtMs).toBe(140);
    clock.advance(20);
    expect(sent.length).toBe(before); // nothing more
    clock.advance(1000);
    expect(sent.length).toBe(before);
    await expect(mark).resolves.toEqual({ name: "after-a", played: false, atMs: 100 });
  });

  it("close() drops queued audio, stops sending and emits close once", async () => {
    const { clock, leg, sent } = setup({ leadMs: 40 });
    let closes = 0;
    leg.events.on("close", () => closes++);
    const outcome = leg.play(ramp(16000), { playId: "x" });
    clock.advance(0);
    expect(sent.length).toBe(2);
    await leg.close();
    await leg.close();
    clock.advance(1000);
    expect(sent.length).toBe(2);
    expect(closes).toBe(1);
    await expect(outcome).resolves.toMatchObject({ playId: "x", interrupted: true });
  });

  it("a throwing send becomes an error event, the pacer keeps going", () => {
    const clock = new ManualClock();
    let calls = 0;
    const leg = new WsCallLeg({
      id: "e",
      codec: "pcmu",
      sampleRate: 8000,
      outputCodec: "pcmu",
      outputSampleRate: 8000,
      clock,
      send: () => {
        calls++;
        throw new Error("socket gone");
      },
    });
    const errors: string[] = [];
    leg.events.on("error", (e) => errors.push(e.message));
    leg.write("a", new Int16Array(480));
    leg.endPlay("a");
    clock.advance(100);
    expect(calls).toBe(3);
    expect(errors).toEqual(["socket gone", "socket gone", "socket gone"]);
  });

  it("passes agent frames through the transform and taps", () => {
    const { clock, leg, sent } = setup({ outputCodec: "pcm", outputSampleRate: 8000 });
    const tapped: number[] = [];
    leg.setAgentTransform((pcm) => {
      for (let k = 0; k < pcm.length; k++) pcm[k] = (pcm[k] as number) + 1;
    });
    const remove = leg.tapAgent((f) => tapped.push(f.pcm[0] as number));
    leg.write("a", new Int16Array(320).fill(10));
    leg.endPlay("a");
    clock.advance(0);
    expect(tapped).toEqual([11, 11]);
    expect(fromLe(sent[0]?.bytes ?? Buffer.alloc(0))[0]).toBe(11);
    remove();
  });
});
