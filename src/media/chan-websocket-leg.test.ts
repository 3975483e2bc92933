import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { collectCallerAudio, signal } from "../../test/pcm.js";
import type { ChanWebsocketPeerOptions } from "../../test/sim/asterisk/media-peers.js";
import { ChanWebsocketMediaPeer, MediaWebSocketServer } from "../../test/sim/asterisk/media-peers.js";
import { sleep, until, useCleanups } from "../../test/wait.js";
import { muLawDecode, muLawEncode } from "../audio/index.js";
import { AppError } from "../errors.js";
import type { ChanWebsocketFormat, ChanWebsocketLegOptions } from "./chan-websocket-leg.js";
import { ChanWebsocketLeg, parseChanWebsocketControl } from "./chan-websocket-leg.js";
import type { TrackEndEvent } from "./pacer.js";

const cleanup = useCleanups();

interface SetupOptions {
  format?: ChanWebsocketFormat;
  control?: "plain" | "json";
  marks?: boolean;
  leadMs?: number;
  peer?: ChanWebsocketPeerOptions;
  leg?: Partial<ChanWebsocketLegOptions>;
}

async function setup(o: SetupOptions = {}) {
  const format = o.format ?? "slin16";
  const control = o.control ?? "plain";
  const server = await MediaWebSocketServer.start();
  cleanup(() => server.close());
  const peer = new ChanWebsocketMediaPeer(
    { channelId: "ac-1-m", app: "voiceagent", format, transport: "websocket", encapsulation: "none", connectionType: "server", transportData: control === "json" ? "f(json)" : undefined },
    o.peer,
  );
  cleanup(() => peer.close());
  const url = server.register(peer);
  const leg = await ChanWebsocketLeg.connect({ id: "ws-test", url, format, control, leadMs: o.leadMs ?? 200, marks: o.marks ?? false, callerGapFill: false, ...o.leg });
  cleanup(() => leg.close());
  const callerPcm = collectCallerAudio(leg);
  const trackEnds: TrackEndEvent[] = [];
  leg.events.on("trackEnd", (e) => trackEnds.push(e));
  return { server, peer, url, leg, callerPcm, trackEnds };
}

describe("parseChanWebsocketControl", () => {
  it("parses the recorded plain and JSON forms", () => {
    expect(parseChanWebsocketControl("MEDIA_MARK_PROCESSED mark-1")).toEqual({ event: "MEDIA_MARK_PROCESSED", fields: {}, arg: "mark-1" });
    expect(parseChanWebsocketControl("STATUS channel_id:x queue_length:0 xon_level:800 xoff_level:900 queue_full:false bulk_media:false media_paused:false")?.fields).toEqual({
      channel_id: "x",
      queue_length: "0",
      xon_level: "800",
      xoff_level: "900",
      queue_full: "false",
      bulk_media: "false",
      media_paused: "false",
    });
    expect(parseChanWebsocketControl('{"event":"MEDIA_MARK_PROCESSED","channel_id":"c","correlation_id":"mark-1"}')).toEqual({
      event: "MEDIA_MARK_PROCESSED",
      fields: { channel_id: "c", correlation_id: "mark-1" },
      arg: undefined,
    });
    expect(parseChanWebsocketControl("{nope")).toBeUndefined();
  });
});

describe("ChanWebsocketLeg", () => {
  for (const control of ["plain", "json"] as const) {
    it(`connects with subprotocol media and reads MEDIA_START (${control})`, async () => {
      const { peer, leg } = await setup({ control });
      expect(leg.optimalFrameSize).toBe(640);
      expect(leg.mediaStart.text).toBe(peer.mediaStartText());
      expect(leg.mediaStart.channelId).toBe("ac-1-m");
      expect(leg.mediaStart.connectionId).toBe(peer.connectionId);
      expect(leg.callerRate).toBe(16000);
      const status = await leg.getStatus();
      expect(status).toEqual({ queueLength: 0, xonLevel: 800, xoffLevel: 900, queueFull: false, bulkMedia: false, mediaPaused: false });
      expect(peer.controlReceived).toEqual([control === "json" ? '{"command":"GET_STATUS"}' : "GET_STATUS"]);
    });
  }

  it("rejects an unknown connection id (404) and a second connection (409)", async () => {
    const { server, url } = await setup();
    const e404 = await ChanWebsocketLeg.connect({ id: "x", url: server.url("nope"), format: "slin16", control: "plain", leadMs: 200, marks: false }).catch((e: unknown) => e);
    expect(e404).toBeInstanceOf(AppError);
    expect((e404 as AppError).code).toBe("PBX_ERROR");
    expect((e404 as AppError).details.status).toBe(404);
    const e409 = await ChanWebsocketLeg.connect({ id: "x", url, format: "slin16", control: "plain", leadMs: 200, marks: false }).catch((e: unknown) => e);
    expect((e409 as AppError).details.status).toBe(409);
  });

  it("times out without MEDIA_START", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "media" });
    cleanup(() => new Promise<void>((r) => wss.close(() => r())));
    await new Promise<void>((r) => wss.once("listening", () => r()));
    wss.on("connection", (ws) => cleanup(() => ws.terminate()));
    const port = (wss.address() as AddressInfo).port;
    const err = await ChanWebsocketLeg.connect({ id: "x", url: `ws://127.0.0.1:${port}/media/abc`, format: "slin16", control: "plain", leadMs: 200, marks: false, connectTimeoutMs: 150 }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe("TIMEOUT");
  });

  it("decodes caller audio in the source framing (960-byte slin16 little-endian)", async () => {
    const { peer, callerPcm } = await setup();
    const caller = signal(16000 / 5);
    await peer.sendCaller(caller, 16000, 30);
    await until("caller audio", () => callerPcm().length >= caller.length, 8000, 5);
    expect(peer.stats.callerFramesSent).toBe(7); // 6 × 960 bytes + the 640-byte rest
    expect(Array.from(callerPcm())).toEqual(Array.from(caller));
  });

  it("round-trips ulaw both ways", async () => {
    const { peer, leg, callerPcm } = await setup({ format: "ulaw" });
    expect(leg.optimalFrameSize).toBe(160);
    const caller = signal(8000 / 5);
    await peer.sendCaller(caller, 8000, 20);
    await until("caller audio", () => callerPcm().length >= caller.length, 8000, 5);
    expect(Array.from(callerPcm().subarray(0, caller.length))).toEqual(Array.from(muLawDecode(muLawEncode(caller))));
    const agent = signal(800, 5);
    leg.write("u", agent);
    leg.endPlay("u");
    await until("agent audio", () => peer.agentAudio().pcm.length >= 800, 8000, 5);
    expect(Array.from(peer.agentAudio().pcm)).toEqual(Array.from(muLawDecode(muLawEncode(agent))));
  });

  it("sends agent audio only in whole optimal frames", async () => {
    const { peer, leg } = await setup();
    const agent = signal(1030, 3); // not a multiple of 320 samples
    leg.write("u1", agent);
    leg.endPlay("u1");
    await until("agent audio", () => peer.agentAudio().pcm.length >= 4 * 320, 8000, 5);
    expect(peer.binarySizes).toEqual([640, 640, 640, 640]);
    expect(peer.stats.partialFramesDropped ?? 0).toBe(0);
    const expected = new Int16Array(4 * 320);
    expected.set(agent);
    expect(Array.from(peer.agentAudio().pcm)).toEqual(Array.from(expected));
  });

  for (const control of ["plain", "json"] as const) {
    it(`barge-in sends FLUSH_MEDIA and Asterisk's queue is emptied (${control})`, async () => {
      const { peer, leg } = await setup({ control, peer: { playoutPaused: true } });
      leg.write("long", signal(16000 * 3));
      await until("queued frames", () => peer.queueLength >= 5, 8000, 5);
      const result = leg.clear();
      expect(result.plays.map((p) => p.playId)).toEqual(["long"]);
      await until("flush", () => (peer.stats.flushes ?? 0) === 1, 8000, 5);
      expect(peer.controlReceived).toContain(control === "json" ? '{"command":"FLUSH_MEDIA"}' : "FLUSH_MEDIA");
      expect(peer.queueLength).toBe(0);
      expect(peer.stats.framesFlushed).toBeGreaterThanOrEqual(5);
      peer.setPlayoutPaused(false);
      const sent = leg.sentFrames;
      await sleep(150);
      expect(leg.sentFrames).toBe(sent); // nothing more of the cut utterance
      expect(peer.agentAudio().pcm.length).toBe(0);
    });
  }

  it("holds agent audio on MEDIA_XOFF and resumes on MEDIA_XON without losing any", async () => {
    const { peer, leg } = await setup({ leadMs: 100, peer: { playoutPaused: true, xoffLevel: 12, xonLevel: 6 } });
    const agent = signal(16000); // 1 s = 50 frames
    const flows: boolean[] = [];
    leg.wsEvents.on("flow", (f) => flows.push(f.xoff));
    leg.write("u", agent);
    leg.endPlay("u");
    await until("XOFF", () => leg.flowPaused, 8000, 5);
    const queuedAtXoff = peer.queueLength;
    await sleep(300); // the leg keeps still while Asterisk does not drain
    expect(peer.queueLength).toBeLessThanOrEqual(queuedAtXoff + 1);
    expect(leg.status("u")?.playedMs).toBeLessThan(1000);
    peer.setPlayoutPaused(false);
    await until("all agent audio", () => peer.agentAudio().pcm.length >= agent.length, 10_000, 5);
    expect(Array.from(peer.agentAudio().pcm)).toEqual(Array.from(agent));
    expect(flows[0]).toBe(true);
    expect(flows).toContain(false);
    expect(peer.stats.xoffSent).toBeGreaterThanOrEqual(1);
    expect(peer.stats.framesDroppedQueueFull ?? 0).toBe(0);
    expect(peer.stats.framesQueued).toBe(50);
  });

  for (const control of ["plain", "json"] as const) {
    it(`holds trackEnd until MEDIA_MARK_PROCESSED (${control})`, async () => {
      const { peer, leg, trackEnds } = await setup({ control, marks: true, peer: { playoutPaused: true } });
      leg.write("u1", signal(1600));
      leg.endPlay("u1");
      await until("MARK_MEDIA", () => (peer.stats.marksReceived ?? 0) === 1, 8000, 5);
      expect(peer.controlReceived).toEqual([control === "json" ? '{"command":"MARK_MEDIA","correlation_id":"m1"}' : "MARK_MEDIA m1"]);
      await sleep(400); // the pacer's clock says played; Asterisk has not played it
      expect(trackEnds).toEqual([]);
      peer.setPlayoutPaused(false);
      await until("trackEnd", () => trackEnds.length === 1, 8000, 5);
      expect(peer.stats.marksProcessed).toBe(1);
      expect(trackEnds[0]).toMatchObject({ playId: "u1", reason: "finished" });
      expect(peer.agentAudio().pcm.length).toBe(1600);
      for (const t of peer.controlReceived) expect(Buffer.byteLength(t)).toBeLessThanOrEqual(128);
    });
  }

  it("counts marks before FLUSH_MEDIA as cleared", async () => {
    const { peer, leg, trackEnds } = await setup({ marks: true, peer: { playoutPaused: true } });
    leg.write("u1", signal(1600));
    leg.endPlay("u1");
    await until("MARK_MEDIA", () => (peer.stats.marksReceived ?? 0) === 1, 8000, 5);
    await sleep(300);
    expect(trackEnds).toEqual([]);
    const result = leg.clear();
    expect(trackEnds.map((e) => e.playId)).toEqual(["u1"]);
    expect(result.plays.map((p) => p.playId)).toContain("u1");
    await until("flush", () => (peer.stats.flushes ?? 0) === 1, 8000, 5);
    expect(peer.stats.marksDiscarded).toBe(1);
    expect(peer.stats.marksProcessed ?? 0).toBe(0);
    // the next utterance is marked and confirmed as usual
    peer.setPlayoutPaused(false);
    leg.write("u2", signal(640));
    leg.endPlay("u2");
    await until("second trackEnd", () => trackEnds.length === 2, 8000, 5);
    expect(peer.stats.marksProcessed).toBe(1);
  });

  it("falls back to the pacer clock when MEDIA_MARK_PROCESSED never comes", async () => {
    const { peer, leg, trackEnds } = await setup({ marks: true, peer: { playoutPaused: true }, leg: { markTimeoutMs: 100 } });
    const disabled: unknown[] = [];
    leg.wsEvents.on("marksDisabled", (e) => disabled.push(e));
    leg.write("u1", signal(640));
    leg.endPlay("u1");
    await until("trackEnd", () => trackEnds.length === 1, 8000, 5);
    expect(disabled).toHaveLength(1);
    expect(leg.marksEnabled).toBe(false);
    expect(peer.stats.marksProcessed ?? 0).toBe(0);
  });

  it("ignores DTMF_END (ARI is the source) and emits pushDtmf as pbx", async () => {
    const { peer, leg } = await setup({ control: "json" });
    const digits: unknown[] = [];
    leg.events.on("dtmf", (e) => digits.push(e));
    peer.sendDtmf("4");
    await sleep(50);
    expect(digits).toEqual([]);
    leg.pushDtmf("4", 100);
    expect(digits).toEqual([{ digit: "4", durationMs: 100, source: "pbx", atMs: expect.any(Number) as number }]);
  });

  it("closes with reason caller when Asterisk hangs up", async () => {
    const { peer, leg } = await setup();
    const closes: unknown[] = [];
    leg.events.on("close", (e) => closes.push(e));
    peer.close();
    await until("close", () => closes.length === 1, 8000, 5);
    expect(closes[0]).toMatchObject({ reason: "caller" });
  });

  it("sends HANGUP on a local close", async () => {
    const { peer, leg } = await setup({ control: "json" });
    await leg.close();
    await until("HANGUP", () => (peer.stats.hangups ?? 0) === 1, 8000, 5);
    expect(peer.controlReceived).toEqual(['{"command":"HANGUP"}']);
  });

  it("keeps the caller stream going while Asterisk sends nothing", async () => {
    const { leg } = await setup({ leg: { callerGapFill: {} } });
    await sleep(300);
    expect(leg.callerMs).toBeGreaterThanOrEqual(100);
    expect(leg.callerGapStats?.filledMs).toBeGreaterThanOrEqual(100);
  });
});
