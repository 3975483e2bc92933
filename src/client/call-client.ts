// CallClient: a typed client for the WebSocket call API (spec/ws-call-api.md), published as `active-call/client`.
// It depends on `ws` and Node built-ins only; nothing from the server (a dependency-cruiser rule checks this).

import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import type {
  AcceptCommand,
  CallCommand,
  CallEvent,
  CallEventName,
  CallOption,
  DtmfCommand,
  EventOf,
  HangupCommand,
  HistoryCommand,
  InterruptCommand,
  InviteCommand,
  JsonObject,
  PlayCommand,
  ReferCommand,
  RejectCommand,
  RingingCommand,
  TransferCommand,
  TtsCommand,
} from "./types.js";

export interface ConnectOptions {
  /** API token, sent as `Authorization: Bearer <token>` (§1.2). */
  token?: string;
  /** Also send the token as the `token` query parameter (for servers behind proxies that strip headers). */
  tokenInQuery?: boolean;
  /** Call id (`id` query parameter). */
  id?: string;
  /** Write the call's event dump (`dump` query parameter). */
  dump?: boolean;
  /** Server ping interval in seconds (`ping` query parameter); 0 disables. */
  ping?: number;
  /** `/call/pbx` only: hang the call up when this socket closes (default true on the server). */
  hangupOnClose?: boolean;
  /** `trackId` used in agent playback events. */
  serverSideTrack?: string;
  /** Further query parameters. */
  query?: Record<string, string | number | boolean>;
  /** Extra HTTP headers on the upgrade request. */
  headers?: Record<string, string>;
  /** Endpoint path used when `url` has no path of its own. Default `/call`. */
  path?: "/call" | "/call/pbx" | "/call/sip";
  /** Give up on the opening handshake after this long. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
}

/** Everything `on()` can listen to: each protocol event by name, plus `event`, `audio` and `close`. */
export type CallClientListeners = { [K in CallEventName]: (event: EventOf<K>) => void } & {
  /** Every protocol event, in arrival order. */
  event: (event: CallEvent) => void;
  /** A binary message from the server (agent audio on `/call`; prefixed audio on `/call/pbx`, §5.4). */
  audio: (data: Buffer) => void;
  /** The socket closed (close code and reason as received). */
  close: (code: number, reason: string) => void;
};

/** Errors raised by the client; `status` is the HTTP status of a refused upgrade, `closeCode` a close code. */
export class CallClientError extends Error {
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  constructor(message: string, opts: { status?: number; closeCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "CallClientError";
    this.status = opts.status;
    this.closeCode = opts.closeCode;
  }
}

export interface StreamPcmOptions {
  /** true: one frame per `frameMs` of wall-clock time; false: as fast as the socket takes them. */
  realtime?: boolean;
  /** Frame length in ms. Default 20. */
  frameMs?: number;
  /** Stops the stream; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Anything that accepts audio bytes; `CallClient` is one. */
export interface AudioSink {
  sendAudio(bytes: Buffer | Uint8Array | Int16Array): void;
}

const DEFAULT_WAIT_MS = 10_000;

type AnyListener = (...args: never[]) => void;

export class CallClient implements AudioSink {
  /** Every protocol event received, in order (for tests and debugging). */
  readonly events: CallEvent[] = [];
  /** The URL connected to, without the token. */
  readonly url: URL;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<{ code: number; reason: string }>;

  readonly #ws: WebSocket;
  readonly #listeners = new Map<string, Set<AnyListener>>();
  /** Indices in `events` already returned by `waitFor`, so sequential waits see each event once. */
  readonly #consumed = new Set<number>();
  #closeInfo: { code: number; reason: string } | undefined;
  #requestedId: string | undefined;

  private constructor(ws: WebSocket, url: URL, requestedId: string | undefined) {
    this.#ws = ws;
    this.url = url;
    this.#requestedId = requestedId;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        const info = { code, reason: reason.toString("utf8") };
        this.#closeInfo = info;
        this.#emit("close", info.code, info.reason);
        resolve(info);
      });
    });
    ws.on("message", (data, isBinary) => this.#onMessage(data, isBinary));
    // After the handshake, socket errors end in a `close` event; keep them from being unhandled.
    ws.on("error", () => {});
  }

  /**
   * Opens a WebSocket to the call API. `url` may be the server root (`ws://host:8080`, `http://` works too), in
   * which case `opts.path` (default `/call`) is appended, or a full endpoint URL.
   * Rejects with a `CallClientError` (with `status`) when the upgrade is refused, e.g. HTTP 401.
   */
  static connect(url: string | URL, opts: ConnectOptions = {}): Promise<CallClient> {
    const target = new URL(url);
    if (target.protocol === "http:") target.protocol = "ws:";
    else if (target.protocol === "https:") target.protocol = "wss:";
    if (opts.path !== undefined || target.pathname === "/" || target.pathname === "") {
      target.pathname = opts.path ?? "/call";
    }
    const q = target.searchParams;
    if (opts.id !== undefined) q.set("id", opts.id);
    if (opts.dump !== undefined) q.set("dump", String(opts.dump));
    if (opts.ping !== undefined) q.set("ping", String(opts.ping));
    if (opts.hangupOnClose !== undefined) q.set("hangupOnClose", String(opts.hangupOnClose));
    if (opts.serverSideTrack !== undefined) q.set("serverSideTrack", opts.serverSideTrack);
    for (const [k, v] of Object.entries(opts.query ?? {})) q.set(k, String(v));

    const shown = new URL(target);
    if (opts.token !== undefined && opts.tokenInQuery) target.searchParams.set("token", opts.token);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers["Authorization"] = `Bearer ${opts.token}`;

    const ws = new WebSocket(target, {
      headers,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    });
    // Construct now so that no message sent right after the upgrade is missed.
    const client = new CallClient(ws, shown, opts.id ?? q.get("id") ?? undefined);

    return new Promise((resolve, reject) => {
      const fail = (err: CallClientError): void => {
        ws.removeListener("open", onOpen);
        reject(err);
      };
      const onOpen = (): void => {
        ws.removeListener("unexpected-response", onUnexpected);
        ws.removeListener("error", onError);
        resolve(client);
      };
      const onUnexpected = (_req: unknown, res: { statusCode?: number; statusMessage?: string; resume(): void }) => {
        res.resume();
        const status = res.statusCode ?? 0;
        fail(new CallClientError(`upgrade to ${shown.href} refused: HTTP ${status} ${res.statusMessage ?? ""}`.trim(), { status }));
        ws.terminate();
      };
      const onError = (err: Error): void => {
        fail(new CallClientError(`cannot connect to ${shown.href}: ${err.message}`, { cause: err }));
      };
      ws.once("open", onOpen);
      ws.once("unexpected-response", onUnexpected);
      ws.once("error", onError);
    });
  }

  /** The call id: the one asked for in `connect`, else the `trackId` of the first `answer`/`incoming` event. */
  get callId(): string | undefined {
    if (this.#requestedId !== undefined) return this.#requestedId;
    const e = this.events.find((ev) => ev.event === "answer" || ev.event === "incoming");
    return e && "trackId" in e ? e.trackId : undefined;
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** Close code and reason once closed. */
  get closeInfo(): { code: number; reason: string } | undefined {
    return this.#closeInfo;
  }

  // ------------------------------------------------------------------------------------------------------
  // Commands (§3)

  /** Sends one command object as a text message. Throws when the socket is not open. */
  send(command: CallCommand | ({ command: string } & JsonObject)): void {
    this.sendText(JSON.stringify(command));
  }

  /** Sends a raw text message (for testing malformed input). */
  sendText(text: string): void {
    this.#assertOpen();
    this.#ws.send(text);
  }

  invite(option?: CallOption, extra: Omit<InviteCommand, "command" | "option"> = {}): void {
    this.send({ command: "invite", ...extra, ...(option === undefined ? {} : { option }) });
  }

  accept(option?: CallOption, extra: Omit<AcceptCommand, "command" | "option"> = {}): void {
    this.send({ command: "accept", ...extra, ...(option === undefined ? {} : { option }) });
  }

  reject(opts: Omit<RejectCommand, "command"> = {}): void {
    this.send({ command: "reject", ...opts });
  }

  ringing(opts: Omit<RingingCommand, "command"> = {}): void {
    this.send({ command: "ringing", ...opts });
  }

  tts(text: string, opts: Omit<TtsCommand, "command" | "text"> = {}): void {
    this.send({ command: "tts", text, ...opts });
  }

  play(url: string, opts: Omit<PlayCommand, "command" | "url"> = {}): void {
    this.send({ command: "play", url, ...opts });
  }

  interrupt(opts: Omit<InterruptCommand, "command"> = {}): void {
    this.send({ command: "interrupt", ...opts });
  }

  pause(opts: { requestId?: string } = {}): void {
    this.send({ command: "pause", ...opts });
  }

  resume(opts: { requestId?: string } = {}): void {
    this.send({ command: "resume", ...opts });
  }

  hangup(opts: Omit<HangupCommand, "command"> = {}): void {
    this.send({ command: "hangup", ...opts });
  }

  refer(callee: string, opts: Omit<ReferCommand, "command" | "callee"> = {}): void {
    this.send({ command: "refer", callee, ...opts });
  }

  transfer(target: string, opts: Omit<TransferCommand, "command" | "target"> = {}): void {
    this.send({ command: "transfer", target, ...opts });
  }

  dtmf(digits: string, opts: Omit<DtmfCommand, "command" | "digits"> = {}): void {
    this.send({ command: "dtmf", digits, ...opts });
  }

  /** Mutes the caller (`trackId` = call id), the agent (`server-side-track`), or both (no trackId). */
  mute(trackId?: string, opts: { requestId?: string } = {}): void {
    this.send({ command: "mute", ...opts, ...(trackId === undefined ? {} : { trackId }) });
  }

  unmute(trackId?: string, opts: { requestId?: string } = {}): void {
    this.send({ command: "unmute", ...opts, ...(trackId === undefined ? {} : { trackId }) });
  }

  history(speaker: HistoryCommand["speaker"], text: string, opts: { requestId?: string } = {}): void {
    this.send({ command: "history", speaker, text, ...opts });
  }

  // ------------------------------------------------------------------------------------------------------
  // Audio (§5)

  /**
   * Sends caller audio as one binary message. An `Int16Array` is sent as its bytes, which is PCM16 little-endian
   * on every platform Node supports.
   */
  sendAudio(bytes: Buffer | Uint8Array | Int16Array): void {
    this.#assertOpen();
    this.#ws.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { binary: true });
  }

  /** Sends `pcm` in `frameMs` frames; see the standalone `streamPcm`. */
  streamPcm(pcm: Int16Array, sampleRate: number, opts: StreamPcmOptions = {}): Promise<{ frames: number; bytes: number }> {
    return streamPcm(this, pcm, sampleRate, opts);
  }

  // ------------------------------------------------------------------------------------------------------
  // Events (§4)

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof CallClientListeners>(name: K, handler: CallClientListeners[K]): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(handler as AnyListener);
    return () => this.off(name, handler);
  }

  off<K extends keyof CallClientListeners>(name: K, handler: CallClientListeners[K]): void {
    this.#listeners.get(name)?.delete(handler as AnyListener);
  }

  /**
   * Resolves with the first event named `name` (and accepted by `predicate`) that no earlier `waitFor` has
   * returned, looking first at the events already received and then at new ones. So
   * `await waitFor("trackStart"); await waitFor("trackEnd")` works even if both arrived in one burst.
   * Rejects when `timeoutMs` (default 10 000) passes or the socket closes first; the message names the event and
   * lists what was received.
   */
  waitFor<K extends CallEventName>(
    name: K,
    predicate?: (event: EventOf<K>) => boolean,
    timeoutMs: number = DEFAULT_WAIT_MS,
  ): Promise<EventOf<K>> {
    const matches = (e: CallEvent): e is EventOf<K> => e.event === name && (!predicate || predicate(e as EventOf<K>));
    for (let i = 0; i < this.events.length; i++) {
      const e = this.events[i];
      if (e !== undefined && !this.#consumed.has(i) && matches(e)) {
        this.#consumed.add(i);
        return Promise.resolve(e);
      }
    }
    const what = `waitFor("${name}"${predicate ? ", <predicate>" : ""})`;
    if (this.#closeInfo) {
      return Promise.reject(this.#closedError(what, this.#closeInfo));
    }
    return new Promise<EventOf<K>>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        offEvent();
        offClose();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new CallClientError(`${what} timed out after ${timeoutMs} ms; received: ${this.#summary()}`));
      }, timeoutMs);
      const offEvent = this.on("event", (e) => {
        if (!matches(e)) return;
        this.#consumed.add(this.events.lastIndexOf(e));
        cleanup();
        resolve(e);
      });
      const offClose = this.on("close", (code, reason) => {
        cleanup();
        reject(this.#closedError(what, { code, reason }));
      });
    });
  }

  /** Closes the socket (default 1000) and resolves once it is closed. */
  close(code = 1000, reason = ""): Promise<{ code: number; reason: string }> {
    const ws = this.#ws;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    return this.closed;
  }

  /** Drops the connection without a close handshake (simulates a lost network). */
  terminate(): Promise<{ code: number; reason: string }> {
    this.#ws.terminate();
    return this.closed;
  }

  // ------------------------------------------------------------------------------------------------------

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      this.#emit("audio", buf);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(buf.toString("utf8"));
    } catch {
      return; // not JSON: not part of the protocol; ignored
    }
    if (typeof parsed !== "object" || parsed === null || typeof (parsed as { event?: unknown }).event !== "string") {
      return;
    }
    const event = parsed as CallEvent;
    this.events.push(event);
    this.#emit(event.event, event);
    this.#emit("event", event);
  }

  #emit(name: string, ...args: unknown[]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) (fn as (...a: unknown[]) => void)(...args);
  }

  #assertOpen(): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      throw new CallClientError(`socket to ${this.url.href} is not open`, { closeCode: this.#closeInfo?.code });
    }
  }

  #closedError(what: string, info: { code: number; reason: string }): CallClientError {
    const reason = info.reason ? ` "${info.reason}"` : "";
    return new CallClientError(`${what} failed: connection closed with ${info.code}${reason}; received: ${this.#summary()}`, {
      closeCode: info.code,
    });
  }

  #summary(): string {
    if (this.events.length === 0) return "no events";
    const names = this.events.slice(-12).map((e) => e.event);
    return (this.events.length > 12 ? `... ${this.events.length - 12} more, ` : "") + names.join(", ");
  }
}

/**
 * Sends mono PCM16 audio to `sink` in frames of `frameMs` (default 20 ms; the last frame may be shorter).
 * With `realtime`, frame i is sent at start + i × frameMs, scheduled with setTimeout and corrected against
 * performance.now() so that timer lateness does not accumulate. Without it, frames go out back to back (the server
 * counts the stream position in samples, so this is allowed, §5.2), yielding to the event loop now and then.
 */
export async function streamPcm(
  sink: AudioSink,
  pcm: Int16Array,
  sampleRate: number,
  opts: StreamPcmOptions = {},
): Promise<{ frames: number; bytes: number }> {
  const frameMs = opts.frameMs ?? 20;
  const samplesPerFrame = Math.round((sampleRate * frameMs) / 1000);
  if (!(samplesPerFrame > 0)) throw new RangeError(`bad frame size: ${sampleRate} Hz × ${frameMs} ms`);
  const signal = opts.signal;
  const start = performance.now();
  let frames = 0;
  let bytes = 0;
  for (let offset = 0; offset < pcm.length; offset += samplesPerFrame) {
    signal?.throwIfAborted();
    if (opts.realtime) {
      const wait = start + frames * frameMs - performance.now();
      if (wait > 0) await sleep(wait, signal);
    } else if (frames % 50 === 49) {
      await new Promise<void>((r) => setImmediate(r));
    }
    signal?.throwIfAborted();
    const frame = pcm.subarray(offset, Math.min(offset + samplesPerFrame, pcm.length));
    sink.sendAudio(frame);
    frames++;
    bytes += frame.byteLength;
  }
  return { frames, bytes };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
