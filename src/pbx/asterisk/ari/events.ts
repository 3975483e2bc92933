/**
 * ARI events (media-protocols.md §3.3) as a typed discriminated union. Every event the controller consumes has
 * its own shape; anything else, or a known type whose fields do not check out, passes through as
 * `AriUnknownEvent` (`known: false`) with the raw object. Narrow with `isKnownAriEvent` before switching on
 * `type`, because the unknown variant's `type` is any string.
 */
import type { AriBridge, AriChannel, AriPlayback } from "./models.js";

export interface AriEventBase {
  application: string;
  timestamp: string;
  asterisk_id?: string;
}

export interface StasisStartEvent extends AriEventBase {
  type: "StasisStart";
  args: string[];
  channel: AriChannel;
  replace_channel?: AriChannel;
}
export interface StasisEndEvent extends AriEventBase {
  type: "StasisEnd";
  channel: AriChannel;
}
export interface ChannelCreatedEvent extends AriEventBase {
  type: "ChannelCreated";
  channel: AriChannel;
}
export interface ChannelStateChangeEvent extends AriEventBase {
  type: "ChannelStateChange";
  channel: AriChannel;
}
export interface DialEvent extends AriEventBase {
  type: "Dial";
  /** `""` while in progress, then `ANSWER`, `BUSY`, `NOANSWER`, `CONGESTION`, `CHANUNAVAIL`, `CANCEL`, … */
  dialstatus: string;
  peer: AriChannel;
  caller?: AriChannel;
  dialstring?: string;
  forward?: string;
}
export interface ChannelDtmfReceivedEvent extends AriEventBase {
  type: "ChannelDtmfReceived";
  digit: string;
  duration_ms: number;
  channel: AriChannel;
}
export interface ChannelHangupRequestEvent extends AriEventBase {
  type: "ChannelHangupRequest";
  cause?: number;
  soft?: boolean;
  channel: AriChannel;
}
export interface ChannelDestroyedEvent extends AriEventBase {
  type: "ChannelDestroyed";
  cause: number;
  cause_txt: string;
  channel: AriChannel;
}
export interface ChannelHoldEvent extends AriEventBase {
  type: "ChannelHold";
  channel: AriChannel;
  musicclass?: string;
}
export interface ChannelUnholdEvent extends AriEventBase {
  type: "ChannelUnhold";
  channel: AriChannel;
}
export interface ChannelVarsetEvent extends AriEventBase {
  type: "ChannelVarset";
  variable: string;
  value: string;
  /** Absent for global variables. */
  channel?: AriChannel;
}
export interface ChannelEnteredBridgeEvent extends AriEventBase {
  type: "ChannelEnteredBridge";
  bridge: AriBridge;
  channel: AriChannel;
}
export interface ChannelLeftBridgeEvent extends AriEventBase {
  type: "ChannelLeftBridge";
  bridge: AriBridge;
  channel: AriChannel;
}
export interface BridgeCreatedEvent extends AriEventBase {
  type: "BridgeCreated";
  bridge: AriBridge;
}
export interface BridgeDestroyedEvent extends AriEventBase {
  type: "BridgeDestroyed";
  bridge: AriBridge;
}
export interface PlaybackStartedEvent extends AriEventBase {
  type: "PlaybackStarted";
  playback: AriPlayback;
}
export interface PlaybackFinishedEvent extends AriEventBase {
  type: "PlaybackFinished";
  playback: AriPlayback;
}
export interface ApplicationReplacedEvent extends AriEventBase {
  type: "ApplicationReplaced";
}

export type AriKnownEvent =
  | StasisStartEvent
  | StasisEndEvent
  | ChannelCreatedEvent
  | ChannelStateChangeEvent
  | DialEvent
  | ChannelDtmfReceivedEvent
  | ChannelHangupRequestEvent
  | ChannelDestroyedEvent
  | ChannelHoldEvent
  | ChannelUnholdEvent
  | ChannelVarsetEvent
  | ChannelEnteredBridgeEvent
  | ChannelLeftBridgeEvent
  | BridgeCreatedEvent
  | BridgeDestroyedEvent
  | PlaybackStartedEvent
  | PlaybackFinishedEvent
  | ApplicationReplacedEvent;

export type AriEventType = AriKnownEvent["type"];

export interface AriUnknownEvent {
  type: string;
  known: false;
  raw: Record<string, unknown>;
}

export type AriEvent = AriKnownEvent | AriUnknownEvent;

export function isKnownAriEvent(ev: AriEvent): ev is AriKnownEvent {
  return !("known" in ev && ev.known === false);
}

// ---- validation (only the fields we read) ---------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function isChannel(v: unknown): v is AriChannel {
  return (
    isObj(v) &&
    isStr(v.id) &&
    isStr(v.name) &&
    isStr(v.state) &&
    isObj(v.caller) &&
    isObj(v.dialplan)
  );
}
function isBridge(v: unknown): v is AriBridge {
  return isObj(v) && isStr(v.id) && Array.isArray(v.channels);
}
function isPlayback(v: unknown): v is AriPlayback {
  return isObj(v) && isStr(v.id) && isStr(v.state) && isStr(v.target_uri) && isStr(v.media_uri);
}

const CHECKS: { [K in AriEventType]: (e: Obj) => boolean } = {
  StasisStart: (e) => isChannel(e.channel) && Array.isArray(e.args) && e.args.every(isStr),
  StasisEnd: (e) => isChannel(e.channel),
  ChannelCreated: (e) => isChannel(e.channel),
  ChannelStateChange: (e) => isChannel(e.channel),
  Dial: (e) => isStr(e.dialstatus) && isChannel(e.peer) && (e.caller === undefined || isChannel(e.caller)),
  ChannelDtmfReceived: (e) => isStr(e.digit) && isNum(e.duration_ms) && isChannel(e.channel),
  ChannelHangupRequest: (e) => isChannel(e.channel) && (e.cause === undefined || isNum(e.cause)),
  ChannelDestroyed: (e) => isChannel(e.channel) && isNum(e.cause) && isStr(e.cause_txt),
  ChannelHold: (e) => isChannel(e.channel),
  ChannelUnhold: (e) => isChannel(e.channel),
  ChannelVarset: (e) => isStr(e.variable) && isStr(e.value) && (e.channel === undefined || isChannel(e.channel)),
  ChannelEnteredBridge: (e) => isBridge(e.bridge) && isChannel(e.channel),
  ChannelLeftBridge: (e) => isBridge(e.bridge) && isChannel(e.channel),
  BridgeCreated: (e) => isBridge(e.bridge),
  BridgeDestroyed: (e) => isBridge(e.bridge),
  PlaybackStarted: (e) => isPlayback(e.playback),
  PlaybackFinished: (e) => isPlayback(e.playback),
  ApplicationReplaced: () => true,
};

export const KNOWN_ARI_EVENT_TYPES: readonly AriEventType[] = Object.keys(CHECKS) as AriEventType[];

/**
 * Types an event object. Returns undefined for something that is not an event at all (no string `type`).
 */
export function toAriEvent(raw: unknown): AriEvent | undefined {
  if (!isObj(raw) || !isStr(raw.type)) return undefined;
  const type = raw.type;
  const check = Object.hasOwn(CHECKS, type) ? CHECKS[type as AriEventType] : undefined;
  if (check && isStr(raw.application ?? "") && check(raw)) {
    // The known shapes are structural views over the object Asterisk sent.
    const ev = raw as unknown as AriKnownEvent;
    if (!isStr(raw.application)) (ev as AriEventBase).application = "";
    if (!isStr(raw.timestamp)) (ev as AriEventBase).timestamp = "";
    return ev;
  }
  return { type, known: false, raw };
}

/** Parses one WebSocket text frame. Returns undefined for invalid JSON or a non-event. */
export function parseAriEvent(text: string): AriEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  return toAriEvent(json);
}
