/**
 * OpenAI / Azure OpenAI Realtime over a WebSocket (`ws`), media-protocols.md §5.4: one socket per session,
 * `session.update` on open, caller audio as `input_audio_buffer.append`, server events normalised by
 * realtime-protocol.ts into RealtimeEvent on an async iterable that ends with `closed`.
 *
 * The API key goes only into the handshake headers; it is never part of an error message or a log field.
 */
import WebSocket from "ws";
import type { AudioFrame } from "../../audio/index.js";
import { aLawDecode, aLawEncode, muLawDecode, muLawEncode } from "../../audio/index.js";
import { AppError } from "../../errors.js";
import { BoundedChannel } from "../../util/channel.js";
import { providerError } from "../retry.js";
import type { CallOptions, RealtimeCapabilities, RealtimeEvent, RealtimeProvider, RealtimeSession, RealtimeSessionConfig } from "../types.js";
import { messageItem, rateOf, realtimeHeaders, realtimeUrl, ServerEventParser, sessionJson, type RealtimeEndpoint } from "./realtime-protocol.js";

export interface OpenAiRealtimeOptions extends RealtimeEndpoint {
  /** Time allowed for the handshake (default 10 000 ms). */
  connectTimeoutMs?: number | undefined;
}

/**
 * Server events not yet consumed. Deltas arrive faster than real time, but the conversation drains them at
 * once into the leg's pacer, so this only absorbs bursts; overflowing it means the consumer is stuck.
 */
const EVENT_CAPACITY = 8192;

export class OpenAiRealtime implements RealtimeProvider {
  readonly name: string;
  readonly model: string;
  readonly capabilities: RealtimeCapabilities = { sampleRates: [24000, 8000], audioFormats: ["pcm16", "pcmu", "pcma"], protocols: ["ga", "beta"] };

  constructor(private readonly options: OpenAiRealtimeOptions) {
    this.name = options.flavor;
    this.model = options.model;
  }

  /** The socket URL (for logs: it carries no secret). */
  get url(): string {
    return realtimeUrl(this.options);
  }

  async connect(config: RealtimeSessionConfig, options: CallOptions = {}): Promise<RealtimeSession> {
    const session = new WsRealtimeSession(this.options, config);
    await session.open(options.signal);
    return session;
  }
}

class WsRealtimeSession implements RealtimeSession {
  private readonly channel = new BoundedChannel<RealtimeEvent>({ capacity: EVENT_CAPACITY, policy: "block" });
  private readonly parser: ServerEventParser;
  private ws: WebSocket | undefined;
  private readonly format: NonNullable<RealtimeSessionConfig["audioFormat"]>;
  private readonly rate: number;
  /** Reused encode buffer for caller audio (grows to the largest frame once) and its view of the last size. */
  private bytes = Buffer.alloc(0);
  private view = Buffer.alloc(0);
  /** Agent audio ms per output item, for the clamping of `truncate` and for frame timestamps. */
  private readonly itemMs = new Map<string, number>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly endpoint: OpenAiRealtimeOptions,
    private readonly config: RealtimeSessionConfig,
  ) {
    this.format = config.audioFormat ?? "pcm16";
    this.rate = rateOf(this.format);
    this.parser = new ServerEventParser((b64, responseId, itemId) => this.decodeAudio(b64, responseId, itemId));
  }

  get events(): AsyncIterable<RealtimeEvent> {
    return this.channel;
  }

  async open(signal?: AbortSignal): Promise<void> {
    const e = this.endpoint;
    const provider = e.flavor;
    const ws = new WebSocket(realtimeUrl(e), { headers: realtimeHeaders(e), handshakeTimeout: e.connectTimeoutMs ?? 10_000 });
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        ws.terminate();
        reject(providerError(provider, `${provider} realtime: connect aborted`, { retryable: false }));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      ws.once("open", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      ws.once("unexpected-response", (_req, res) => {
        signal?.removeEventListener("abort", onAbort);
        res.resume();
        ws.terminate();
        reject(providerError(provider, `${provider} realtime: HTTP ${res.statusCode ?? 0} on connect`, { status: res.statusCode }));
      });
      ws.once("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        // Only the error's kind: the URL is safe to show, the headers (the key) are never in it.
        reject(providerError(provider, `${provider} realtime: connection failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err }));
      });
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        return;
      }
      const ev = this.parser.parse(raw);
      if (ev) this.push(ev);
    });
    ws.on("error", () => undefined); // `close` follows and reports the end
    ws.on("close", (code, reason) => {
      this.push({ type: "closed", code, reason: reason.toString() });
      this.channel.close();
    });
    this.send({ type: "session.update", session: sessionJson(this.config, e.protocol, e.flavor === "openai" && e.protocol === "ga" ? e.model : undefined) });
  }

  private push(ev: RealtimeEvent): void {
    if (this.channel.closed) return;
    if (!this.channel.offer(ev)) {
      // The consumer stopped draining: end the session rather than grow without bound.
      this.ws?.terminate();
    }
  }

  private send(event: Record<string, unknown>): void {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(event));
  }

  private decodeAudio(b64: string, responseId: string, itemId: string): RealtimeEvent | undefined {
    const bytes = Buffer.from(b64, "base64");
    let pcm: Int16Array;
    // One array per delta (100 ms or more of audio, not per 20 ms frame): it travels through the event queue.
    if (this.format === "pcm16") {
      pcm = new Int16Array(bytes.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    } else {
      pcm = this.format === "pcmu" ? muLawDecode(bytes) : aLawDecode(bytes);
    }
    if (pcm.length === 0) return undefined;
    const before = this.itemMs.get(itemId) ?? 0;
    this.itemMs.set(itemId, before + (pcm.length * 1000) / this.rate);
    const frame: AudioFrame = { pcm, sampleRate: this.rate, timestampMs: before };
    return { type: "audio", responseId, itemId, frame };
  }

  sendAudio(frame: AudioFrame): void {
    if (frame.sampleRate !== this.rate) throw new AppError("AUDIO_FORMAT", `realtime session takes ${this.rate} Hz audio, got ${frame.sampleRate} Hz`);
    const n = frame.pcm.length;
    const size = this.format === "pcm16" ? n * 2 : n;
    if (this.bytes.length < size) this.bytes = Buffer.alloc(size);
    if (this.view.length !== size) this.view = this.bytes.subarray(0, size);
    const out = this.view;
    if (this.format === "pcm16") {
      for (let i = 0; i < n; i++) out.writeInt16LE(frame.pcm[i] as number, i * 2);
    } else if (this.format === "pcmu") {
      muLawEncode(frame.pcm, out);
    } else {
      aLawEncode(frame.pcm, out);
    }
    this.send({ type: "input_audio_buffer.append", audio: out.toString("base64") });
  }

  commitAudio(): void {
    this.send({ type: "input_audio_buffer.commit" });
  }

  clearAudio(): void {
    this.send({ type: "input_audio_buffer.clear" });
  }

  createResponse(options: { instructions?: string | undefined } = {}): void {
    this.send({ type: "response.create", ...(options.instructions !== undefined ? { response: { instructions: options.instructions } } : {}) });
  }

  cancelResponse(): void {
    this.send({ type: "response.cancel" });
  }

  truncate(itemId: string, audioEndMs: number): void {
    // Beyond the audio received for the item the server refuses the truncate (§5.4 pitfalls).
    const have = this.itemMs.get(itemId) ?? 0;
    const end = Math.max(0, Math.min(Math.floor(audioEndMs), Math.floor(have)));
    this.send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: end });
  }

  sendFunctionOutput(callId: string, output: string): void {
    this.send({ type: "conversation.item.create", item: { type: "function_call_output", call_id: callId, output } });
  }

  addMessage(role: "user" | "assistant" | "system", text: string): void {
    this.send(messageItem(role, text, this.endpoint.protocol));
  }

  updateSession(config: RealtimeSessionConfig): void {
    this.send({ type: "session.update", session: sessionJson(config, this.endpoint.protocol) });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const ws = this.ws;
    this.closing = new Promise<void>((resolve) => {
      if (!ws || ws.readyState === WebSocket.CLOSED) {
        this.channel.close();
        resolve();
        return;
      }
      const timer = setTimeout(() => ws.terminate(), 2000);
      timer.unref?.();
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000, "call ended");
    });
    return this.closing;
  }
}
