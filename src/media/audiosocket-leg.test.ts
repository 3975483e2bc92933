import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { collectCallerAudio, signal } from "../../test/pcm.js";
import { AudioSocketMediaPeer } from "../../test/sim/asterisk/media-peers.js";
import { sleep, until, useCleanups } from "../../test/wait.js";
import { AppError } from "../errors.js";
import { AudioSocketLeg } from "./audiosocket-leg.js";
import { AudioSocketServer, normalizeUuid } from "./audiosocket-server.js";

const cleanup = useCleanups();

async function startServer() {
  const server = new AudioSocketServer({});
  const { port } = await server.listen("127.0.0.1", 0);
  cleanup(() => server.close());
  return { server, port };
}

async function setup(format: "slin16" | "slin" = "slin16", gapFill = false) {
  const { server, port } = await startServer();
  const uuid = randomUUID();
  const connection = server.expect(uuid, 2000);
  const peer = new AudioSocketMediaPeer({ channelId: "m", app: "a", format, transport: "tcp", encapsulation: "audiosocket", externalHost: `127.0.0.1:${port}`, data: uuid });
  cleanup(() => peer.close());
  const leg = new AudioSocketLeg({ id: "as-test", connection: await connection, format, leadMs: 40, callerGapFill: gapFill ? {} : false });
  cleanup(() => leg.close());
  const callerPcm = collectCallerAudio(leg);
  return { server, port, uuid, peer, leg, callerPcm };
}

function rawClient(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    cleanup(() => s.destroy());
  });
}

function hello(uuid: string): Buffer {
  const b = Buffer.alloc(19);
  b[0] = 0x01;
  b.writeUInt16BE(16, 1);
  Buffer.from(uuid.replace(/-/g, ""), "hex").copy(b, 3);
  return b;
}

describe("AudioSocketServer", () => {
  it("hands the connection to whoever expects its UUID", async () => {
    const { uuid, peer, leg } = await setup();
    expect(leg.uuid).toBe(uuid);
    expect(peer.isClosed).toBe(false);
  });

  it("closes a connection with an unknown UUID", async () => {
    const { port } = await startServer();
    const peer = new AudioSocketMediaPeer({ channelId: "m", app: "a", format: "slin16", transport: "tcp", encapsulation: "audiosocket", externalHost: `127.0.0.1:${port}`, data: randomUUID() });
    cleanup(() => peer.close());
    await peer.ready;
    await until("connection closed", () => peer.isClosed, 5000, 5);
  });

  it("closes a connection whose first message is not a UUID", async () => {
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 300);
    const s = await rawClient(port);
    let closed = false;
    s.on("close", () => (closed = true));
    s.on("error", () => {});
    s.write(Buffer.from([0x10, 0x00, 0x02, 0x01, 0x02]));
    await until("connection closed", () => closed, 5000, 5);
    const err = await waiting.catch((e: unknown) => e);
    expect((err as AppError).code).toBe("TIMEOUT");
  });

  it("cancel rejects the wait; a bad UUID is refused", async () => {
    const { server } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 5000);
    server.cancel(uuid);
    expect(((await waiting.catch((e: unknown) => e)) as AppError).code).toBe("INVALID_STATE");
    expect(((await server.expect("not-a-uuid", 10).catch((e: unknown) => e)) as AppError).code).toBe("BAD_REQUEST");
    expect(normalizeUuid("0123456789ABCDEF0123456789abcdef")).toBe("01234567-89ab-cdef-0123-456789abcdef");
  });

  it("keeps the bytes that came with the UUID message", async () => {
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 2000);
    const s = await rawClient(port);
    const audio = Buffer.alloc(3 + 640);
    audio[0] = 0x12;
    audio.writeUInt16BE(640, 1);
    for (let i = 0; i < 320; i++) audio.writeInt16LE(i * 3 - 400, 3 + i * 2);
    s.write(Buffer.concat([hello(uuid), audio]));
    const conn = await waiting;
    const leg = new AudioSocketLeg({ id: "x", connection: conn, format: "slin16", leadMs: 40, callerGapFill: false });
    cleanup(() => leg.close());
    const it = leg.callerAudio[Symbol.asyncIterator]();
    const first = await it.next();
    expect(Array.from((first.value as { pcm: Int16Array }).pcm.subarray(0, 4))).toEqual([-400, -397, -394, -391]);
  });
});

describe("AudioSocketLeg", () => {
  for (const [format, kind, rate] of [
    ["slin16", 0x12, 16000],
    ["slin", 0x10, 8000],
  ] as const) {
    it(`round-trips ${format} audio exactly, sending only kind 0x${kind.toString(16)}`, async () => {
      const { peer, leg, callerPcm } = await setup(format);
      const caller = signal(rate / 5);
      await peer.sendCaller(caller, rate);
      await until("caller audio", () => callerPcm().length >= caller.length, 5000, 5);
      expect(Array.from(callerPcm().subarray(0, caller.length))).toEqual(Array.from(caller));
      const agent = signal(rate / 10, 5);
      leg.write("u", agent);
      leg.endPlay("u");
      await until("agent audio", () => peer.agentAudio().pcm.length >= agent.length, 5000, 5);
      expect(Array.from(peer.agentAudio().pcm)).toEqual(Array.from(agent));
      expect(peer.received.map((m) => m.kind)).toEqual(Array(5).fill(kind));
      expect(peer.received.map((m) => m.length)).toEqual(Array(5).fill((rate / 50) * 2));
      expect(peer.stats.invalidMessages ?? 0).toBe(0);
      expect(peer.stats.wrongAudioKind ?? 0).toBe(0);
    });
  }

  it("reassembles messages split across TCP segments", async () => {
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 2000);
    const s = await rawClient(port);
    s.setNoDelay(true);
    s.write(hello(uuid));
    const leg = new AudioSocketLeg({ id: "x", connection: await waiting, format: "slin", leadMs: 40, callerGapFill: false });
    cleanup(() => leg.close());
    const pcm = signal(160 * 3);
    const msg = Buffer.alloc(3 + pcm.length * 2);
    msg[0] = 0x10;
    msg.writeUInt16BE(pcm.length * 2, 1);
    for (let i = 0; i < pcm.length; i++) msg.writeInt16LE(pcm[i] as number, 3 + i * 2);
    for (const cut of [[0, 1], [1, 2], [2, 101], [101, msg.length]]) {
      s.write(msg.subarray(cut[0], cut[1]));
      await sleep(15);
    }
    const got: Int16Array[] = [];
    for await (const f of leg.callerAudio) {
      got.push(f.pcm);
      if (got.length === 3) break;
    }
    expect(got.flatMap((f) => Array.from(f))).toEqual(Array.from(pcm));
  });

  it("closes with reason caller on a hangup message, and sends a hangup on a local close", async () => {
    const a = await setup();
    const closes: unknown[] = [];
    a.leg.events.on("close", (e) => closes.push(e));
    a.peer.close();
    await until("close", () => closes.length === 1, 5000, 5);
    expect(closes[0]).toMatchObject({ reason: "caller" });

    const b = await setup();
    await b.leg.close();
    await until("hangup", () => (b.peer.stats.hangupsReceived ?? 0) === 1, 5000, 5);
    expect(b.peer.received.at(-1)).toEqual({ kind: 0x00, length: 0 });
    expect(b.peer.stats.invalidMessages ?? 0).toBe(0);
  });

  it("reports 0xff as an error event and ignores 0x03 DTMF", async () => {
    const { peer, leg } = await setup();
    const errors: Error[] = [];
    const digits: unknown[] = [];
    leg.events.on("error", (e) => errors.push(e));
    leg.events.on("dtmf", (e) => digits.push(e));
    peer.sendDtmf("7");
    peer.sendMessage(0xff, Buffer.from([0x04]));
    await until("error", () => errors.length === 1, 5000, 5);
    expect(errors[0]).toBeInstanceOf(AppError);
    expect(digits).toEqual([]);
    expect(leg.stats.dtmfIgnored).toBe(1);
    expect(leg.closed).toBe(false);
    leg.pushDtmf("7");
    expect(digits).toEqual([{ digit: "7", source: "pbx", atMs: expect.any(Number) as number }]);
  });

  /** One AudioSocket message (§3.7): kind, length u16 BE, payload. */
  const message = (kind: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([kind, payload.length >> 8, payload.length & 0xff]), payload]);
  const slin16 = (pcm: Int16Array): Buffer => message(0x12, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));

  it("delivers what came in the UUID's TCP segment (audio, DTMF, error) to listeners attached after construction, before later bytes", async () => {
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 2000);
    const s = await rawClient(port);
    s.setNoDelay(true);
    const first = signal(320, 1);
    const second = signal(320, 2);
    // One write: UUID, 20 ms of slin16, DTMF "5" (0x03), an Asterisk error (0xff) arrive as the hello segment.
    s.write(Buffer.concat([hello(uuid), slin16(first), message(0x03, Buffer.from("5")), message(0xff, Buffer.from([0x04]))]));
    const leg = new AudioSocketLeg({ id: "x", connection: await waiting, format: "slin16", leadMs: 40, callerGapFill: false });
    cleanup(() => leg.close());
    const seen: string[] = [];
    leg.events.on("error", (e) => seen.push(`error:${(e as AppError).code}`));
    leg.events.on("close", (e) => seen.push(`close:${e.reason}`));
    const callerPcm = collectCallerAudio(leg);
    await until("initial bytes handled", () => seen.length === 1, 5000, 5);
    s.write(Buffer.concat([slin16(second), message(0x00, Buffer.alloc(0))]));
    await until("hangup", () => seen.length === 2, 5000, 5);
    expect(seen).toEqual(["error:PBX_ERROR", "close:caller"]);
    expect(leg.stats.dtmfIgnored).toBe(1);
    expect(Array.from(callerPcm())).toEqual([...first, ...second]);
  });

  it("reports a hangup that came in the UUID's TCP segment as a close {reason caller}", async () => {
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 2000);
    const s = await rawClient(port);
    s.write(Buffer.concat([hello(uuid), slin16(signal(320)), message(0x00, Buffer.alloc(0))]));
    const leg = new AudioSocketLeg({ id: "x", connection: await waiting, format: "slin16", leadMs: 40, callerGapFill: false });
    cleanup(() => leg.close());
    expect(leg.closed).toBe(false);
    const closes: unknown[] = [];
    leg.events.on("close", (e) => closes.push(e));
    await until("close", () => closes.length === 1, 5000, 5);
    expect(closes[0]).toMatchObject({ reason: "caller" });
  });

  it("answers in the audio kind Asterisk sends", async () => {
    // configured slin16, but the channel is slin (0x10): agent audio must go out as 0x10 at 8 kHz
    const { server, port } = await startServer();
    const uuid = randomUUID();
    const waiting = server.expect(uuid, 2000);
    const peer = new AudioSocketMediaPeer({ channelId: "m", app: "a", format: "slin", transport: "tcp", encapsulation: "audiosocket", externalHost: `127.0.0.1:${port}`, data: uuid });
    cleanup(() => peer.close());
    const leg = new AudioSocketLeg({ id: "x", connection: await waiting, format: "slin16", leadMs: 40, callerGapFill: false });
    cleanup(() => leg.close());
    await peer.sendCaller(signal(160), 8000);
    await until("kind switch", () => leg.audioKind === 0x10, 5000, 5);
    leg.write("u", signal(3200));
    leg.endPlay("u");
    await until("agent audio", () => (peer.stats.audioReceived ?? 0) >= 5, 5000, 5);
    expect(new Set(peer.received.map((m) => m.kind))).toEqual(new Set([0x10]));
    expect(peer.stats.wrongAudioKind ?? 0).toBe(0);
    expect(peer.stats.invalidMessages ?? 0).toBe(0);
  });

  it("keeps the caller stream going while Asterisk sends nothing", async () => {
    const { leg } = await setup("slin16", true);
    await sleep(300);
    expect(leg.callerMs).toBeGreaterThanOrEqual(100);
    expect(leg.callerGapStats?.filledMs).toBeGreaterThanOrEqual(100);
  });
});
