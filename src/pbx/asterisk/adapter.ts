/**
 * The Asterisk adapter (media-protocols.md §3): our Stasis application over ARI. It keeps the events socket open
 * (reconnect with backoff, reconcile with `GET /channels` afterwards), turns every caller entering the application
 * into a handover for the call layer (§3.4), ignores the channels it creates itself (§3.9), routes each event to
 * its call, and places outbound calls (§3.2 originate).
 */
import type { LinkStatus } from "../reconnect.js";
import { requireHostPort, type Config } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { AudioSocketServer } from "../../media/audiosocket-server.js";
import { RtpPortPool } from "../../media/rtp-port-pool.js";
import type { IncomingCall, OriginateRequest } from "../call-control.js";
import { AriClient } from "./ari/client.js";
import { isKnownAriEvent, type AriEvent, type AriKnownEvent } from "./ari/events.js";
import type { AriChannel } from "./ari/models.js";
import { AsteriskCall, originateCallerId } from "./channel.js";
import { mediaFormatWarning, type AsteriskMedia, type AsteriskMediaMode } from "./media.js";

type AstConfig = Config["asterisk"];
type Variables = IncomingCall["variables"];

const MEDIA_MODES: readonly AsteriskMediaMode[] = ["rtp", "websocket", "audiosocket"];
/** A SIP header name we may read or add (`PJSIP_HEADER(add,…)` on originate). */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

export interface AsteriskHandover {
  incoming: IncomingCall;
  control: AsteriskCall;
  startMedia: () => Promise<AsteriskMedia>;
}

export interface AsteriskAdapterOptions {
  config: AstConfig;
  log: Logger;
  /** A call to take over. Must not throw (the server wires it to admitInbound). */
  onCall: (handover: AsteriskHandover) => void;
  /** Jitter source (tests). */
  random?: () => number;
  /** False: back off after every failure, without the fast lane (the reconnect bench's reference). */
  fastReconnect?: boolean;
}

export class AsteriskAdapter {
  readonly ari: AriClient;
  private readonly calls = new Map<string, AsteriskCall>();
  /** Channels we created (externalMedia): their StasisStart is not a call (§3.9). */
  private readonly ours = new Set<string>();
  private readonly ports: RtpPortPool;
  private audioSocketServer: Promise<AudioSocketServer> | undefined;
  private version: string | undefined;
  private replaced = false;
  private readonly log: Logger;

  constructor(private readonly o: AsteriskAdapterOptions) {
    this.log = o.log.child({ component: "asterisk" });
    const c = o.config;
    this.ports = new RtpPortPool(c.rtp_port_min, c.rtp_port_max);
    this.ari = new AriClient({
      url: c.ari_url,
      username: c.ari_user,
      password: c.ari_password,
      app: c.app,
      log: this.log,
      reconnectMinMs: c.reconnect_min_ms,
      reconnectMaxMs: c.reconnect_max_ms,
      requestTimeoutMs: c.api_timeout_ms,
      subscribeAll: false,
      ...(o.random ? { random: o.random } : {}),
      ...(o.fastReconnect === false ? { fastReconnect: false } : {}),
    });
  }

  /** Events-socket state for /health and /ready; a replaced application counts as down. */
  status(): LinkStatus {
    const link = this.ari.linkStatus();
    if (!this.replaced) return link;
    return { ...link, state: "down", connected: false };
  }

  async start(): Promise<void> {
    this.ari.events.on("event", (ev) => this.onEvent(ev));
    this.ari.events.on("connected", ({ reconnect }) => void this.onConnected(reconnect));
    this.ari.events.on("disconnected", () => {
      if (!this.replaced) this.log.warn("Asterisk events socket lost; reconnecting");
    });
    const formatWarning = mediaFormatWarning(this.o.config);
    if (formatWarning) this.log.warn({ media: this.o.config.media, format: this.o.config.format }, formatWarning);
    if (this.o.config.media === "audiosocket") await this.audioSockets();
    this.ari.start();
  }

  async stop(): Promise<void> {
    await this.ari.stop();
    const server = this.audioSocketServer;
    this.audioSocketServer = undefined;
    if (server) await (await server.catch(() => undefined))?.close();
  }

  /** The AudioSocket listener, started once on first use. */
  private audioSockets(): Promise<AudioSocketServer> {
    if (this.audioSocketServer) return this.audioSocketServer;
    const { host, port } = requireHostPort(this.o.config.audiosocket_listen);
    const server = new AudioSocketServer({ log: this.log });
    const listening = server.listen(host, port).then((addr: { port: number }) => {
      this.log.info({ addr: `${host}:${addr.port}` }, "listening for Asterisk AudioSocket connections");
      return server;
    });
    // A failed listen (port taken) is retried by the next call that needs it.
    listening.catch(() => {
      if (this.audioSocketServer === listening) this.audioSocketServer = undefined;
    });
    this.audioSocketServer = listening;
    return listening;
  }

  private async onConnected(reconnect: boolean): Promise<void> {
    try {
      this.version = (await this.ari.info()).system?.version;
    } catch (err) {
      this.log.warn({ err }, "GET /asterisk/info failed; assuming a current Asterisk");
    }
    this.log.info({ app: this.o.config.app, version: this.version, reconnect }, "asterisk ari connected");
    if (reconnect) await this.reconcile().catch((err: unknown) => this.log.error({ err }, "reconcile after the ARI reconnect failed"));
  }

  /**
   * After a reconnect (§3.4): our calls whose caller channel is gone end with `pbxLost`; channels waiting in our
   * application that we do not know are adopted; media channels of calls that ended meanwhile are removed.
   */
  private async reconcile(): Promise<void> {
    const list = await this.ari.listChannels();
    const present = new Set(list.map((ch) => ch.id));
    for (const call of [...this.calls.values()]) {
      if (!present.has(call.id)) call.markGone(undefined, "system");
    }
    const app = this.o.config.app;
    for (const ch of list) {
      if (this.calls.has(ch.id) || this.ours.has(ch.id)) continue;
      const orphan = /^ac-(.+)-m$/.exec(ch.id);
      if (orphan) {
        if (!this.calls.has(orphan[1] ?? "")) void this.ari.hangup(ch.id).catch(() => undefined);
        continue;
      }
      const data = ch.dialplan.app_data ?? "";
      if (ch.dialplan.app_name !== "Stasis" || (data !== app && !data.startsWith(`${app},`))) continue;
      this.log.info({ callId: ch.id }, "adopting a channel that entered the application while the events socket was down");
      void this.takeOver(ch, splitStasisArgs(data.slice(app.length + 1)));
    }
  }

  private onEvent(ev: AriEvent): void {
    if (!isKnownAriEvent(ev)) return;
    if (ev.type === "ApplicationReplaced") {
      // Asterisk now sends our events to someone else (§3.9): taking them back would ping-pong forever.
      this.replaced = true;
      this.log.error({ app: this.o.config.app }, "another ARI client registered the same application name; this controller stops taking Asterisk calls (restart it, or give each controller its own [asterisk] app)");
      void this.ari.stop();
      return;
    }
    if (ev.type === "PlaybackStarted" || ev.type === "PlaybackFinished") {
      const m = /^ac-(.+)-p\d+$/.exec(ev.playback.id);
      if (m) this.calls.get(m[1] ?? "")?.handleEvent(ev);
      return;
    }
    const channel = channelOf(ev);
    if (!channel) return;
    const call = this.calls.get(channel.id);
    if (call) {
      call.handleEvent(ev);
      if (call.ended) this.calls.delete(call.id);
      return;
    }
    if (this.ours.has(channel.id)) return this.onOwnChannelEvent(channel.id, ev);
    if (ev.type === "StasisStart" && !this.replaced) void this.takeOver(ev.channel, ev.args);
  }

  /** Our media channel entered Stasis (it may now join the bridge), or went away by itself: the call lost its media. */
  private onOwnChannelEvent(channelId: string, ev: AriKnownEvent): void {
    const call = this.calls.get(/^ac-(.+)-m$/.exec(channelId)?.[1] ?? "");
    if (ev.type === "StasisStart") return call?.mediaEnteredStasis();
    if (ev.type !== "ChannelDestroyed") return;
    if (call && !call.ended) void call.leg?.close("Asterisk hung up the media channel");
  }

  private newCall(channelId: string, mediaMode: AsteriskMediaMode, originated: boolean): AsteriskCall {
    const call = new AsteriskCall({
      channelId,
      ari: this.ari,
      config: this.o.config,
      version: () => this.version,
      media: { ports: this.ports, audioSockets: () => this.audioSockets() },
      mediaMode,
      log: this.log,
      originated,
      ours: this.ours,
    });
    this.calls.set(channelId, call);
    call.events.on("hangup", () => this.calls.delete(channelId));
    return call;
  }

  /** A caller entered the application (§3.3 StasisStart): read its headers, then hand it over. */
  private async takeOver(ch: AriChannel, args: readonly string[]): Promise<void> {
    const variables: Variables = {};
    let playbook: string | undefined;
    let mediaMode: AsteriskMediaMode = this.o.config.media;
    for (const arg of args) {
      const eq = arg.indexOf("=");
      if (eq < 0) {
        if (arg.endsWith(".md")) playbook = arg;
        continue;
      }
      const key = arg.slice(0, eq).trim();
      const value = arg.slice(eq + 1).trim();
      if (key === "playbook") playbook = value;
      else if (key === "media" && (MEDIA_MODES as readonly string[]).includes(value)) mediaMode = value as AsteriskMediaMode;
      else if (key !== "") variables[key] = value;
    }
    const call = this.newCall(ch.id, mediaMode, false);
    const headers = ch.name.startsWith("PJSIP/") ? await this.readHeaders(ch.id) : {};
    if (call.ended) return; // the caller hung up while we read
    const incoming: IncomingCall = {
      callId: ch.id,
      callType: "asterisk",
      direction: "inbound",
      caller: ch.caller.number,
      callee: ch.dialplan.exten,
      createdAt: new Date().toISOString(),
      headers,
      variables,
      pbxPlaybook: playbook,
      attachUrl: `/call/pbx?id=${encodeURIComponent(ch.id)}`,
    };
    if (ch.caller.name) incoming.callerName = ch.caller.name;
    this.log.info({ callId: ch.id, media: mediaMode }, "Asterisk call handed over");
    this.o.onCall({ incoming, control: call, startMedia: () => call.startMedia() });
  }

  /**
   * `X-` headers of a PJSIP channel: one REST call for the names, one per header (§3.2, §3.9). The names come from
   * `PJSIP_HEADERS()`, every header of the INVITE: `PJSIP_HEADERS(X-)` fails with 500 "Unable to read provided
   * function" on a call without X- headers, which is most calls (live-2026-12-06 fact 6), while the full list
   * always reads. Only names it lists are then read, so a normal call sees no error from Asterisk.
   */
  private async readHeaders(channelId: string): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    const read = (variable: string) =>
      this.ari.getChannelVar(channelId, variable).catch((err: unknown) => {
        this.log.debug({ err, callId: channelId, variable }, "SIP header not readable");
        return undefined;
      });
    const names = (await read("PJSIP_HEADERS()")) ?? "";
    for (const name of names.split(",").map((n) => n.trim())) {
      if (!/^x-/i.test(name) || !HEADER_NAME.test(name)) continue;
      const value = await read(`PJSIP_HEADER(read,${name})`);
      if (value !== undefined) headers[name] = value;
    }
    return headers;
  }

  // ---------------------------------------------------------------------------------------------- originate

  /**
   * Places a call (§3.2 originate): `POST /channels` into our application with `appArgs=originate`; the channel is
   * registered before the request, so its ringing, answer (StasisStart) and failure (ChannelDestroyed) reach it.
   */
  originate(request: OriginateRequest): { channel: AsteriskCall; dial: () => void } {
    if (!this.ari.connected || this.replaced) throw new AppError("PBX_UNAVAILABLE", "Asterisk is not connected");
    const c = this.o.config;
    const endpoint = dialEndpoint(request.to, c);
    const callerId = originateCallerId(request.from, request.fromName, c.caller_id);
    const variables: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (!HEADER_NAME.test(name) || /[\r\n]/.test(value)) throw new AppError("BAD_REQUEST", `header ${JSON.stringify(name)} cannot be sent`);
      variables[`PJSIP_HEADER(add,${name})`] = value;
    }
    const call = this.newCall(request.id, c.media, true);
    const dial = () =>
      void this.ari
        .originate({
          endpoint,
          appArgs: "originate",
          channelId: request.id,
          ...(callerId !== undefined ? { callerId } : {}),
          timeout: Math.max(1, Math.round(request.timeoutMs / 1000)),
          variables,
        })
        .catch((err: unknown) => {
          this.log.warn({ err, callId: request.id }, "originate refused by Asterisk");
          call.markGone(41, "system");
        });
    return { channel: call, dial };
  }
}

/** `to` as an ARI endpoint: as given with a technology, a SIP URI through `default_endpoint`, else `dial_template`. */
export function dialEndpoint(to: string, c: AstConfig): string {
  if (/[\s,]/.test(to) || to === "") throw new AppError("BAD_REQUEST", `"to" ${JSON.stringify(to)} cannot be dialled`);
  if (/^sips?:/i.test(to)) {
    if (c.default_endpoint === "") throw new AppError("BAD_REQUEST", `dialling a SIP URI through Asterisk needs [asterisk] default_endpoint (the PJSIP endpoint that reaches it)`);
    return `PJSIP/${c.default_endpoint}/${to}`;
  }
  if (to.includes("/")) return to;
  return c.dial_template.replaceAll("{to}", to);
}

/** The arguments of `Stasis(app,a,b)` as Asterisk passes them in `app_data` (`app,a,b`), without the app. */
function splitStasisArgs(data: string): string[] {
  return data === "" ? [] : data.split(",");
}

function channelOf(ev: AriKnownEvent): AriChannel | undefined {
  return "channel" in ev ? ev.channel : undefined;
}
