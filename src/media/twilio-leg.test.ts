import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../audio/index.js";
import { muLawDecode, muLawEncode } from "../audio/index.js";
import { ManualClock } from "./clock.js";
import type { TwilioInbound } from "./twilio-leg.js";
import { TwilioLeg, isTwilioMulaw, parseTwilioMessage } from "./twilio-leg.js";

const SID = "MZ18ad3ab5a668481ce02b83e7395059f0";

function ramp(samples: number, from = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = ((from + i) * 37) % 20000;
  return a;
}

function parsed(text: string): TwilioInbound {
  const m = parseTwilioMessage(text);
  if ("error" in m) throw new Error(m.error);
  return m;
}

function setup(leadMs?: number) {
  const clock = new ManualClock(123);
  const sent: { msg: Record<string, unknown>; atMs: number }[] = [];
  const leg: TwilioLeg = new TwilioLeg({
    id: `tw.${SID}`,
    streamSid: SID,
    clock,
    leadMs,
    send: (text) => sent.push({ msg: JSON.parse(text) as Record<string, unknown>, atMs: leg.nowMs }),
  });
  const events = () => sent.map((s) => s.msg.event);
  const payloads = () =>
    sent.filter((s) => s.msg.event === "media").map((s) => Buffer.from((s.msg.media as { payload: string }).payload, "base64"));
  return { clock, leg, sent, events, payloads };
}

async function drain(leg: TwilioLeg): Promise<AudioFrame[]> {
  const frames: AudioFrame[] = [];
  for await (const f of leg.callerAudio) frames.push(f);
  return frames;
}

describe("parseTwilioMessage", () => {
  it("parses a realistic camelCase sequence", () => {
    expect(parsed('{"event":"connected","protocol":"Call","version":"1.0.0"}')).toEqual({
      event: "connected",
      protocol: "Call",
      version: "1.0.0",
    });
    const start = parsed(
      JSON.stringify({
        event: "start",
        sequenceNumber: "1",
        start: {
          accountSid: "AC0123",
          streamSid: SID,
          callSid: "CA0456",
          tracks: ["inbound"],
          mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
          customParameters: { playbook: "support.md", from: "+15550100" },
        },
        streamSid: SID,
      }),
    );
    expect(start).toEqual({
      event: "start",
      sequenceNumber: "1",
      streamSid: SID,
      start: {
        streamSid: SID,
        callSid: "CA0456",
        accountSid: "AC0123",
        tracks: ["inbound"],
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
        customParameters: { playbook: "support.md", from: "+15550100" },
      },
    });
    expect(start.event === "start" && isTwilioMulaw(start.start.mediaFormat)).toBe(true);
    expect(
      parsed(`{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/w=="},"streamSid":"${SID}"}`),
    ).toEqual({ event: "media", sequenceNumber: "3", streamSid: SID, media: { track: "inbound", chunk: "1", timestamp: "5", payload: "/w==" } });
    expect(parsed(`{"event":"dtmf","streamSid":"${SID}","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`)).toEqual({
      event: "dtmf",
      streamSid: SID,
      sequenceNumber: "5",
      dtmf: { track: "inbound_track", digit: "1" },
    });
    expect(parsed(`{"event":"mark","sequenceNumber":"4","streamSid":"${SID}","mark":{"name":"p1:1"}}`)).toEqual({
      event: "mark",
      sequenceNumber: "4",
      streamSid: SID,
      mark: { name: "p1:1" },
    });
    expect(parsed(`{"event":"stop","sequenceNumber":"6","streamSid":"${SID}","stop":{"accountSid":"AC0123","callSid":"CA0456"}}`)).toEqual({
      event: "stop",
      sequenceNumber: "6",
      streamSid: SID,
      stop: { accountSid: "AC0123", callSid: "CA0456" },
    });
  });

  it("accepts snake_case aliases and numbers for strings", () => {
    const start = parsed(
      JSON.stringify({
        event: "start",
        sequence_number: 1,
        stream_sid: "S1",
        start: {
          account_sid: "AC1",
          call_sid: "CA1",
          tracks: ["inbound", "outbound"],
          media_format: { encoding: "audio/x-mulaw", sample_rate: "8000", channels: 1 },
          custom_parameters: { to: 1234, vip: true },
        },
      }),
    );
    expect(start).toEqual({
      event: "start",
      sequenceNumber: "1",
      streamSid: "S1",
      start: {
        streamSid: "S1",
        callSid: "CA1",
        accountSid: "AC1",
        tracks: ["inbound", "outbound"],
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
        customParameters: { to: "1234", vip: "true" },
      },
    });
    expect(parsed('{"event":"media","stream_id":"S2","sequence_number":"9","media":{"track":"inbound","chunk":2,"timestamp":40,"payload":""}}')).toEqual({
      event: "media",
      streamSid: "S2",
      sequenceNumber: "9",
      media: { track: "inbound", chunk: "2", timestamp: "40", payload: "" },
    });
    // streamSid only inside start (some compatible providers)
    expect(parsed('{"event":"start","start":{"streamSid":"S3"}}')).toMatchObject({ streamSid: "S3", start: { tracks: ["inbound"], customParameters: {} } });
  });

  it("reports errors instead of throwing", () => {
    expect(parseTwilioMessage("nope")).toEqual({ error: "message is not JSON" });
    expect(parseTwilioMessage("[1]")).toEqual({ error: "message is not a JSON object" });
    expect(parseTwilioMessage('{"foo":1}')).toEqual({ error: "event is missing" });
    expect(parseTwilioMessage('{"event":"bogus"}')).toEqual({ error: "event bogus is not supported" });
    expect(parseTwilioMessage('{"event":"media","media":{"track":"inbound"}}')).toEqual({ error: "media.payload is missing" });
    expect(parseTwilioMessage('{"event":"start","start":{}}')).toEqual({ error: "start.streamSid is missing" });
    expect(parseTwilioMessage('{"event":"mark","mark":{}}')).toEqual({ error: "mark.name is missing" });
    expect(isTwilioMulaw({ encoding: "audio/x-l16", sampleRate: 8000, channels: 1 })).toBe(false);
    expect(isTwilioMulaw(undefined)).toBe(false);
  });
});

describe("TwilioLeg", () => {
  it("decodes inbound media of varying chunk sizes into 20 ms frames; other tracks are ignored", async () => {
    const { leg } = setup();
    expect([leg.callerRate, leg.agentRate]).toEqual([8000, 8000]);
    const pcm = ramp(400);
    const mu = muLawEncode(pcm);
    const cuts = [0, 160, 230, 231, 400];
    for (let k = 0; k + 1 < cuts.length; k++) {
      const payload = Buffer.from(mu.subarray(cuts[k], cuts[k + 1])).toString("base64");
      leg.handleMessage(parsed(JSON.stringify({ event: "media", streamSid: SID, media: { track: "inbound", chunk: String(k + 1), payload } })));
      leg.handleMessage(parsed(JSON.stringify({ event: "media", streamSid: SID, media: { track: "outbound", payload } })));
    }
    expect(leg.ignoredMedia).toBe(4);
    leg.handleMessage(parsed(`{"event":"stop","streamSid":"${SID}","stop":{"callSid":"CA1"}}`));
    const frames = await drain(leg);
    expect(frames.map((f) => [f.timestampMs, f.pcm.length])).toEqual([
      [0, 160],
      [20, 160],
      [40, 160],
    ]);
    const expected = muLawDecode(mu);
    expect(Array.from(frames[1]?.pcm ?? [])).toEqual(Array.from(expected.subarray(160, 320)));
    expect(Array.from(frames[2]?.pcm.subarray(0, 80) ?? [])).toEqual(Array.from(expected.subarray(320, 400)));
    expect(frames[2]?.pcm.subarray(80).every((x) => x === 0)).toBe(true);
  });

  it("dtmf becomes a pbx dtmf event; stop closes with reason caller, once", () => {
    const { leg } = setup();
    const events: string[] = [];
    leg.events.on("dtmf", (e) => events.push(`dtmf:${e.digit}:${e.source}:${e.atMs}`));
    leg.events.on("close", (e) => events.push(`close:${e.reason}`));
    leg.handleMessage(parsed(JSON.stringify({ event: "media", media: { track: "inbound", payload: Buffer.alloc(320, 0xff).toString("base64") } })));
    leg.handleMessage(parsed(`{"event":"dtmf","streamSid":"${SID}","dtmf":{"track":"inbound_track","digit":"#"}}`));
    leg.handleMessage(parsed(`{"event":"stop","streamSid":"${SID}","stop":{}}`));
    leg.handleMessage(parsed(`{"event":"stop","streamSid":"${SID}","stop":{}}`));
    leg.hangup();
    void leg.close();
    expect(events).toEqual(["dtmf:#:pbx:40", "close:caller"]);
  });

  it("sends 160-byte µ-law media messages paced at leadMs, then the end-of-utterance mark", () => {
    const { clock, leg, sent, events, payloads } = setup(); // lead 100 ms
    const input = ramp(160 * 8 + 50); // 8 frames and a bit -> 9 frames
    leg.write("p1", input);
    leg.endPlay("p1");
    clock.advance(0);
    expect(events()).toEqual(new Array(5).fill("media")); // 100 ms lead = 5 frames at once
    clock.advance(20);
    expect(events()).toHaveLength(6);
    clock.advance(60);
    expect(events()).toEqual([...new Array(9).fill("media"), "mark"]);
    expect(sent[9]?.atMs).toBe(80); // right after the last frame was handed over
    expect(sent[9]?.msg).toEqual({ event: "mark", streamSid: SID, mark: { name: "p1:1" } });
    for (const s of sent) expect(s.msg.streamSid).toBe(SID);
    const p = payloads();
    expect(p.every((b) => b.length === 160)).toBe(true);
    const padded = new Int16Array(160 * 9);
    padded.set(input);
    expect(Buffer.concat(p)).toEqual(Buffer.from(muLawEncode(padded)));
    clock.advance(1000);
    expect(events()).toHaveLength(10); // nothing while idle; one mark only
    expect(leg.pendingMarkNames).toEqual(["p1:1"]);

    // Twilio echoes the mark when it has played it.
    leg.handleMessage(parsed(`{"event":"mark","sequenceNumber":"12","streamSid":"${SID}","mark":{"name":"p1:1"}}`));
    expect(leg.confirmedMarks).toEqual([{ name: "p1:1", cleared: false, atMs: 1080 }]);
    expect(leg.pendingMarkNames).toEqual([]);
  });

  it("marks an utterance whose end comes after its audio was sent, and numbers marks per leg", () => {
    const { clock, leg, sent } = setup(40);
    leg.write("a", new Int16Array(320).fill(1000));
    clock.advance(0);
    clock.advance(100);
    expect(sent.map((s) => s.msg.event)).toEqual(["media", "media"]);
    leg.endPlay("a");
    clock.advance(100);
    expect(sent.map((s) => s.msg.event)).toEqual(["media", "media", "mark"]);
    expect(sent[2]?.msg.mark).toEqual({ name: "a:1" });
    leg.write("b", new Int16Array(100).fill(1000));
    leg.endPlay("b");
    clock.advance(100);
    expect(sent.map((s) => s.msg.event)).toEqual(["media", "media", "mark", "media", "mark"]);
    expect(sent[4]?.msg.mark).toEqual({ name: "b:2" });
  });

  it("clear() sends a clear message at once, stops media, and counts later echoes as cleared", async () => {
    const { clock, leg, sent, events } = setup();
    const echoes: string[] = [];
    leg.twilioEvents.on("markEcho", (e) => echoes.push(`${e.name}:${e.cleared}`));
    leg.write("a", new Int16Array(320).fill(3000));
    leg.endPlay("a");
    clock.advance(0);
    expect(events()).toEqual(["media", "media", "mark"]);
    leg.write("b", ramp(8000)); // 1 s
    clock.advance(40);
    const before = events().length;
    const mark = leg.mark("m", "b");
    const result = leg.clear();
    expect(result.plays.map((p) => [p.playId, p.interrupted])).toEqual([["b", true]]); // "a" played out at 40 ms
    expect(events().slice(before)).toEqual(["clear"]);
    expect(sent[sent.length - 1]?.msg).toEqual({ event: "clear", streamSid: SID });
    clock.advance(1000);
    expect(events().length).toBe(before + 1);
    await expect(mark).resolves.toMatchObject({ name: "m", played: false });
    leg.handleMessage(parsed(`{"event":"mark","streamSid":"${SID}","mark":{"name":"a:1"}}`));
    leg.handleMessage(parsed(`{"event":"mark","streamSid":"${SID}","mark":{"name":"unknown"}}`));
    expect(echoes).toEqual(["a:1:true"]);
  });

  it("clear() with a fade sends the clear message once the fade has played out", () => {
    const { clock, leg, events } = setup(40);
    leg.write("a", new Int16Array(8000).fill(8000));
    clock.advance(0);
    clock.advance(40);
    const result = leg.clear({ fadeOutMs: 60 });
    expect(result.stopAtMs).toBeGreaterThan(result.clearedAtMs);
    const n = events().length;
    clock.advance(result.stopAtMs - result.clearedAtMs - 1);
    expect(events().slice(n).includes("clear")).toBe(false);
    clock.advance(1);
    expect(events()[events().length - 1]).toBe("clear");
    expect(events().filter((e) => e === "mark")).toEqual([]);
  });

  it("close emits close once and sends nothing afterwards", async () => {
    const { clock, leg, sent } = setup();
    let closes = 0;
    leg.events.on("close", (e) => {
      closes++;
      expect(e.reason).toBe("local");
    });
    leg.write("a", new Int16Array(8000));
    clock.advance(0);
    const n = sent.length;
    await leg.close();
    await leg.close();
    leg.handleMessage(parsed(`{"event":"stop","stop":{}}`));
    clock.advance(1000);
    expect(sent.length).toBe(n);
    expect(closes).toBe(1);
  });
});
