/**
 * One stream-input connection: open the socket (key in the `xi-api-key` header only), send the init message,
 * send the text as it is read while audio comes back, end the input, and yield decoded audio until `isFinal`.
 *
 * Time limits (all `timeoutMs`): the handshake; the first audio after the first text was sent; and, once the
 * input has ended, every gap between server messages. While the LLM is still writing, silence from the server is
 * normal (it is waiting for text) and is bounded by the LLM's own timeout instead.
 *
 * Cancelling (the signal aborts, or the consumer stops iterating) closes the socket at once: the server stops
 * generating, and no audio received after that point is delivered.
 */
import WebSocket from "ws";
import { AppError } from "../../errors.js";
import { providerError } from "../retry.js";
import { closeError, ELEVENLABS_PROVIDER, END_OF_INPUT, handshakeError, initMessage, parseServerMessage, streamInputUrl, textMessage, type StreamEndpoint, type VoiceSettings } from "./protocol.js";
import { TextChunker, type TextFeed } from "./text-feed.js";

export interface StreamRequest {
  endpoint: StreamEndpoint;
  apiKey: string;
  voiceSettings?: VoiceSettings | undefined;
  timeoutMs: number;
  feed: TextFeed;
  signal: AbortSignal;
}

/** Audio chunks not yet taken by the consumer above which the socket stops reading (TCP backpressure). */
const HIGH_WATER = 64;
const LOW_WATER = 16;

/** Received audio and the end of the stream, with the timers that bound the waits. */
class Inbox {
  private readonly items: Int16Array[] = [];
  private head = 0;
  private ended = false;
  private failure: AppError | undefined;
  private wakeUp: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private opened = false;
  private paused = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
  ) {}

  get finished(): boolean {
    return this.ended || this.failure !== undefined;
  }

  push(pcm: Int16Array): void {
    if (this.finished) return;
    this.items.push(pcm);
    if (this.items.length - this.head > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    this.wake();
  }

  finish(): void {
    if (this.finished) return;
    this.ended = true;
    this.disarm();
    this.wake();
  }

  fail(error: AppError): void {
    if (this.finished) return;
    this.failure = error;
    this.disarm();
    this.wake();
  }

  /** Fails the stream with TIMEOUT unless something arrives within timeoutMs. */
  arm(what: string): void {
    this.disarm();
    if (this.timeoutMs <= 0 || this.finished) return;
    this.timer = setTimeout(
      () => this.fail(new AppError("TIMEOUT", `elevenlabs: ${what} within ${this.timeoutMs} ms`, { details: { provider: ELEVENLABS_PROVIDER, timeoutMs: this.timeoutMs } })),
      this.timeoutMs,
    );
  }

  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The socket opened. */
  open(): void {
    this.opened = true;
    this.wake();
  }

  /** Waits until the socket is open (true) or the stream already ended or failed (false). */
  async ready(signal: AbortSignal): Promise<boolean> {
    while (!this.opened && !this.finished) await this.change(signal);
    return this.opened && !this.finished;
  }

  /** The next audio chunk, or undefined at the end; throws the stream's error, or the signal's reason. */
  async next(signal: AbortSignal): Promise<Int16Array | undefined> {
    for (;;) {
      signal.throwIfAborted();
      if (this.head < this.items.length) {
        const pcm = this.items[this.head] as Int16Array;
        this.items[this.head++] = EMPTY;
        if (this.head === this.items.length) {
          this.items.length = 0;
          this.head = 0;
        }
        if (this.paused && this.items.length - this.head < LOW_WATER) {
          this.paused = false;
          this.ws.resume();
        }
        return pcm;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return undefined;
      await this.change(signal);
    }
  }

  private change(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener("abort", onAbort, { once: true });
      this.wakeUp = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }
}

const EMPTY = new Int16Array(0);

/** Runs one connection; yields PCM16 chunks at the output format's rate. */
export async function* streamOnce(r: StreamRequest): AsyncGenerator<Int16Array> {
  const { endpoint, signal } = r;
  signal.throwIfAborted();
  const ws = new WebSocket(streamInputUrl(endpoint), { headers: { "xi-api-key": r.apiKey } });
  const inbox = new Inbox(ws, r.timeoutMs);
  let inputEnded = false;
  let audioSeen = false;
  inbox.arm("no connection");

  ws.once("open", () => inbox.open());
  ws.on("unexpected-response", (_req, res) => {
    res.resume();
    inbox.fail(handshakeError(res.statusCode ?? 0));
    ws.terminate();
  });
  ws.on("error", (err) => {
    // Only the error's kind: the headers (the key) are never part of it.
    const code = (err as NodeJS.ErrnoException).code;
    inbox.fail(providerError(ELEVENLABS_PROVIDER, `elevenlabs: connection failed (${code ?? err.message})`, { cause: err, retryable: true }));
  });
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const m = parseServerMessage(String(data), endpoint.outputFormat);
    if (m.type === "audio") {
      audioSeen = true;
      if (inputEnded) inbox.arm("the audio stalled");
      else inbox.disarm();
      inbox.push(m.pcm);
    } else if (m.type === "final") {
      inbox.finish();
    } else if (m.type === "error") {
      inbox.fail(m.error);
    } else if (inputEnded) {
      inbox.arm("the audio stalled");
    }
  });
  ws.on("close", (code, reason) => {
    // A normal close after all the input was sent ends the stream even without `isFinal`.
    if (code === 1000 && inputEnded) inbox.finish();
    else inbox.fail(closeError(code, reason.toString()));
  });

  const send = (message: string): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(message);
  };
  const pumpAbort = new AbortController();
  const pumpSignal = AbortSignal.any([signal, pumpAbort.signal]);
  const pump = async (): Promise<void> => {
    const chunker = new TextChunker();
    let sentAny = false;
    const sendChunk = (text: string, flush: boolean): void => {
      send(textMessage(text, flush));
      if (!sentAny && !audioSeen) inbox.arm("no audio");
      sentAny = true;
    };
    if (r.feed.whole) {
      // The whole text at once (the serial pipeline's sentences): one message, flushed.
      const text = ((await r.feed.get(0, pumpSignal)) ?? "").trim();
      if (text !== "") sendChunk(`${text} `, true);
    } else {
      for (let i = 0; ; i++) {
        const delta = await r.feed.get(i, pumpSignal);
        if (delta === undefined) break;
        for (const c of chunker.push(delta)) sendChunk(c.text, c.flush);
      }
      const last = chunker.end();
      if (last) sendChunk(last.text, last.flush);
    }
    inputEnded = true;
    send(END_OF_INPUT);
    inbox.arm(audioSeen ? "the audio stalled" : "no audio");
  };

  try {
    if (await inbox.ready(signal)) {
      inbox.disarm();
      send(initMessage(r.voiceSettings));
      pump().catch((err: unknown) => {
        if (pumpSignal.aborted) return;
        inbox.fail(err instanceof AppError ? err : providerError(ELEVENLABS_PROVIDER, `elevenlabs: the text source failed (${(err as Error).message})`, { cause: err, retryable: false }));
      });
    }
    for (;;) {
      const pcm = await inbox.next(signal);
      if (pcm === undefined) return;
      if (pcm.length > 0) yield pcm;
    }
  } finally {
    pumpAbort.abort();
    inbox.disarm();
    inbox.finish();
    ws.removeAllListeners("message");
    ws.on("error", () => undefined);
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
    } else if (ws.readyState === WebSocket.OPEN) {
      // Cancelled or done: close now; a server that does not answer the close is cut off shortly after.
      ws.close(1000, inputEnded && !signal.aborted ? "done" : "cancelled");
      const cut = setTimeout(() => ws.terminate(), 1000);
      cut.unref();
      ws.once("close", () => clearTimeout(cut));
    }
  }
}
