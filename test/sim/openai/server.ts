/**
 * A local server that speaks OpenAI's wire protocols (spec/media-protocols.md §5) for tests:
 * - POST …/chat/completions: SSE chunks (content deltas, tool-call deltas by index, finish, usage, [DONE]);
 * - POST …/audio/transcriptions: JSON, or SSE `transcript.text.delta` / `.done` when `stream=true`;
 * - POST …/audio/speech: chunked raw PCM16 LE 24 kHz (chunks of an odd number of bytes);
 * - WS …/realtime: Realtime events (see realtime.ts).
 * Paths are matched by suffix, so `/v1/chat/completions` and Azure's
 * `/openai/deployments/{deployment}/chat/completions?api-version=…` both work.
 *
 * Replies are programmable per test (a queue per route, default replies when empty), with injected faults:
 * an HTTP status (429 with retry-after, 500, 400 …), a stall before the first byte, and a stream dropped after
 * some bytes. Every request is recorded (method, path, query, headers, parsed body) for assertions. The bytes of
 * every streamed body are written in small pieces (split at arbitrary points, also inside UTF-8 characters),
 * each flushed separately.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";
import { RealtimeSim } from "./realtime.js";

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** JSON body, or the multipart fields (the `file` field as its byte length and name). */
  body: Record<string, unknown>;
  /** For multipart requests, the uploaded file. */
  file?: { name: string; type: string; bytes: Uint8Array } | undefined;
  /** Azure deployment from `/deployments/{name}/`. */
  deployment?: string | undefined;
}

/** A fault instead of (or in the middle of) a reply. */
export type Fault =
  | { fault: "status"; status: number; retryAfter?: string | undefined; retryAfterMs?: number | undefined; body?: unknown }
  /** Accept the request and never answer (until the client gives up). */
  | { fault: "stall" }
  /** Send headers and this many body bytes of the normal reply, then destroy the socket. */
  | { fault: "drop"; afterBytes: number; reply?: ChatReply | SpeechReply | TranscriptionReply };

export interface ToolCallSpec {
  id: string;
  name: string;
  /** The arguments JSON text (sent in fragments); may be invalid on purpose. */
  arguments: string;
}

export interface ChatReply {
  text?: string;
  toolCalls?: ToolCallSpec[];
  finishReason?: "stop" | "length" | "tool_calls" | "content_filter" | null;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  /** Characters per content delta (default 3). */
  deltaChars?: number;
  /** Characters per tool-argument fragment (default 4). */
  argChars?: number;
  /** Bytes per socket write (default 7: splits JSON, lines and multi-byte characters). */
  writeBytes?: number;
  /** Delay before the first byte, in ms. */
  delayMs?: number;
}

export interface TranscriptionReply {
  text: string;
  /** Delta size in characters when streaming (default 4). */
  deltaChars?: number;
  writeBytes?: number;
}

export interface SpeechReply {
  /** Samples at 24 kHz; default: a 440 Hz tone of `durationMs`. */
  pcm?: Int16Array;
  durationMs?: number;
  /** Bytes per write (default 1001: odd, so samples split across chunks). */
  writeBytes?: number;
}

type Queued<T> = T | Fault;

export const SIM_RATE = 24000;

export class OpenAiSim {
  readonly requests: RecordedRequest[] = [];
  readonly chat: Queued<ChatReply>[] = [];
  readonly transcriptions: Queued<TranscriptionReply>[] = [];
  readonly speech: Queued<SpeechReply>[] = [];
  readonly realtime = new RealtimeSim();
  private server: Server | undefined;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  /** Requests stalled on purpose, ended at close. */
  private readonly stalled = new Set<ServerResponse>();
  url = "";

  /** Starts on 127.0.0.1 with an ephemeral port; `url` is then the base URL (…/v1). */
  async start(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    server.on("upgrade", (req, socket, head) => {
      const { path, query } = splitUrl(req.url ?? "/");
      if (!path.endsWith("/realtime")) {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.realtime.accept(ws, { path, query, headers: req.headers }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    return this;
  }

  get origin(): string {
    return this.url.replace(/\/v1$/, "");
  }

  /** Forgets recorded requests and queued replies (between tests). */
  reset(): void {
    this.requests.length = 0;
    this.chat.length = 0;
    this.transcriptions.length = 0;
    this.speech.length = 0;
    this.realtime.reset();
  }

  async close(): Promise<void> {
    this.realtime.closeAll();
    for (const res of this.stalled) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.wss.close();
  }

  /** Requests whose path ends with `suffix`. */
  requestsTo(suffix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(suffix));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = splitUrl(req.url ?? "/");
    const raw = await readBody(req);
    const record: RecordedRequest = { method: req.method ?? "GET", path, query, headers: req.headers, body: {} };
    const dep = /\/deployments\/([^/]+)\//.exec(path);
    if (dep) record.deployment = decodeURIComponent(dep[1] as string);
    const type = req.headers["content-type"] ?? "";
    try {
      if (type.includes("multipart/form-data")) {
        const form = await new Request("http://sim/", { method: "POST", headers: { "content-type": type }, body: raw }).formData();
        for (const [key, value] of form.entries()) {
          if (typeof value === "string") record.body[key] = value;
          else {
            const bytes = new Uint8Array(await value.arrayBuffer());
            record.file = { name: value.name, type: value.type, bytes };
            record.body[key] = `<${bytes.length} bytes>`;
          }
        }
      } else if (raw.length > 0) {
        record.body = JSON.parse(new TextDecoder().decode(raw)) as Record<string, unknown>;
      }
    } catch {
      record.body = { _unparsed: raw.length };
    }
    this.requests.push(record);

    if (req.method === "POST" && path.endsWith("/chat/completions")) return this.serve(res, this.chat.shift(), (r) => chatBody(r, record));
    if (req.method === "POST" && path.endsWith("/audio/transcriptions")) {
      return this.serve(res, this.transcriptions.shift(), (r) => transcriptionBody(r, record));
    }
    if (req.method === "POST" && path.endsWith("/audio/speech")) return this.serve(res, this.speech.shift(), (r) => speechBody(r));
    sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: "invalid_request_error" } });
  }

  private async serve<T>(res: ServerResponse, item: Queued<T> | undefined, body: (reply: T | undefined) => Body): Promise<void> {
    if (item && typeof item === "object" && "fault" in item) {
      const fault = item;
      if (fault.fault === "status") {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
        if (fault.retryAfterMs !== undefined) headers["retry-after-ms"] = String(fault.retryAfterMs);
        sendJson(res, fault.status, fault.body ?? { error: { message: `injected ${fault.status}`, type: "sim_error", code: String(fault.status) } }, headers);
        return;
      }
      if (fault.fault === "stall") {
        this.stalled.add(res);
        res.on("close", () => this.stalled.delete(res));
        return;
      }
      const b = body(fault.reply as T | undefined);
      res.writeHead(200, { "content-type": b.type });
      await writePieces(res, b.bytes.subarray(0, fault.afterBytes), b.writeBytes);
      res.socket?.destroy();
      return;
    }
    const b = body(item as T | undefined);
    if (b.delayMs) await new Promise((r) => setTimeout(r, b.delayMs));
    res.writeHead(200, { "content-type": b.type });
    await writePieces(res, b.bytes, b.writeBytes);
    res.end();
  }
}

interface Body {
  type: string;
  bytes: Uint8Array;
  writeBytes: number;
  delayMs?: number | undefined;
}

const enc = new TextEncoder();

function sse(events: unknown[]): Uint8Array {
  let text = ": sim comment\n\n";
  for (const e of events) text += `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`;
  return enc.encode(text);
}

/** Splits by code points (never inside a surrogate pair: JSON would then carry \\ud83d escapes). */
function pieces(text: string, size: number): string[] {
  const chars = [...text];
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
  return out;
}

function lastUserText(record: RecordedRequest): string {
  const messages = (record.body.messages ?? []) as { role: string; content: unknown }[];
  const last = [...messages].reverse().find((m) => m.role === "user");
  return typeof last?.content === "string" ? last.content : "";
}

function chatBody(reply: ChatReply | undefined, record: RecordedRequest): Body {
  const r = reply ?? { text: `You said: ${lastUserText(record)}` };
  const id = "chatcmpl-sim";
  const model = typeof record.body.model === "string" ? record.body.model : "sim";
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id,
    object: "chat.completion.chunk",
    created: 1700000000,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const events: unknown[] = [chunk({ role: "assistant", content: "" })];
  for (const p of pieces(r.text ?? "", r.deltaChars ?? 3)) events.push(chunk({ content: p }));
  for (const [index, tc] of (r.toolCalls ?? []).entries()) {
    events.push(chunk({ tool_calls: [{ index, id: tc.id, type: "function", function: { name: tc.name, arguments: "" } }] }));
    for (const p of pieces(tc.arguments, r.argChars ?? 4)) events.push(chunk({ tool_calls: [{ index, function: { arguments: p } }] }));
  }
  const finish = r.finishReason === undefined ? ((r.toolCalls?.length ?? 0) > 0 ? "tool_calls" : "stop") : r.finishReason;
  if (finish !== null) events.push(chunk({}, finish));
  if (r.usage !== null) {
    const usage = r.usage ?? { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    events.push({ id, object: "chat.completion.chunk", created: 1700000000, model, choices: [], usage });
  }
  events.push("[DONE]");
  return { type: "text/event-stream", bytes: sse(events), writeBytes: r.writeBytes ?? 7, delayMs: r.delayMs };
}

function transcriptionBody(reply: TranscriptionReply | undefined, record: RecordedRequest): Body {
  const r = reply ?? { text: "hello" };
  // whisper-1 ignores `stream` (media-protocols.md §5.2).
  if (record.body.stream === "true" && record.body.model !== "whisper-1") {
    const events: unknown[] = pieces(r.text, r.deltaChars ?? 4).map((delta) => ({ type: "transcript.text.delta", delta }));
    events.push({ type: "transcript.text.done", text: r.text });
    return { type: "text/event-stream", bytes: sse(events), writeBytes: r.writeBytes ?? 5 };
  }
  return { type: "application/json", bytes: enc.encode(JSON.stringify({ text: r.text })), writeBytes: r.writeBytes ?? 64 };
}

export function simTone(durationMs: number, rate = SIM_RATE, hz = 440): Int16Array {
  const n = Math.round((durationMs * rate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(10000 * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

function speechBody(reply: SpeechReply | undefined): Body {
  const pcm = reply?.pcm ?? simTone(reply?.durationMs ?? 200);
  const bytes = new Uint8Array(pcm.length * 2);
  const view = new DataView(bytes.buffer);
  pcm.forEach((s, i) => view.setInt16(i * 2, s, true));
  return { type: "application/octet-stream", bytes, writeBytes: reply?.writeBytes ?? 1001 };
}

/** Writes `bytes` in pieces, each flushed on its own turn so the client sees separate reads. */
async function writePieces(res: ServerResponse, bytes: Uint8Array, size: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += size) {
    if (res.destroyed) return;
    const ok = res.write(bytes.subarray(i, i + size));
    if (!ok) await new Promise((r) => res.once("drain", r));
    await new Promise((r) => setImmediate(r));
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function splitUrl(url: string): { path: string; query: Record<string, string> } {
  const u = new URL(url, "http://sim");
  return { path: u.pathname, query: Object.fromEntries(u.searchParams.entries()) };
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return new Uint8Array(Buffer.concat(chunks));
}
