import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { concatPcm, type AudioFrame } from "../audio/index.js";
import { AudioForkLeg, MAX_OUTSTANDING_MARKS, pcmToL16, type AudioForkLegOptions } from "./audio-fork-leg.js";
import { ManualClock } from "./clock.js";
import type { TrackEndEvent, TrackStartEvent } from "./pacer.js";
import { sharedFixturesUrl } from "../../test/shared-fixtures.js";

const FIXTURES = sharedFixturesUrl("freeswitch", "audio-fork-ws");
const sample16k = readFileSync(new URL("fork-16k-mono-classic/sample-1s-16000hz-mono-s16le.l16", FIXTURES));
const sample8k = readFileSync(new URL("fork-8k-mono-classic-outbound/sample-1s-8000hz-mono-s16le.l16", FIXTURES));

const reply = (name: string, event: "playout" | "cleared") => Buffer.from(`{"type": "mark", "data": {"name":"${name}", "event": "${event}"}}`);

function ramp(samples: number, from = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = ((from + i) * 37) % 20000;
  return a;
}

function setup(o: Partial<AudioForkLegOptions> = {}) {
  const clock = new ManualClock(1000);
  const sent: { data: Buffer | string; atMs: number }[] = [];
  let flushes = 0;
  const leg: AudioForkLeg = new AudioForkLeg({
    id: "fs-1",
    forkRate: 16000,
    mode: "stream",
    clock,
    send: (data) => sent.push({ data, atMs: leg.nowMs }),
    onFlush: () => flushes++,
    ...o,
  });
  const binaries = () => sent.filter((s) => Buffer.isBuffer(s.data)).map((s) => s.data as Buffer);
  const strings = () => sent.filter((s) => typeof s.data === "string").map((s) => s.data as string);
  // The playout probe (its own tests below) is kept apart from the utterance marks and killAudio.
  const texts = () => strings().filter((t) => !t.includes('"probe:'));
  const probes = () => strings().filter((t) => t.includes('"probe:'));
  const starts: TrackStartEvent[] = [];
  const ends: TrackEndEvent[] = [];
  leg.events.on("trackStart", (e) => starts.push(e));
  leg.events.on("trackEnd", (e) => ends.push(e));
  return { clock, leg, sent, binaries, texts, probes, starts, ends, flushes: () => flushes };
}

async function drain(leg: AudioForkLeg): Promise<AudioFrame[]> {
  const frames: AudioFrame[] = [];
  for await (const f of leg.callerAudio) frames.push(f);
  return frames;
}

function l16(buf: Buffer): Int16Array {
  const out = new Int16Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}


describe("AudioForkLeg caller side", () => {
  for (const [label, rate, sample, wireBytes] of [
    ["16k, 640 B / 20 ms", 16000, sample16k, 640],
    ["16k, 960 B / 30 ms (ptime 30)", 16000, sample16k, 960],
    ["8k, 320 B / 20 ms", 8000, sample8k, 320],
    ["16k, odd-sized chunks", 16000, sample16k, 641],
  ] as const) {
    it(`re-chunks ${label} into exact 20 ms frames`, async () => {
      const { leg } = setup({ forkRate: rate });
      const frames = drain(leg);
      leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
      for (let o = 0; o < sample.length; o += wireBytes) leg.handleMessage(sample.subarray(o, Math.min(sample.length, o + wireBytes)), true);
      leg.handleMessage(Buffer.alloc(0), true); // graceful shutdown
      const got = await frames;
      expect(got.length).toBe(50);
      for (const [i, f] of got.entries()) {
        expect(f.pcm.length).toBe(rate / 50);
        expect(f.sampleRate).toBe(rate);
        expect(f.timestampMs).toBeCloseTo(i * 20, 6);
      }
      expect(Array.from(concatPcm(got))).toEqual(Array.from(l16(sample)));
    });
  }

  it("keeps the metadata (first text frame) and emits it; later texts are `text` events", () => {
    const { leg } = setup();
    const meta: unknown[] = [];
    const texts: string[] = [];
    leg.forkEvents.on("metadata", (m) => meta.push(m));
    leg.forkEvents.on("text", (t) => texts.push(t.text));
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.handleMessage(Buffer.from('{"type":"dtmf","digit":"1"}'), false);
    leg.handleMessage(Buffer.from("not json"), false);
    expect(leg.metadata).toEqual({ text: '{"callId":"y"}', json: { callId: "y" } });
    expect(meta).toEqual([{ text: '{"callId":"y"}', json: { callId: "y" } }]);
    expect(texts).toEqual(['{"type":"dtmf","digit":"1"}', "not json"]);
  });

  it("a zero-length binary frame closes the leg with reason transport", async () => {
    const { leg } = setup();
    const closes: unknown[] = [];
    leg.events.on("close", (e) => closes.push(e));
    leg.handleMessage(sample16k.subarray(0, 100), true);
    leg.handleMessage(Buffer.alloc(0), true);
    expect(leg.closed).toBe(true);
    expect(closes).toEqual([{ reason: "transport", detail: "graceful shutdown" }]);
    const frames = await drain(leg);
    expect(frames.length).toBe(1); // the 50 samples padded into a last frame
  });
});

describe("AudioForkLeg agent side (stream mode)", () => {
  it("paces 20 ms L16 frames at playbackRate, 60 ms ahead, then sends an end-of-utterance mark", () => {
    const { leg, clock, sent, binaries, texts, starts, ends } = setup();
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    const pcm = ramp(16000 * 0.5);
    leg.write("p1", pcm);
    leg.endPlay("p1");
    clock.advance(0);
    expect(binaries().length).toBe(3); // 60 ms lead
    clock.advance(100);
    expect(binaries().length).toBe(8); // (100 + 60) / 20
    for (const b of binaries()) expect(b.length).toBe(640);
    expect(starts).toEqual([{ playId: "p1", atMs: 0 }]);
    clock.advanceBy(600, 20);
    expect(binaries().length).toBe(25);
    expect(Array.from(l16(Buffer.concat(binaries())))).toEqual(Array.from(pcm));
    // The mark follows the last frame at once.
    const last = sent.at(-1);
    expect(last?.data).toBe('{"type":"mark","data":{"name":"p1:1"}}');
    expect(texts()).toEqual(['{"type":"mark","data":{"name":"p1:1"}}']);
    expect(leg.pendingMarkNames).toEqual(["p1:1"]);
    // trackEnd waits for FreeSWITCH to say the end mark played out: the ledger is what the caller heard.
    expect(ends).toEqual([]);
    clock.advanceBy(100, 20);
    expect(ends).toEqual([]);
    leg.handleMessage(reply("p1:1", "playout"), false);
    expect(ends.map((e) => [e.playId, e.reason, e.playedMs, e.atMs])).toEqual([["p1", "finished", 500, leg.nowMs]]);
    expect(leg.pendingMarkNames).toEqual([]);
    expect(leg.confirmedMarks).toEqual([{ name: "p1:1", playId: "p1", event: "playout", atMs: leg.nowMs }]);
    expect(leg.marksEnabled).toBe(true);
  });

  it("sends 320-byte frames at playbackRate 8000, and no marks when useMarks is false", () => {
    const { leg, clock, binaries, texts } = setup({ playbackRate: 8000, useMarks: false, leadMs: 40 });
    expect(leg.agentRate).toBe(8000);
    leg.write("p1", ramp(8000 * 0.1));
    leg.endPlay("p1");
    clock.advance(0);
    expect(binaries().length).toBe(2);
    clock.advanceBy(200, 20);
    expect(binaries().map((b) => b.length)).toEqual(Array<number>(5).fill(320));
    expect(texts()).toEqual([]);
  });

  it("clear(): killAudio + onFlush at once; pending marks come back cleared", () => {
    const { leg, clock, texts, flushes, ends } = setup();
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.write("p1", ramp(1600)); // 100 ms
    leg.endPlay("p1");
    leg.write("p2", ramp(16000));
    leg.endPlay("p2");
    clock.advanceBy(100, 20);
    expect(texts()).toEqual(['{"type":"mark","data":{"name":"p1:1"}}']);
    const marks: boolean[] = [];
    void leg.mark("m", "p2").then((r) => marks.push(r.played));
    const result = leg.clear();
    expect(texts().at(-1)).toBe('{"type":"killAudio"}');
    expect(flushes()).toBe(1);
    // p1 was all sent but not yet confirmed played: reported as played as far as sent, not interrupted.
    expect(result.plays.map((p) => [p.playId, p.interrupted])).toEqual([
      ["p1", false],
      ["p2", true],
    ]);
    leg.handleMessage(reply("p1:1", "cleared"), false);
    expect(leg.confirmedMarks.map((m) => [m.name, m.event])).toEqual([["p1:1", "cleared"]]);
    clock.advanceBy(3000, 20);
    // p2 was cut: no end mark for it; marks stay on.
    expect(texts().filter((t) => t.includes("mark"))).toEqual(['{"type":"mark","data":{"name":"p1:1"}}']);
    expect(leg.marksEnabled).toBe(true);
    expect(ends.find((e) => e.playId === "p2")?.reason).toBe("interrupted");
    return Promise.resolve().then(() => expect(marks).toEqual([false]));
  });

  it("clear({fadeOutMs}) sends killAudio at once: FS holds the released lead, a fade tail would only delay the cut", () => {
    const { leg, clock, texts, flushes, binaries } = setup({ leadMs: 20 });
    leg.write("p1", ramp(16000));
    clock.advanceBy(100, 20);
    const sentBefore = binaries().length;
    leg.clear({ fadeOutMs: 100 });
    expect(texts()).toEqual(['{"type":"killAudio"}']);
    expect(flushes()).toBe(1);
    clock.advanceBy(200, 20);
    // Nothing of the utterance (no faded tail) follows the kill.
    expect(binaries().length).toBe(sentBefore);
  });

  it("playout probe: a probe mark follows the first agent frame; no reply within 3 s emits noPlayout", () => {
    const { leg, clock, probes } = setup();
    const silent: unknown[] = [];
    leg.forkEvents.on("noPlayout", (e) => silent.push(e));
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.write("p1", ramp(16000 * 5));
    clock.advance(0);
    expect(probes()).toEqual(['{"type":"mark","data":{"name":"probe:1"}}']);
    clock.advanceBy(2980, 20);
    expect(silent).toEqual([]);
    clock.advanceBy(40, 20);
    expect(silent).toEqual([{ mark: "probe:1", waitedMs: 3000 }]);
    clock.advanceBy(5000, 20);
    expect(silent.length).toBe(1);
  });

  it("playout probe: a playout reply proves the caller hears the stream (no noPlayout, no further probes)", () => {
    const { leg, clock, probes } = setup();
    const silent: unknown[] = [];
    leg.forkEvents.on("noPlayout", (e) => silent.push(e));
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.write("p1", ramp(16000));
    leg.endPlay("p1");
    clock.advanceBy(200, 20);
    leg.handleMessage(reply("probe:1", "playout"), false);
    clock.advanceBy(5000, 20);
    leg.write("p2", ramp(16000));
    clock.advanceBy(5000, 20);
    expect(silent).toEqual([]);
    expect(probes().length).toBe(1);
    expect(leg.confirmedMarks.some((m) => m.name === "probe:1" && m.event === "playout")).toBe(true);
  });

  it("playout probe: a probe cleared by a barge-in proves nothing; the next agent frame sends a new one", () => {
    const { leg, clock, probes } = setup();
    const silent: unknown[] = [];
    leg.forkEvents.on("noPlayout", (e) => silent.push(e));
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.write("p1", ramp(16000));
    clock.advanceBy(100, 20);
    leg.clear();
    leg.handleMessage(reply("probe:1", "cleared"), false);
    clock.advanceBy(4000, 20);
    expect(silent).toEqual([]);
    leg.write("p2", ramp(16000));
    clock.advance(0);
    expect(probes()).toEqual(['{"type":"mark","data":{"name":"probe:1"}}', '{"type":"mark","data":{"name":"probe:2"}}']);
    clock.advanceBy(3100, 20);
    expect(silent).toEqual([{ mark: "probe:2", waitedMs: 3000 }]);
  });

  it("playout probe: none without marks (useMarks false: an old module cannot confirm anything)", () => {
    const { leg, clock, probes } = setup({ useMarks: false });
    const silent: unknown[] = [];
    leg.forkEvents.on("noPlayout", (e) => silent.push(e));
    leg.write("p1", ramp(16000));
    clock.advanceBy(5000, 20);
    expect(probes()).toEqual([]);
    expect(silent).toEqual([]);
  });

  it("a mark unanswered 2 s after its audio should have played turns marks off (and releases the held trackEnd)", () => {
    const { leg, clock, texts, ends } = setup();
    const off: unknown[] = [];
    leg.forkEvents.on("marksDisabled", (e) => off.push(e));
    leg.handleMessage(Buffer.from('{"callId":"y"}'), false);
    leg.write("p1", ramp(16000)); // 1 s
    leg.endPlay("p1");
    clock.advanceBy(1000 + 80 + 1900, 20);
    expect(leg.marksEnabled).toBe(true);
    expect(ends).toEqual([]);
    clock.advanceBy(200, 20);
    expect(leg.marksEnabled).toBe(false);
    expect(off).toEqual([{ mark: "p1:1" }]);
    expect(ends.map((e) => [e.playId, e.reason])).toEqual([["p1", "finished"]]);
    leg.write("p2", ramp(320));
    leg.endPlay("p2");
    clock.advanceBy(200, 20);
    // Marks off: the pacer's clock ends p2 by itself.
    expect(ends.map((e) => e.playId)).toEqual(["p1", "p2"]);
    expect(texts()).toEqual(['{"type":"mark","data":{"name":"p1:1"}}']);
    // A late reply is still recorded.
    leg.handleMessage(reply("p1:1", "playout"), false);
    expect(leg.confirmedMarks.map((m) => m.name)).toEqual(["p1:1"]);
  });

  it("at most 30 marks outstanding", () => {
    const { leg, clock, texts } = setup();
    leg.handleMessage(Buffer.from("{}"), false);
    for (let i = 0; i < MAX_OUTSTANDING_MARKS + 2; i++) {
      leg.write(`u${i}`, ramp(320));
      leg.endPlay(`u${i}`);
    }
    clock.advanceBy(32 * 20 + 100, 20);
    expect(texts().length).toBe(MAX_OUTSTANDING_MARKS);
    expect(leg.skippedMarks).toBe(2);
    leg.handleMessage(reply("u0:1", "playout"), false);
    leg.write("next", ramp(320));
    leg.endPlay("next");
    clock.advanceBy(100, 20);
    expect(texts().at(-1)).toBe('{"type":"mark","data":{"name":"next:31"}}');
  });
});

describe("AudioForkLeg file mode", () => {
  it("sends one playAudio per utterance; the adapter's playback hooks drive trackStart/trackEnd and marks", async () => {
    const { leg, clock, sent, texts, binaries, starts, ends, flushes } = setup({ mode: "file", playbackRate: 8000 });
    const plays: unknown[] = [];
    leg.forkEvents.on("playAudio", (p) => plays.push(p));
    const pcm = ramp(8000);
    leg.write("s1", pcm.subarray(0, 3000));
    leg.write("s1", pcm.subarray(3000));
    expect(sent).toEqual([]);
    leg.endPlay("s1");
    clock.advanceBy(200, 20);
    expect(binaries()).toEqual([]);
    const msg = JSON.parse(texts()[0] ?? "") as { type: string; data: { audioContentType: string; sampleRate: number; audioContent: string; textContent: string } };
    expect(msg.type).toBe("playAudio");
    expect(msg.data).toMatchObject({ audioContentType: "raw", sampleRate: 8000, textContent: "" });
    expect(Buffer.from(msg.data.audioContent, "base64").equals(pcmToL16(pcm))).toBe(true);
    expect(plays).toEqual([{ playId: "s1", seq: 1, sampleRate: 8000, durationMs: 1000 }]);
    const mark = leg.mark("after-s1");
    leg.filePlaybackStarted("s1");
    expect(starts.map((s) => s.playId)).toEqual(["s1"]);
    clock.advance(1000);
    leg.filePlaybackEnded("s1", "done");
    expect(ends.map((e) => [e.playId, e.reason, e.playedMs])).toEqual([["s1", "finished", 1000]]);
    expect((await mark).played).toBe(true);

    // play(): resolves when the playback stops; clear() interrupts it and calls onFlush (uuid_break), no killAudio.
    const outcome = leg.play(ramp(8000 * 2), { playId: "s2" });
    await Promise.resolve();
    expect(plays.length).toBe(2);
    leg.filePlaybackStarted("s2");
    clock.advance(500);
    const r = leg.clear();
    expect(r.plays).toEqual([{ playId: "s2", playedMs: 500, totalMs: 2000, started: true, interrupted: true }]);
    expect(flushes()).toBe(1);
    expect(await outcome).toEqual({ playId: "s2", playedMs: 500, totalMs: 2000, interrupted: true });
    expect(texts().some((t) => t.includes("killAudio"))).toBe(false);
  });
});

describe("AudioForkLeg DTMF", () => {
  it("pushDtmf emits a dtmf event at the caller media time", () => {
    const { leg } = setup();
    const got: unknown[] = [];
    leg.events.on("dtmf", (e) => got.push(e));
    leg.handleMessage(sample16k.subarray(0, 3200), true); // 100 ms
    leg.pushDtmf("5", 100, "rfc2833");
    leg.pushDtmf("#");
    expect(got).toEqual([
      { digit: "5", durationMs: 100, source: "rfc2833", atMs: 100 },
      { digit: "#", source: "pbx", atMs: 100 },
    ]);
  });
});
