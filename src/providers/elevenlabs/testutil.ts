/**
 * Tests only (excluded from the build): a local server speaking the ElevenLabs stream-input WebSocket protocol
 * (protocol.ts) on a real loopback socket. It checks what a client must do (the `xi-api-key` header, the first
 * message being a single space, text before the empty end-of-input message) and answers like the service:
 * text is buffered until a flush, 120 characters, or the end of input; each generation streams as base64 PCM
 * chunks with `normalizedAlignment`, then `{"isFinal": true}` and a normal close. Failures are scripted:
 * a rejected key (an error message and close 1008, or HTTP 401 on the handshake), an exhausted quota, a server
 * that never answers, and the server's own input timeout.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { muLawEncode } from "../../audio/index.js";

export const SIM_API_KEY = "el-sim-key-0123456789";
export const SIM_TONE_HZ = 440;
export const SIM_AMPLITUDE = 8000;

export interface SimConnection {
  path: string;
  voiceId: string;
  query: Record<string, string>;
  apiKey: string | undefined;
  /** Every client message, parsed. */
  messages: Array<Record<string, unknown>>;
  /** Texts generated, in order (what each flush or buffer fill spoke). */
  generations: string[];
  audioChunksSent: number;
  /** Chunks that were scheduled but not sent because the socket closed first. */
  audioChunksDropped: number;
  /** When the client's first text message and the first audio arrived/left (ms, Date.now()). */
  firstTextAtMs?: number;
  firstAudioAtMs?: number;
  closed?: { code: number; reason: string; byClient: boolean; atMs: number };
}

export interface SimBehaviour {
  /** "message": accept, send an error message, close 1008 (the service's way); "http": refuse the handshake 401. */
  authFailure: "message" | "http";
  /** The next connections answer their first text with quota_exceeded. */
  quotaExceeded: boolean;
  /** Never send audio (the client's timeout must fire). */
  silent: boolean;
  /** Handshakes refused with 503 before the next one succeeds. */
  refuseNext: number;
  firstAudioDelayMs: number;
  /** Audio per message, and the pause between messages. */
  chunkMs: number;
  chunkIntervalMs: number;
  /** Speech length per character of text. */
  msPerChar: number;
}

const DEFAULTS: SimBehaviour = {
  authFailure: "message",
  quotaExceeded: false,
  silent: false,
  refuseNext: 0,
  firstAudioDelayMs: 30,
  chunkMs: 100,
  chunkIntervalMs: 10,
  msPerChar: 40,
};

const FORMATS: Record<string, { rate: number; ulaw: boolean }> = {
  pcm_8000: { rate: 8000, ulaw: false },
  pcm_16000: { rate: 16000, ulaw: false },
  pcm_22050: { rate: 22050, ulaw: false },
  pcm_24000: { rate: 24000, ulaw: false },
  pcm_44100: { rate: 44100, ulaw: false },
  ulaw_8000: { rate: 8000, ulaw: true },
};

/** The service's default chunk_length_schedule starts at 120 characters. */
const FIRST_CHUNK_CHARS = 120;

export class ElevenLabsSim {
  behaviour: SimBehaviour = { ...DEFAULTS };
  readonly connections: SimConnection[] = [];
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private port = 0;

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  reset(): void {
    this.behaviour = { ...DEFAULTS };
    this.connections.length = 0;
  }

  async start(): Promise<void> {
    const wss = new WebSocketServer({ noServer: true });
    const http = createServer((_req, res) => res.writeHead(404).end());
    http.on("upgrade", (req, socket, head) => {
      const key = header(req, "xi-api-key");
      const reject = (status: number, text: string): void => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"detail":{"status":"error","message":"${text}"}}`);
      };
      if (!/^\/v1\/text-to-speech\/[^/]+\/stream-input$/.test(new URL(req.url ?? "/", "http://x").pathname)) return reject(404, "Not Found");
      if (this.behaviour.refuseNext > 0) {
        this.behaviour.refuseNext--;
        return reject(503, "Service Unavailable");
      }
      if (key !== SIM_API_KEY && this.behaviour.authFailure === "http") return reject(401, "Unauthorized");
      wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, req));
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    this.port = (http.address() as AddressInfo).port;
    this.http = http;
    this.wss = wss;
  }

  async close(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
  }

  private serve(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? "/", "http://x");
    const conn: SimConnection = {
      path: url.pathname,
      voiceId: decodeURIComponent(url.pathname.split("/")[3] ?? ""),
      query: Object.fromEntries(url.searchParams),
      apiKey: header(req, "xi-api-key"),
      messages: [],
      generations: [],
      audioChunksSent: 0,
      audioChunksDropped: 0,
    };
    this.connections.push(conn);
    const b = { ...this.behaviour };
    const format = FORMATS[conn.query.output_format ?? ""];
    let closing = false;
    const fail = (error: string, message: string): void => {
      if (closing) return;
      closing = true;
      ws.send(JSON.stringify({ message, error, code: 1008 }));
      ws.close(1008, message.slice(0, 120));
    };
    ws.on("close", (code, reason) => {
      conn.closed ??= { code, reason: reason.toString(), byClient: !closing, atMs: Date.now() };
    });
    if (conn.apiKey !== SIM_API_KEY) return fail("invalid_api_key", "Invalid API key");
    if (!format) return fail("invalid_output_format", `Invalid output format ${conn.query.output_format ?? "(none)"}`);

    // Generation: one queue per connection, spoken in order, paced like a fast real service.
    const queue: string[] = [];
    let speaking = false;
    let inputEnded = false;
    let buffer = "";
    let inactivity: NodeJS.Timeout | undefined;
    const inactivityMs = Number(conn.query.inactivity_timeout ?? 20) * 1000;
    const armInactivity = (): void => {
      clearTimeout(inactivity);
      if (inputEnded) return;
      inactivity = setTimeout(
        () => fail("input_timeout_exceeded", `Have not received a new text input within the timeout of ${inactivityMs / 1000} seconds. Streaming input terminated.`),
        inactivityMs,
      );
    };
    const maybeEnd = (): void => {
      if (b.silent) return;
      if (inputEnded && !speaking && queue.length === 0 && !closing) {
        closing = true;
        ws.send(JSON.stringify({ isFinal: true }));
        ws.close(1000);
      }
    };
    const speak = async (): Promise<void> => {
      if (speaking) return;
      speaking = true;
      while (queue.length > 0 && ws.readyState === ws.OPEN) {
        const text = queue.shift() as string;
        conn.generations.push(text);
        if (b.silent) continue;
        const samples = Math.round(((text.length * b.msPerChar) / 1000) * format.rate);
        const perChunk = Math.round((b.chunkMs / 1000) * format.rate);
        const chunks = Math.ceil(samples / perChunk);
        for (let i = 0, at = 0; i < chunks; i++, at += perChunk) {
          await delay(conn.audioChunksSent === 0 ? b.firstAudioDelayMs : b.chunkIntervalMs);
          if (ws.readyState !== ws.OPEN) {
            conn.audioChunksDropped += chunks - i;
            break;
          }
          const pcm = tone(Math.min(perChunk, samples - at), at, format.rate);
          const bytes = format.ulaw ? Buffer.from(muLawEncode(pcm, new Uint8Array(pcm.length))) : Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
          const chars = i === 0 ? [...text] : [];
          ws.send(
            JSON.stringify({
              audio: bytes.toString("base64"),
              isFinal: null,
              normalizedAlignment: i === 0 ? { chars, charStartTimesMs: chars.map((_, k) => k * b.msPerChar), charDurationsMs: chars.map(() => b.msPerChar) } : null,
              alignment: null,
            }),
          );
          conn.firstAudioAtMs ??= Date.now();
          conn.audioChunksSent++;
        }
      }
      speaking = false;
      maybeEnd();
    };
    const generate = (): void => {
      const text = buffer.trim();
      buffer = "";
      if (text !== "") queue.push(text);
      void speak();
    };

    armInactivity();
    ws.on("message", (data, isBinary) => {
      if (closing) return;
      if (isBinary) return fail("invalid_message", "Binary messages are not supported");
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        return fail("invalid_message", "Invalid JSON");
      }
      conn.messages.push(m);
      if (typeof m.text !== "string") return fail("invalid_message", "text is required");
      if (conn.messages.length === 1) {
        if (m.text !== " ") fail("invalid_message", 'The first message must have text " "');
        return armInactivity();
      }
      if (m.voice_settings !== undefined) return fail("invalid_message", "voice_settings field must be provided in the first message");
      if (m.text === "") {
        inputEnded = true;
        clearTimeout(inactivity);
        generate();
        return maybeEnd();
      }
      conn.firstTextAtMs ??= Date.now();
      if (b.quotaExceeded) {
        return fail("quota_exceeded", "This request exceeds your quota of 10000. You have 12 credits remaining, while 57 credits are required for this request.");
      }
      armInactivity();
      buffer += m.text;
      if (m.flush === true || m.try_trigger_generation === true || buffer.length >= FIRST_CHUNK_CHARS) generate();
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The sim's voice: a sine at SIM_TONE_HZ, continuous across chunks (`offset` = samples already generated). */
export function tone(samples: number, offset: number, rate: number): Int16Array {
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++) pcm[i] = Math.round(SIM_AMPLITUDE * Math.sin((2 * Math.PI * SIM_TONE_HZ * (offset + i)) / rate));
  return pcm;
}

/** One simulator per test file, reset before every test. */
export function useElevenLabsSim(): ElevenLabsSim {
  const sim = new ElevenLabsSim();
  beforeAll(async () => {
    await sim.start();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());
  return sim;
}
