/**
 * AriSim: an Asterisk 23.4.1 stand-in for whole-call tests of the Asterisk adapter (media-protocols.md §3). One real
 * HTTP server on 127.0.0.1:<random> serves
 * - ARI REST under `/ari` (Basic auth or `?api_key=user:pass`, 401 otherwise), answered as the recordings in
 *   shared/fixtures/asterisk show (status codes, bodies, content type; 204 with no body);
 * - the events WebSocket `/ari/events?app=…&subscribeAll=…` (101 without a subprotocol), one per app name;
 * - chan_websocket media sockets `/media/<MEDIA_WEBSOCKET_CONNECTION_ID>` (subprotocol `media`, no ARI auth), handed
 *   to the SimMediaEndpoint the `media` factory made for that externalMedia channel.
 *
 * The pieces: ari-sim-model.ts (state + JSON), ari-sim-events.ts (delivery rules), ari-sim-core.ts (event sequences),
 * ari-sim-rest.ts (REST validation and routing). Test-only code; nothing in src/ imports it.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { AsteriskCore } from "./ari-sim-core.js";
import type { SentEvent } from "./ari-sim-events.js";
import type { SimBridgeState, SimChannelState, SimPlaybackState } from "./ari-sim-model.js";
import { optimalFrameSize } from "./ari-sim-model.js";
import { AriRest, type OriginateOutcome, type RestReply, type RestResult } from "./ari-sim-rest.js";

export type { OriginateOutcome } from "./ari-sim-rest.js";
import type { ExternalMediaRequest, SimMediaEndpoint, SimMediaFactory } from "./types.js";

export type { SimBridgeState, SimChannelState, SimPlaybackState } from "./ari-sim-model.js";
export type { SentEvent } from "./ari-sim-events.js";

/** The recorded `GET /ari/asterisk/info` (asterisk-info.json); `system.version` is replaced by `version`. */
const RECORDED_INFO = {
  build: { os: "Linux", kernel: "6.18.44-fc-v782", machine: "x86_64", options: "OPTIONAL_API", date: "2026-11-23 20:55:53 UTC", user: "root" },
  system: { version: "23.4.1", entity_id: "02:fc:00:00:00:01" },
  config: { name: "", default_language: "en", setid: { user: "", group: "" } },
  status: { startup_time: "2026-11-23T21:10:11.398+0000", last_reload_time: "2026-11-23T21:10:11.398+0000" },
};

/** Recorded: demo-congrats lasts 30.3 s (PlaybackFinished 30 s after PlaybackStarted in run 1). */
const RECORDED_SOUNDS: Record<string, number> = { "sound:demo-congrats": 30_300 };

/**
 * Whether the events an operation causes go out before or after its REST reply. Asterisk does either (§3.9,
 * recorded both ways), so a seeded pseudo-random mix is the default: reproducible, but never one fixed order.
 */
export type AriEventOrder = "events-first" | "reply-first" | { seed: number };

export interface AriSimOptions {
  user?: string;
  password?: string;
  /** `asterisk/info` system.version; default the recorded "23.4.1". */
  version?: string;
  media?: SimMediaFactory;
  /** Playback lengths by media URI (`"sound:demo-congrats": 30300`); default 1000 ms; `tone:` plays until stopped. */
  soundDurationsMs?: Record<string, number>;
  /** Default `{ seed: 1 }`. */
  eventOrder?: AriEventOrder;
  /**
   * Events that follow their reply come up to this late (seeded; default 0 = on the next tick, as the replays of
   * the recordings need). A live 23.4.1 let the client's next request overtake a created channel's StasisStart
   * (live-2026-12-06 fact 3): whole-call tests set it so that a client that waits for the reply, not the event, fails.
   */
  lateEventsMs?: number;
  /** Delay of each simulated dial step (ringing, answer, REFER outcome). Default 20 ms. */
  stepMs?: number;
}

/** One REST call as received, with what the simulator answered. */
export interface RestRecord {
  seq: number;
  method: string;
  /** Full path, `/ari/...`. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON body, or null. */
  body: unknown;
  status: number;
  contentType: string | null;
  response: unknown;
}

export interface SimCall {
  readonly id: string;
  readonly name: string;
  state(): string;
  /** The externalMedia endpoint in the same bridge as this call. */
  media(): SimMediaEndpoint | undefined;
  pressDtmf(digit: string, durationMs?: number): void;
  /** The caller hangs up: ChannelHangupRequest, ChannelLeftBridge, StasisEnd, ChannelDestroyed. */
  hangup(cause?: number): void;
  hold(on: boolean): void;
  waitForState(state: string, timeoutMs?: number): Promise<void>;
  /** Resolves when the channel is destroyed. */
  waitGone(timeoutMs?: number): Promise<void>;
  /** Resolves when the channel left Stasis (hangup, or `continue`). */
  waitStasisEnd(timeoutMs?: number): Promise<void>;
}

export interface PlaceCallOptions {
  caller?: string;
  callerName?: string;
  exten?: string;
  context?: string;
  args?: string[];
  /** Inbound SIP headers (PJSIP_HEADERS / PJSIP_HEADER). */
  headers?: Record<string, string>;
  /** CHANNEL(audioreadformat); default the recorded "alaw". */
  readFormat?: string;
  /** Stasis app; default the app of the newest events socket, else "voiceagent". */
  app?: string;
}

type Waiter = () => boolean;

const JSON_TYPE = "application/json";

export class AriSim {
  readonly url: string;
  readonly rest: RestRecord[] = [];
  originateBehavior: (req: { endpoint: string; channelId: string; variables: Record<string, string> }) => OriginateOutcome = () => "answer";
  redirectBehavior: (endpoint: string) => "accept" | "fail" = () => "accept";

  private readonly core: AsteriskCore;
  private readonly restApi: AriRest;
  private readonly server: http.Server;
  private readonly eventsWss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly mediaWss: WebSocketServer;
  private readonly auth: string;
  private readonly apiKey: string;
  private readonly version: string;
  private readonly mediaFactory: SimMediaFactory;
  private readonly random: () => number;
  private readonly order: AriEventOrder;
  private readonly lateEventsMs: number;
  private readonly waiters = new Set<Waiter>();
  /** chan_websocket channels waiting for (or holding) their media socket, by connection id. */
  private readonly mediaSockets = new Map<string, { channel: SimChannelState; app: string; args: string[]; dialstring: string; ws?: WebSocket }>();
  private stall = { ms: 0, count: 0 };
  private seq = 0;
  /** The HTTP port while an `outage()` lasts. */
  private downPort: number | undefined;

  private constructor(o: AriSimOptions, server: http.Server, url: string) {
    this.server = server;
    this.url = url;
    const user = o.user ?? "ari";
    const password = o.password ?? "ari";
    this.auth = `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
    this.apiKey = `${user}:${password}`;
    this.version = o.version ?? "23.4.1";
    this.mediaFactory = o.media ?? stubMedia;
    this.order = o.eventOrder ?? { seed: 1 };
    this.lateEventsMs = o.lateEventsMs ?? 0;
    this.random = mulberry32(typeof this.order === "object" ? this.order.seed : 1);
    const sounds = { ...RECORDED_SOUNDS, ...(o.soundDurationsMs ?? {}) };
    this.core = new AsteriskCore(RECORDED_INFO.system.entity_id, (media) => sounds[media] ?? 1000);
    this.core.hub.onSent(() => this.poke());
    const stepMs = o.stepMs ?? 20;
    this.restApi = new AriRest({
      core: this.core,
      info: () => ({ ...RECORDED_INFO, system: { ...RECORDED_INFO.system, version: this.version } }),
      soundExists: (name) => `sound:${name}` in sounds,
      createMedia: async (req) => this.mediaFactory(req),
      awaitMediaSocket: (connectionId, channel, app, args, dialstring) => {
        this.mediaSockets.set(connectionId, { channel, app, args, dialstring });
      },
      originateOutcome: (req) => this.originateBehavior(req),
      redirectOutcome: (endpoint) => this.redirectBehavior(endpoint),
      stepMs,
    });
    this.mediaWss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("media") ? "media" : false),
    });
    server.on("request", (req, res) => void this.onRequest(req, res));
    server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  static async start(o: AriSimOptions = {}): Promise<AriSim> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return new AriSim(o, server, `http://127.0.0.1:${port}`);
  }

  // ---- inspection -------------------------------------------------------------------------------------------

  /** Every event frame sent, per app (ApplicationReplaced included). */
  get events(): readonly SentEvent[] {
    return this.core.hub.sent;
  }

  eventsConnections(): number {
    return this.core.hub.openSockets();
  }

  channel(id: string): SimChannelState | undefined {
    return this.core.channels.get(id);
  }

  bridge(id: string): SimBridgeState | undefined {
    return this.core.bridges.get(id);
  }

  playbacks(): SimPlaybackState[] {
    return this.core.allPlaybacks();
  }

  waitForRest(pred: (r: RestRecord) => boolean, timeoutMs = 5000): Promise<RestRecord> {
    return this.waitFor(() => this.rest.find(pred), timeoutMs, "REST call");
  }

  /** Resolves with the first sent event (any app) matching `pred`. */
  waitForEvent(pred: (ev: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    return this.waitFor(() => this.core.hub.sent.find((s) => pred(s.event))?.event, timeoutMs, "event");
  }

  // ---- driving ----------------------------------------------------------------------------------------------

  /** A PJSIP channel in state Ring entering Stasis (StasisStart with `args`). */
  async placeCall(o: PlaceCallOptions = {}): Promise<SimCall> {
    const number = o.caller ?? "agent";
    const c = this.core.inbound({
      app: o.app ?? this.core.hub.defaultApp() ?? "voiceagent",
      caller: { name: o.callerName ?? number, number },
      exten: o.exten ?? "100",
      context: o.context ?? "from-internal",
      args: o.args ?? [],
      // res_pjsip_header_funcs keeps every header of the INVITE, not only the X- ones a test adds.
      headers: { ...inviteHeaders(number, o.exten ?? "100"), ...(o.headers ?? {}) },
      readFormat: o.readFormat ?? "alaw",
    });
    return this.simCall(c);
  }

  /** A channel the simulator already has (an originated one, say) as a SimCall, or undefined. */
  call(id: string): SimCall | undefined {
    const c = this.core.channels.get(id);
    return c === undefined ? undefined : this.simCall(c);
  }

  /**
   * Answers a request instead of Asterisk when it returns a reply (nothing changes in the model): a test's way to
   * make Asterisk refuse one step, e.g. an addChannel with 422 as the live switch did (fact 3).
   */
  restHook: ((method: string, path: string, query: Record<string, string>) => RestReply | undefined) | undefined;

  /** Closes every events WebSocket abruptly; the controller must reconnect. Channels stay in Stasis. */
  dropEvents(): void {
    this.core.hub.dropAll();
  }

  /**
   * Asterisk goes away: its HTTP port stops listening (a connect is refused, ECONNREFUSED, as with the process
   * down) and the events sockets drop. Calls live on (a network outage) unless `restart`: then every channel is
   * destroyed without an event, as after an Asterisk restart. `restore()` listens again on the same port.
   */
  async outage(o: { restart?: boolean } = {}): Promise<void> {
    const { port } = this.server.address() as AddressInfo;
    this.downPort = port;
    this.core.hub.dropAll();
    if (o.restart) for (const c of [...this.core.channels.values()]) if (!c.destroyed) this.core.vanish(c);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }

  /** Asterisk is back on the port it had before `outage()`. */
  async restore(): Promise<void> {
    const port = this.downPort;
    if (port === undefined) throw new Error("AriSim.restore without an outage");
    this.downPort = undefined;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  /** The channel is destroyed without any event (it went while the controller was disconnected). */
  vanish(channelId: string): void {
    const c = this.core.live(channelId);
    if (c) this.core.vanish(c);
  }

  /** The next `count` REST requests (default: all, until `stallRest(0)`) are answered `ms` late. */
  stallRest(ms: number, count = Infinity): void {
    this.stall = { ms, count: ms > 0 ? count : 0 };
  }

  /** Another client registers our app name: ApplicationReplaced, then no more events on the old socket. */
  replaceApplication(app?: string): void {
    this.core.hub.replace(app);
  }

  async close(): Promise<void> {
    this.core.stopTimers();
    for (const ws of this.eventsWss.clients) ws.terminate();
    for (const ws of this.mediaWss.clients) ws.terminate();
    for (const m of this.mediaSockets.values()) m.channel.media?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- SimCall ----------------------------------------------------------------------------------------------

  private simCall(c: SimChannelState): SimCall {
    const core = this.core;
    return {
      id: c.id,
      name: c.name,
      state: () => c.state,
      media: () => {
        if (c.bridgeId === undefined) return undefined;
        const b = core.bridges.get(c.bridgeId);
        for (const id of b?.channels ?? []) {
          const m = core.channels.get(id);
          if (m && m !== c && m.media) return m.media;
        }
        return undefined;
      },
      pressDtmf: (digit, durationMs = 100) => {
        if (!c.destroyed) core.dtmfReceived(c, digit, durationMs);
      },
      hangup: (cause = 16) => {
        if (!c.destroyed) core.remoteHangup(c, cause);
      },
      hold: (on) => {
        if (!c.destroyed) core.hold(c, on);
      },
      waitForState: (state, timeoutMs = 5000) => this.waitFor(() => (c.state === state ? true : undefined), timeoutMs, `state ${state}`).then(() => undefined),
      waitGone: (timeoutMs = 5000) => this.waitFor(() => (c.destroyed ? true : undefined), timeoutMs, "channel gone").then(() => undefined),
      waitStasisEnd: (timeoutMs = 5000) => this.waitFor(() => (c.app === undefined ? true : undefined), timeoutMs, "StasisEnd").then(() => undefined),
    };
  }

  // ---- waiting ----------------------------------------------------------------------------------------------

  private waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = () => {
        const v = probe();
        if (v === undefined) return false;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(v);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`AriSim: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private poke(): void {
    for (const w of [...this.waiters]) w();
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------

  private authorized(req: http.IncomingMessage, query: URLSearchParams): boolean {
    return req.headers.authorization === this.auth || query.get("api_key") === this.apiKey;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const u = new URL(req.url ?? "/", "http://x");
    const method = req.method ?? "GET";
    const query = Object.fromEntries(u.searchParams);
    const raw = Buffer.concat(chunks).toString("utf8");
    let body: unknown = null;
    if (raw !== "") {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const record = (r: RestReply): void => {
      this.rest.push({
        seq: ++this.seq,
        method,
        path: u.pathname,
        query,
        body,
        status: r.status,
        contentType: r.body === undefined ? null : JSON_TYPE,
        response: r.body ?? null,
      });
      this.poke();
    };

    if (this.stall.count > 0) {
      this.stall.count--;
      const ms = this.stall.ms;
      await new Promise((r) => setTimeout(r, ms));
    }

    let result: RestResult;
    const injected = this.restHook?.(method, u.pathname, query);
    if (injected) {
      result = { reply: injected };
    } else if (!u.pathname.startsWith("/ari/") && u.pathname !== "/ari") {
      result = { reply: { status: 404, body: { message: "Resource not found" } } };
    } else if (!this.authorized(req, u.searchParams)) {
      result = {
        reply: { status: 401, body: { message: "Authentication required" }, headers: { "WWW-Authenticate": 'Basic realm="Asterisk REST Interface"' } },
      };
    } else if (typeof body === "string") {
      result = { reply: { status: 400, body: { message: "Failed to parse body" } } };
    } else {
      const segs = u.pathname.split("/").slice(2).filter((s) => s !== "").map(decodeURIComponent);
      try {
        result = await this.restApi.handle(method, segs, query, body);
      } catch (err) {
        result = { reply: { status: 500, body: { message: (err as Error).message } } };
      }
    }
    const { reply, events } = result;
    const eventsFirst = this.order === "events-first" || (typeof this.order === "object" && this.random() < 0.5);
    if (events && eventsFirst) events();
    record(reply);
    this.send(res, reply);
    // After the reply they come late, as on the live switch: a created channel's StasisStart can follow the
    // client's next request (live-2026-12-06 fact 3), so a client must wait for the event, not the reply.
    if (events && !eventsFirst) {
      if (this.lateEventsMs > 0) setTimeout(events, this.random() * this.lateEventsMs);
      else setImmediate(events);
    }
  }

  private send(res: http.ServerResponse, r: RestReply): void {
    if (res.destroyed) return;
    const headers: Record<string, string> = { Server: `Asterisk/${this.version}`, "Cache-Control": "no-cache, no-store", ...(r.headers ?? {}) };
    if (r.body === undefined) {
      res.writeHead(r.status, { ...headers, "Content-Length": "0" }).end();
      return;
    }
    const text = JSON.stringify(r.body);
    res.writeHead(r.status, { ...headers, "Content-Type": JSON_TYPE, "Content-Length": String(Buffer.byteLength(text)) }).end(text);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/ari/events") {
      if (!this.authorized(req, u.searchParams)) return refuse(socket, 401, "Authentication required");
      const app = u.searchParams.get("app");
      if (!app) return refuse(socket, 400, "Missing param 'app'");
      const all = /^(true|yes|1|on)$/i.test(u.searchParams.get("subscribeAll") ?? "");
      this.eventsWss.handleUpgrade(req, socket, head, (ws) => {
        this.core.hub.connect(ws, app, all);
      });
      return;
    }
    const m = /^\/media\/([^/]+)$/.exec(u.pathname);
    if (m) {
      const entry = this.mediaSockets.get(decodeURIComponent(m[1] as string));
      if (!entry || entry.channel.destroyed) return refuse(socket, 404, "Not Found");
      if (entry.ws) return refuse(socket, 409, "Conflict");
      const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
      if (!offered.includes("media")) return refuse(socket, 400, "Bad Request");
      this.mediaWss.handleUpgrade(req, socket, head, (ws) => this.onMediaSocket(entry, ws));
      return;
    }
    refuse(socket, 404, "Not Found");
  }

  /** chan_websocket: the channel is answered and enters Stasis only once its media socket is up (§3.6). */
  private onMediaSocket(entry: { channel: SimChannelState; app: string; args: string[]; dialstring: string; ws?: WebSocket }, ws: WebSocket): void {
    entry.ws = ws;
    const c = entry.channel;
    c.media?.acceptWebSocket?.(ws);
    ws.on("close", () => {
      // The media socket closing hangs the channel up, as chan_websocket does.
      if (!c.destroyed) this.core.remoteHangup(c, 16);
    });
    if (!c.destroyed) this.core.outboundAnswered(c, entry.app, entry.args, entry.dialstring);
  }
}

/** The headers of a softphone's INVITE as res_pjsip stores them (names in the order sipp/linphone send them). */
function inviteHeaders(caller: string, exten: string): Record<string, string> {
  return {
    Via: "SIP/2.0/UDP 127.0.0.1:5091;rport;branch=z9hG4bK-sim",
    From: `<sip:${caller}@127.0.0.1>;tag=sim`,
    To: `<sip:${exten}@127.0.0.1>`,
    "Call-ID": `${randomUUID()}@127.0.0.1`,
    CSeq: "1 INVITE",
    Contact: `<sip:${caller}@127.0.0.1:5091>`,
    "Max-Forwards": "70",
    "Content-Type": "application/sdp",
    "Content-Length": "129",
  };
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ message });
  const reason = http.STATUS_CODES[status] ?? "Error";
  const extra = status === 401 ? 'WWW-Authenticate: Basic realm="Asterisk REST Interface"\r\n' : "";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** A small seeded PRNG, so the event/reply order is mixed yet the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Without a media factory: an endpoint that carries the channelvars and nothing else. */
function stubMedia(req: ExternalMediaRequest): SimMediaEndpoint {
  const channelvars: Record<string, string> =
    req.transport === "websocket"
      ? { MEDIA_WEBSOCKET_CONNECTION_ID: randomUUID(), MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE: String(optimalFrameSize(req.format)) }
      : req.encapsulation === "rtp"
        ? { UNICASTRTP_LOCAL_PORT: String(10000 + Math.floor(Math.random() * 10000) * 2), UNICASTRTP_LOCAL_ADDRESS: "127.0.0.1" }
        : {};
  let ws: WebSocket | undefined;
  return {
    channelvars,
    acceptWebSocket: (s) => {
      ws = s;
    },
    ready: Promise.resolve(),
    sendCaller: async () => {},
    setCallerMuted: () => {},
    agentAudio: () => ({ pcm: new Int16Array(0), rate: 8000 }),
    stats: {},
    close: () => ws?.close(1000),
  };
}
