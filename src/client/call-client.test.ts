import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { CallClient, CallClientError, isTurnMetrics, streamPcm, type CallEvent } from "./index.js";

// A small server that speaks enough of spec/ws-call-api.md to exercise the client:
// invite/accept -> answer; binary -> echoed back; tts -> trackStart, two frames, trackEnd; hangup -> hangup + 1000.
// Upgrades without `Authorization: Bearer secret` (or ?token=secret) get HTTP 401, like §1.2.
interface Seen {
  url: string;
  headers: IncomingMessage["headers"];
  commands: Record<string, unknown>[];
  binary: Buffer[];
  socket: WebSocket;
}

let http: Server;
let wss: WebSocketServer;
let base: string;
let seen: Seen[];

const ts = () => Date.now();

beforeEach(async () => {
  seen = [];
  http = createServer();
  wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://x");
    const authorized = req.headers.authorization === "Bearer secret" || url.searchParams.get("token") === "secret";
    if (!authorized) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  base = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const c of wss.clients) c.terminate();
  wss.close();
  await new Promise<void>((r) => http.close(() => r()));
});

function onConnection(ws: WebSocket, req: IncomingMessage): void {
  const s: Seen = { url: req.url ?? "", headers: req.headers, commands: [], binary: [], socket: ws };
  seen.push(s);
  const id = new URL(s.url, "http://x").searchParams.get("id") ?? "s.generated";
  const send = (e: Record<string, unknown>) => ws.send(JSON.stringify({ timestamp: ts(), ...e }));
  ws.on("message", (data, isBinary) => {
    const buf = data as Buffer;
    if (isBinary) {
      s.binary.push(Buffer.from(buf));
      ws.send(buf, { binary: true });
      return;
    }
    const cmd = JSON.parse(buf.toString()) as Record<string, unknown>;
    s.commands.push(cmd);
    switch (cmd["command"]) {
      case "invite":
      case "accept":
        send({
          event: "answer",
          trackId: id,
          sdp: "",
          media: { codec: "pcm", sampleRate: 16000, outputCodec: "pcm", outputSampleRate: 16000, ptime: 20 },
        });
        break;
      case "tts": {
        const playId = (cmd["playId"] as string | undefined) ?? "p-1";
        send({ event: "trackStart", trackId: "server-side-track", playId });
        ws.send(Buffer.alloc(640, 1), { binary: true });
        ws.send(Buffer.alloc(640, 2), { binary: true });
        send({ event: "trackEnd", trackId: "server-side-track", playId, duration: 40, ssrc: 0, reason: "finished" });
        send({
          event: "metrics",
          key: "turn",
          duration: 640,
          data: { eouMs: 180, asrMs: 210, llmTtftMs: 150, ttsTtfbMs: 90, early: false },
        });
        break;
      }
      case "hangup":
        send({
          event: "hangup",
          trackId: id,
          reason: "client",
          initiator: "client",
          startTime: "2026-01-01T00:00:00.000Z",
          answerTime: "2026-01-01T00:00:00.100Z",
          hangupTime: "2026-01-01T00:00:20.500Z",
          durationMs: 20400,
        });
        ws.close(1000);
        break;
      case "bogus":
        send({ event: "error", trackId: id, sender: "command", error: "unknown command bogus", code: "UNKNOWN_COMMAND", requestId: cmd["requestId"] });
        break;
      case "closeWith":
        ws.close(cmd["code"] as number, "going away for test");
        break;
    }
  });
}

const connect = (opts: Parameters<typeof CallClient.connect>[1] = {}) =>
  CallClient.connect(base, { token: "secret", ...opts });

describe("CallClient.connect", () => {
  it("sends the token as a bearer header and the options as query parameters", async () => {
    const c = await connect({ id: "demo-1", dump: false, ping: 0, headers: { "X-Test": "yes" }, query: { extra: 1 } });
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    const url = new URL(s.url, "http://x");
    expect(url.pathname).toBe("/call");
    expect(Object.fromEntries(url.searchParams)).toEqual({ id: "demo-1", dump: "false", ping: "0", extra: "1" });
    expect(s.headers.authorization).toBe("Bearer secret");
    expect(s.headers["x-test"]).toBe("yes");
    expect(c.url.href).toBe(`${base}/call?id=demo-1&dump=false&ping=0&extra=1`);
    expect(c.callId).toBe("demo-1");
    await c.close();
  });

  it("uses /call/pbx when asked and can put the token in the query instead", async () => {
    const c = await CallClient.connect(base.replace("ws:", "http:"), {
      path: "/call/pbx",
      id: "abc",
      hangupOnClose: false,
      token: "secret",
      tokenInQuery: true,
    });
    const url = new URL(seen[0]!.url, "http://x");
    expect(url.pathname).toBe("/call/pbx");
    expect(url.searchParams.get("token")).toBe("secret");
    expect(url.searchParams.get("hangupOnClose")).toBe("false");
    expect(c.url.searchParams.has("token")).toBe(false); // never shown
    await c.close();
  });

  it("rejects with the HTTP status when the upgrade is refused", async () => {
    const err = await CallClient.connect(base, { token: "wrong" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallClientError);
    expect((err as CallClientError).status).toBe(401);
    expect((err as Error).message).toMatch(/HTTP 401/);
  });

  it("rejects when nothing listens", async () => {
    const port = (http.address() as AddressInfo).port;
    await new Promise<void>((r) => http.close(() => r()));
    await expect(CallClient.connect(`ws://127.0.0.1:${port}`)).rejects.toThrow(/cannot connect/);
    http.listen(0, "127.0.0.1"); // afterEach closes it again
  });
});

describe("commands and events", () => {
  it("sends typed commands as JSON and resolves waitFor with the typed event", async () => {
    const c = await connect();
    c.invite({ codec: "pcm", sampleRate: 16000, playbook: "hello.md", extra: { customer: "Ada" } });
    const answer = await c.waitFor("answer");
    expect(answer.media?.outputSampleRate).toBe(16000);
    expect(answer.trackId).toBe("s.generated");
    expect(c.callId).toBe("s.generated");

    c.tts("Hello there.", { playId: "turn-1", streaming: true, requestId: "r1" });
    c.play("prompts/welcome.wav", { interruptible: false, loop: 2 });
    c.interrupt({ graceful: true, fadeOutMs: 200 });
    c.pause();
    c.resume();
    c.dtmf("12#", { durationMs: 120 });
    c.mute("s.generated");
    c.unmute();
    c.history("system", "premium member");
    c.refer("sip:sales@example.com", { options: { headers: { "X-Reason": "sales" } } });
    c.transfer("1001", { context: "default" });
    c.ringing({ earlyMedia: true, ringtone: "ringback.wav" });
    c.reject({ reason: "busy", code: 486 });
    c.accept({ playbook: "x.md" });

    // trackStart and trackEnd arrive in one burst; sequential waits still see both.
    const start = await c.waitFor("trackStart");
    const end = await c.waitFor("trackEnd");
    expect(start.playId).toBe("turn-1");
    expect(end.reason).toBe("finished");
    expect(end.duration).toBe(40);
    const m = await c.waitFor("metrics", (e) => e.key === "turn");
    expect(isTurnMetrics(m) && m.data.llmTtftMs).toBe(150);

    await c.waitFor("answer"); // the second answer (from accept), not the consumed first one
    const cmds = seen[0]!.commands;
    expect(cmds.map((x) => x["command"])).toEqual([
      "invite", "tts", "play", "interrupt", "pause", "resume", "dtmf", "mute", "unmute", "history", "refer",
      "transfer", "ringing", "reject", "accept",
    ]);
    expect(cmds[0]).toEqual({
      command: "invite",
      option: { codec: "pcm", sampleRate: 16000, playbook: "hello.md", extra: { customer: "Ada" } },
    });
    expect(cmds[1]).toEqual({ command: "tts", text: "Hello there.", playId: "turn-1", streaming: true, requestId: "r1" });
    expect(cmds[7]).toEqual({ command: "mute", trackId: "s.generated" });
    expect(cmds[8]).toEqual({ command: "unmute" });
    expect(cmds[9]).toEqual({ command: "history", speaker: "system", text: "premium member" });
    await c.close();
  });

  it("delivers events to typed listeners and keeps them in `events`", async () => {
    const c = await connect({ id: "demo-2" });
    const names: string[] = [];
    const ids: string[] = [];
    c.on("event", (e: CallEvent) => names.push(e.event));
    const off = c.on("trackStart", (e) => ids.push(e.playId));
    c.invite();
    c.tts("a", { playId: "one" });
    await c.waitFor("trackEnd");
    off();
    c.tts("b", { playId: "two" });
    await c.waitFor("trackEnd", (e) => e.playId === "two");
    expect(ids).toEqual(["one"]);
    expect(names.slice(0, 3)).toEqual(["answer", "trackStart", "trackEnd"]);
    expect(c.events.map((e) => e.event)).toEqual(names);
    await c.close();
  });

  it("passes error events with their requestId, and the generic send", async () => {
    const c = await connect();
    c.send({ command: "bogus", requestId: "q-7" });
    const err = await c.waitFor("error");
    expect(err.code).toBe("UNKNOWN_COMMAND");
    expect(err.requestId).toBe("q-7");
    await c.close();
  });

  it("surfaces the hangup event with RFC 3339 times and the 1000 close", async () => {
    const c = await connect({ id: "demo-3" });
    const closes: [number, string][] = [];
    c.on("close", (code, reason) => closes.push([code, reason]));
    c.invite();
    await c.waitFor("answer");
    c.hangup({ reason: "done", headers: { "X-Disposition": "resolved" } });
    const h = await c.waitFor("hangup");
    expect(h.reason).toBe("client");
    expect(h.durationMs).toBe(20400);
    expect(Date.parse(h.hangupTime) - Date.parse(h.startTime)).toBe(20500);
    expect(await c.closed).toEqual({ code: 1000, reason: "" });
    expect(closes).toEqual([[1000, ""]]);
    expect(seen[0]!.commands.at(-1)).toEqual({ command: "hangup", reason: "done", headers: { "X-Disposition": "resolved" } });
    expect(() => c.tts("too late")).toThrow(/not open/);
  });

  it("surfaces application close codes, and waitFor rejects on close naming the code", async () => {
    const c = await connect();
    const pending = c.waitFor("answer");
    c.send({ command: "closeWith", code: 4409 });
    const err = (await pending.catch((e: unknown) => e)) as CallClientError;
    expect(err).toBeInstanceOf(CallClientError);
    expect(err.closeCode).toBe(4409);
    expect(err.message).toMatch(/waitFor\("answer"\) failed: connection closed with 4409 "going away for test"/);
    expect(c.closeInfo).toEqual({ code: 4409, reason: "going away for test" });
    // After the close, a new waitFor rejects at once.
    await expect(c.waitFor("hangup")).rejects.toThrow(/closed with 4409/);
  });

  it("rejects waitFor on timeout with a message listing what arrived", async () => {
    const c = await connect();
    c.invite();
    await c.waitFor("answer");
    await expect(c.waitFor("hangup", undefined, 50)).rejects.toThrow(/waitFor\("hangup"\) timed out after 50 ms; received: answer/);
    await c.close();
  });
});

describe("audio", () => {
  it("sends Int16Array, Uint8Array and Buffer as binary and hands received binary to `audio`", async () => {
    const c = await connect();
    c.invite();
    await c.waitFor("answer");
    const got: Buffer[] = [];
    c.on("audio", (b) => got.push(b));
    const pcm = new Int16Array([1, -2, 32767, -32768]);
    c.sendAudio(pcm.subarray(1, 3));
    c.sendAudio(new Uint8Array([9, 8, 7]));
    c.sendAudio(Buffer.from([5]));
    c.tts("x");
    await c.waitFor("trackEnd");
    await until(() => got.length >= 5);
    expect([...seen[0]!.binary[0]!]).toEqual([0xfe, 0xff, 0xff, 0x7f]); // little-endian -2, 32767
    expect(got.slice(0, 3).map((b) => [...b])).toEqual([[0xfe, 0xff, 0xff, 0x7f], [9, 8, 7], [5]]);
    expect(got.slice(3).map((b) => b.length)).toEqual([640, 640]);
    await c.close();
  });

  it("streamPcm in real time sends 20 ms frames in order", async () => {
    const c = await connect();
    c.invite();
    await c.waitFor("answer");
    const pcm = new Int16Array(16000 * 0.25 + 100); // 250 ms + 100 samples = 12 frames of 320 + 260 samples
    for (let i = 0; i < pcm.length; i++) pcm[i] = i % 32000;
    const res = await c.streamPcm(pcm, 16000, { realtime: true });
    expect(res).toEqual({ frames: 13, bytes: pcm.byteLength });
    await until(() => seen[0]!.binary.length === 13);
    const frames = seen[0]!.binary;
    expect(frames.map((b) => b.length)).toEqual([...Array<number>(12).fill(640), 520]);
    const joined = Buffer.concat(frames);
    const back = new Int16Array(joined.buffer, joined.byteOffset, joined.length / 2);
    expect(Array.from(back)).toEqual(Array.from(pcm));
    await c.close();
  });

  it("streamPcm as fast as possible, with another frame size, and stops on abort", async () => {
    const sent: number[] = [];
    const sink = { sendAudio: (b: Buffer | Uint8Array | Int16Array) => void sent.push(b.byteLength) };
    const res = await streamPcm(sink, new Int16Array(8000 * 2), 8000, { frameMs: 10 });
    expect(res.frames).toBe(200);
    expect(sent.every((n) => n === 160)).toBe(true);

    const ac = new AbortController();
    const slow: number[] = [];
    const p = streamPcm({ sendAudio: (b) => void slow.push(b.byteLength) }, new Int16Array(16000 * 10), 16000, {
      realtime: true,
      signal: ac.signal,
    });
    await until(() => slow.length >= 2);
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
    expect(slow.length).toBeLessThan(500);
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}
