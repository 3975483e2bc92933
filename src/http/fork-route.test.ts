import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import fastifyWebsocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { AudioForkClient, FORK_SUBPROTOCOL } from "../../test/sim/freeswitch/audio-fork-client.js";
import type { AudioFrame } from "../audio/index.js";
import { createLogger } from "../log.js";
import { AudioForkLeg, bindForkSocket } from "../media/audio-fork-leg.js";
import { ForkRegistry } from "../media/fork-registry.js";
import { buildHttpApp } from "./app.js";
import { FORK_MAX_BINARY_BYTES, FORK_MAX_TEXT_BYTES, registerForkRoute } from "./fork-route.js";
import { sharedFixturesUrl } from "../../test/shared-fixtures.js";

const FIXTURES = sharedFixturesUrl("freeswitch", "audio-fork-ws");
const sample16k = readFileSync(new URL("fork-16k-mono-classic/sample-1s-16000hz-mono-s16le.l16", FIXTURES));
const quiet = () => createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });

let apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps) await a.close();
  apps = [];
});

async function start(token = "api-secret", log = quiet()) {
  // The API token is on: /media/fork/* must stay reachable with the fork token alone.
  const app = await buildHttpApp({ log, version: "test", token, bodyLimitBytes: 1 << 20, trustProxy: false });
  await app.register(fastifyWebsocket);
  const forks = new ForkRegistry();
  registerForkRoute(app, { forks, log });
  await app.listen({ port: 0, host: "127.0.0.1" });
  apps.push(app);
  const port = (app.server.address() as AddressInfo).port;
  return { app, forks, base: `ws://127.0.0.1:${port}/media/fork` };
}

/** Opens a raw ws client offering the FS subprotocol: the 101's protocol, or the refusal status. */
function rawConnect(url: string): Promise<{ ws: WebSocket; protocol: string } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, FORK_SUBPROTOCOL);
    ws.once("open", () => resolve({ ws, protocol: ws.protocol }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
    });
    ws.once("error", reject);
  });
}

describe("GET /media/fork/:callId", () => {
  it("echoes audio.drachtio.org in the 101 and hands the socket to the registry", async () => {
    const { forks, base } = await start();
    const { token, connected } = forks.expect("uuid-1", 5000);
    const r = await rawConnect(`${base}/uuid-1?token=${token}`);
    expect("protocol" in r && r.protocol).toBe(FORK_SUBPROTOCOL);
    const socket = await connected;
    const got = new Promise<string>((resolve) => socket.on("message", (d) => resolve(String(d))));
    if ("ws" in r) r.ws.send('{"callId":"uuid-1"}');
    expect(await got).toBe('{"callId":"uuid-1"}');
    if ("ws" in r) r.ws.close();
  });

  it("refuses the upgrade with 401 for a wrong, missing, reused or unknown token", async () => {
    const { forks, base } = await start();
    const { token } = forks.expect("uuid-2", 5000);
    expect(await rawConnect(`${base}/uuid-2?token=nope`)).toEqual({ status: 401 });
    expect(await rawConnect(`${base}/uuid-2`)).toEqual({ status: 401 });
    expect(await rawConnect(`${base}/other?token=${token}`)).toEqual({ status: 401 });
    const ok = await rawConnect(`${base}/uuid-2?token=${token}`);
    expect("ws" in ok).toBe(true);
    expect(await rawConnect(`${base}/uuid-2?token=${token}`)).toEqual({ status: 401 }); // single use
    if ("ws" in ok) ok.ws.close();
  });

  for (const kind of ["binary", "text"] as const) {
    it(`closes the fork with 1009 and a log line naming the limit on a ${kind} frame over it; frames within it pass`, async () => {
      const lines: string[] = [];
      const log = createLogger({ level: "warn", format: "json", redactPersonal: true, destination: new Writable({ write: (c: Buffer, _e, done) => (lines.push(String(c)), done()) }) });
      // The shared server's maxPayload (ws default 100 MiB here) would let a 1 MiB frame through.
      const { forks, base } = await start("api-secret", log);
      const { token, connected } = forks.expect(`uuid-${kind}`, 5000);
      const r = await rawConnect(`${base}/uuid-${kind}?token=${token}`);
      if (!("ws" in r)) throw new Error("no upgrade");
      const socket = await connected;
      const got: number[] = [];
      socket.on("message", (d) => got.push((d as Buffer).length));
      const limit = kind === "binary" ? FORK_MAX_BINARY_BYTES : FORK_MAX_TEXT_BYTES;
      const frame = (n: number) => (kind === "binary" ? Buffer.alloc(n, 1) : "x".repeat(n));
      const closed = new Promise<number>((resolve) => r.ws.once("close", (code) => resolve(code)));
      r.ws.send(frame(640));
      r.ws.send(frame(limit));
      r.ws.send(frame(limit + 1));
      r.ws.send(frame(640));
      expect(await closed).toBe(1009);
      expect(got).toEqual([640, limit]);
      const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.limitBytes !== undefined);
      expect(warn).toMatchObject({ callId: `uuid-${kind}`, bytes: limit + 1, limitBytes: limit, binary: kind === "binary" });
      expect(String(warn?.msg)).toContain("limit");
    });
  }

  it("end to end: FS simulator ↔ fork route ↔ AudioForkLeg over real sockets", async () => {
    const { forks, base } = await start();
    const { token, connected } = forks.expect("uuid-3", 5000);
    const client = await AudioForkClient.connect({ url: `${base}/uuid-3?token=${token}`, metadata: '{"callId":"uuid-3"}', speed: 2 });
    const socket = await connected;
    let flushed = 0;
    const leg = new AudioForkLeg({
      id: "uuid-3",
      forkRate: 16000,
      mode: "stream",
      send: (d) => socket.send(d),
      onFlush: () => flushed++,
    });
    const metadata = new Promise((resolve) => leg.forkEvents.once("metadata", resolve));
    bindForkSocket(socket, leg);
    const frames: AudioFrame[] = [];
    const reading = (async () => {
      for await (const f of leg.callerAudio) frames.push(f);
    })();
    // Caller audio: 0.5 s in ptime-30 packets (960 B), as fast as possible.
    await client.streamPcm(sample16k.subarray(0, 16000), { frameBytes: 960, realTime: false });
    // Agent audio: 200 ms, paced; the simulator answers the end mark once it has "played".
    const agent = new Int16Array(3200).fill(1000);
    const marks = new Promise((resolve) => leg.forkEvents.once("markReply", resolve));
    leg.write("a1", agent);
    leg.endPlay("a1");
    expect(await marks).toMatchObject({ name: "a1:1", playId: "a1", event: "playout" });
    expect(await metadata).toEqual({ text: '{"callId":"uuid-3"}', json: { callId: "uuid-3" } });
    expect(client.receivedAudio.map((b) => b.length)).toEqual(Array<number>(10).fill(640));
    // The playout probe rides behind the first agent frame, then the utterance's end mark.
    expect(client.receivedTexts).toEqual(['{"type":"mark","data":{"name":"probe:1"}}', '{"type":"mark","data":{"name":"a1:1"}}']);

    // Barge-in during a long utterance: killAudio is sent and onFlush (uuid_break) is called.
    leg.write("a2", new Int16Array(16000).fill(500));
    leg.endPlay("a2");
    await client.waitFor(() => client.receivedAudio.length >= 14);
    leg.clear();
    await client.waitFor(() => client.receivedTexts.includes('{"type":"killAudio"}'));
    expect(flushed).toBe(1);

    // Graceful shutdown from FS ends the leg.
    const closed = new Promise((resolve) => leg.events.once("close", resolve));
    client.shutdown();
    expect(await closed).toEqual({ reason: "transport", detail: "graceful shutdown" });
    await reading;
    expect(frames.length).toBe(25);
    expect(frames.every((f) => f.pcm.length === 320 && f.sampleRate === 16000)).toBe(true);
    await client.close(1000);
  });
});
