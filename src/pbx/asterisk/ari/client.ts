/**
 * A thin typed ARI client (media-protocols.md §3): REST on global fetch for the calls of §3.2, and the events
 * WebSocket (`/ari/events`) with reconnect, backoff and jitter. No call logic lives here.
 *
 * Errors: every non-2xx reply is an AppError PBX_ERROR with `details.pbxReply = {status, message}`. A 404 on a
 * channel operation is an `AriGoneError` (`details.gone = true`): the channel no longer exists. DELETEs treat 404 as
 * success and resolve `false`. A request that takes longer than `requestTimeoutMs` is TIMEOUT; a connection failure
 * is PBX_UNAVAILABLE.
 */
import { ReconnectPolicy, type LinkStatus } from "../../reconnect.js";
import { WebSocket } from "ws";
import { AppError } from "../../../errors.js";
import type { Logger } from "../../../log.js";
import { TypedEmitter } from "../../../media/emitter.js";
import { parseAriEvent, type AriEvent } from "./events.js";
import type {
  AriAsteriskInfo,
  AriBridge,
  AriChannel,
  AriErrorBody,
  AriPlayback,
  AriVariable,
  ContinueParams,
  CreateBridgeParams,
  DtmfParams,
  ExternalMediaParams,
  OriginateParams,
  PlaybackOperation,
  PlayParams,
} from "./models.js";

export interface AriClientOptions {
  /** HTTP base, e.g. `http://127.0.0.1:8088` (the `/ari` prefix is added). */
  url: string;
  username: string;
  password: string;
  /** Stasis application name. */
  app: string;
  log?: Logger;
  /** Events-socket reconnect backoff. Defaults 250 / 5000 ms. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** False: back off after every failure, without the fast lane (the reconnect bench's reference). */
  fastReconnect?: boolean;
  /** Per REST call. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** `subscribeAll` on the events socket. Default false (§3.9). */
  subscribeAll?: boolean;
  /** Authenticate the events socket with `?api_key=user:pass` instead of the Basic header. Default false. */
  eventsApiKey?: boolean;
  /** Ping the events socket this often; no pong by the next ping = dead socket, reconnect. Default 20000; 0 = off. */
  pingIntervalMs?: number;
  /** For tests: jitter source in [0, 1). */
  random?: () => number;
}

export type AriClientEvents = {
  event: [AriEvent];
  /** The events socket is open; `reconnect` = not the first connection (reconcile with `listChannels`). */
  connected: [{ reconnect: boolean }];
  disconnected: [{ error?: Error; code?: number }];
};

/** 404 on a channel operation: the channel is gone. */
export class AriGoneError extends AppError {
  constructor(
    message: string,
    readonly resource: string,
    readonly pbxReply: { status: number; message: string },
  ) {
    super("PBX_ERROR", message, { details: { pbxReply, gone: true }, retryable: false });
    this.name = "AriGoneError";
  }
}

export function isAriGone(err: unknown): err is AriGoneError {
  return err instanceof AriGoneError;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Map 404 to AriGoneError. */
  goneOn404?: string;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RECONNECT_MIN_MS = 250;
const DEFAULT_RECONNECT_MAX_MS = 5000;
const DEFAULT_PING_INTERVAL_MS = 20_000;

function enc(s: string): string {
  return encodeURIComponent(s);
}

export function buildQuery(query: Query | undefined): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    parts.push(`${enc(k)}=${enc(String(v))}`);
  }
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

export class AriClient {
  readonly events = new TypedEmitter<AriClientEvents>((err) => {
    this.log?.error({ err }, "ARI event listener threw");
  });

  readonly app: string;
  private readonly base: string;
  private readonly authHeader: string;
  private readonly username: string;
  private readonly password: string;
  private readonly log: Logger | undefined;
  private readonly timeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly subscribeAll: boolean;
  private readonly eventsApiKey: boolean;
  private readonly random: () => number;
  private readonly pingIntervalMs: number;

  private ws: WebSocket | undefined;
  private running = false;
  private isConnected = false;
  private sinceMs: number | undefined;
  private readonly link: ReconnectPolicy;
  private everConnected = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private badFrames = 0;

  constructor(o: AriClientOptions) {
    this.base = o.url.replace(/\/+$/, "");
    if (this.base.endsWith("/ari")) this.base = this.base.slice(0, -4);
    this.username = o.username;
    this.password = o.password;
    this.app = o.app;
    this.authHeader = `Basic ${Buffer.from(`${o.username}:${o.password}`, "utf8").toString("base64")}`;
    this.log = o.log;
    this.timeoutMs = o.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.reconnectMinMs = o.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS;
    this.reconnectMaxMs = Math.max(o.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS, this.reconnectMinMs);
    this.subscribeAll = o.subscribeAll ?? false;
    this.eventsApiKey = o.eventsApiKey ?? false;
    this.random = o.random ?? Math.random;
    this.pingIntervalMs = o.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.link = new ReconnectPolicy({ minMs: this.reconnectMinMs, maxMs: this.reconnectMaxMs, random: this.random, ...(o.fastReconnect === false ? { fastLane: false } : {}) });
  }

  /** The events socket's state, attempts and last error (for /health and /metrics). */
  linkStatus(): LinkStatus {
    return this.link.status();
  }

  // ---- events WebSocket -----------------------------------------------------------------------------------------

  /** Whether the events socket is open. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** When the current state (connected or not) began, ms since the epoch; undefined before `start()`. */
  get since(): number | undefined {
    return this.sinceMs;
  }

  /** Frames that were not JSON events. */
  get invalidFrames(): number {
    return this.badFrames;
  }

  /** The events URL (without credentials unless `eventsApiKey`). */
  eventsUrl(): string {
    const wsBase = this.base.replace(/^http/i, "ws");
    const q: Query = { app: this.app, subscribeAll: this.subscribeAll };
    if (this.eventsApiKey) q.api_key = `${this.username}:${this.password}`;
    return `${wsBase}/ari/events${buildQuery(q)}`;
  }

  /** Opens the events socket and keeps it open (reconnecting) until `stop()`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.sinceMs = Date.now();
    this.open();
  }

  /** Resolves when the events socket is open; rejects with TIMEOUT after `timeoutMs`. */
  whenConnected(timeoutMs = 10_000): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new AppError("TIMEOUT", `ARI events socket not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.events.once("connected", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Closes the events socket and stops reconnecting. */
  async stop(): Promise<void> {
    this.running = false;
    this.link.stopped();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once("close", () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000).unref();
    });
  }

  private open(): void {
    const headers: Record<string, string> = {};
    if (!this.eventsApiKey) headers.Authorization = this.authHeader;
    this.link.connecting();
    const ws = new WebSocket(this.eventsUrl(), { headers, handshakeTimeout: this.timeoutMs });
    this.ws = ws;
    let lastError: Error | undefined;
    let pingTimer: NodeJS.Timeout | undefined;
    let alive = true;
    ws.on("pong", () => {
      alive = true;
    });
    ws.on("open", () => {
      if (this.pingIntervalMs > 0) {
        pingTimer = setInterval(() => {
          if (!alive) {
            lastError ??= new AppError("PBX_UNAVAILABLE", "ARI events socket: no pong");
            ws.terminate();
            return;
          }
          alive = false;
          ws.ping();
        }, this.pingIntervalMs);
      }
      this.isConnected = true;
      this.sinceMs = Date.now();
      this.link.up();
      const reconnect = this.everConnected;
      this.everConnected = true;
      this.log?.info({ app: this.app, reconnect }, "ARI events socket connected");
      this.events.emit("connected", { reconnect });
    });
    ws.on("unexpected-response", (_req, res) => {
      lastError = new AppError("PBX_UNAVAILABLE", `ARI events socket: HTTP ${res.statusCode ?? "?"}`, {
        details: { pbxReply: { status: res.statusCode, message: res.statusMessage ?? "" } },
      });
      res.resume();
      ws.terminate();
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        this.badFrames++;
        return;
      }
      const text = Buffer.isBuffer(data)
        ? data.toString("utf8")
        : Array.isArray(data)
          ? Buffer.concat(data).toString("utf8")
          : Buffer.from(data).toString("utf8");
      const ev = parseAriEvent(text);
      if (!ev) {
        this.badFrames++;
        this.log?.warn({ frame: text.slice(0, 200) }, "ARI events socket: not a JSON event");
        return;
      }
      this.events.emit("event", ev);
    });
    ws.on("error", (err) => {
      lastError ??= err;
      this.log?.debug({ err }, "ARI events socket error");
    });
    ws.on("close", (code) => {
      clearInterval(pingTimer);
      if (this.ws === ws) this.ws = undefined;
      const wasConnected = this.isConnected;
      this.isConnected = false;
      if (wasConnected) this.sinceMs = Date.now();
      if (wasConnected || lastError) {
        const info: { error?: Error; code?: number } = { code };
        if (lastError) info.error = lastError;
        if (this.running) this.log?.warn({ err: lastError, code }, "ARI events socket closed");
        this.events.emit("disconnected", info);
      }
      if (this.running) this.scheduleReconnect(this.link.failed(lastError));
    });
  }

  /** The next attempt: soon while Asterisk refuses connections, with backoff after other failures (reconnect.ts). */
  private scheduleReconnect(delay: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.running) this.open();
    }, delay);
  }

  // ---- REST core ------------------------------------------------------------------------------------------------

  /** One REST call below `/ari`. Resolves with the parsed JSON body (undefined for 204 / empty). */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T | undefined> {
    const url = `${this.base}/ari${path}${buildQuery(o.query)}`;
    const headers: Record<string, string> = { Authorization: this.authHeader, Accept: "application/json" };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers["Content-Type"] = "application/json";
    }
    const what = `${method} ${path}`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body ?? null, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const name = (err as { name?: string } | undefined)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw new AppError("TIMEOUT", `ARI ${what}: no reply within ${this.timeoutMs} ms`, { cause: err });
      }
      throw new AppError("PBX_UNAVAILABLE", `ARI ${what}: ${(err as Error).message}`, { cause: err });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new AppError("PBX_UNAVAILABLE", `ARI ${what}: reading the reply failed`, { cause: err });
    }
    let json: unknown;
    if (text !== "") {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.ok) return json as T | undefined;
    const message =
      typeof json === "object" && json !== null && typeof (json as AriErrorBody).message === "string"
        ? ((json as AriErrorBody).message as string)
        : text.slice(0, 500);
    const pbxReply = { status: res.status, message };
    if (res.status === 404 && o.goneOn404 !== undefined) {
      throw new AriGoneError(`ARI ${what}: ${o.goneOn404} gone (${message || "Not Found"})`, o.goneOn404, pbxReply);
    }
    throw new AppError("PBX_ERROR", `ARI ${what}: ${res.status} ${message || res.statusText}`, {
      details: { pbxReply },
      retryable: res.status >= 500,
    });
  }

  /** DELETE treating 404 as success (§3.9): true if it existed, false if it was already gone. */
  private async deleteOk(path: string, resource: string, query?: Query): Promise<boolean> {
    try {
      await this.request<unknown>("DELETE", path, query ? { query, goneOn404: resource } : { goneOn404: resource });
      return true;
    } catch (err) {
      if (isAriGone(err)) return false;
      throw err;
    }
  }

  private async required<T>(p: Promise<T | undefined>, what: string): Promise<T> {
    const v = await p;
    if (v === undefined || v === null) throw new AppError("PBX_ERROR", `ARI ${what}: empty reply`, { details: { pbxReply: { status: 200, message: "" } } });
    return v;
  }

  private ch(id: string): string {
    return `/channels/${enc(id)}`;
  }

  // ---- asterisk -------------------------------------------------------------------------------------------------

  /** `GET /asterisk/info`; keep `system.version` (§3.1). */
  info(): Promise<AriAsteriskInfo> {
    return this.required(this.request<AriAsteriskInfo>("GET", "/asterisk/info"), "GET /asterisk/info");
  }

  // ---- channels -------------------------------------------------------------------------------------------------

  async answer(channelId: string): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/answer`, { goneOn404: "channel" });
  }

  /** 180 (`POST /ring`). */
  async ring(channelId: string): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/ring`, { goneOn404: "channel" });
  }

  /** Stop ringing (`DELETE /ring`). */
  async ringStop(channelId: string): Promise<void> {
    await this.request("DELETE", `${this.ch(channelId)}/ring`, { goneOn404: "channel" });
  }

  /** 183 (`POST /progress`; Asterisk ≥ 20.16 / 21.11 / 22.6). */
  async progress(channelId: string): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/progress`, { goneOn404: "channel" });
  }

  /** `DELETE /channels/{id}?reason_code=<Q.850>`. Resolves false when the channel was already gone. */
  hangup(channelId: string, reasonCode?: number): Promise<boolean> {
    return this.deleteOk(this.ch(channelId), "channel", reasonCode === undefined ? undefined : { reason_code: reasonCode });
  }

  getChannel(channelId: string): Promise<AriChannel> {
    return this.required(this.request<AriChannel>("GET", this.ch(channelId), { goneOn404: "channel" }), "GET channel");
  }

  /** `GET /channels` (reconcile after a reconnect). */
  async listChannels(): Promise<AriChannel[]> {
    return (await this.request<AriChannel[]>("GET", "/channels")) ?? [];
  }

  /**
   * `GET /channels/{id}/variable?variable=…`. Resolves undefined when the variable is not set (Asterisk answers
   * 404 "Provided variable was not found"); a 404 for the channel itself is the gone error.
   */
  async getChannelVar(channelId: string, variable: string): Promise<string | undefined> {
    try {
      const r = await this.request<AriVariable>("GET", `${this.ch(channelId)}/variable`, {
        query: { variable },
        goneOn404: "channel",
      });
      return r?.value;
    } catch (err) {
      if (isAriGone(err) && /variable/i.test(err.pbxReply.message)) return undefined;
      throw err;
    }
  }

  async setChannelVar(channelId: string, variable: string, value: string): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/variable`, { query: { variable, value }, goneOn404: "channel" });
  }

  /** `POST /channels/{id}/dtmf`. */
  async sendDtmf(channelId: string, dtmf: string, p: DtmfParams = {}): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/dtmf`, {
      query: { dtmf, before: p.before, between: p.between, duration: p.duration, after: p.after },
      goneOn404: "channel",
    });
  }

  /** REFER / 302: `POST /channels/{id}/redirect?endpoint=PJSIP/…`. */
  async redirect(channelId: string, endpoint: string): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/redirect`, { query: { endpoint }, goneOn404: "channel" });
  }

  /** Dialplan transfer: `POST /channels/{id}/continue`. The channel leaves Stasis. */
  async continueInDialplan(channelId: string, p: ContinueParams = {}): Promise<void> {
    await this.request("POST", `${this.ch(channelId)}/continue`, {
      query: { context: p.context, extension: p.extension, priority: p.priority, label: p.label },
      goneOn404: "channel",
    });
  }

  /** Early media on an unbridged channel: `POST /channels/{id}/play` (never on a bridged one, §3.9). */
  playOnChannel(channelId: string, media: string, p: PlayParams = {}): Promise<AriPlayback> {
    return this.required(
      this.request<AriPlayback>("POST", `${this.ch(channelId)}/play`, {
        query: { media, lang: p.lang, offsetms: p.offsetms, skipms: p.skipms, playbackId: p.playbackId },
        goneOn404: "channel",
      }),
      "POST channel play",
    );
  }

  /** `POST /channels/externalMedia` (§3.5–3.7); the response carries `channelvars`. */
  externalMedia(p: ExternalMediaParams): Promise<AriChannel> {
    const query: Query = {
      app: p.app ?? this.app,
      channelId: p.channelId,
      external_host: p.externalHost,
      encapsulation: p.encapsulation,
      transport: p.transport,
      connection_type: p.connectionType,
      format: p.format,
      direction: p.direction,
      data: p.data,
      transport_data: p.transportData,
    };
    const body = p.variables ? { variables: p.variables } : undefined;
    return this.required(
      this.request<AriChannel>("POST", "/channels/externalMedia", body === undefined ? { query } : { query, body }),
      "POST externalMedia",
    );
  }

  /** `POST /channels?endpoint=…&app=…`, variables in the JSON body. */
  originate(p: OriginateParams): Promise<AriChannel> {
    const query: Query = {
      endpoint: p.endpoint,
      app: p.app ?? this.app,
      appArgs: p.appArgs,
      channelId: p.channelId,
      otherChannelId: p.otherChannelId,
      callerId: p.callerId,
      timeout: p.timeout,
    };
    return this.required(
      this.request<AriChannel>("POST", "/channels", { query, body: { variables: p.variables ?? {} } }),
      "POST originate",
    );
  }

  // ---- bridges --------------------------------------------------------------------------------------------------

  createBridge(p: CreateBridgeParams = {}): Promise<AriBridge> {
    return this.required(
      this.request<AriBridge>("POST", "/bridges", { query: { type: p.type ?? "mixing", bridgeId: p.bridgeId, name: p.name } }),
      "POST bridges",
    );
  }

  /** 404 = bridge gone (AriGoneError); 422 = a channel not in Stasis / not found (PBX_ERROR). */
  async addChannel(bridgeId: string, channelIds: readonly string[]): Promise<void> {
    await this.request("POST", `/bridges/${enc(bridgeId)}/addChannel`, {
      query: { channel: channelIds.join(",") },
      goneOn404: "bridge",
    });
  }

  async removeChannel(bridgeId: string, channelIds: readonly string[]): Promise<void> {
    await this.request("POST", `/bridges/${enc(bridgeId)}/removeChannel`, {
      query: { channel: channelIds.join(",") },
      goneOn404: "bridge",
    });
  }

  /** Resolves false when the bridge was already gone. */
  destroyBridge(bridgeId: string): Promise<boolean> {
    return this.deleteOk(`/bridges/${enc(bridgeId)}`, "bridge");
  }

  /** `POST /bridges/{id}/play?media=<uri>&playbackId=<id>`. */
  playOnBridge(bridgeId: string, media: string, p: PlayParams = {}): Promise<AriPlayback> {
    return this.required(
      this.request<AriPlayback>("POST", `/bridges/${enc(bridgeId)}/play`, {
        query: { media, lang: p.lang, offsetms: p.offsetms, skipms: p.skipms, playbackId: p.playbackId },
        goneOn404: "bridge",
      }),
      "POST bridge play",
    );
  }

  // ---- playbacks ------------------------------------------------------------------------------------------------

  /** `DELETE /playbacks/{id}`; resolves false when the playback had already finished. */
  stopPlayback(playbackId: string): Promise<boolean> {
    return this.deleteOk(`/playbacks/${enc(playbackId)}`, "playback");
  }

  /** `POST /playbacks/{id}/control?operation=…`; 404 = playback gone (AriGoneError). */
  async controlPlayback(playbackId: string, operation: PlaybackOperation): Promise<void> {
    await this.request("POST", `/playbacks/${enc(playbackId)}/control`, { query: { operation }, goneOn404: "playback" });
  }
}
