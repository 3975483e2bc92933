/**
 * The Asterisk media peers against the Asterisk 23.4.1 recordings (shared/fixtures/asterisk): channelvars,
 * MEDIA_START and every control reply of the recorded chan_websocket sessions, RTP header fields.
 */
import { randomInt, randomUUID } from "node:crypto";
import { createSocket } from "node:dgram";
import type { RemoteInfo } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { muLawDecodeSample } from "../../../src/audio/index.js";
import { RtpPortPool } from "../../../src/media/rtp-port-pool.js";
import { sharedFixtures } from "../../shared-fixtures.js";
import { sleep, until, useCleanups } from "../../wait.js";
import type { ExternalMediaRequest } from "./types.js";
import { AudioSocketMediaPeer, ChanWebsocketMediaPeer, MediaWebSocketServer, RtpMediaPeer, asteriskMediaFactory } from "./media-peers.js";

function jsonl(...parts: string[]): Record<string, unknown>[] {
  return readFileSync(sharedFixtures("asterisk", ...parts), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, "media");
  ws.on("error", () => {});
  cleanup(() => ws.terminate());
  await new Promise<void>((r) => ws.once("open", () => r()));
  return ws;
}

const cleanup = useCleanups();

interface RestLine {
  path: string;
  query: Record<string, string>;
  response: { id: string; channelvars: Record<string, string> };
}

function externalMediaCalls(run: string): RestLine[] {
  return (jsonl(run, "ari-rest.jsonl") as unknown as RestLine[]).filter((l) => l.path === "/ari/channels/externalMedia");
}

function requestOf(q: Record<string, string>): ExternalMediaRequest {
  return {
    channelId: q.channelId as string,
    app: q.app as string,
    format: q.format as string,
    transport: q.transport as string,
    encapsulation: q.encapsulation as string,
    externalHost: q.external_host,
    data: q.data,
    connectionType: q.connection_type,
    transportData: q.transport_data,
  };
}

describe("channelvars", () => {
  for (const run of ["run1-ulaw-channel-playback", "run2-slin16-bridge-playback", "run3-websocket-only-slin16"]) {
    it(`match the recorded externalMedia responses (${run})`, async () => {
      for (const call of externalMediaCalls(run)) {
        const req = requestOf(call.query);
        if (req.externalHost) req.externalHost = "127.0.0.1:9"; // the recording's 40000 may be taken here
        const peer = await asteriskMediaFactory()(req);
        cleanup(() => peer.close());
        expect(Object.keys(peer.channelvars)).toEqual(Object.keys(call.response.channelvars));
        if (req.transport === "websocket") {
          expect(peer.channelvars.MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE).toBe(call.response.channelvars.MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE);
          expect(peer.channelvars.MEDIA_WEBSOCKET_CONNECTION_ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        } else {
          expect(peer.channelvars.UNICASTRTP_LOCAL_ADDRESS).toBe(call.response.channelvars.UNICASTRTP_LOCAL_ADDRESS);
          expect(Number(peer.channelvars.UNICASTRTP_LOCAL_PORT) % 2).toBe(0);
        }
      }
    });
  }
});

describe("chan_websocket peer", () => {
  const sessions = [
    ["run1-ulaw-channel-playback", "chan_websocket-plain.jsonl"],
    ["run1-ulaw-channel-playback", "chan_websocket-json.jsonl"],
    ["run2-slin16-bridge-playback", "chan_websocket-plain.jsonl"],
    ["run2-slin16-bridge-playback", "chan_websocket-json.jsonl"],
    ["run3-websocket-only-slin16", "chan_websocket-json.jsonl"],
  ] as const;

  for (const [run, file] of sessions) {
    it(`replays the recorded session and answers as Asterisk did (${run}/${file})`, async () => {
      const lines = jsonl(run, file);
      const connect = lines.find((l) => l.kind === "connect") as { channelvars: Record<string, string>; subprotocol: string };
      const connId = connect.channelvars.MEDIA_WEBSOCKET_CONNECTION_ID as string;
      const call = externalMediaCalls(run).find((c) => c.response.channelvars.MEDIA_WEBSOCKET_CONNECTION_ID === connId) as RestLine;
      const recordedRx = lines.filter((l) => l.kind === "rx_text").map((l) => l.text as string);
      const recordedStart = recordedRx[0] as string;
      const channelName = /WebSocket\/INCOMING\/0x[0-9a-f]+/.exec(recordedStart)?.[0] as string;

      const server = await MediaWebSocketServer.start();
      cleanup(() => server.close());
      const peer = new ChanWebsocketMediaPeer(requestOf(call.query));
      cleanup(() => peer.close());
      const url = server.register(peer);
      // the recording's ids in place of this peer's random ones
      const normalise = (t: string) => t.split(peer.connectionId).join(connId).split(peer.channelName).join(channelName);

      const ws = new WebSocket(url, connect.subprotocol);
      cleanup(() => ws.terminate());
      const rx: string[] = [];
      ws.on("message", (d, isBinary) => {
        if (!isBinary) rx.push(normalise((d as Buffer).toString("utf8")));
      });
      await new Promise<void>((r) => ws.once("open", () => r()));
      expect(ws.protocol).toBe("media");
      await until("MEDIA_START", () => rx.length === 1, 5000, 5);
      expect(rx[0]).toBe(recordedStart);

      // what the capture client sent, with the recorded spacing (capped)
      let last = (lines.find((l) => l.kind === "open") as { t_ms: number }).t_ms;
      for (const l of lines) {
        if (l.kind !== "tx_text" && l.kind !== "tx_binary") continue;
        await sleep(Math.min(300, (l.t_ms as number) - last));
        last = l.t_ms as number;
        if (l.kind === "tx_text") ws.send(l.text as string);
        else ws.send(Buffer.alloc(l.size as number));
      }
      const expected = recordedRx.filter((t) => !t.includes("DTMF_END"));
      await until("replies", () => rx.length >= expected.length, 5000, 5);
      await sleep(100);
      expect(rx).toEqual(expected);
      expect(peer.stats.partialFramesDropped ?? 0).toBe(0);
      expect(peer.stats.invalidMessages ?? 0).toBe(0);
      expect(peer.stats.flushes).toBe(1);
    });
  }

  it("sends DTMF_END in the recorded forms", async () => {
    for (const [file, json] of [
      ["chan_websocket-plain.jsonl", false],
      ["chan_websocket-json.jsonl", true],
    ] as const) {
      const recorded = jsonl("run1-ulaw-channel-playback", file).find((l) => l.kind === "rx_text" && (l.text as string).includes("DTMF_END"))?.text as string;
      const channelId = json ? (JSON.parse(recorded) as { channel_id: string }).channel_id : (/channel_id:(\S+)/.exec(recorded)?.[1] as string);
      const server = await MediaWebSocketServer.start();
      cleanup(() => server.close());
      const peer = new ChanWebsocketMediaPeer({ channelId, app: "a", format: "slin16", transport: "websocket", encapsulation: "none", transportData: json ? "f(json)" : undefined });
      cleanup(() => peer.close());
      await openWs(server.register(peer));
      peer.sendDtmf("4");
      expect(peer.controlSent.at(-1)).toBe(recorded);
    }
  });

  it("drops partial frames, ignores long control messages and hangs up on oversized binary", async () => {
    const server = await MediaWebSocketServer.start();
    cleanup(() => server.close());
    const peer = new ChanWebsocketMediaPeer({ channelId: "c", app: "a", format: "slin16", transport: "websocket", encapsulation: "none" }, { playoutPaused: true });
    cleanup(() => peer.close());
    const ws = await openWs(server.register(peer));
    ws.send(Buffer.alloc(1000)); // one frame + 360 bytes dropped
    ws.send(`MARK_MEDIA ${"x".repeat(200)}`);
    await until("long control", () => (peer.stats.oversizeControlIgnored ?? 0) === 1, 5000, 5);
    expect(peer.stats.partialFramesDropped).toBe(1);
    expect(peer.stats.partialBytesDropped).toBe(360);
    expect(peer.queueLength).toBe(1);
    expect(peer.stats.marksReceived ?? 0).toBe(0);
    let code = 0;
    ws.on("close", (c) => (code = c));
    ws.send(Buffer.alloc(65501));
    await until("hang up", () => code !== 0, 5000, 5);
    expect(peer.stats.oversizeBinaryHangups).toBe(1);
  });

  it("sends MEDIA_XOFF at the xoff level and MEDIA_XON at the xon level", async () => {
    const server = await MediaWebSocketServer.start();
    cleanup(() => server.close());
    const peer = new ChanWebsocketMediaPeer({ channelId: "c", app: "a", format: "slin16", transport: "websocket", encapsulation: "none" }, { playoutPaused: true });
    cleanup(() => peer.close());
    const ws = await openWs(server.register(peer));
    const rx: string[] = [];
    ws.on("message", (d, isBinary) => void (!isBinary && rx.push((d as Buffer).toString())));
    for (let i = 0; i < 10; i++) ws.send(Buffer.alloc(640 * 100)); // 1000 frames = the whole queue (messages ≤ 65 500 bytes)
    await until("queue full", () => peer.queueLength === 1000, 5000, 5);
    expect(peer.stats.xoffSent).toBe(1);
    ws.send(Buffer.alloc(640));
    await until("queue overflow", () => (peer.stats.framesDroppedQueueFull ?? 0) === 1, 5000, 5);
    ws.send("FLUSH_MEDIA");
    await until("XON", () => rx.includes("MEDIA_XON"), 5000, 5);
    expect(rx.filter((t) => t.startsWith("MEDIA_X"))).toEqual(["MEDIA_XOFF", "MEDIA_XON"]);
  });
});

describe("RTP peer", () => {
  for (const [run, format, value] of [
    ["run1-ulaw-channel-playback", "ulaw", muLawDecodeSample(0xfe)],
    ["run2-slin16-bridge-playback", "slin16", 8],
  ] as const) {
    it(`sends caller RTP with the recorded header fields (${format})`, async () => {
      const recorded = jsonl(run, "rtp-rx-headers.jsonl");
      const sink = createSocket("udp4");
      await new Promise<void>((r) => sink.bind(0, "127.0.0.1", () => r()));
      cleanup(() => sink.close());
      const got: { msg: Buffer; rinfo: RemoteInfo }[] = [];
      sink.on("message", (msg, rinfo) => got.push({ msg, rinfo }));
      const peer = await RtpMediaPeer.create({ channelId: "m", app: "a", format, transport: "udp", encapsulation: "rtp", externalHost: `127.0.0.1:${sink.address().port}` });
      cleanup(() => peer.close());
      const rate = format === "ulaw" ? 8000 : 16000;
      const packets = peer.buildCallerPackets(new Int16Array((rate * 1200) / 1000).fill(value), rate);
      await peer.sendPackets(packets.slice(0, recorded.length));
      await until("packets", () => got.length === recorded.length, 5000, 5);
      const fields = (m: Buffer) => ({
        version: (m[0] as number) >> 6,
        padding: ((m[0] as number) & 0x20) !== 0,
        csrc_count: (m[0] as number) & 0x0f,
        marker: ((m[1] as number) & 0x80) !== 0,
        payload_type: (m[1] as number) & 0x7f,
        header_len: 12,
        payload_len: m.length - 12,
        payload_head_hex: m.subarray(12, 20).toString("hex"),
      });
      const head = format === "ulaw" ? "fefefefefefefefe" : "0008000800080008";
      expect(recorded.some((r) => r.payload_head_hex === head)).toBe(true);
      for (let i = 0; i < recorded.length; i++) {
        const r = recorded[i] as Record<string, unknown>;
        const g = got[i] as { msg: Buffer; rinfo: RemoteInfo };
        const f = fields(g.msg);
        expect({ ...f, payload_head_hex: undefined }).toEqual({ version: r.version, padding: r.padding, csrc_count: r.csrc_count, marker: r.marker, payload_type: r.payload_type, header_len: r.header_len, payload_len: r.payload_len, payload_head_hex: undefined });
        // byte order / companding: a constant signal looks exactly like the recorded constant stretches
        expect(f.payload_head_hex).toBe(head);
        expect(r.extension).toBeNull();
        // sent from the address/port reported in channelvars, as recorded ("from" = UNICASTRTP_LOCAL_*)
        expect(`${g.rinfo.address}:${g.rinfo.port}`).toBe(`${peer.channelvars.UNICASTRTP_LOCAL_ADDRESS}:${peer.channelvars.UNICASTRTP_LOCAL_PORT}`);
        if (i === 0) continue;
        const p = recorded[i - 1] as { seq: number; timestamp: number };
        const q = got[i - 1] as { msg: Buffer };
        expect(g.msg.readUInt16BE(2) - q.msg.readUInt16BE(2)).toBe((r.seq as number) - p.seq);
        expect(g.msg.readUInt32BE(4) - q.msg.readUInt32BE(4)).toBe((r.timestamp as number) - p.timestamp);
        expect(g.msg.readUInt32BE(8)).toBe(q.msg.readUInt32BE(8));
      }
    });
  }

  it("learns the first agent source (strict RTP) and sends RTCP to port + 1", async () => {
    const base = 20000 + 2 * randomInt(0, 15000);
    const { port, rtp, rtcp } = await new RtpPortPool(base, base + 41).bind("127.0.0.1");
    cleanup(() => rtp.close());
    cleanup(() => rtcp.close());
    let rtcpGot = 0;
    rtcp.on("message", () => rtcpGot++);
    const peer = await RtpMediaPeer.create({ channelId: "m", app: "a", format: "ulaw", transport: "udp", encapsulation: "rtp", externalHost: `127.0.0.1:${port}` });
    cleanup(() => peer.close());
    await peer.sendCaller(new Int16Array(240), 8000);
    await until("RTCP", () => rtcpGot === 1, 5000, 5);
    const pkt = Buffer.alloc(172);
    pkt[0] = 0x80;
    rtp.send(pkt, peer.port, "127.0.0.1");
    await until("agent packet", () => (peer.stats.packetsReceived ?? 0) === 1, 5000, 5);
    const stranger = createSocket("udp4");
    cleanup(() => stranger.close());
    await new Promise<void>((r) => stranger.send(pkt, peer.port, "127.0.0.1", () => r()));
    await until("stranger dropped", () => (peer.stats.packetsFromUnknownSource ?? 0) === 1, 5000, 5);
    expect(peer.agentAudio().pcm.length).toBe(160);
  });

  it("resolves payload types as a UnicastRTP channel does: static ones play, PT 118 (slin16) never reaches the caller", async () => {
    const sender = createSocket("udp4");
    await new Promise<void>((r) => sender.bind(0, "127.0.0.1", () => r()));
    cleanup(() => sender.close());
    const peer = await RtpMediaPeer.create({ channelId: "m", app: "a", format: "slin16", transport: "udp", encapsulation: "rtp", externalHost: `127.0.0.1:${sender.address().port}` });
    cleanup(() => peer.close());
    const packet = (pt: number, payload: Buffer): Buffer => {
      const p = Buffer.alloc(12 + payload.length);
      p[0] = 0x80;
      p[1] = pt;
      payload.copy(p, 12);
      return p;
    };
    const l16 = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) l16.writeInt16BE(4000, i * 2);
    for (const p of [packet(118, Buffer.alloc(640, 0x10)), packet(11, l16), packet(0, Buffer.alloc(160, 0x80)), packet(9, Buffer.alloc(160))]) sender.send(p, peer.port, "127.0.0.1");
    await until("four packets", () => peer.agentPackets.length === 4, 5000, 5);
    expect(peer.agentPackets.map((p) => p.dropped)).toEqual(["unknownPayloadType", undefined, undefined, "unsimulatedPayloadType"]);
    // slin (8 kHz) and ulaw are resampled into the channel's 16 kHz: 2 x 160 samples -> 640 at 16 kHz
    const heard = peer.agentAudio().pcm;
    expect(heard.length).toBe(640);
    expect(Math.max(...heard.subarray(40, 280))).toBeGreaterThan(3000);
  });
});

describe("AudioSocket peer", () => {
  it("connects to external_host and sends kind 0x01 with the 16 UUID bytes first", async () => {
    const uuid = randomUUID();
    const chunks: Buffer[] = [];
    let sock: Socket | undefined;
    const server = createServer((s) => {
      sock = s;
      s.on("data", (c) => chunks.push(c));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    cleanup(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    const peer = new AudioSocketMediaPeer({ channelId: "m", app: "a", format: "slin16", transport: "tcp", encapsulation: "audiosocket", externalHost: `127.0.0.1:${port}`, data: uuid });
    cleanup(() => peer.close());
    await peer.ready;
    await peer.sendCaller(new Int16Array(320).fill(-2), 16000);
    await until("bytes", () => Buffer.concat(chunks).length >= 19 + 643, 5000, 5);
    const all = Buffer.concat(chunks);
    expect(all.subarray(0, 3)).toEqual(Buffer.from([0x01, 0x00, 0x10]));
    expect(all.subarray(3, 19).toString("hex")).toBe(uuid.replace(/-/g, ""));
    expect(all.subarray(19, 22)).toEqual(Buffer.from([0x12, 0x02, 0x80]));
    expect(all.readInt16LE(22)).toBe(-2);
    // a kind Asterisk does not accept makes it drop the connection
    sock?.write(Buffer.from([0x02, 0x00, 0x00]));
    await until("dropped", () => peer.isClosed, 5000, 5);
    expect(peer.stats.invalidMessages).toBe(1);
  });

  it("refuses a non-UUID data like Asterisk does at channel creation", () => {
    expect(() => new AudioSocketMediaPeer({ channelId: "m", app: "a", format: "slin16", transport: "tcp", encapsulation: "audiosocket", externalHost: "127.0.0.1:1", data: "hello" })).toThrow(/UUID/);
  });
});
