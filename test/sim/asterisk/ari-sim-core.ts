/**
 * The simulated Asterisk behind the ARI simulator: channels, bridges and playbacks, and the event sequences they
 * produce, copied from the recordings (shared/fixtures/asterisk/run*). The REST layer (ari-sim-rest.ts) validates
 * requests and calls in here; nothing here knows HTTP.
 *
 * Recorded sequences reproduced:
 * - inbound call: ChannelCreated, ChannelVarset SIPDOMAIN, ChannelDialplan Stasis, ChannelVarset STASISSTATUS,
 *   StasisStart (state Ring).
 * - externalMedia / originate: ChannelCreated, ChannelVarset per channelvar, ChannelDialplan AppDial2, Dial "",
 *   ChannelStateChange Up, Dial ANSWER, ChannelVarset STASISSTATUS, StasisStart [data].
 * - DELETE by the app: ChannelHangupRequest {cause 32, soft} (32 = AST_SOFTHANGUP_EXPLICIT), ChannelLeftBridge,
 *   StasisEnd, ChannelVarset STASISSTATUS SUCCESS, (PJSIP only: ChannelHangupRequest {cause 16, soft}),
 *   ChannelDestroyed {cause = reason_code}.
 * - bridge: BridgeCreated, ChannelEnteredBridge (+ ChannelConnectedLine for a media leg joining a SIP channel),
 *   ChannelLeftBridge, BridgeDestroyed.
 */
import { randomUUID } from "node:crypto";
import { EventHub, type EventTopics } from "./ari-sim-events.js";
import {
  ariTimestamp,
  bridgeJson,
  causeText,
  channelJson,
  newChannel,
  playbackJson,
  type Json,
  type SimBridgeState,
  type SimCallerId,
  type SimChannelKind,
  type SimChannelState,
  type SimPlaybackState,
} from "./ari-sim-model.js";

/** AST_SOFTHANGUP_EXPLICIT: the `cause` of the soft ChannelHangupRequest an ARI DELETE produces (recorded). */
const SOFT_EXPLICIT = 32;
/** The second soft hangup request a PJSIP channel shows after leaving Stasis (recorded; AST_SOFTHANGUP_APPUNLOAD). */
const SOFT_APPUNLOAD = 16;

interface PlaybackRt {
  readonly state: SimPlaybackState;
  readonly channel: SimChannelState | undefined;
  readonly bridge: SimBridgeState | undefined;
  /** Infinity for `tone:` (plays until stopped). */
  remainingMs: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  muted: SimChannelState[];
}

export class AsteriskCore {
  readonly hub: EventHub;
  /** Every channel ever created (destroyed ones keep `destroyed: true`). */
  readonly channels = new Map<string, SimChannelState>();
  readonly bridges = new Map<string, SimBridgeState>();
  private readonly playbacks = new Map<string, PlaybackRt>();
  private readonly finishedPlaybacks: SimPlaybackState[] = [];
  private readonly priorApp = new Map<string, { app_name: string; app_data: string }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private uniqueSeq = 0;
  private pjsipSeq = 0;
  private readonly epoch = Math.floor(Date.now() / 1000);

  constructor(
    asteriskId: string,
    private readonly soundDurationMs: (media: string) => number,
  ) {
    this.hub = new EventHub(asteriskId);
  }

  // ---- timers -----------------------------------------------------------------------------------------------

  later(ms: number, f: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
    return t;
  }

  cancel(t: NodeJS.Timeout | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---- lookup -----------------------------------------------------------------------------------------------

  live(id: string): SimChannelState | undefined {
    const c = this.channels.get(id);
    return c && !c.destroyed ? c : undefined;
  }

  liveChannels(): SimChannelState[] {
    return [...this.channels.values()].filter((c) => !c.destroyed);
  }

  liveBridge(id: string): SimBridgeState | undefined {
    const b = this.bridges.get(id);
    return b && !b.destroyed ? b : undefined;
  }

  playback(id: string): SimPlaybackState | undefined {
    return this.playbacks.get(id)?.state;
  }

  allPlaybacks(): SimPlaybackState[] {
    return [...this.finishedPlaybacks, ...[...this.playbacks.values()].map((p) => p.state)];
  }

  /** Unique ids look like Asterisk's `<epoch>.<n>` (recorded `1795468233.0`). */
  nextUniqueId(): string {
    return `${this.epoch}.${this.uniqueSeq++}`;
  }

  private nextPjsipSuffix(): string {
    return (this.pjsipSeq++).toString(16).padStart(8, "0");
  }

  /** Channel-technology pointers in names (`UnicastRTP/…-0x7f66f4004e00`). */
  pointer(): string {
    return `0x7f66${randomUUID().replace(/-/g, "").slice(0, 8)}`;
  }

  // ---- events -----------------------------------------------------------------------------------------------

  private emit(type: string, body: Json, topics: EventTopics, pre: Json = {}): void {
    this.hub.publish(type, body, topics, pre);
  }

  private chEvent(type: string, c: SimChannelState, fields: Json = {}, pre: Json = {}): void {
    this.emit(type, { ...fields, channel: channelJson(c) }, { channel: c }, pre);
  }

  private varset(c: SimChannelState, variable: string, value: string): void {
    this.emit("ChannelVarset", { channel: channelJson(c) }, { channel: c }, { variable, value });
  }

  // ---- channel life -----------------------------------------------------------------------------------------

  /** An inbound PJSIP call entering `Stasis(app[,args])` in state Ring. */
  inbound(o: {
    app: string;
    caller: SimCallerId;
    exten: string;
    context: string;
    args: string[];
    headers: Record<string, string>;
    readFormat: string;
    sipDomain?: string;
  }): SimChannelState {
    const c = newChannel({
      id: this.nextUniqueId(),
      name: `PJSIP/${o.caller.number || "anonymous"}-${this.nextPjsipSuffix()}`,
      kind: "pjsip",
      state: "Ring",
      caller: o.caller,
      dialplan: { context: o.context, exten: o.exten, priority: 1, app_name: "", app_data: "" },
      readFormat: o.readFormat,
    });
    Object.assign(c.headers, o.headers);
    this.channels.set(c.id, c);
    this.priorApp.set(c.id, { app_name: "", app_data: "" });
    this.chEvent("ChannelCreated", c);
    c.protocolId = `${randomUUID()}@127.0.0.1`;
    c.variables.SIPDOMAIN = o.sipDomain ?? "127.0.0.1";
    this.varset(c, "SIPDOMAIN", c.variables.SIPDOMAIN);
    c.dialplan.priority = 2;
    this.enterStasis(c, o.app, o.args, true);
    return c;
  }

  /**
   * A channel created by `POST /channels` or `/channels/externalMedia`: subscribed to `app` before it is dialled,
   * so the app sees its Dial events even without subscribeAll (stasis_app_subscribe_channel in the originate path).
   */
  outbound(o: {
    id: string;
    name: string;
    kind: SimChannelKind;
    caller?: SimCallerId;
    variables: Record<string, string>;
    readFormat: string;
  }): SimChannelState {
    const c = newChannel({
      id: o.id,
      name: o.name,
      kind: o.kind,
      state: "Down",
      dialplan: { context: "default", exten: "s", priority: 1, app_name: "AppDial2", app_data: "(Outgoing Line)" },
      readFormat: o.readFormat,
      ...(o.caller ? { caller: o.caller } : {}),
    });
    if (o.caller) c.connected = { ...o.caller };
    Object.assign(c.variables, o.variables);
    this.channels.set(c.id, c);
    this.priorApp.set(c.id, { app_name: "AppDial2", app_data: "(Outgoing Line)" });
    return c;
  }

  /** The events of `outbound` (split off so the REST layer can send them before or after its reply). */
  announceOutbound(c: SimChannelState, app: string, varsetOrder: string[], dialstring: string): void {
    this.chEvent("ChannelCreated", c);
    for (const k of varsetOrder) this.varset(c, k, c.variables[k] ?? "");
    this.chEvent("ChannelDialplan", c, { dialplan_app: "AppDial2", dialplan_app_data: "(Outgoing Line)" });
    c.subscribers.add(app);
    this.dial(c, "", dialstring);
  }

  dial(c: SimChannelState, dialstatus: string, dialstring: string): void {
    this.emit("Dial", { dialstatus, forward: "", dialstring, peer: channelJson(c) }, { channel: c });
  }

  /** The far end answered an outbound channel: it enters Stasis with its app args. */
  outboundAnswered(c: SimChannelState, app: string, args: string[], dialstring: string): void {
    this.setState(c, "Up");
    this.dial(c, "ANSWER", dialstring);
    this.enterStasis(c, app, args, false);
  }

  /** An outbound call that failed (busy, no answer…): it never reaches Stasis. */
  outboundFailed(c: SimChannelState, dialstatus: string, cause: number, dialstring: string): void {
    this.dial(c, dialstatus, dialstring);
    this.chEvent("ChannelHangupRequest", c, {}, { cause });
    this.destroy(c, cause);
  }

  enterStasis(c: SimChannelState, app: string, args: string[], dialplanEvent: boolean): void {
    const appData = [app, ...args].join(",");
    c.dialplan.app_name = "Stasis";
    c.dialplan.app_data = appData;
    if (dialplanEvent) this.chEvent("ChannelDialplan", c, { dialplan_app: "Stasis", dialplan_app_data: appData });
    c.variables.STASISSTATUS = "";
    this.varset(c, "STASISSTATUS", "");
    c.app = app;
    c.args = [...args];
    c.subscribers.add(app);
    this.emit("StasisStart", { args: [...args], channel: channelJson(c) }, { channel: c });
  }

  setState(c: SimChannelState, state: string): void {
    if (c.state === state) return;
    c.state = state;
    this.chEvent("ChannelStateChange", c);
  }

  private exitStasis(c: SimChannelState): void {
    if (c.app === undefined) return;
    this.chEvent("StasisEnd", c);
    c.app = undefined;
    c.variables.STASISSTATUS = "SUCCESS";
    this.varset(c, "STASISSTATUS", "SUCCESS");
  }

  /** `DELETE /channels/{id}` (recorded sequence). */
  appHangup(c: SimChannelState, cause: number): void {
    this.chEvent("ChannelHangupRequest", c, {}, { cause: SOFT_EXPLICIT, soft: true });
    this.endChannelPlaybacks(c);
    this.leaveBridge(c);
    const wasInStasis = c.app !== undefined;
    this.exitStasis(c);
    if (wasInStasis && c.kind === "pjsip") this.chEvent("ChannelHangupRequest", c, {}, { cause: SOFT_APPUNLOAD, soft: true });
    this.destroy(c, cause);
  }

  /** The far end hung up (BYE, media socket closed, REFER completed). Not in the recordings: the usual sequence. */
  remoteHangup(c: SimChannelState, cause: number): void {
    this.chEvent("ChannelHangupRequest", c, {}, { cause });
    this.endChannelPlaybacks(c);
    this.leaveBridge(c);
    this.exitStasis(c);
    this.destroy(c, cause);
  }

  /** Destroyed without any event (the controller was away when it happened). */
  vanish(c: SimChannelState): void {
    for (const p of [...this.playbacks.values()]) if (p.channel === c) this.finishPlayback(p, false);
    const b = c.bridgeId === undefined ? undefined : this.bridges.get(c.bridgeId);
    if (b && b.channels.includes(c.id)) b.channels.splice(b.channels.indexOf(c.id), 1);
    c.bridgeId = undefined;
    c.app = undefined;
    c.destroyed = true;
    c.cause = 16;
    c.media?.close();
    c.subscribers.clear();
  }

  private destroy(c: SimChannelState, cause: number): void {
    const prior = this.priorApp.get(c.id) ?? { app_name: "", app_data: "" };
    c.dialplan.app_name = prior.app_name;
    c.dialplan.app_data = prior.app_data;
    c.destroyed = true;
    c.cause = cause;
    this.emit("ChannelDestroyed", { cause, cause_txt: causeText(cause), channel: channelJson(c) }, { channel: c });
    c.subscribers.clear();
    c.media?.close();
  }

  /** `POST continue`: out of our bridge and our app; the channel lives on in the dialplan. */
  continueInDialplan(c: SimChannelState, context: string, exten: string, priority: number): void {
    this.endChannelPlaybacks(c);
    this.leaveBridge(c);
    this.exitStasis(c);
    c.subscribers.clear();
    c.dialplan = { context, exten, priority, app_name: "", app_data: "" };
    c.continuedTo = { context, extension: exten, priority };
  }

  dtmfReceived(c: SimChannelState, digit: string, durationMs: number): void {
    this.chEvent("ChannelDtmfReceived", c, { digit, duration_ms: durationMs });
  }

  hold(c: SimChannelState, on: boolean): void {
    c.onHold = on;
    this.chEvent(on ? "ChannelHold" : "ChannelUnhold", c);
  }

  // ---- bridges ----------------------------------------------------------------------------------------------

  createBridge(id: string, bridgeType: string, name: string): SimBridgeState {
    const b: SimBridgeState = { id, name, bridgeType, creationtime: ariTimestamp(), subscribers: new Set(), channels: [], destroyed: false };
    this.bridges.set(id, b);
    this.emit("BridgeCreated", { bridge: bridgeJson(b) }, { bridge: b });
    return b;
  }

  addToBridge(b: SimBridgeState, chans: SimChannelState[]): void {
    const added: SimChannelState[] = [];
    for (const c of chans) {
      if (c.bridgeId === b.id) continue;
      this.leaveBridge(c);
      b.channels.push(c.id);
      c.bridgeId = b.id;
      if (c.app !== undefined) b.subscribers.add(c.app);
      added.push(c);
      this.emit("ChannelEnteredBridge", { bridge: bridgeJson(b), channel: channelJson(c) }, { bridge: b, channel: c });
    }
    // A media leg bridged with a SIP caller takes the caller's id as its connected line (recorded).
    const sip = b.channels.map((id) => this.channels.get(id)).find((c) => c?.kind === "pjsip");
    for (const c of added) {
      if (c.kind === "pjsip" || !sip) continue;
      c.connected = { ...sip.caller };
      this.chEvent("ChannelConnectedLine", c);
    }
    // A bridged SIP channel already playing on its own mutes the new media leg too.
    for (const p of this.playbacks.values()) {
      if (p.channel && p.channel.bridgeId === b.id) this.muteBridgedMedia(p);
    }
  }

  leaveBridge(c: SimChannelState): void {
    if (c.bridgeId === undefined) return;
    const b = this.bridges.get(c.bridgeId);
    c.bridgeId = undefined;
    if (!b) return;
    const i = b.channels.indexOf(c.id);
    if (i >= 0) b.channels.splice(i, 1);
    for (const p of this.playbacks.values()) {
      const at = p.muted.indexOf(c);
      if (at >= 0) {
        p.muted.splice(at, 1);
        this.unmuteIfIdle(c);
      }
    }
    this.emit("ChannelLeftBridge", { bridge: bridgeJson(b), channel: channelJson(c) }, { bridge: b, channel: c });
  }

  destroyBridge(b: SimBridgeState): void {
    for (const p of [...this.playbacks.values()]) if (p.bridge === b) this.finishPlayback(p, true);
    for (const id of [...b.channels]) {
      const c = this.channels.get(id);
      if (c) this.leaveBridge(c);
    }
    b.destroyed = true;
    this.emit("BridgeDestroyed", { bridge: bridgeJson(b) }, { bridge: b });
  }

  // ---- playbacks --------------------------------------------------------------------------------------------

  /**
   * Queues a playback (the reply shows it `queued`, as recorded) and returns its start, which the REST layer runs
   * before or after the reply like any other event: PlaybackStarted, then PlaybackFinished after the sound's length.
   */
  play(target: { channel?: SimChannelState; bridge?: SimBridgeState }, media: string, id: string, language: string): { playback: SimPlaybackState; start: () => void } {
    const targetUri = target.channel ? `channel:${target.channel.id}` : `bridge:${(target.bridge as SimBridgeState).id}`;
    const state: SimPlaybackState = { id, mediaUri: media, targetUri, language, state: "queued" };
    const rt: PlaybackRt = {
      state,
      channel: target.channel,
      bridge: target.bridge,
      remainingMs: media.startsWith("tone:") ? Infinity : this.soundDurationMs(media),
      startedAt: 0,
      timer: undefined,
      muted: [],
    };
    this.playbacks.set(id, rt);
    if (rt.channel) rt.channel.activeChannelPlaybacks++;
    const start = (): void => {
      if (this.playbacks.get(id) !== rt || state.state !== "queued") return;
      state.state = "playing";
      this.playbackEvent("PlaybackStarted", rt);
      this.muteBridgedMedia(rt);
      this.schedule(rt);
    };
    return { playback: { ...state }, start };
  }

  /** `DELETE /playbacks/{id}`: PlaybackFinished with state `done` (recorded, even when stopped early). */
  stopPlayback(id: string): boolean {
    const rt = this.playbacks.get(id);
    if (!rt) return false;
    this.finishPlayback(rt, true);
    return true;
  }

  controlPlayback(id: string, op: string): "ok" | "not-found" | "conflict" {
    const rt = this.playbacks.get(id);
    if (!rt) return "not-found";
    if (rt.state.state === "queued") return "conflict";
    const now = Date.now();
    switch (op) {
      case "pause":
        if (rt.state.state === "playing") {
          this.cancel(rt.timer);
          rt.remainingMs -= now - rt.startedAt;
          rt.state.state = "paused";
        }
        return "ok";
      case "unpause":
        if (rt.state.state === "paused") {
          rt.state.state = "playing";
          this.schedule(rt);
        }
        return "ok";
      case "restart":
        this.cancel(rt.timer);
        rt.remainingMs = rt.state.mediaUri.startsWith("tone:") ? Infinity : this.soundDurationMs(rt.state.mediaUri);
        rt.state.state = "playing";
        this.schedule(rt);
        return "ok";
      default:
        return "ok";
    }
  }

  private schedule(rt: PlaybackRt): void {
    rt.startedAt = Date.now();
    if (Number.isFinite(rt.remainingMs)) rt.timer = this.later(Math.max(0, rt.remainingMs), () => this.finishPlayback(rt, true));
  }

  private finishPlayback(rt: PlaybackRt, emit: boolean): void {
    if (this.playbacks.get(rt.state.id) !== rt) return;
    this.cancel(rt.timer);
    this.playbacks.delete(rt.state.id);
    const started = rt.state.state !== "queued";
    rt.state.state = "done";
    this.finishedPlaybacks.push(rt.state);
    if (rt.channel) rt.channel.activeChannelPlaybacks--;
    for (const c of rt.muted.splice(0)) this.unmuteIfIdle(c);
    if (emit && started) this.playbackEvent("PlaybackFinished", rt);
  }

  private endChannelPlaybacks(c: SimChannelState): void {
    for (const p of [...this.playbacks.values()]) if (p.channel === c) this.finishPlayback(p, true);
  }

  private playbackEvent(type: string, rt: PlaybackRt): void {
    const topics: EventTopics = rt.channel ? { channel: rt.channel } : { bridge: rt.bridge, doubleOnSubscribeAll: true };
    this.emit(type, { playback: playbackJson(rt.state) }, topics);
  }

  /**
   * §3.9 pitfall, as recorded in run 1: a playback on a bridged channel takes that channel out of the bridge media,
   * so the media legs in the bridge get no caller audio until it ends.
   */
  private muteBridgedMedia(rt: PlaybackRt): void {
    const c = rt.channel;
    if (!c || c.bridgeId === undefined || rt.state.state !== "playing") return;
    const b = this.bridges.get(c.bridgeId);
    for (const id of b?.channels ?? []) {
      const m = this.channels.get(id);
      if (!m || m === c || !m.media || rt.muted.includes(m)) continue;
      rt.muted.push(m);
      m.media.setCallerMuted(true);
    }
  }

  private unmuteIfIdle(m: SimChannelState): void {
    for (const p of this.playbacks.values()) if (p.muted.includes(m)) return;
    m.media?.setCallerMuted(false);
  }
}
