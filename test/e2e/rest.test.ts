/**
 * The REST API (ws-call-api.md §7) end to end: the real controller on a loopback port, calls opened with the typed
 * WebSocket client, and every route exercised with fetch over a real socket. Local engines only (flite/espeak-ng,
 * the scripted LLM): no key, no network.
 */
import { createHmac } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWav } from "../../src/audio/index.js";
import { CallClient, CallClientError, type CallOption } from "../../src/client/index.js";
import { verifySignature } from "../../src/util/hmac.js";
import { startHttpReceiver, type HttpReceiver, type ReceivedRequest } from "../sim/http-receiver.js";
import { peakOfPcmBytes, startServer, type TestServer } from "./harness.js";

const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const LONG_TEXT =
  "This is a long announcement from the agent. It goes on for several sentences so that there is time to stop it. " +
  "The weather today is mild, with a light breeze from the west. Please stay on the line while we read the rest of it.";

interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

interface ErrorBody {
  error: { code: string; message: string; retryable: boolean; details: Record<string, unknown> };
}

/** fetch against `base`, with the body read as text and (when it parses) as JSON. */
async function request(base: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<ApiResponse> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set("Content-Type", "application/json");
  const res = await fetch(base + path, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (metrics, WAV, JSONL)
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `check` until it stops throwing (generous deadline; no timing is asserted). */
async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

function expectErrorBody(r: ApiResponse, status: number, code: string): ErrorBody["error"] {
  expect(r.status, r.text).toBe(status);
  const body = r.json as unknown as ErrorBody;
  expect(body.error).toMatchObject({ code, message: expect.any(String), retryable: expect.any(Boolean), details: expect.any(Object) });
  expect(Object.keys(body.error).sort()).toEqual(["code", "details", "message", "retryable"]);
  return body.error;
}

/** Opens `/call`, sends `invite` (PCM 16 kHz, no playbook unless given) and waits for `answer`. */
async function openCall(
  server: TestServer,
  id: string,
  option: CallOption = {},
  connect: { dump?: boolean; token?: string } = {},
): Promise<{ client: CallClient; audio: Buffer[] }> {
  const client = await CallClient.connect(server.wsUrl, { id, ...connect });
  const audio: Buffer[] = [];
  client.on("audio", (b: Buffer) => audio.push(Buffer.from(b)));
  client.invite({ codec: "pcm", sampleRate: 16000, ...option });
  await client.waitFor("answer", undefined, 20_000);
  return { client, audio };
}

/** Waits until the call is listed as ended (the hook is submitted and the dump closed by then). */
async function waitEnded(server: TestServer, id: string): Promise<void> {
  await eventually(async () => {
    const r = await request(server.baseUrl, "/api/calls?state=ended&limit=1000");
    expect((r.json.calls as { id: string }[]).map((c) => c.id)).toContain(id);
  });
}

describe("REST API against a live controller", () => {
  let server: TestServer;
  const api = (path: string, init?: RequestInit & { json?: unknown }) => request(server.baseUrl, path, init);

  beforeAll(async () => {
    server = await startServer({ calls: { ended_retention: 100 } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("lists live calls newest first with CallSummary fields; limit and state filter; CallDetail; hangup; ended list; 409 after", async () => {
    const a = await openCall(server, "rest-list-a", { caller: "+15550001", callee: "200", extra: { customer: "Ada", api_token: "hunter2", db_password: "pw" } });
    await sleep(20); // distinct createdAt for the ordering check
    const b = await openCall(server, "rest-list-b", { caller: "+15550002", callee: "201" });

    const live = await api("/api/calls");
    expect(live.status).toBe(200);
    const calls = live.json.calls as Record<string, unknown>[];
    const ids = calls.map((c) => c.id);
    expect(ids.indexOf("rest-list-b")).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf("rest-list-b")).toBeLessThan(ids.indexOf("rest-list-a"));
    const sa = calls.find((c) => c.id === "rest-list-a") as Record<string, unknown>;
    expect(sa).toMatchObject({
      id: "rest-list-a",
      callType: "websocket",
      direction: "inbound",
      state: "active",
      caller: "+15550001",
      callee: "200",
      createdAt: expect.stringMatching(RFC3339_MS),
      answeredAt: expect.stringMatching(RFC3339_MS),
      durationMs: expect.any(Number),
      attached: true,
    });
    expect(sa.endedAt).toBeUndefined();
    const createdAts = calls.map((c) => Date.parse(c.createdAt as string));
    expect([...createdAts].sort((x, y) => y - x)).toEqual(createdAts);

    const one = await api("/api/calls?limit=1");
    expect((one.json.calls as unknown[]).length).toBe(1);
    expect((one.json.calls as { id: string }[])[0]?.id).toBe("rest-list-b");
    expect(((await api("/api/calls?state=ended")).json.calls as { id: string }[]).map((c) => c.id)).not.toContain("rest-list-a");
    expect(((await api("/api/calls?state=all")).json.calls as { id: string }[]).map((c) => c.id)).toEqual(expect.arrayContaining(["rest-list-a", "rest-list-b"]));
    expectErrorBody(await api("/api/calls?limit=0"), 400, "BAD_REQUEST");
    expectErrorBody(await api("/api/calls?state=bogus"), 400, "BAD_REQUEST");

    // CallDetail
    const detail = await api("/api/calls/rest-list-a");
    expect(detail.status).toBe(200);
    expect(detail.json).toMatchObject({
      id: "rest-list-a",
      state: "active",
      pipeline: "serial",
      media: { leg: "websocket", codec: "pcm", sampleRate: 16000 },
      times: { createdAt: expect.stringMatching(RFC3339_MS), answeredAt: expect.stringMatching(RFC3339_MS) },
      turns: 0,
      speaking: { agent: false, caller: false },
    });
    expect(["serial", "realtime", "none"]).toContain(detail.json.pipeline);
    expect(detail.json.variables).toBeUndefined();
    expect(detail.json.hangup).toBeUndefined();
    const withVars = await api("/api/calls/rest-list-a?include=variables");
    expect(withVars.json.variables).toMatchObject({ customer: "Ada", api_token: "***", db_password: "***" });
    expect(withVars.text).not.toContain("hunter2");

    // 404 for an unknown call, with the §7.3 body
    const missing = expectErrorBody(await api("/api/calls/no-such-call"), 404, "CALL_NOT_FOUND");
    expect(missing.retryable).toBe(false);

    // Hang up over REST
    const hung = await api("/api/calls/rest-list-a/hangup", { method: "POST", json: { reason: "done" } });
    expect(hung.status).toBe(202);
    expect(hung.json).toEqual({ id: "rest-list-a", state: "ending" });
    const hangupEvent = await a.client.waitFor("hangup", undefined, 15_000);
    expect(hangupEvent).toMatchObject({ reason: "client", detail: "done", initiator: "client", trackId: "rest-list-a" });
    expect((await a.client.closed).code).toBe(1000);
    await waitEnded(server, "rest-list-a");
    const ended = (await api("/api/calls?state=ended")).json.calls as Record<string, unknown>[];
    expect(ended.find((c) => c.id === "rest-list-a")).toMatchObject({ state: "ended", endedAt: expect.stringMatching(RFC3339_MS) });
    expect(((await api("/api/calls")).json.calls as { id: string }[]).map((c) => c.id)).not.toContain("rest-list-a");
    const endedDetail = await api("/api/calls/rest-list-a");
    expect(endedDetail.json).toMatchObject({ state: "ended", hangup: { reason: "client", detail: "done", initiator: "client" }, times: { endedAt: expect.stringMatching(RFC3339_MS) } });

    // Commands to an ended call: 409 INVALID_STATE; a second hangup too
    expectErrorBody(await api("/api/calls/rest-list-a/tts", { method: "POST", json: { text: "too late" } }), 409, "INVALID_STATE");
    expectErrorBody(await api("/api/calls/rest-list-a/hangup", { method: "POST", json: {} }), 409, "INVALID_STATE");
    expectErrorBody(await api("/api/calls/no-such-call/tts", { method: "POST", json: { text: "x" } }), 404, "CALL_NOT_FOUND");

    // DELETE hangs up like POST …/hangup
    const del = await api("/api/calls/rest-list-b", { method: "DELETE" });
    expect(del.status).toBe(202);
    expect(del.json).toEqual({ id: "rest-list-b", state: "ending" });
    expect(await b.client.waitFor("hangup", undefined, 15_000)).toMatchObject({ reason: "client", initiator: "client" });
    expect((await b.client.closed).code).toBe(1000);
    await waitEnded(server, "rest-list-b");
  }, 60_000);

  it("POST …/tts answers 202 {id, playId}; the client sees trackStart/trackEnd with that playId and gets audio", async () => {
    const { client, audio } = await openCall(server, "rest-tts");
    const r = await api("/api/calls/rest-tts/tts", { method: "POST", json: { text: "Hello from the REST API." } });
    expect(r.status, r.text).toBe(202);
    const playId = r.json.playId as string;
    expect(r.json).toEqual({ id: "rest-tts", playId: expect.any(String) });
    expect(playId.length).toBeGreaterThan(0);
    await client.waitFor("trackStart", (e) => e.playId === playId, 20_000);
    const end = await client.waitFor("trackEnd", (e) => e.playId === playId, 20_000);
    expect(end.reason).toBe("finished");
    expect(audio.length).toBeGreaterThan(10);
    expect(Math.max(...audio.map(peakOfPcmBytes))).toBeGreaterThan(1000);

    // A client-chosen playId is kept
    const mine = await api("/api/calls/rest-tts/tts", { method: "POST", json: { text: "Second one.", playId: "my-play" } });
    expect(mine.status).toBe(202);
    expect(mine.json).toEqual({ id: "rest-tts", playId: "my-play" });
    await client.waitFor("trackEnd", (e) => e.playId === "my-play", 20_000);

    // Schema violations are 400 BAD_REQUEST with the failing fields
    const bad = expectErrorBody(await api("/api/calls/rest-tts/tts", { method: "POST", json: { playId: "x" } }), 400, "BAD_REQUEST");
    expect(JSON.stringify(bad.details)).toContain("text");

    client.hangup();
    await client.closed;
  }, 60_000);

  it("POST …/play plays a WAV from the sounds folder; a path leaving it is 400 BAD_REQUEST", async () => {
    const rate = 16000;
    const tone = new Int16Array(rate); // 1 s, 440 Hz
    for (let i = 0; i < tone.length; i++) tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate));
    await writeFile(join(server.config.paths.sounds, "beep.wav"), encodeWav(tone, rate));

    const { client, audio } = await openCall(server, "rest-play");
    const r = await api("/api/calls/rest-play/play", { method: "POST", json: { url: "beep.wav" } });
    expect(r.status, r.text).toBe(202);
    expect(r.json).toEqual({ id: "rest-play", playId: "beep.wav" });
    await client.waitFor("trackStart", (e) => e.playId === "beep.wav", 15_000);
    expect(await client.waitFor("trackEnd", (e) => e.playId === "beep.wav", 15_000)).toMatchObject({ reason: "finished" });
    expect(Math.max(...audio.map(peakOfPcmBytes))).toBeGreaterThan(4000);

    const r2 = await api("/api/calls/rest-play/play", { method: "POST", json: { url: "beep.wav", playId: "beep-2" } });
    expect(r2.json).toEqual({ id: "rest-play", playId: "beep-2" });
    await client.waitFor("trackEnd", (e) => e.playId === "beep-2", 15_000);

    expectErrorBody(await api("/api/calls/rest-play/play", { method: "POST", json: { url: "../etc/passwd" } }), 400, "BAD_REQUEST");
    expectErrorBody(await api("/api/calls/rest-play/play", { method: "POST", json: { url: "" } }), 400, "BAD_REQUEST");
    // The call goes on after a refused command.
    expect((await api("/api/calls/rest-play")).json.state).toBe("active");

    client.hangup();
    await client.closed;
  }, 60_000);

  it("POST …/commands interrupt stops the agent (interruption reason command); an unknown command is a 4xx with its code", async () => {
    const { client } = await openCall(server, "rest-cmd");
    const r = await api("/api/calls/rest-cmd/tts", { method: "POST", json: { text: LONG_TEXT, playId: "long" } });
    expect(r.status).toBe(202);
    await client.waitFor("trackStart", (e) => e.playId === "long", 20_000);
    const speaking = await api("/api/calls/rest-cmd");
    expect(speaking.json.speaking).toEqual({ agent: true, caller: false, playId: "long" });

    const cmd = await api("/api/calls/rest-cmd/commands", { method: "POST", json: { command: "interrupt" } });
    expect(cmd.status, cmd.text).toBe(202);
    expect(cmd.json).toEqual({ id: "rest-cmd" });
    const interruption = await client.waitFor("interruption", undefined, 15_000);
    expect(interruption).toMatchObject({ reason: "command", playId: "long" });
    expect(await client.waitFor("trackEnd", (e) => e.playId === "long", 15_000)).toMatchObject({ reason: "interrupted" });
    await eventually(async () => expect((await api("/api/calls/rest-cmd")).json.speaking).toEqual({ agent: false, caller: false }));

    // UNKNOWN_COMMAND has no HTTP status of its own in the catalogue; REST answers it as the client's error.
    expectErrorBody(await api("/api/calls/rest-cmd/commands", { method: "POST", json: { command: "frobnicate" } }), 400, "UNKNOWN_COMMAND");
    expectErrorBody(await api("/api/calls/rest-cmd/commands", { method: "POST", json: { text: "no command" } }), 400, "BAD_REQUEST");
    // A known command with a wrong field type is refused, and the call goes on.
    const badTts = await api("/api/calls/rest-cmd/commands", { method: "POST", json: { command: "tts", text: 42 } });
    expect(badTts.status).toBe(400);
    expect((await api("/api/calls/rest-cmd")).json.state).toBe("active");

    // history over REST is accepted
    const hist = await api("/api/calls/rest-cmd/commands", { method: "POST", json: { command: "history", speaker: "system", text: "premium member" } });
    expect(hist.status).toBe(202);

    client.hangup();
    await client.closed;
  }, 60_000);

  it("GET …/events streams live Server-Sent Events until hangup; without the header it is the JSONL dump; not dumped is 404", async () => {
    const { client } = await openCall(server, "rest-events");
    const ac = new AbortController();
    const res = await fetch(`${server.baseUrl}/api/calls/rest-events/events`, { headers: { Accept: "text/event-stream" }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const streamed = res.text(); // resolves when the server ends the stream (after hangup)

    const t = await api("/api/calls/rest-events/tts", { method: "POST", json: { text: "Streaming events.", playId: "sse-play" } });
    expect(t.status).toBe(202);
    await client.waitFor("trackEnd", (e) => e.playId === "sse-play", 20_000);
    client.hangup({ reason: "bye" });
    await client.waitFor("hangup");
    const timer = setTimeout(() => ac.abort(), 15_000);
    const body = await streamed;
    clearTimeout(timer);

    const blocks = body.split("\n\n").filter((b) => b.trim() !== "");
    const events = blocks.map((block) => {
      const lines = block.split("\n");
      const name = lines.find((l) => l.startsWith("event:"))?.slice("event:".length).trim();
      const data = lines.find((l) => l.startsWith("data:"))?.slice("data:".length).trim();
      expect(name).toBeDefined();
      const parsed = JSON.parse(data as string) as { event: string; timestamp: number; playId?: string };
      expect(parsed.event).toBe(name);
      expect(Number.isInteger(parsed.timestamp)).toBe(true);
      return parsed;
    });
    const names = events.map((e) => e.event);
    expect(names).toContain("trackStart");
    expect(events.find((e) => e.event === "trackStart")?.playId).toBe("sse-play");
    expect(names.indexOf("trackEnd")).toBeGreaterThan(names.indexOf("trackStart"));
    expect(names[names.length - 1]).toBe("hangup");
    expect(names.filter((n) => n === "hangup")).toHaveLength(1);

    // The JSONL dump
    await waitEnded(server, "rest-events");
    const dump = await api("/api/calls/rest-events/events");
    expect(dump.status).toBe(200);
    expect(dump.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const lines = dump.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; timestamp: number; content: { event?: string; command?: string } });
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(["content", "timestamp", "type"]);
      expect(["event", "command"]).toContain(l.type);
      expect(Number.isInteger(l.timestamp)).toBe(true);
    }
    expect(lines[0]).toMatchObject({ type: "command", content: { command: "invite" } });
    expect(lines.some((l) => l.type === "command" && l.content.command === "tts")).toBe(true);
    expect(lines.some((l) => l.type === "event" && l.content.event === "trackStart")).toBe(true);
    expect(lines[lines.length - 1]).toMatchObject({ type: "event", content: { event: "hangup" } });

    // A call connected with dump=false has no dump
    const nd = await openCall(server, "rest-nodump", {}, { dump: false });
    expectErrorBody(await api("/api/calls/rest-nodump/events"), 404, "NOT_FOUND");
    nd.client.hangup();
    await nd.client.closed;
    await waitEnded(server, "rest-nodump");
    expectErrorBody(await api("/api/calls/rest-nodump/events"), 404, "NOT_FOUND");
    expectErrorBody(await api("/api/calls/no-such-call/events"), 404, "CALL_NOT_FOUND");
  }, 60_000);

  it("GET …/recording serves the WAV of a recorded call, with Range; an unrecorded call is 404", async () => {
    const { client } = await openCall(server, "rest-rec", { recorder: {} });
    const t = await api("/api/calls/rest-rec/tts", { method: "POST", json: { text: "This call is recorded.", playId: "rec" } });
    expect(t.status).toBe(202);
    await client.waitFor("trackEnd", (e) => e.playId === "rec", 20_000);
    client.hangup();
    await client.closed;
    await waitEnded(server, "rest-rec");

    const detail = await api("/api/calls/rest-rec");
    const recording = detail.json.recording as { path: string; bytes: number };
    expect(recording).toMatchObject({ path: expect.stringMatching(/rest-rec\.wav$/), bytes: expect.any(Number) });
    expect(recording.bytes).toBeGreaterThan(44);

    const res = await fetch(`${server.baseUrl}/api/calls/rest-rec/recording`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^audio\/wav/);
    const wav = Buffer.from(await res.arrayBuffer());
    expect(wav.length).toBe(recording.bytes);
    expect(wav.subarray(0, 4).toString("ascii")).toBe("RIFF");
    expect(wav.subarray(8, 12).toString("ascii")).toBe("WAVE");
    expect(wav.readUInt16LE(22)).toBe(2); // stereo by default: caller left, agent right

    const ranged = await fetch(`${server.baseUrl}/api/calls/rest-rec/recording`, { headers: { Range: "bytes=0-11" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 0-11/${wav.length}`);
    const part = Buffer.from(await ranged.arrayBuffer());
    expect(part).toEqual(wav.subarray(0, 12));
    const tail = await fetch(`${server.baseUrl}/api/calls/rest-rec/recording`, { headers: { Range: "bytes=-4" } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(wav.subarray(wav.length - 4));

    // Unrecorded call
    const plain = await openCall(server, "rest-norec");
    expectErrorBody(await api("/api/calls/rest-norec/recording"), 404, "NOT_FOUND");
    plain.client.hangup();
    await plain.client.closed;
    await waitEnded(server, "rest-norec");
    expectErrorBody(await api("/api/calls/rest-norec/recording"), 404, "NOT_FOUND");
    expectErrorBody(await api("/api/calls/no-such-call/recording"), 404, "CALL_NOT_FOUND");
  }, 60_000);

  it("POST /api/playbook/run validates its body and prepares a session the WebSocket picks up", async () => {
    expectErrorBody(await api("/api/playbook/run", { method: "POST", json: { playbook: "hello.md", content: "---\n---\nhi" } }), 400, "BAD_REQUEST");
    expectErrorBody(await api("/api/playbook/run", { method: "POST", json: {} }), 400, "BAD_REQUEST");
    const invalid = expectErrorBody(await api("/api/playbook/run", { method: "POST", json: { content: "---\nllm:\n  provider: 42\nnoSuchKey: true\n---\nHello" } }), 422, "PLAYBOOK_INVALID");
    expect(Array.isArray(invalid.details.errors)).toBe(true);
    expect((invalid.details.errors as unknown[]).length).toBeGreaterThan(0);
    expectErrorBody(await api("/api/playbook/run", { method: "POST", json: { playbook: "../x.md" } }), 400, "INVALID_NAME");
    expectErrorBody(await api("/api/playbook/run", { method: "POST", json: { playbook: "sub/x.md" } }), 400, "INVALID_NAME");
    expectErrorBody(await api("/api/playbook/run", { method: "POST", json: { playbook: "nope.md" } }), 404, "PLAYBOOK_NOT_FOUND");

    const run = await api("/api/playbook/run", { method: "POST", json: { playbook: "hello.md", variables: { customer: "Ada" } } });
    expect(run.status, run.text).toBe(201);
    const id = run.json.id as string;
    expect(run.json).toEqual({ id, sessionId: id, wsUrl: `/call?id=${id}`, expiresAt: expect.stringMatching(RFC3339_MS) });
    expect(Date.parse(run.json.expiresAt as string)).toBeGreaterThan(Date.now());

    // The client opens wsUrl and sends invite without a playbook: the pending one runs (hello.md greets).
    const client = await CallClient.connect(new URL(run.json.wsUrl as string, server.wsUrl));
    client.invite({ codec: "pcm", sampleRate: 16000 });
    expect((await client.waitFor("answer", undefined, 20_000)).trackId).toBe(id);
    await client.waitFor("trackStart", (e) => e.playId === "greeting", 20_000);
    const detail = await api(`/api/calls/${id}?include=variables`);
    expect(detail.json).toMatchObject({ playbook: "hello.md", variables: { customer: "Ada" } });
    client.hangup();
    await client.closed;
  }, 60_000);

  it("compatibility routes /list and /kill/{id}; POST /api/calls is 503 PBX_UNAVAILABLE", async () => {
    const { client } = await openCall(server, "rest-compat", { caller: "alice", callee: "bob" });
    const list = await api("/list");
    expect(list.status).toBe(200);
    const entry = (list.json.active_calls as Record<string, unknown>[]).find((c) => c.id === "rest-compat");
    expect(entry).toMatchObject({
      id: "rest-compat",
      callType: "websocket",
      option: { caller: "alice", callee: "bob" },
      ringTime: expect.stringMatching(RFC3339_MS),
      startTime: expect.stringMatching(RFC3339_MS),
    });

    const kill = await api("/kill/rest-compat");
    expect(kill.status).toBe(200);
    expect(kill.json).toEqual({ status: "killed", id: "rest-compat" });
    expect(await client.waitFor("hangup", undefined, 15_000)).toMatchObject({ reason: "client" });
    expect((await client.closed).code).toBe(1000);
    await waitEnded(server, "rest-compat");
    expect(((await api("/list")).json.active_calls as { id: string }[]).map((c) => c.id)).not.toContain("rest-compat");
    expect((await api("/kill/rest-compat")).json).toEqual({ status: "not_found", id: "rest-compat" });
    expect((await api("/kill/never-was")).json).toEqual({ status: "not_found", id: "never-was" });

    const originate = expectErrorBody(await api("/api/calls", { method: "POST", json: { to: "1000" } }), 503, "PBX_UNAVAILABLE");
    expect(originate.retryable).toBe(true);
  }, 30_000);

  it("GET /metrics counts the finished call by type and reason; GET /openapi.json lists REST and WebSocket paths", async () => {
    const { client } = await openCall(server, "rest-metrics");
    const during = await api("/metrics");
    expect(during.status).toBe(200);
    expect(during.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(during.text).toMatch(/^active_call_calls_active\{type="websocket"\} [1-9]\d*$/m);
    client.hangup();
    await client.closed;
    await waitEnded(server, "rest-metrics");

    const after = await api("/metrics");
    const total = after.text.split("\n").filter((l) => l.startsWith("active_call_calls_total{"));
    const line = total.find((l) => l.includes('type="websocket"') && l.includes('reason="client"'));
    expect(line, after.text).toBeDefined();
    expect(line).toContain('direction="inbound"');
    expect(Number(line?.split(" ").pop())).toBeGreaterThanOrEqual(1);
    expect(after.text).toMatch(/^# TYPE active_call_calls_active gauge$/m);
    expect(after.text).toMatch(/^# TYPE active_call_calls_total counter$/m);

    const doc = await api("/openapi.json");
    expect(doc.status).toBe(200);
    const paths = doc.json.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(paths["/api/calls"]?.get).toBeDefined();
    expect(paths["/api/calls"]?.post).toBeDefined();
    expect(paths["/api/calls/{id}/tts"]?.post).toBeDefined();
    expect(paths["/api/calls/{id}"]?.get).toBeDefined();
    for (const ws of ["/call", "/call/pbx", "/media/twilio"]) {
      expect(paths[ws]?.get?.["x-websocket"], ws).toBe(true);
    }
    expect(String(doc.json.openapi)).toMatch(/^3\.1/);
  }, 30_000);
});

describe("REST and WebSocket authentication with [http] token", () => {
  let server: TestServer;
  const api = (path: string, init?: RequestInit & { json?: unknown }) => request(server.baseUrl, path, init);

  /** Server-side sockets of upgrade requests, by request URL (to check that refused ones are closed). */
  const upgradeSockets: { url: string; socket: Duplex }[] = [];

  beforeAll(async () => {
    server = await startServer({ http: { token: "tok" } });
    server.app.server.prependListener("upgrade", (req: IncomingMessage, socket: Duplex) => upgradeSockets.push({ url: req.url ?? "", socket }));
  });
  afterAll(async () => {
    // A refused upgrade socket left open would keep server.close() waiting forever; the test below reports it.
    for (const { socket } of upgradeSockets) if (!socket.destroyed) socket.destroy();
    await server?.stop();
  });

  it("REST needs the token as Bearer or ?token=; /health does not", async () => {
    const none = expectErrorBody(await api("/api/calls"), 401, "UNAUTHORIZED");
    expect(none.retryable).toBe(false);
    expectErrorBody(await api("/api/calls", { headers: { Authorization: "Bearer wrong" } }), 401, "UNAUTHORIZED");
    expectErrorBody(await api("/api/calls?token=wrong"), 401, "UNAUTHORIZED");
    expectErrorBody(await api("/metrics"), 401, "UNAUTHORIZED");
    expectErrorBody(await api("/list"), 401, "UNAUTHORIZED");
    expect((await api("/api/calls", { headers: { Authorization: "Bearer tok" } })).status).toBe(200);
    expect((await api("/api/calls?token=tok")).status).toBe(200);
    expect((await api("/api/calls?state=all&token=tok")).json).toEqual({ calls: expect.any(Array) });
    expect((await api("/health")).status).toBe(200);
    expect((await api("/ready")).status).toBe(200);
  });

  it("a WebSocket upgrade without the token is refused with HTTP 401; with it the call works", async () => {
    const refused = await CallClient.connect(server.wsUrl, { id: "auth-none" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(CallClientError);
    expect((refused as CallClientError).status).toBe(401);
    const wrong = await CallClient.connect(server.wsUrl, { id: "auth-wrong", token: "nope" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((wrong as CallClientError).status).toBe(401);
    expect((await api("/api/calls?state=all&token=tok")).json.calls).toEqual([]);

    for (const [id, opts] of [
      ["auth-bearer", { token: "tok" }],
      ["auth-query", { token: "tok", tokenInQuery: true, headers: {} }],
    ] as const) {
      const client = await CallClient.connect(server.wsUrl, { id, ...opts });
      client.invite({ codec: "pcm", sampleRate: 16000 });
      expect((await client.waitFor("answer", undefined, 20_000)).trackId).toBe(id);
      const hung = await api(`/api/calls/${id}/hangup`, { method: "POST", headers: { Authorization: "Bearer tok" }, json: {} });
      expect(hung.status).toBe(202);
      expect(await client.waitFor("hangup", undefined, 15_000)).toMatchObject({ reason: "client" });
      expect((await client.closed).code).toBe(1000);
    }
  }, 30_000);

  it("the server closes the connection of a refused upgrade (no half-open socket left behind)", async () => {
    const refused = await CallClient.connect(server.wsUrl, { id: "auth-leak" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((refused as CallClientError).status).toBe(401);
    // The client has closed its end; "refused with HTTP 401 and no upgrade" must not leave the server's end open
    // (each one would hold a file descriptor and keep server.close() waiting forever).
    const sockets = upgradeSockets.filter((u) => u.url.includes("id=auth-leak"));
    expect(sockets).toHaveLength(1);
    await eventually(() => expect(sockets[0]?.socket.destroyed).toBe(true), 5_000);
  });
});

describe("post-call hook delivery", () => {
  let server: TestServer;
  let receiver: HttpReceiver;
  let received: ReceivedRequest[] = [];

  beforeAll(async () => {
    receiver = await startHttpReceiver();
    received = receiver.received;
    server = await startServer({ posthook: { url: `${receiver.origin}/hooks/call-ended`, secret: "s3" } });
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
  });

  it("after hangup the receiver gets one signed POST with event call.ended, the call id and reason client", async () => {
    const { client } = await openCall(server, "rest-hook", { caller: "+15550003", callee: "300", extra: { customer: "Ada" } });
    const hist = await request(server.baseUrl, "/api/calls/rest-hook/commands", { method: "POST", json: { command: "history", speaker: "user", text: "Where is my order?" } });
    expect(hist.status).toBe(202);
    const t = await request(server.baseUrl, "/api/calls/rest-hook/tts", { method: "POST", json: { text: "Your order has shipped.", playId: "hook-reply" } });
    expect(t.status).toBe(202);
    await client.waitFor("trackEnd", (e) => e.playId === "hook-reply", 20_000);
    const hung = await request(server.baseUrl, "/api/calls/rest-hook/hangup", { method: "POST", json: { reason: "resolved" } });
    expect(hung.status).toBe(202);
    await client.closed;
    await waitEnded(server, "rest-hook");

    await eventually(() => expect(received.length).toBeGreaterThanOrEqual(1), 20_000);
    await server.posthooks.idle();
    expect(received).toHaveLength(1);
    const hook = received[0] as (typeof received)[number];
    expect(hook.method).toBe("POST");
    expect(hook.url).toBe("/hooks/call-ended");
    expect(hook.headers["content-type"]).toMatch(/^application\/json/);
    const payload = JSON.parse(hook.body) as Record<string, unknown>;
    expect(payload).toMatchObject({
      event: "call.ended",
      callId: "rest-hook",
      callType: "websocket",
      direction: "inbound",
      caller: "+15550003",
      callee: "300",
      hangupReason: "client",
      hangupInitiator: "client",
      hangupDetail: "resolved",
      deliveryId: expect.any(String),
      startedAt: expect.stringMatching(RFC3339_MS),
      endedAt: expect.stringMatching(RFC3339_MS),
    });
    expect(hook.headers["x-active-call-delivery"]).toBe(payload.deliveryId);
    expect(hook.headers["x-active-call-attempt"]).toBe("1");

    const signature = hook.headers["x-signature"];
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signature).toBe(`sha256=${createHmac("sha256", "s3").update(hook.body).digest("hex")}`);
    expect(verifySignature("s3", hook.body, signature as string)).toBe(true);
    expect(verifySignature("other", hook.body, signature as string)).toBe(false);
  }, 60_000);
});
