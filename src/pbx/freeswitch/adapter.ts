/**
 * The FreeSWITCH adapter (media-protocols.md §1): the inbound control connection (auth, subscribe, calls parked
 * with `active_call=true`, reconnect with backoff and jitter, channels that vanished meanwhile end with `pbxLost`)
 * and the outbound-socket server for `socket host:port async full`. Each call is handed to the call layer as an
 * `FsHandover` (its facts, its CallControl, and how to start its media); the call layer decides what happens.
 */
import { requireHostPort, type Config } from "../../config.js";
import type { Logger } from "../../log.js";
import type { ForkRegistry } from "../../media/fork-registry.js";
import { AppError } from "../../errors.js";
import type { IncomingCall, OriginateRequest } from "../call-control.js";
import { ReconnectPolicy, type LinkStatus } from "../reconnect.js";
import { sipCodeOf } from "./causes.js";
import { FsChannel, type FsMedia } from "./channel.js";
import { EslConnection, EslOutboundServer, type EslEvent, type OutboundSession } from "./esl/index.js";

type FsConfig = Config["freeswitch"];
type Variables = IncomingCall["variables"];

/** mod_audio_fork's CUSTOM subclasses, subscribed on both kinds of connection. */
const FORK_SUBCLASSES = [
  "mod_audio_fork::connect",
  "mod_audio_fork::connect_failed",
  "mod_audio_fork::disconnect",
  "mod_audio_fork::error",
  "mod_audio_fork::buffer_overrun",
  "mod_audio_fork::play_audio",
];

/** Events the inbound connection subscribes to (§1.3); CUSTOM subclasses last. */
export const INBOUND_EVENTS = [
  "CHANNEL_PARK",
  "CHANNEL_ANSWER",
  "CHANNEL_PROGRESS",
  "CHANNEL_PROGRESS_MEDIA",
  "CHANNEL_HANGUP",
  "CHANNEL_HANGUP_COMPLETE",
  "CHANNEL_EXECUTE_COMPLETE",
  "CHANNEL_HOLD",
  "CHANNEL_UNHOLD",
  "DTMF",
  "PLAYBACK_START",
  "PLAYBACK_STOP",
  "BACKGROUND_JOB",
  "CUSTOM",
  ...FORK_SUBCLASSES,
  "sofia::notify_refer",
];
/** On an outbound socket `myevents` already brings the channel's own events; these are the extras. */
export const OUTBOUND_EVENTS = [
  "PLAYBACK_START",
  "PLAYBACK_STOP",
  "BACKGROUND_JOB",
  "CUSTOM",
  ...FORK_SUBCLASSES,
];
const OUTBOUND_LINGER_S = 15;

export interface FsHandover {
  incoming: IncomingCall;
  control: FsChannel;
  startMedia: () => Promise<FsMedia>;
}

export interface FreeswitchAdapterOptions {
  config: FsConfig;
  forks: ForkRegistry;
  log: Logger;
  /** A call to take over. Must not throw (the server wires it to admitInbound). */
  onCall: (handover: FsHandover) => void;
  /** Jitter source (tests). */
  random?: () => number;
  /** False: back off after every failure, without the fast lane (the reconnect bench's reference). */
  fastReconnect?: boolean;
}

export type PbxStatus = LinkStatus;

export class FreeswitchAdapter {
  private readonly channels = new Map<string, FsChannel>();
  private inbound: EslConnection | undefined;
  private outboundServer: EslOutboundServer | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private outageLogged = false;
  private readonly link: ReconnectPolicy;
  private readonly startedAt = new Date().toISOString();
  private readonly log: Logger;

  constructor(private readonly o: FreeswitchAdapterOptions) {
    this.log = o.log.child({ component: "freeswitch" });
    this.link = new ReconnectPolicy({
      minMs: o.config.reconnect_min_ms,
      maxMs: o.config.reconnect_max_ms,
      ...(o.random ? { random: o.random } : {}),
      ...(o.fastReconnect === false ? { fastLane: false } : {}),
    });
  }

  /** Connection state for /health, /ready and /metrics (inbound mode; the outbound server needs no connection). */
  status(): PbxStatus {
    if (!this.o.config.esl_inbound) return { state: "connected", connected: true, since: this.startedAt, attempts: 0, reconnects: 0 };
    return this.link.status();
  }

  /** The outbound listener's port (tests use port 0). */
  outboundPort: number | undefined;

  async start(): Promise<void> {
    const c = this.o.config;
    if (c.outbound_listen !== "") {
      const { host, port } = requireHostPort(c.outbound_listen);
      this.outboundServer = new EslOutboundServer({ allow: c.outbound_allow, log: this.log, onSession: (s) => void this.onOutbound(s) });
      this.outboundPort = (await this.outboundServer.listen(host, port)).port;
      this.log.info({ addr: `${host}:${this.outboundPort}` }, "listening for FreeSWITCH outbound sockets");
    }
    if (c.esl_inbound) void this.connectInbound();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.link.stopped();
    clearTimeout(this.retryTimer);
    await this.outboundServer?.close();
    await this.inbound?.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------- inbound

  private async connectInbound(): Promise<void> {
    if (this.stopped) return;
    const c = this.o.config;
    this.link.connecting();
    try {
      const conn = await EslConnection.connectInbound({ host: c.esl_host, port: c.esl_port, password: c.esl_password, timeoutMs: c.api_timeout_ms, log: this.log });
      if (this.stopped) {
        conn.destroy();
        return;
      }
      await conn.subscribe(INBOUND_EVENTS);
      this.inbound = conn;
      this.outageLogged = false;
      const { reconnects } = this.link.status();
      this.link.up();
      this.log.info({ host: c.esl_host, port: c.esl_port, reconnect: this.link.status().reconnects > reconnects }, "connected to FreeSWITCH");
      conn.events.on("event", (ev) => this.onInboundEvent(ev));
      conn.events.on("close", ({ error }) => {
        if (this.inbound === conn) this.inbound = undefined;
        if (this.stopped) return;
        this.log.warn({ err: error }, "FreeSWITCH connection lost; reconnecting");
        this.scheduleReconnect(this.link.failed(error));
      });
      await this.reconcile(conn);
    } catch (err) {
      if (this.stopped) return;
      if (!this.outageLogged) this.log.error({ err, host: c.esl_host, port: c.esl_port }, "cannot connect to FreeSWITCH ESL; retrying");
      this.outageLogged = true;
      this.scheduleReconnect(this.link.failed(err));
    }
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connectInbound(), delayMs);
    this.retryTimer.unref();
  }

  /** After a (re)connect: calls whose channel is gone end with `pbxLost`; parked calls waiting for us are adopted. */
  private async reconcile(conn: EslConnection): Promise<void> {
    for (const ch of [...this.channels.values()]) {
      if (ch.outbound) continue; // its own socket owns it
      const exists = (await conn.api(`uuid_exists ${ch.uuid}`).catch(() => "false")).trim();
      if (exists !== "true") ch.markGone("pbxLost", undefined, "system");
      else ch.useConnection(conn); // the call survived the outage: reattached by uuid
    }
    const listing = await conn.api("show channels as json").catch(() => "");
    let rows: { uuid?: string; application?: string }[] = [];
    try {
      rows = ((JSON.parse(listing) as { rows?: typeof rows }).rows ?? []).filter((r) => r.application === "park");
    } catch {
      rows = [];
    }
    for (const row of rows) {
      if (!row.uuid || this.channels.has(row.uuid)) continue;
      const marked = (await conn.api(`uuid_getvar ${row.uuid} active_call`).catch(() => "")).trim();
      if (marked !== "true") continue;
      const dump = await conn.api(`uuid_dump ${row.uuid} json`).catch(() => "");
      try {
        const headers = JSON.parse(dump) as Record<string, string>;
        this.takeOver(row.uuid, headers, conn, false);
      } catch {
        this.log.warn({ callId: row.uuid }, "parked channel could not be adopted");
      }
    }
  }

  private onInboundEvent(ev: EslEvent): void {
    // Cheap routing first: most events on the switch are not ours (§1.8 slow reader).
    const uuid = ev.uniqueId ?? ev.headers["UniqueID"];
    if (!uuid) return;
    const ch = this.channels.get(uuid);
    if (ch) {
      ch.handleEvent(ev);
      if (ch.ended) this.channels.delete(uuid);
      return;
    }
    if (ev.name === "CHANNEL_PARK" && ev.headers["variable_active_call"] === "true" && this.inbound) this.takeOver(uuid, ev.headers, this.inbound, false);
  }

  // ---------------------------------------------------------------------------------------------- originate

  /**
   * Places a call (§1.6 originate): `bgapi originate {origination_uuid=<id>,…}<dial string> &park()`. The channel
   * is registered before the command, so its progress, answer (the PARK after it) and failure reach it.
   */
  originate(request: OriginateRequest): { channel: FsChannel; dial: () => void } {
    const conn = this.inbound;
    if (!conn) throw new AppError("PBX_UNAVAILABLE", "FreeSWITCH is not connected (originate needs the inbound ESL connection)");
    const c = this.o.config;
    if (request.id.length > 36) throw new AppError("BAD_REQUEST", "a FreeSWITCH call id is at most 36 characters");
    const channel = new FsChannel({ uuid: request.id, connection: conn, config: c, forks: this.o.forks, log: this.log, outbound: false, originated: true });
    this.channels.set(request.id, channel);
    channel.events.on("hangup", () => this.channels.delete(request.id));
    const vars: string[] = [
      `origination_uuid=${request.id}`,
      `origination_caller_id_number=${originateValue(request.from ?? c.caller_id_number)}`,
      `origination_caller_id_name='${originateValue(request.fromName ?? c.caller_id_name)}'`,
      `originate_timeout=${Math.max(1, Math.round(request.timeoutMs / 1000))}`,
      "active_call=true",
      // On the channel before `&park()` sees media, or nothing streamed is heard (live fact 5; FsChannel).
      ...(c.playback === "stream" ? ["send_silence_when_idle=-1"] : []),
      ...Object.entries(request.headers ?? {}).filter(([k]) => /^[A-Za-z0-9-]{1,64}$/.test(k)).map(([k, v]) => `sip_h_${k}=${originateValue(v)}`),
    ];
    const command = `originate {${vars.join(",")}}${dialString(request.to, c)} &park()`;
    // Sent by `dial()`, once the caller has registered the call (so a refused registration dials nobody).
    const dial = () => void conn.bgapi(command).then(
      (result) => {
        if (result.startsWith("+OK")) return;
        const cause = result.replace(/^-ERR\s*/, "").trim() || "NORMAL_TEMPORARY_FAILURE";
        channel.events.emit("failed", { cause, sipCode: sipCodeOf(cause) });
        channel.markGone(cause, undefined, "system");
      },
      (err: unknown) => {
        channel.events.emit("failed", { cause: (err as Error).message });
        channel.markGone("NORMAL_TEMPORARY_FAILURE", undefined, "system");
      },
    );
    return { channel, dial };
  }

  // ---------------------------------------------------------------------------------------------- outbound

  private async onOutbound(s: OutboundSession): Promise<void> {
    const conn = s.connection;
    const ch = s.channel;
    if (ch.get("Socket-Mode") !== "async" || ch.get("Control") !== "full") {
      this.log.error({ callId: s.uuid }, "socket application must use 'async full'");
      await conn.sendmsg(undefined, { "call-command": "hangup", "hangup-cause": "NORMAL_TEMPORARY_FAILURE" }).catch(() => undefined);
      await conn.close().catch(() => undefined);
      return;
    }
    try {
      await conn.command("myevents json");
      await conn.subscribe(OUTBOUND_EVENTS);
      await conn.command(`linger ${OUTBOUND_LINGER_S}`);
    } catch (err) {
      this.log.error({ err, callId: s.uuid }, "outbound socket setup failed");
      await conn.close().catch(() => undefined);
      return;
    }
    const channel = this.takeOver(s.uuid, ch.toObject(), conn, true);
    conn.events.on("event", (ev) => {
      const uuid = ev.uniqueId ?? ev.headers["UniqueID"];
      if (uuid !== undefined && uuid !== s.uuid) return;
      channel.handleEvent(ev);
      // After the hangup, the socket only lingers: we leave (§1.3).
      if (ev.name === "CHANNEL_HANGUP_COMPLETE") void conn.close().catch(() => undefined);
    });
    conn.events.on("disconnectNotice", () => channel.markGone("NORMAL_CLEARING", undefined, "caller"));
    conn.events.on("close", () => {
      channel.markGone("NORMAL_CLEARING", undefined, "system");
      this.channels.delete(s.uuid);
    });
  }

  // ---------------------------------------------------------------------------------------------- handover

  private takeOver(uuid: string, h: Record<string, string>, connection: EslConnection, outbound: boolean): FsChannel {
    const channel = new FsChannel({ uuid, connection, config: this.o.config, forks: this.o.forks, log: this.log, outbound });
    this.channels.set(uuid, channel);
    channel.events.on("hangup", () => {
      if (!outbound) this.channels.delete(uuid);
    });
    const variables: Variables = {};
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) {
      if (k.startsWith("variable_active_call_var_")) variables[k.slice("variable_active_call_var_".length)] = v;
      else if (k.startsWith("variable_sip_h_")) headers[k.slice("variable_sip_h_".length)] = v;
    }
    const incoming: IncomingCall = {
      callId: uuid,
      callType: "freeswitch",
      direction: "inbound",
      caller: h["Caller-Caller-ID-Number"] ?? "",
      callee: h["Caller-Destination-Number"] ?? "",
      createdAt: new Date().toISOString(),
      headers,
      variables,
      pbxPlaybook: h["variable_active_call_playbook"] || undefined,
      attachUrl: `/call/pbx?id=${uuid}`,
    };
    const name = h["Caller-Caller-ID-Name"];
    if (name) incoming.callerName = name;
    this.log.info({ callId: uuid, outbound }, "FreeSWITCH call handed over");
    this.o.onCall({ incoming, control: channel, startMedia: () => channel.startMedia() });
    return channel;
  }
}

/** `to` as a dial string: as given when it has a `/`, a SIP URI through the profile, else `dial_template`. */
export function dialString(to: string, c: FsConfig): string {
  if (/[\s{}]/.test(to) || to === "") throw new AppError("BAD_REQUEST", `"to" ${JSON.stringify(to)} cannot be dialled`);
  if (to.includes("/")) return to;
  if (/^sips?:/i.test(to)) return `sofia/${c.sip_profile}/${to.replace(/^sips?:/i, "")}`;
  return c.dial_template.replaceAll("{to}", to);
}

/** A value inside `{a=b,…}`: commas escaped, quotes and braces and line breaks refused (§1.8). */
function originateValue(v: string): string {
  if (/['{}\r\n]/.test(v)) throw new AppError("BAD_REQUEST", `${JSON.stringify(v)} cannot be passed to originate`);
  return v.replace(/,/g, "\\,");
}
