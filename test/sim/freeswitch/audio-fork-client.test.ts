import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { AudioForkClient, FORK_SUBPROTOCOL, markReplyText } from "./audio-fork-client.js";
import { sharedFixturesUrl } from "../../shared-fixtures.js";

const FIXTURES = sharedFixturesUrl("freeswitch", "audio-fork-ws");

interface Recorded {
  t_ms: number;
  dir: "freeswitch->server" | "server->freeswitch";
  type: "text" | "binary" | "close";
  len?: number;
  text?: string;
  code?: number;
}

function loadFrames(name: string): Recorded[] {
  return readFileSync(new URL(`${name}/frames.jsonl`, FIXTURES), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Recorded);
}

const sample16k = readFileSync(new URL("fork-16k-mono-classic/sample-1s-16000hz-mono-s16le.l16", FIXTURES));

/** `bytes` of the 16 kHz caller sample, looped. */
function callerPcm(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let o = 0; o < bytes; o += sample16k.length) sample16k.copy(out, o, 0, Math.min(sample16k.length, bytes - o));
  return out;
}

interface Received {
  t: number;
  isBinary: boolean;
  data: Buffer;
}

let servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers) {
    for (const c of s.clients) c.terminate();
    await new Promise<void>((r) => s.close(() => r()));
  }
  servers = [];
});

/** A plain ws server (ws echoes the first offered subprotocol by default) that plays `script` and records. */
async function scriptedServer(script: Recorded[], speed: number): Promise<{ url: string; received: Received[]; protocols: string[] }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  servers.push(wss);
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const received: Received[] = [];
  const protocols: string[] = [];
  wss.on("connection", (ws: WebSocket) => {
    protocols.push(ws.protocol);
    const t0 = performance.now();
    ws.on("message", (data, isBinary) => received.push({ t: performance.now() - t0, isBinary, data: data as Buffer }));
    for (const f of script) {
      setTimeout(() => {
        if (ws.readyState !== ws.OPEN) return;
        if (f.type === "text") ws.send(f.text ?? "", { binary: false });
        else if (f.type === "binary") ws.send(Buffer.alloc(f.len ?? 0, 7), { binary: true });
      }, f.t_ms / speed);
    }
  });
  const port = (wss.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/bidi`, received, protocols };
}

/** Replays a recording's FS→server side through AudioForkClient against its server→FS script. */
async function replay(name: string, speed: number, answerMarks = true) {
  const frames = loadFrames(name);
  const fs = frames.filter((f) => f.dir === "freeswitch->server");
  const toFs = frames.filter((f) => f.dir === "server->freeswitch");
  const server = await scriptedServer(toFs, speed);
  const firstText = fs.find((f) => f.type === "text");
  const binaries = fs.filter((f) => f.type === "binary");
  const frameBytes = binaries[0]?.len ?? 640;
  const frameMs = frameBytes === 960 ? 30 : 20;
  const closeAt = fs.find((f) => f.type === "close");
  const client = await AudioForkClient.connect({ url: server.url, metadata: firstText?.text, speed, answerMarks });
  const pcm = callerPcm(binaries.length * frameBytes);
  await new Promise((r) => setTimeout(r, (binaries[0]?.t_ms ?? 0) / speed));
  await client.streamPcm(pcm, { frameBytes, frameMs });
  const left = (closeAt?.t_ms ?? 0) / speed - client.elapsedMs;
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  await client.close(closeAt?.code ?? 1000);
  await new Promise((r) => setTimeout(r, 30));
  return { fs, toFs, server, client, pcm, frameBytes, frameMs };
}

/** Binaries received before each text frame. */
function textPositions(seq: { type: string; text?: string | undefined }[]): { text: string; pos: number }[] {
  let bins = 0;
  const out: { text: string; pos: number }[] = [];
  for (const f of seq) {
    if (f.type === "binary") bins++;
    else if (f.type === "text") out.push({ text: f.text ?? "", pos: bins });
  }
  return out;
}

describe("AudioForkClient against the recordings", () => {
  it("replays fork-16k-mono-bidi-stream: texts verbatim, binary sizes and content, cadence, marks", async () => {
    const speed = 4;
    const { fs, server, client, pcm } = await replay("fork-16k-mono-bidi-stream", speed);
    expect(server.protocols).toEqual([FORK_SUBPROTOCOL]);
    expect(client.protocol).toBe(FORK_SUBPROTOCOL);

    // What the server received == the recording's FS→server frames (texts verbatim, binaries by size).
    const got = server.received.map((r) => (r.isBinary ? { type: "binary", len: r.data.length } : { type: "text", text: r.data.toString("utf8") }));
    const want = fs.filter((f) => f.type !== "close").map((f) => (f.type === "binary" ? { type: "binary", len: f.len } : { type: "text", text: f.text }));
    expect(got.filter((g) => g.type === "text")).toEqual(want.filter((w) => w.type === "text"));
    expect(got.filter((g) => g.type === "binary")).toEqual(want.filter((w) => w.type === "binary"));
    expect(got[0]).toEqual({ type: "text", text: '{"callId":"y"}' });
    // The mark replies come at about the recorded point of the caller stream (± 20 frames = 400 ms).
    const gotPos = textPositions(got);
    const wantPos = textPositions(want);
    for (const [i, w] of wantPos.entries()) expect(Math.abs((gotPos[i]?.pos ?? -1000) - w.pos)).toBeLessThanOrEqual(20);
    // Content: the caller audio, byte for byte.
    expect(Buffer.concat(server.received.filter((r) => r.isBinary).map((r) => r.data)).equals(pcm)).toBe(true);
    // Cadence: 20 ms per frame (scaled).
    const times = server.received.filter((r) => r.isBinary).map((r) => r.t);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number)).sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1] ?? 0;
    expect(median).toBeGreaterThan(20 / speed - 2.5);
    expect(median).toBeLessThan(20 / speed + 2.5);
    // The client's own log has the same FS→server frames, and it collected what the server sent.
    const logged = client.frames.filter((f) => f.dir === "freeswitch->server" && f.type !== "close");
    for (const type of ["text", "binary"] as const) {
      expect(logged.filter((f) => f.type === type).map((f) => f.text ?? f.len)).toEqual(fs.filter((f) => f.type === type).map((f) => f.text ?? f.len));
    }
    expect(client.receivedAudio.map((b) => b.length)).toEqual([...Array<number>(20).fill(3200), 96000, 16000]);
    expect(client.receivedTexts).toContain('{"type":"killAudio"}');
    expect(client.frames.at(-1)).toMatchObject({ type: "close", code: 1000 });
  });

  it("replays the ptime-30 capture: 960-byte frames every 30 ms", async () => {
    const speed = 6;
    const { fs, server } = await replay("fork-16k-mono-bidi-stream-ptime30", speed);
    const bins = server.received.filter((r) => r.isBinary);
    expect(bins.length).toBe(fs.filter((f) => f.type === "binary").length);
    expect(new Set(bins.map((b) => b.data.length))).toEqual(new Set([960]));
    expect(server.received[0]?.data.toString()).toBe('{"callId":"y"}');
    const gaps = bins.slice(1).map((b, i) => b.t - (bins[i] as Received).t).sort((a, b) => a - b);
    expect(gaps[gaps.length >> 1]).toBeGreaterThan(30 / speed - 2.5);
    // Marks still come back: before-tone played, burst2-end cleared by killAudio.
    const texts = server.received.filter((r) => !r.isBinary).map((r) => r.data.toString());
    expect(texts).toContain(markReplyText("before-tone", "playout"));
    expect(texts).toContain(markReplyText("burst2-end", "cleared"));
  });

  it("without send_silence_when_idle no mark reply comes back", async () => {
    const { server, client } = await replay("fork-16k-mono-bidi-stream-without-send_silence_when_idle", 8, false);
    expect(server.received.filter((r) => !r.isBinary).map((r) => r.data.toString())).toEqual(['{"callId":"y"}']);
    expect(client.receivedTexts.some((t) => t.includes("killAudio"))).toBe(true);
  });

  it("exact mark reply text as recorded", () => {
    expect(markReplyText("before-tone", "playout")).toBe('{"type": "mark", "data": {"name":"before-tone", "event": "playout"}}');
    expect(markReplyText("burst2-end", "cleared")).toBe('{"type": "mark", "data": {"name":"burst2-end", "event": "cleared"}}');
  });

  it("graceful shutdown sends a zero-length binary frame; sendText goes verbatim", async () => {
    const server = await scriptedServer([], 1);
    const client = await AudioForkClient.connect({ url: server.url, metadata: '{"callId":"z"}' });
    client.sendText('{"type":"dtmf","digit":"1"}');
    client.shutdown();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.received.map((r) => [r.isBinary, r.data.length, r.isBinary ? "" : r.data.toString()])).toEqual([
      [false, 14, '{"callId":"z"}'],
      [false, 27, '{"type":"dtmf","digit":"1"}'],
      [true, 0, ""],
    ]);
    await client.close(1000);
  });

  it("refuses a server that does not echo the subprotocol", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => false });
    servers.push(wss);
    await new Promise<void>((r) => wss.once("listening", () => r()));
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    await expect(AudioForkClient.connect({ url })).rejects.toThrow();
  });
});
