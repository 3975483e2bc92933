/**
 * The REST half of the ARI simulator: routes `/ari/...` requests to the simulated Asterisk (ari-sim-core.ts) with
 * Asterisk's validation, status codes and error bodies (res/ari/resource_channels.c, resource_bridges.c and the
 * recordings). A handler returns the reply plus, optionally, work to run after the reply went out: the events an
 * operation causes may reach the client before or after the REST reply (§3.9 "Ordering"), and the caller decides.
 */
import { randomUUID } from "node:crypto";
import type { AsteriskCore } from "./ari-sim-core.js";
import {
  bridgeJson,
  channelJson,
  HANGUP_REASONS,
  isUuid,
  KNOWN_FORMATS,
  optimalFrameSize,
  parseCallerId,
  playbackJson,
  type Json,
  type SimBridgeState,
  type SimChannelState,
} from "./ari-sim-model.js";
import type { ExternalMediaRequest, SimMediaEndpoint } from "./types.js";

export interface RestReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RestResult {
  reply: RestReply;
  /** Events the operation causes; run before or after the reply as the simulator's ordering says. */
  events?: () => void;
}

/** `ring`: rings until the app hangs it up (for cancel / ringing-state tests). */
export type OriginateOutcome = "answer" | "busy" | "noanswer" | "congestion" | "unavailable" | "ring";

/** What the REST layer needs from the simulator around it. */
export interface RestHost {
  readonly core: AsteriskCore;
  info(): Json;
  soundExists(name: string): boolean;
  createMedia(req: ExternalMediaRequest): Promise<SimMediaEndpoint>;
  /** A chan_websocket channel waits for its media socket under this connection id. */
  awaitMediaSocket(connectionId: string, channel: SimChannelState, app: string, args: string[], dialstring: string): void;
  originateOutcome(req: { endpoint: string; channelId: string; variables: Record<string, string> }): OriginateOutcome;
  redirectOutcome(endpoint: string): "accept" | "fail";
  /** Delay before the next step of a dial (ringing, answer, redirect success). */
  readonly stepMs: number;
}

const err = (status: number, message: string): RestResult => ({ reply: { status, body: { message } } });
const ok = (body: unknown, status = 200): RestResult => ({ reply: { status, body } });
const noContent = (events?: () => void): RestResult => (events ? { reply: { status: 204 }, events } : { reply: { status: 204 } });

/** Q.850 causes of a failed originate (media-protocols.md §3.8 read backwards) and the Dial status with them. */
const ORIGINATE_FAIL: Record<Exclude<OriginateOutcome, "answer" | "ring">, { dialstatus: string; cause: number }> = {
  busy: { dialstatus: "BUSY", cause: 17 },
  noanswer: { dialstatus: "NOANSWER", cause: 19 },
  congestion: { dialstatus: "CONGESTION", cause: 34 },
  unavailable: { dialstatus: "CHANUNAVAIL", cause: 20 },
};

/** Outbound channels Asterisk refuses ARI operations on until they are answered (channel_state_invalid). */
const INVALID_STATES = new Set(["Down", "Rsrved", "Ringing"]);

const AUDIOSOCKET_CONNECT_MS = 2000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("timeout")), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const BRIDGE_TYPES = new Set(["mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"]);

export class AriRest {
  constructor(private readonly host: RestHost) {}

  private get core(): AsteriskCore {
    return this.host.core;
  }

  async handle(method: string, segs: string[], q: Record<string, string>, body: unknown): Promise<RestResult> {
    const [res, id, sub, extra] = segs;
    if (extra !== undefined) return err(404, "Resource not found");
    switch (res) {
      case "asterisk":
        if (id === "info" && sub === undefined) return method === "GET" ? ok(this.host.info()) : err(405, "Invalid method");
        return err(404, "Resource not found");
      case "applications":
        return this.applications(method, id, sub);
      case "sounds":
        if (method !== "GET") return err(405, "Invalid method");
        if (id === undefined || sub !== undefined) return ok([]);
        return this.host.soundExists(id) ? ok({ id, formats: [{ language: "en", format: "slin" }] }) : err(404, "Sound not found");
      case "channels":
        return this.channels(method, id, sub, q, body);
      case "bridges":
        return this.bridges(method, id, sub, q);
      case "playbacks":
        return this.playbacks(method, id, sub, q);
      default:
        return err(404, "Resource not found");
    }
  }

  // ---- applications -----------------------------------------------------------------------------------------

  private applications(method: string, name: string | undefined, sub: string | undefined): RestResult {
    if (method !== "GET" || sub !== undefined) return err(405, "Invalid method");
    const hub = this.core.hub;
    const appJson = (app: string): Json => {
      const all = hub.subscribeAllFor(app);
      const chans = this.core.liveChannels().filter((c) => c.subscribers.has(app)).map((c) => c.id);
      const bridges = [...this.core.bridges.values()].filter((b) => !b.destroyed && b.subscribers.has(app)).map((b) => b.id);
      return {
        name: app,
        channel_ids: all ? ["__AST_CHANNEL_ALL_TOPIC"] : chans,
        bridge_ids: all ? ["__AST_BRIDGE_ALL_TOPIC"] : bridges,
        endpoint_ids: all ? ["__AST_ENDPOINT_ALL_TOPIC"] : [],
        device_names: all ? ["__AST_DEVICE_STATE_ALL_TOPIC"] : [],
        events_allowed: [],
        events_disallowed: [],
      };
    };
    if (name === undefined) return ok(hub.apps().map(appJson));
    return hub.isRegistered(name) ? ok(appJson(name)) : err(404, "Application not found");
  }

  // ---- channels ---------------------------------------------------------------------------------------------

  /** find_control: 404 unknown, 409 not in Stasis; then channel_state_invalid: 412 for Down/Rsrved/Ringing. */
  private control(id: string, checkState = true): SimChannelState | RestResult {
    const c = this.core.live(id);
    if (!c) return err(404, "Channel not found");
    if (c.app === undefined) return err(409, "Channel not in Stasis application");
    if (checkState && INVALID_STATES.has(c.state)) return err(412, "Channel in invalid state");
    return c;
  }

  private async channels(method: string, id: string | undefined, sub: string | undefined, q: Record<string, string>, body: unknown): Promise<RestResult> {
    if (id === undefined) {
      if (method === "GET") return ok(this.core.liveChannels().map(channelJson));
      if (method === "POST") return this.originate(q, body, undefined);
      return err(405, "Invalid method");
    }
    if (id === "externalMedia") return method === "POST" ? this.externalMedia(q, body) : err(405, "Invalid method");
    if (sub === undefined) {
      if (method === "GET") {
        const c = this.core.live(id);
        return c ? ok(channelJson(c)) : err(404, "Channel not found");
      }
      if (method === "DELETE") return this.hangup(id, q);
      if (method === "POST") return this.originate(q, body, id);
      return err(405, "Invalid method");
    }
    const key = `${method} ${sub}`;
    switch (key) {
      case "POST answer":
        return this.withControl(id, (c) => noContent(() => this.core.setState(c, "Up")));
      case "POST ring":
      case "DELETE ring":
      case "POST progress":
        return this.withControl(id, (c) => {
          c.indications.push(key === "POST progress" ? "progress" : key === "POST ring" ? "ring" : "ring_stop");
          return noContent();
        });
      case "POST hold":
      case "DELETE hold":
        return this.withControl(id, (c) => noContent(() => this.core.hold(c, method === "POST")));
      case "POST dtmf":
        return this.withControl(id, (c) => {
          if (!q.dtmf) return err(400, "DTMF is required");
          const rec: SimChannelState["dtmfSent"][number] = { dtmf: q.dtmf };
          if (q.duration !== undefined) rec.duration = Number(q.duration);
          if (q.between !== undefined) rec.between = Number(q.between);
          c.dtmfSent.push(rec);
          return noContent();
        });
      case "POST redirect":
        return this.withControl(id, (c) => this.redirect(c, q.endpoint));
      case "POST continue":
        return this.withControl(id, (c) => this.continueInDialplan(c, q));
      case "POST play":
        return this.withControl(id, (c) => {
          // A playback on an unanswered channel is early media: Asterisk indicates progress (183) first.
          if (c.state !== "Up") c.indications.push("progress");
          return this.play({ channel: c }, q, c.language);
        });
      case "GET variable":
        return this.getVariable(id, q.variable);
      case "POST variable": {
        if (!q.variable) return err(400, "Variable name is required");
        return this.withControl(
          id,
          (c) => {
            c.variables[q.variable as string] = q.value ?? "";
            return noContent();
          },
          false,
        );
      }
      case "GET rtp_statistics":
        return this.rtpStatistics(id);
      default:
        return err(404, "Resource not found");
    }
  }

  private withControl(id: string, f: (c: SimChannelState) => RestResult, checkState = true): RestResult {
    const c = this.control(id, checkState);
    return "reply" in c ? c : f(c);
  }

  /** `DELETE /channels/{id}`: any channel, in Stasis or not (ast_channel_get_by_name). */
  private hangup(id: string, q: Record<string, string>): RestResult {
    const c = this.core.live(id);
    if (!c) return err(404, "Channel not found");
    if (q.reason && q.reason_code) return err(400, "The reason and reason_code can't both be specified");
    let cause = 16;
    if (q.reason_code) {
      cause = Number.parseInt(q.reason_code, 10);
      if (!Number.isFinite(cause)) return err(400, "Invalid reason for hangup reason code provided");
    } else if (q.reason) {
      const r = HANGUP_REASONS[q.reason];
      if (r === undefined) return err(400, "Invalid reason for hangup reason provided");
      cause = r;
    }
    return noContent(() => {
      if (!c.destroyed) this.core.appHangup(c, cause);
    });
  }

  /** REFER / 302. Asterisk answers 204 at once; the outcome shows later as a hangup, or as nothing (§3.9). */
  private redirect(c: SimChannelState, endpoint: string | undefined): RestResult {
    if (!endpoint) return err(400, "Required parameter 'endpoint' not provided.");
    const slash = endpoint.indexOf("/");
    if (slash <= 0) return err(422, `Endpoint parameter '${endpoint}' does not contain tech/resource`);
    const tech = endpoint.slice(0, slash);
    if (endpoint.slice(slash + 1) === "") return err(422, `No resource provided in endpoint parameter '${endpoint}'`);
    const chanTech = c.name.slice(0, c.name.indexOf("/"));
    if (tech.toLowerCase() !== chanTech.toLowerCase()) {
      return err(422, `Endpoint technology '${tech}' does not match channel technology '${chanTech}'`);
    }
    c.redirects.push(endpoint);
    if (this.host.redirectOutcome(endpoint) === "accept") {
      // REFER accepted and the transfer target answered: the far end hangs the caller's dialog up.
      this.core.later(this.host.stepMs, () => {
        if (!c.destroyed) this.core.remoteHangup(c, 16);
      });
    }
    return noContent();
  }

  private continueInDialplan(c: SimChannelState, q: Record<string, string>): RestResult {
    let context: string;
    let exten: string;
    if (!q.context) {
      context = c.dialplan.context;
      exten = q.extension || c.dialplan.exten;
    } else {
      context = q.context;
      exten = q.extension || "s";
    }
    let priority: number;
    if (q.label) {
      priority = Number.parseInt(q.label, 10);
      if (!Number.isFinite(priority)) return err(404, "Requested label can not be found");
      if (priority === 0) return err(400, "Requested priority is illegal");
    } else if (q.priority) priority = Number(q.priority);
    else if (!q.context && !q.extension) priority = c.dialplan.priority + 1;
    else priority = 1;
    return noContent(() => {
      if (!c.destroyed) this.core.continueInDialplan(c, context, exten, priority);
    });
  }

  /**
   * `GET /channels/{id}/variable`: plain variables 404 when unset; a dialplan function that fails to read is 500
   * "Unable to read provided function" (ast_func_read2), which includes PJSIP_HEADER of a header the INVITE did
   * not carry, PJSIP_HEADERS with no header of that prefix (live-2026-12-06 fact 6: `PJSIP_HEADERS(X-)` on a call
   * without X- headers), and both on a channel that received no INVITE (an originated one). `PJSIP_HEADERS()`
   * lists every header of the INVITE (res_pjsip_header_funcs.c read_headers).
   */
  private getVariable(id: string, variable: string | undefined): RestResult {
    if (!variable) return err(400, "Variable name is required");
    const c = this.core.live(id);
    if (!c) return err(404, "Provided channel was not found");
    if (!variable.endsWith(")")) {
      const v = c.variables[variable];
      return v === undefined ? err(404, "Provided variable was not found") : ok({ value: v });
    }
    const v = this.readFunction(c, variable);
    return v === undefined ? err(500, "Unable to read provided function") : ok({ value: v });
  }

  private readFunction(c: SimChannelState, expr: string): string | undefined {
    const m = /^([A-Z_]+)\((.*)\)$/i.exec(expr);
    if (!m) return undefined;
    const fn = (m[1] as string).toUpperCase();
    const args = (m[2] as string).split(",").map((s) => s.trim());
    const headerNames = Object.keys(c.headers);
    switch (fn) {
      case "PJSIP_HEADERS": {
        if (c.kind !== "pjsip" || headerNames.length === 0) return undefined;
        const prefix = (args[0] ?? "").toLowerCase();
        const names = headerNames.filter((h) => h.toLowerCase().startsWith(prefix));
        if (prefix === "") return names.join(",");
        return names.length === 0 ? undefined : names.join(",");
      }
      case "PJSIP_HEADER": {
        if (c.kind !== "pjsip" || headerNames.length === 0 || (args[0] ?? "").toLowerCase() !== "read") return undefined;
        const name = (args[1] ?? "").toLowerCase();
        const found = headerNames.find((h) => h.toLowerCase() === name);
        return found === undefined ? undefined : c.headers[found];
      }
      case "CHANNEL": {
        const what = (args[0] ?? "").toLowerCase();
        if (what === "audioreadformat" || what === "audionativeformat" || what === "audiowriteformat") return c.readFormat;
        if (what === "name") return c.name;
        if (what === "uniqueid") return c.id;
        if (what === "state") return c.state;
        if (what === "language") return c.language;
        return undefined;
      }
      case "CALLERID": {
        const what = (args[0] ?? "").toLowerCase();
        if (what === "num" || what === "number") return c.caller.number;
        if (what === "name") return c.caller.name;
        if (what === "all") return `"${c.caller.name}" <${c.caller.number}>`;
        return undefined;
      }
      default:
        return undefined;
    }
  }

  private rtpStatistics(id: string): RestResult {
    const c = this.core.live(id);
    if (!c) return err(404, "Channel not found");
    if (c.kind === "unicastrtp") return err(404, "RTP info not found"); // recorded
    if (c.kind !== "pjsip") return err(403, "Unsupported channel type");
    return ok({ txcount: 0, rxcount: 0, txploss: 0, rxploss: 0, local_ssrc: 1, remote_ssrc: 2, channel_uniqueid: c.id });
  }

  // ---- originate / externalMedia -------------------------------------------------------------------------------

  /** The `{"variables": {...}}` body: string values only (json_to_ast_variables). */
  private variablesFrom(body: unknown): { vars: Record<string, string> } | { error: RestResult } {
    const bad = { error: err(400, "Only string values in the 'variables' object allowed") };
    const vars = typeof body === "object" && body !== null ? (body as Json).variables : undefined;
    if (vars === undefined || vars === null) return { vars: {} };
    if (typeof vars !== "object") return bad;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars as Json)) {
      if (typeof v !== "string") return bad;
      out[k] = v;
    }
    return { vars: out };
  }

  private originate(q: Record<string, string>, body: unknown, pathId: string | undefined): RestResult {
    const parsed = this.variablesFrom(body);
    if ("error" in parsed) return parsed.error;
    const variables = parsed.vars;
    const endpoint = q.endpoint;
    if (!endpoint) return err(400, "Endpoint must be specified");
    const slash = endpoint.indexOf("/");
    if (slash <= 0 || slash === endpoint.length - 1) return err(400, "Invalid endpoint specified");
    const app = q.app;
    if (!app) return err(400, "Application or extension must be specified");
    const channelId = pathId ?? q.channelId ?? this.core.nextUniqueId();
    if (this.core.live(channelId)) return err(409, "Channel with given unique ID already exists");
    const tech = endpoint.slice(0, slash);
    // Only PJSIP endpoints exist in the simulated PBX; Asterisk fails the channel request for anything else.
    if (tech.toUpperCase() !== "PJSIP") return err(500, "Allocation failed");
    const resource = endpoint.slice(slash + 1);
    const peer = resource.replace(/^sips?:/, "").split(/[@/;:]/)[0] || "peer";
    const c = this.core.outbound({
      id: channelId,
      name: `PJSIP/${peer}-${this.core.pointer().slice(-8)}`,
      kind: "pjsip",
      caller: parseCallerId(q.callerId),
      variables,
      readFormat: "ulaw",
    });
    const args = q.appArgs ? q.appArgs.split(",") : [];
    const outcome = this.host.originateOutcome({ endpoint, channelId, variables: { ...variables } });
    const step = this.host.stepMs;
    const events = (): void => {
      this.core.announceOutbound(c, app, [], resource);
      if (outcome !== "unavailable") {
        this.core.later(step, () => {
          if (!c.destroyed) this.core.setState(c, "Ringing");
        });
      }
      this.core.later(2 * step, () => {
        if (c.destroyed || outcome === "ring") return;
        if (outcome === "answer") this.core.outboundAnswered(c, app, args, resource);
        else this.core.outboundFailed(c, ORIGINATE_FAIL[outcome].dialstatus, ORIGINATE_FAIL[outcome].cause, resource);
      });
    };
    return { reply: { status: 200, body: channelJson(c) }, events };
  }

  private async externalMedia(q: Record<string, string>, body: unknown): Promise<RestResult> {
    const parsed = this.variablesFrom(body);
    if ("error" in parsed) return parsed.error;
    const variables = parsed.vars;
    const app = q.app;
    if (!app) return err(400, "app cannot be empty");
    const transport = (q.transport || "udp").toLowerCase();
    const encapsulation = (q.encapsulation || (transport === "websocket" ? "none" : "rtp")).toLowerCase();
    const connectionType = q.connection_type || (transport === "websocket" ? "client" : undefined);
    const host = q.external_host;
    const needsHost = transport !== "websocket" || connectionType === "client";
    if (needsHost && !host) return err(400, "external_host cannot be empty");
    if (host && transport !== "websocket" && !/^(\[[^\]]+\]|[^:]+):\d+$/.test(host)) {
      return err(400, "external_host must be <host>:<port>");
    }
    const format = q.format;
    if (!format) return err(400, "format cannot be empty");
    if (!KNOWN_FORMATS.has(format)) return err(400, `Provided format (${format}) was not found`);
    const kind =
      encapsulation === "rtp" && transport === "udp"
        ? "unicastrtp"
        : encapsulation === "audiosocket" && transport === "tcp"
          ? "audiosocket"
          : transport === "websocket" && encapsulation === "none"
            ? "websocket"
            : undefined;
    if (!kind) return err(501, "The encapsulation and/or transport is not supported");
    if (kind === "audiosocket" && !q.data) return err(400, "data can not be empty");
    const channelId = q.channelId ?? this.core.nextUniqueId();
    if (this.core.live(channelId)) return err(409, "Channel with given unique ID already exists");
    // chan_audiosocket fails the channel request on a non-UUID, and the simulator has no websocket_client.conf:
    // both end in the originate path's generic allocation failure.
    if (kind === "audiosocket" && !isUuid(q.data as string)) return err(500, "Allocation failed");
    if (kind === "websocket" && connectionType !== "server") return err(500, "Allocation failed");

    const req: ExternalMediaRequest = {
      channelId,
      app,
      format,
      transport,
      encapsulation,
      externalHost: host,
      data: q.data,
      connectionType,
      transportData: q.transport_data,
    };
    let media: SimMediaEndpoint | undefined;
    try {
      media = await this.host.createMedia(req);
      // AudioSocket connects and sends the UUID while Asterisk creates the channel, before the reply; a listener
      // that never answers fails the request like Asterisk's connect timeout.
      if (kind === "audiosocket") await withTimeout(media.ready, AUDIOSOCKET_CONNECT_MS);
    } catch {
      media?.close();
      return err(500, "Allocation failed");
    }
    if (this.core.live(channelId)) {
      media.close();
      return err(409, "Channel with given unique ID already exists");
    }
    const channelvars: Record<string, string> = { ...media.channelvars };
    if (kind === "websocket") {
      channelvars.MEDIA_WEBSOCKET_CONNECTION_ID ??= randomUUID();
      channelvars.MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE ??= String(optimalFrameSize(format));
    }
    const pointer = this.core.pointer();
    const name =
      kind === "unicastrtp"
        ? `UnicastRTP/${host}-${pointer}`
        : kind === "audiosocket"
          ? `AudioSocket/${host}-${q.data}`
          : `WebSocket/INCOMING/${pointer}`;
    const dialstring =
      kind === "unicastrtp"
        ? `${host}/c(${format})`
        : kind === "audiosocket"
          ? `${host}/${q.data}/c(${format})`
          : q.transport_data
            ? `INCOMING/${q.transport_data}`
            : "INCOMING";
    const c = this.core.outbound({ id: channelId, name, kind, variables: { ...variables, ...channelvars }, readFormat: format });
    c.media = media;
    const args = q.data ? [q.data] : [];
    // Asterisk sets them in this order; the reply lists them newest first (recorded).
    const varsetOrder = [...Object.keys(variables), ...Object.keys(channelvars).reverse()];
    const reply: RestReply = { status: 200, body: { ...channelJson(c), channelvars } };
    if (kind === "websocket") {
      // Created at once (ChannelCreated before the reply, recorded); answered when the media socket connects.
      this.core.announceOutbound(c, app, varsetOrder, dialstring);
      this.host.awaitMediaSocket(channelvars.MEDIA_WEBSOCKET_CONNECTION_ID as string, c, app, args, dialstring);
      return { reply };
    }
    return {
      reply,
      events: () => {
        if (c.destroyed) return;
        this.core.announceOutbound(c, app, varsetOrder, dialstring);
        this.core.outboundAnswered(c, app, args, dialstring);
      },
    };
  }

  // ---- bridges ----------------------------------------------------------------------------------------------

  private bridges(method: string, id: string | undefined, sub: string | undefined, q: Record<string, string>): RestResult {
    if (id === undefined) {
      if (method === "GET") return ok([...this.core.bridges.values()].filter((b) => !b.destroyed).map(bridgeJson));
      if (method === "POST") return this.createBridge(q.bridgeId, q);
      return err(405, "Invalid method");
    }
    if (sub === undefined) {
      if (method === "POST") return this.createBridge(id, q);
      const b = this.core.liveBridge(id);
      if (!b) return err(404, "Bridge not found");
      if (method === "GET") return ok(bridgeJson(b));
      if (method === "DELETE") return noContent(() => this.core.destroyBridge(b));
      return err(405, "Invalid method");
    }
    if (method !== "POST") return err(405, "Invalid method");
    const b = this.core.liveBridge(id);
    switch (sub) {
      case "addChannel":
      case "removeChannel": {
        if (!b) return err(404, "Bridge not found");
        if (!q.channel) return err(400, "Missing parameter channel");
        const chans: SimChannelState[] = [];
        for (const cid of q.channel.split(",")) {
          const c = this.core.live(cid);
          if (!c) return err(400, "Channel not found");
          if (c.app === undefined) return err(422, "Channel not in Stasis application");
          chans.push(c);
        }
        if (sub === "addChannel") return noContent(() => this.core.addToBridge(b, chans));
        if (chans.some((c) => c.bridgeId !== b.id)) return err(422, "Channel not in this bridge");
        return noContent(() => {
          for (const c of chans) if (c.bridgeId === b.id) this.core.leaveBridge(c);
        });
      }
      case "play":
        if (!b) return err(404, "Bridge not found");
        return this.play({ bridge: b }, q, "en");
      default:
        return err(404, "Resource not found");
    }
  }

  private createBridge(id: string | undefined, q: Record<string, string>): RestResult {
    const bridgeId = id ?? randomUUID();
    if (this.core.liveBridge(bridgeId)) return err(409, `Bridge with id '${bridgeId}' already exists`);
    const types = (q.type || "mixing").split(",");
    if (!types.every((t) => BRIDGE_TYPES.has(t))) return err(400, "Invalid bridge type");
    const bridgeType = types.includes("holding") ? "holding" : "mixing";
    const b = this.core.createBridge(bridgeId, bridgeType, q.name ?? "");
    return ok(bridgeJson(b));
  }

  // ---- playbacks --------------------------------------------------------------------------------------------

  private play(target: { channel?: SimChannelState; bridge?: SimBridgeState }, q: Record<string, string>, defaultLang: string): RestResult {
    const media = q.media;
    if (!media) return err(400, "Missing parameter media");
    if (Number(q.skipms ?? 0) < 0) return err(400, "skipms cannot be negative");
    if (Number(q.offsetms ?? 0) < 0) return err(400, "offsetms cannot be negative");
    const id = q.playbackId ?? randomUUID();
    if (this.core.playback(id)) return err(500, "Failed to queue media for playback");
    const first = media.split(",")[0] as string;
    const { playback, start } = this.core.play(target, first, id, q.lang || defaultLang);
    return { reply: { status: 201, body: playbackJson(playback), headers: { Location: `/playbacks/${id}` } }, events: start };
  }

  private playbacks(method: string, id: string | undefined, sub: string | undefined, q: Record<string, string>): RestResult {
    if (id === undefined) return err(404, "Resource not found");
    const p = this.core.playback(id);
    if (sub === undefined) {
      if (method === "GET") return p ? ok(playbackJson(p)) : err(404, "Playback not found");
      if (method === "DELETE") return this.core.stopPlayback(id) ? noContent() : err(404, "Playback not found");
      return err(405, "Invalid method");
    }
    if (sub !== "control") return err(404, "Resource not found");
    if (method !== "POST") return err(405, "Invalid method");
    const op = q.operation;
    if (!op || !["pause", "unpause", "restart", "reverse", "forward"].includes(op)) return err(400, "Invalid operation parameter");
    const r = this.core.controlPlayback(id, op);
    if (r === "not-found") return err(404, "Playback not found");
    if (r === "conflict") return err(409, "Playback not currently playing");
    return noContent();
  }
}
