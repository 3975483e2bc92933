/**
 * AudioForkClient: FreeSWITCH's side of a mod_audio_fork WebSocket, as recorded in
 * shared/fixtures/freeswitch/audio-fork-ws (media-protocols.md §2.3–2.7), for tests.
 *
 * - Connects offering subprotocol `audio.drachtio.org` (the upgrade fails, as with libwebsockets, when the server
 *   does not echo it), then sends the metadata text frame first (verbatim, when given).
 * - `streamPcm` sends caller audio as binary L16 frames of the caller's packetisation (640 B / 20 ms at 16 kHz,
 *   960 B / 30 ms for ptime 30, 320 B / 20 ms at 8 kHz) in real time (scaled by `speed`) or as fast as possible.
 * - Agent audio received (binary, L16 at `playbackRate`) "plays" in real time (scaled by `speed`): a `mark` is
 *   answered `{"type": "mark", "data": {"name":"<name>", "event": "playout"}}` (spaces exactly as recorded) once the
 *   audio received before it has played (at once when nothing is queued); `killAudio` empties the playout
 *   buffer and answers every pending mark with `"event": "cleared"`, in order. `clearMarks` clears marks too.
 * - `answerMarks: false` models a channel without `send_silence_when_idle` (no reply ever comes back).
 * - Everything is logged in `frames` (both directions, frames.jsonl shape: t_ms, dir, type, len, text).
 * - `shutdown()` = graceful shutdown (zero-length binary frame); `close(code)` closes the socket.
 */
import { WebSocket } from "ws";

export const FORK_SUBPROTOCOL = "audio.drachtio.org";

export type ForkDirection = "freeswitch->server" | "server->freeswitch";

export interface ForkFrameRecord {
  t_ms: number;
  dir: ForkDirection;
  type: "text" | "binary" | "close";
  len?: number;
  text?: string;
  code?: number;
  /** Binary content (kept for both directions). */
  data?: Buffer;
}

export interface AudioForkClientOptions {
  url: string;
  /** First text frame (omitted when undefined). */
  metadata?: string | undefined;
  /** Subprotocol offered (default audio.drachtio.org). */
  protocol?: string;
  /** Rate of the agent audio the server sends (argv 9; default 16000). */
  playbackRate?: number;
  /** Real-time behaviour (frame cadence, playout) runs this many times faster (default 1). */
  speed?: number;
  /** Answer marks (default true; false = channel without send_silence_when_idle). */
  answerMarks?: boolean;
}

export interface StreamOptions {
  /** Bytes per binary frame (default 640 = 20 ms at 16 kHz). */
  frameBytes?: number;
  /** Time between frames (default 20). */
  frameMs?: number;
  /** Pace the frames (default true); false = send them all at once. */
  realTime?: boolean;
  /** Stop early (e.g. when the test is done). */
  signal?: AbortSignal;
}

/** The mark reply FS sends, byte for byte (built by string concatenation in mod_audio_fork). */
export function markReplyText(name: string, event: "playout" | "cleared"): string {
  return `{"type": "mark", "data": {"name":"${name}", "event": "${event}"}}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export class AudioForkClient {
  readonly frames: ForkFrameRecord[] = [];
  /** Binary frames received (agent audio). */
  readonly receivedAudio: Buffer[] = [];
  /** Text frames received. */
  readonly receivedTexts: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private readonly ws: WebSocket;
  private readonly speed: number;
  private readonly playbackRate: number;
  private readonly answerMarks: boolean;
  private readonly t0 = performance.now();
  /** Real time (performance.now) at which the audio received so far has played out. */
  private playoutEnd = 0;
  private readonly pendingMarks: { name: string; timer: ReturnType<typeof setTimeout> }[] = [];
  private readonly waiters: (() => void)[] = [];

  private constructor(ws: WebSocket, options: AudioForkClientOptions) {
    this.ws = ws;
    this.speed = options.speed ?? 1;
    this.playbackRate = options.playbackRate ?? 16000;
    this.answerMarks = options.answerMarks ?? true;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        for (const m of this.pendingMarks.splice(0)) clearTimeout(m.timer);
        this.record({ dir: "server->freeswitch", type: "close", code });
        resolve({ code, reason: reason.toString("utf8") });
        this.wake();
      });
    });
    ws.on("message", (data, isBinary) => this.onMessage(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary));
  }

  /** Connects, checks the subprotocol was echoed, and sends the metadata first. */
  static async connect(options: AudioForkClientOptions): Promise<AudioForkClient> {
    const protocol = options.protocol ?? FORK_SUBPROTOCOL;
    const ws = new WebSocket(options.url, protocol);
    const client = new AudioForkClient(ws, options);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`Unexpected server response: ${res.statusCode ?? 0}`)));
    });
    if (ws.protocol !== protocol) {
      ws.terminate();
      throw new Error(`the server did not echo subprotocol ${protocol} (got "${ws.protocol}")`);
    }
    if (options.metadata !== undefined) client.sendText(options.metadata);
    return client;
  }

  /** The subprotocol the server answered. */
  get protocol(): string {
    return this.ws.protocol;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** ms since the connection (for records). */
  get elapsedMs(): number {
    return performance.now() - this.t0;
  }

  /** FS→server text (send_text, stop text...). */
  sendText(text: string): void {
    this.ws.send(text, { binary: false });
    this.record({ dir: "freeswitch->server", type: "text", len: Buffer.byteLength(text), text });
  }

  /** One binary frame of caller audio, as is. */
  sendAudio(bytes: Buffer): void {
    this.ws.send(bytes, { binary: true });
    this.record({ dir: "freeswitch->server", type: "binary", len: bytes.length, data: bytes });
  }

  /**
   * Sends `pcm` (L16 little-endian) cut into `frameBytes` frames every `frameMs` (scaled by `speed`; drift-free),
   * or all at once. A short tail is sent as a short frame.
   */
  async streamPcm(pcm: Buffer, options: StreamOptions = {}): Promise<number> {
    const frameBytes = options.frameBytes ?? 640;
    const frameMs = options.frameMs ?? 20;
    const realTime = options.realTime ?? true;
    const start = performance.now();
    let n = 0;
    for (let off = 0; off < pcm.length; off += frameBytes) {
      if (!this.open || options.signal?.aborted) break;
      if (realTime) await sleep(start + (n * frameMs) / this.speed - performance.now());
      if (!this.open) break;
      this.sendAudio(pcm.subarray(off, Math.min(pcm.length, off + frameBytes)));
      n++;
    }
    return n;
  }

  /** Graceful shutdown: a zero-length binary frame (`uuid_audio_fork … graceful-shutdown`). */
  shutdown(): void {
    this.ws.send(Buffer.alloc(0), { binary: true });
    this.record({ dir: "freeswitch->server", type: "binary", len: 0, data: Buffer.alloc(0) });
  }

  close(code = 1000, reason = ""): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.record({ dir: "freeswitch->server", type: "close", code });
      this.ws.close(code, reason);
    }
    return this.closed;
  }

  /** Resolves when `predicate` holds (checked on every received frame), rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error("AudioForkClient.waitFor timed out");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Total agent audio received, in bytes. */
  get receivedAudioBytes(): number {
    return this.receivedAudio.reduce((n, b) => n + b.length, 0);
  }

  /** Agent audio not yet "played" (ms of real time, unscaled). */
  get queuedPlayoutMs(): number {
    return Math.max(0, this.playoutEnd - performance.now()) * this.speed;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.record({ dir: "server->freeswitch", type: "binary", len: data.length, data });
      this.receivedAudio.push(data);
      const ms = (data.length / 2 / this.playbackRate) * 1000;
      this.playoutEnd = Math.max(this.playoutEnd, performance.now()) + ms / this.speed;
      this.wake();
      return;
    }
    const text = data.toString("utf8");
    this.record({ dir: "server->freeswitch", type: "text", len: data.length, text });
    this.receivedTexts.push(text);
    let msg: { type?: unknown; data?: { name?: unknown } } | undefined;
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      msg = undefined; // FS only logs non-JSON text
    }
    if (msg?.type === "mark" && typeof msg.data?.name === "string") this.onMark(msg.data.name);
    else if (msg?.type === "killAudio" || msg?.type === "clearMarks") {
      if (msg.type === "killAudio") this.playoutEnd = performance.now();
      for (const m of this.pendingMarks.splice(0)) {
        clearTimeout(m.timer);
        if (this.answerMarks) this.sendText(markReplyText(m.name, "cleared"));
      }
    }
    this.wake();
  }

  private onMark(name: string): void {
    if (!this.answerMarks) return;
    const wait = this.playoutEnd - performance.now();
    if (wait <= 0) {
      this.sendText(markReplyText(name, "playout"));
      return;
    }
    const entry = {
      name,
      timer: setTimeout(() => {
        const i = this.pendingMarks.indexOf(entry);
        if (i < 0) return;
        // Marks play out in order.
        for (const m of this.pendingMarks.splice(0, i + 1)) {
          clearTimeout(m.timer);
          if (this.open) this.sendText(markReplyText(m.name, "playout"));
        }
      }, wait),
    };
    this.pendingMarks.push(entry);
  }

  private record(r: Omit<ForkFrameRecord, "t_ms">): void {
    this.frames.push({ t_ms: Math.round(this.elapsedMs * 1000) / 1000, ...r });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
