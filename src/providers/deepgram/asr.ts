/**
 * Deepgram live ASR (listen v1 WebSocket): one socket per call, opened at the first caller frame (so its rate
 * is known), with `interim_results` and `endpointing`. Caller audio streams continuously as raw linear16; the
 * pipeline's VAD still numbers the utterances: `endUtterance` records the audio time of the boundary and sends
 * `Finalize`, and the utterance's `final` is emitted once Deepgram has finalised the audio up to that boundary
 * (is_final results tile the timeline; a `speech_final` from endpointing or the `from_finalize` answer get
 * there without waiting), or after FINAL_WAIT_MS with what is known (Deepgram may not answer a Finalize when
 * nothing is buffered). Words are assigned to utterances by their start time, so a result that spans a
 * boundary is split. `close()` sends `CloseStream` (the server flushes and closes); an abort closes at once.
 */
import WebSocket from "ws";
import { resample, type AudioFrame } from "../../audio/index.js";
import type { AppError } from "../../errors.js";
import { BoundedChannel } from "../../util/channel.js";
import type { AsrCapabilities, AsrProvider, AsrResult, AsrSession, AsrUtterance, CallOptions } from "../types.js";
import { authHeaders, closeError, deepgramUrl, httpError, timeoutError, type DeepgramEndpoint } from "./protocol.js";

export interface DeepgramAsrOptions extends DeepgramEndpoint {
  model: string;
  language?: string | undefined;
  /** Deepgram's endpointing (ms of silence for `speech_final`); 0 = off. */
  endpointingMs: number;
}

/** How long an ended utterance waits for Deepgram to finalise it before its final is emitted from what is known. */
export const FINAL_WAIT_MS = 1500;
const KEEPALIVE_MS = 4000;
/** Audio held while the socket connects (beyond it, frames are dropped and not counted on the timeline). */
const MAX_QUEUED_SECONDS = 30;
/** Deepgram times are rounded to ms; a boundary counts as reached within this much. */
const EPSILON_S = 0.02;

interface Word {
  word?: string;
  punctuated_word?: string;
  start?: number;
}
interface ResultsMessage {
  type: "Results";
  start?: number;
  duration?: number;
  is_final?: boolean;
  speech_final?: boolean;
  from_finalize?: boolean;
  channel?: { alternatives?: { transcript?: string; words?: Word[] }[] };
}

interface Utterance {
  index: number;
  /** Audio time (s) where it ends; Infinity while it is the one being spoken. */
  boundary: number;
  finals: string[];
  interim: string;
  lastPartial: string;
  timer?: NodeJS.Timeout | undefined;
}

export class DeepgramAsr implements AsrProvider {
  readonly name = "deepgram";
  readonly capabilities: AsrCapabilities = { streaming: true, endpointed: false, sampleRates: [8000, 16000, 24000, 48000], languages: "any" };

  constructor(readonly options: DeepgramAsrOptions) {}

  session(options: CallOptions = {}): AsrSession {
    return new DeepgramAsrSession(this.options, options.signal);
  }

  /** One endpointed utterance over its own session (the pipeline uses `session`). */
  async *transcribe(utterance: AsrUtterance, options: CallOptions = {}): AsyncGenerator<AsrResult> {
    const s = this.session(options);
    const step = Math.max(1, Math.round(utterance.sampleRate / 50));
    for (let i = 0; i < utterance.pcm.length; i += step) s.write({ pcm: utterance.pcm.subarray(i, i + step), sampleRate: utterance.sampleRate, timestampMs: 0 });
    s.endUtterance();
    s.close();
    for await (const r of s.results) {
      if (r.type === "error") throw r.error;
      yield r;
    }
  }
}

/** The listen URL for a session at `sampleRate` (exposed for tests). */
export function listenUrl(o: DeepgramAsrOptions, sampleRate: number): string {
  return deepgramUrl(
    o,
    "/v1/listen",
    {
      model: o.model,
      language: o.language,
      encoding: "linear16",
      sample_rate: sampleRate,
      channels: 1,
      interim_results: true,
      punctuate: true,
      endpointing: o.endpointingMs > 0 ? o.endpointingMs : "false",
    },
    true,
  );
}

export class DeepgramAsrSession implements AsrSession {
  private readonly channel = new BoundedChannel<AsrResult>({ capacity: 256, policy: "block" });
  private ws: WebSocket | undefined;
  private open = false;
  private queued: Buffer[] = [];
  private rate = 0;
  /** Samples accepted so far (the stream's timeline). */
  private samples = 0;
  private lastSendAt = 0;
  private keepAlive: NodeJS.Timeout | undefined;
  private finalizedUpTo = 0;
  /** The last result was a speech_final (Deepgram's endpointing) and no words came since: the caller is quiet. */
  private quiet = false;
  private next = 0;
  private readonly utterances: Utterance[] = [];
  private closing = false;
  private done = false;

  constructor(
    private readonly o: DeepgramAsrOptions,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.utterances.push(this.newUtterance());
    signal?.addEventListener("abort", () => this.shutdown(), { once: true });
  }

  get results(): AsyncIterable<AsrResult> {
    return this.channel;
  }

  write(frame: AudioFrame): void {
    if (this.closing || this.done) return;
    if (this.rate === 0) {
      this.rate = frame.sampleRate;
      this.connect();
    }
    const pcm = frame.sampleRate === this.rate ? frame.pcm : resample(frame.pcm, frame.sampleRate, this.rate);
    if (pcm.length === 0) return; // an empty binary frame would end the stream
    const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    if (this.open) {
      // ws masks (copies) the payload synchronously, so the caller may reuse its frame.
      this.ws?.send(bytes);
      this.lastSendAt = Date.now();
    } else {
      if (this.samples + pcm.length > MAX_QUEUED_SECONDS * this.rate) return;
      this.queued.push(Buffer.from(bytes));
    }
    this.samples += pcm.length;
  }

  endUtterance(): void {
    if (this.closing || this.done) return;
    const u = this.current();
    u.boundary = this.samples / (this.rate || 16000);
    this.utterances.push(this.newUtterance());
    // After an endpoint with nothing heard since, the audio up to here is silence as far as Deepgram knows.
    if (this.quiet && u.interim === "") this.finalizedUpTo = Math.max(this.finalizedUpTo, u.boundary);
    if (this.rate === 0 || u.boundary <= this.finalizedUpTo + EPSILON_S) {
      this.complete();
      return;
    }
    this.sendJson({ type: "Finalize" });
    u.timer = setTimeout(() => this.complete(u.index), FINAL_WAIT_MS);
  }

  discardUtterance(): void {
    const u = this.current();
    u.finals = [];
    u.interim = "";
  }

  close(): void {
    if (this.closing || this.done) return;
    this.closing = true;
    if (!this.ws) {
      this.complete(Number.POSITIVE_INFINITY);
      this.finish();
      return;
    }
    // The server flushes what it holds, sends Metadata and closes; pending finals arrive before that.
    this.sendJson({ type: "CloseStream" });
  }

  private newUtterance(): Utterance {
    return { index: this.next++, boundary: Number.POSITIVE_INFINITY, finals: [], interim: "", lastPartial: "" };
  }

  private current(): Utterance {
    return this.utterances[this.utterances.length - 1] as Utterance;
  }

  private sendJson(message: object): void {
    if (this.open && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private connect(): void {
    const ws = new WebSocket(listenUrl(this.o, this.rate), { headers: authHeaders(this.o), handshakeTimeout: this.o.timeoutMs });
    this.ws = ws;
    let failed: AppError | undefined;
    ws.once("unexpected-response", (_req, res) => {
      const id = res.headers["dg-request-id"];
      failed = httpError("asr connect", res.statusCode ?? 0, typeof id === "string" ? id : undefined);
      res.resume();
      ws.terminate();
    });
    ws.once("open", () => {
      this.open = true;
      for (const b of this.queued) ws.send(b);
      this.queued = [];
      this.lastSendAt = Date.now();
      if (this.closing) ws.send(JSON.stringify({ type: "CloseStream" }));
      this.keepAlive = setInterval(() => {
        // Deepgram closes a stream that received nothing for 10 s (NET-0001), e.g. while the caller is muted.
        if (Date.now() - this.lastSendAt >= KEEPALIVE_MS) this.sendJson({ type: "KeepAlive" });
      }, KEEPALIVE_MS);
      this.keepAlive.unref();
    });
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.onMessage(data.toString());
    });
    ws.on("error", (err) => {
      if (failed) return;
      failed = /timed out/i.test(err.message) ? timeoutError("asr connect", this.o.timeoutMs) : closeError(1006, err.message.slice(0, 120));
    });
    ws.once("close", (code, reason) => {
      this.open = false;
      clearInterval(this.keepAlive);
      if (this.done) return;
      const normal = code === 1000 && this.closing;
      const error = failed ?? (normal ? undefined : closeError(code, reason.toString().slice(0, 120)));
      if (error) this.fail(error);
      else this.complete(Number.POSITIVE_INFINITY);
      this.finish(error);
    });
  }

  private onMessage(text: string): void {
    let m: { type?: string };
    try {
      m = JSON.parse(text) as { type?: string };
    } catch {
      return;
    }
    if (m.type !== "Results") return; // Metadata, SpeechStarted, UtteranceEnd: the timeline of Results suffices
    const r = m as ResultsMessage;
    const start = r.start ?? 0;
    const end = start + (r.duration ?? 0);
    const alt = r.channel?.alternatives?.[0];
    const parts = this.assign(start, alt?.transcript ?? "", alt?.words);
    for (const u of this.utterances) {
      const t = parts.get(u) ?? "";
      if (r.is_final) {
        if (t !== "") u.finals.push(t);
        u.interim = "";
      } else if (parts.has(u) || start < u.boundary) {
        u.interim = t;
      }
      this.partial(u);
    }
    if (r.is_final) this.finalizedUpTo = Math.max(this.finalizedUpTo, end);
    if (r.speech_final) this.quiet = true;
    else if (parts.size > 0) this.quiet = false;
    this.complete();
  }

  /** The words of a result, as text per utterance (by start time); the vendor's transcript when it is not split. */
  private assign(start: number, transcript: string, words: Word[] | undefined): Map<Utterance, string> {
    const out = new Map<Utterance, string>();
    const owner = (t: number) => this.utterances.find((u) => t < u.boundary - EPSILON_S / 2) ?? this.current();
    if (!words || words.length === 0) {
      if (transcript.trim() !== "") out.set(owner(start), transcript.trim());
      return out;
    }
    const first = owner(words[0]?.start ?? start);
    const last = owner(words[words.length - 1]?.start ?? start);
    if (first === last) {
      out.set(first, transcript.trim() || words.map((w) => w.punctuated_word ?? w.word ?? "").join(" "));
      return out;
    }
    for (const w of words) {
      const u = owner(w.start ?? start);
      const t = w.punctuated_word ?? w.word ?? "";
      out.set(u, out.has(u) ? `${out.get(u)} ${t}` : t);
    }
    return out;
  }

  private textOf(u: Utterance, withInterim: boolean): string {
    return [...u.finals, ...(withInterim && u.interim ? [u.interim] : [])].join(" ").trim();
  }

  private partial(u: Utterance): void {
    const text = this.textOf(u, true);
    if (text === u.lastPartial || text === "") return;
    const delta = text.startsWith(u.lastPartial) ? text.slice(u.lastPartial.length) : text;
    u.lastPartial = text;
    this.emit({ type: "partial", utterance: u.index, text, delta });
  }

  /**
   * Emits the finals of ended utterances, in order: those Deepgram finalised, and all up to `forceIndex`
   * (a FINAL_WAIT_MS deadline or the end of the stream) with what is known.
   */
  private complete(forceIndex = -1): void {
    for (let u = this.utterances[0]; u !== undefined && u.boundary !== Number.POSITIVE_INFINITY; u = this.utterances[0]) {
      const finalized = this.finalizedUpTo + EPSILON_S >= u.boundary;
      if (!finalized && u.index > forceIndex) return;
      clearTimeout(u.timer);
      this.utterances.shift();
      this.emit({ type: "final", utterance: u.index, text: this.textOf(u, !finalized) });
    }
    if (forceIndex === Number.POSITIVE_INFINITY) {
      const u = this.current();
      if (this.textOf(u, true) !== "") {
        this.utterances.shift();
        this.emit({ type: "final", utterance: u.index, text: this.textOf(u, true) });
      }
    }
  }

  private fail(error: AppError): void {
    for (const u of this.utterances.splice(0)) {
      clearTimeout(u.timer);
      if (u.boundary !== Number.POSITIVE_INFINITY) this.emit({ type: "error", utterance: u.index, error });
    }
  }

  private emit(r: AsrResult): void {
    if (this.channel.closed || this.signal?.aborted) return;
    this.channel.send(r, this.signal).catch(() => {});
  }

  /** Ends the results: after the pending ones when the stream closed normally; a failure is the last result. */
  private finish(error?: AppError): void {
    this.done = true;
    for (const u of this.utterances) clearTimeout(u.timer);
    // A socket that failed before any utterance ended still has to say so: the session is dead.
    if (error && this.next === 1) this.emit({ type: "error", utterance: 0, error });
    this.channel.close();
  }

  private shutdown(): void {
    this.closing = true;
    this.done = true;
    for (const u of this.utterances) clearTimeout(u.timer);
    clearInterval(this.keepAlive);
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "CloseStream" }));
      ws.close(1000);
    } else ws?.terminate();
    this.channel.close();
  }
}
