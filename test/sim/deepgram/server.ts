/**
 * A local Deepgram for tests, speaking the documented wire protocol:
 * - `GET /v1/listen` WebSocket upgrade with `Authorization: Token <key>` (401 + JSON + dg-request-id otherwise);
 *   binary linear16 audio in; `Results` (interim, is_final, speech_final, from_finalize, words with times that
 *   tile the timeline), `Metadata` on CloseStream, then close 1000; `Finalize`, `KeepAlive`, `CloseStream` in.
 *   "Recognition" is by energy: a speech segment is the next entry of `script`, its words revealed by interim
 *   results as the speech goes on, final at `endpointing` ms of silence (or on Finalize / CloseStream).
 * - `POST /v1/speak?model&encoding=linear16&sample_rate&container=none` streaming a 440 Hz tone in 20 ms chunks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export interface SpeakRequest {
  query: Record<string, string>;
  text: string;
  authorization: string | undefined;
  /** PCM bytes written before the response ended or the client went away. */
  bytesSent: number;
  /** True when the client closed the connection before the whole body was sent. */
  aborted: boolean;
}

export interface ListenSession {
  query: Record<string, string>;
  authorization: string | undefined;
  /** Text messages received (`Finalize`, `KeepAlive`, `CloseStream`), by type. */
  controls: string[];
  audioBytes: number;
  closed: boolean;
}

export class DeepgramSim {
  apiKey = "dg-test-key";
  /** Transcripts of the caller's speech segments, in order. */
  script: string[] = [];
  /** Whether Finalize is answered with a from_finalize result (Deepgram may not, when nothing is buffered). */
  answerFinalize = true;
  /** Upgrade requests are left unanswered (handshake timeout). */
  hangUpgrade = false;
  speech = { durationMs: 600, chunkMs: 20, chunkDelayMs: 10, firstByteDelayMs: 0 };
  readonly speak: SpeakRequest[] = [];
  readonly listens: ListenSession[] = [];
  private server: Server | undefined;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private nextScript = 0;

  get url(): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.script = [];
    this.nextScript = 0;
    this.answerFinalize = true;
    this.hangUpgrade = false;
    this.speech = { durationMs: 600, chunkMs: 20, chunkDelayMs: 10, firstByteDelayMs: 0 };
    this.speak.length = 0;
    this.listens.length = 0;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.onRequest(req, res));
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Token ${this.apiKey}`;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (this.hangUpgrade) return;
    if (url.pathname !== "/v1/listen") {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    if (!this.authorized(req)) {
      const body = JSON.stringify({ err_code: "INVALID_AUTH", err_msg: "Invalid credentials.", request_id: "sim-req-401" });
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ndg-request-id: sim-req-401\r\ndg-error: Invalid credentials.\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.listen(ws, req, url));
  }

  private listen(ws: WebSocket, req: IncomingMessage, url: URL): void {
    const query = Object.fromEntries(url.searchParams);
    const session: ListenSession = { query, authorization: req.headers.authorization, controls: [], audioBytes: 0, closed: false };
    this.listens.push(session);
    const rate = Number(query.sample_rate ?? 16000);
    const endpointing = query.endpointing === "false" ? Infinity : Number(query.endpointing ?? 10) / 1000;
    let t = 0; // seconds of audio received
    let finalEnd = 0; // where the last final result ended (results tile the timeline)
    let seg: { text: string[]; start: number; lastVoice: number; shown: number } | undefined;
    const send = (m: object) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(m));
    const results = (words: string[], segStart: number, isFinal: boolean, extra: object = {}) => {
      const start = finalEnd;
      const span = Math.max(0.05, t - segStart);
      const list = words.map((w, i) => ({ word: w.toLowerCase(), punctuated_word: w, start: segStart + (i * span) / Math.max(1, words.length), end: segStart + ((i + 1) * span) / Math.max(1, words.length), confidence: 0.99 }));
      send({ type: "Results", channel_index: [0, 1], start, duration: t - start, is_final: isFinal, speech_final: false, ...extra, channel: { alternatives: [{ transcript: words.join(" "), confidence: 0.99, words: list }] } });
      if (isFinal) finalEnd = t;
    };
    const flush = (extra: object) => {
      if (seg) {
        results(seg.text, seg.start, true, extra);
        seg = undefined;
      } else if (t > finalEnd) {
        results([], finalEnd, true, extra);
      }
    };
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        const buf = data as Buffer;
        session.audioBytes += buf.length;
        let sum = 0;
        for (let i = 0; i + 1 < buf.length; i += 2) sum += Math.abs(buf.readInt16LE(i));
        const loud = sum / Math.max(1, buf.length / 2) > 500;
        t += buf.length / 2 / rate;
        if (loud) {
          seg ??= { text: (this.script[this.nextScript++] ?? "").split(/\s+/).filter(Boolean), start: t - buf.length / 2 / rate, lastVoice: t, shown: 0 };
          seg.lastVoice = t;
          // An interim every 100 ms of speech, one more word each time.
          const due = Math.min(seg.text.length, Math.floor((t - seg.start) / 0.1));
          if (due > seg.shown) {
            seg.shown = due;
            results(seg.text.slice(0, due), seg.start, false);
          }
        } else if (seg && t - seg.lastVoice >= endpointing) {
          results(seg.text, seg.start, true, { speech_final: true });
          seg = undefined;
        }
        return;
      }
      const m = JSON.parse(data.toString()) as { type: string };
      session.controls.push(m.type);
      if (m.type === "Finalize" && this.answerFinalize) flush({ from_finalize: true });
      if (m.type === "CloseStream") {
        flush({});
        send({ type: "Metadata", transaction_key: "deprecated", request_id: "sim-req", sha256: "", created: new Date().toISOString(), duration: t, channels: 1 });
        ws.close(1000);
      }
    });
    ws.on("close", () => (session.closed = true));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== "POST" || url.pathname !== "/v1/speak") {
      res.writeHead(404).end();
      return;
    }
    if (!this.authorized(req)) {
      res.writeHead(401, { "content-type": "application/json", "dg-request-id": "sim-req-401" });
      res.end(JSON.stringify({ err_code: "INVALID_AUTH", err_msg: "Invalid credentials.", request_id: "sim-req-401" }));
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const body = JSON.parse(Buffer.concat(chunks).toString() || "{}") as { text?: string };
    const record: SpeakRequest = { query, text: body.text ?? "", authorization: req.headers.authorization, bytesSent: 0, aborted: false };
    this.speak.push(record);
    const rate = Number(query.sample_rate ?? 24000);
    const { durationMs, chunkMs, chunkDelayMs, firstByteDelayMs } = this.speech;
    let gone = false;
    res.on("close", () => {
      if (!res.writableFinished) {
        gone = true;
        record.aborted = true;
      }
    });
    await sleep(firstByteDelayMs);
    if (gone) return;
    res.writeHead(200, { "content-type": "audio/l16", "dg-request-id": "sim-req", "dg-model-name": query.model ?? "", "dg-char-count": String(record.text.length) });
    const perChunk = Math.round((rate * chunkMs) / 1000);
    let n = 0;
    for (let sent = 0; sent < (durationMs * rate) / 1000 && !gone; sent += perChunk) {
      const buf = Buffer.alloc(perChunk * 2);
      for (let i = 0; i < perChunk; i++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * n++) / rate)), i * 2);
      res.write(buf);
      record.bytesSent += buf.length;
      await sleep(chunkDelayMs);
    }
    if (!gone) res.end();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
