/**
 * The ARI simulator's state and its JSON: channel, bridge and playback objects serialised with the keys, key order
 * and value formats of the Asterisk 23.4.1 recordings (shared/fixtures/asterisk/run*). Pure data, no I/O.
 */
import type { SimMediaEndpoint } from "./types.js";

export type Json = Record<string, unknown>;

/** Asterisk's timestamp format: `2026-11-23T21:10:33.554+0000` (UTC, `+0000`, not `Z`). */
export function ariTimestamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}

export interface SimCallerId {
  name: string;
  number: string;
}

export interface SimDialplan {
  context: string;
  exten: string;
  priority: number;
  app_name: string;
  app_data: string;
}

/** What kind of channel it is decides names, variables and which events it gets. */
export type SimChannelKind = "pjsip" | "unicastrtp" | "websocket" | "audiosocket";

export interface SimChannelState {
  readonly id: string;
  readonly name: string;
  readonly kind: SimChannelKind;
  state: string;
  caller: SimCallerId;
  connected: SimCallerId;
  dialplan: SimDialplan;
  protocolId: string;
  readonly creationtime: string;
  language: string;
  /** Stasis app the channel is in (undefined: not in Stasis). */
  app: string | undefined;
  /** StasisStart args. */
  args: string[];
  /** Apps that receive this channel's events without subscribeAll. */
  readonly subscribers: Set<string>;
  bridgeId: string | undefined;
  /** Plain channel variables (externalMedia channelvars, originate variables, POST variable). */
  readonly variables: Record<string, string>;
  /** Inbound SIP headers (PJSIP_HEADER / PJSIP_HEADERS). */
  readonly headers: Record<string, string>;
  /** CHANNEL(audioreadformat). */
  readFormat: string;
  media: SimMediaEndpoint | undefined;
  /** `POST /channels/{id}/dtmf` requests, in order. */
  readonly dtmfSent: { dtmf: string; duration?: number; between?: number }[];
  /** `POST redirect` endpoints, in order. */
  readonly redirects: string[];
  /** Where `POST continue` sent it. */
  continuedTo: { context: string; extension: string; priority: number } | undefined;
  /** `POST ring` / `DELETE ring` / `POST progress` in order. */
  readonly indications: string[];
  onHold: boolean;
  destroyed: boolean;
  /** The cause the channel was destroyed with. */
  cause: number | undefined;
  /** Channel playbacks running on it (they mute the bridged media leg's caller audio, §3.9). */
  activeChannelPlaybacks: number;
}

export interface SimBridgeState {
  readonly id: string;
  readonly name: string;
  readonly bridgeType: string;
  readonly creationtime: string;
  /**
   * Apps subscribed to it: an app subscribes when one of its channels enters (res_stasis), so without subscribeAll
   * BridgeCreated reaches nobody and later bridge events reach the apps of the channels that joined.
   */
  readonly subscribers: Set<string>;
  readonly channels: string[];
  destroyed: boolean;
}

export interface SimPlaybackState {
  readonly id: string;
  readonly mediaUri: string;
  readonly targetUri: string;
  readonly language: string;
  state: string;
}

const BLANK_ID: SimCallerId = { name: "", number: "" };

export function newChannel(o: {
  id: string;
  name: string;
  kind: SimChannelKind;
  state: string;
  caller?: SimCallerId;
  dialplan: SimDialplan;
  protocolId?: string;
  readFormat?: string;
}): SimChannelState {
  return {
    id: o.id,
    name: o.name,
    kind: o.kind,
    state: o.state,
    caller: { ...(o.caller ?? BLANK_ID) },
    connected: { ...BLANK_ID },
    dialplan: { ...o.dialplan },
    protocolId: o.protocolId ?? "",
    creationtime: ariTimestamp(),
    language: "en",
    app: undefined,
    args: [],
    subscribers: new Set(),
    bridgeId: undefined,
    variables: {},
    headers: {},
    readFormat: o.readFormat ?? "slin",
    media: undefined,
    dtmfSent: [],
    redirects: [],
    continuedTo: undefined,
    indications: [],
    onHold: false,
    destroyed: false,
    cause: undefined,
    activeChannelPlaybacks: 0,
  };
}

/** The Channel object as Asterisk serialises it (recorded key order). */
export function channelJson(c: SimChannelState): Json {
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    protocol_id: c.protocolId,
    caller: { ...c.caller },
    connected: { ...c.connected },
    accountcode: "",
    dialplan: { ...c.dialplan },
    creationtime: c.creationtime,
    language: c.language,
  };
}

/** Bridges with more than two channels switch from simple_bridge to softmix, as Asterisk's mixing bridge does. */
export function bridgeJson(b: SimBridgeState): Json {
  const technology = b.bridgeType === "holding" ? "holding_bridge" : b.channels.length > 2 ? "softmix" : "simple_bridge";
  return {
    id: b.id,
    technology,
    bridge_type: b.bridgeType,
    bridge_class: "stasis",
    creator: "Stasis",
    name: b.name,
    channels: [...b.channels],
    creationtime: b.creationtime,
    video_mode: "talker",
  };
}

export function playbackJson(p: SimPlaybackState): Json {
  return { id: p.id, media_uri: p.mediaUri, target_uri: p.targetUri, language: p.language, state: p.state };
}

/** Asterisk's cause texts (main/causes.c) for the Q.850 codes of media-protocols.md §3.8 and a few more. */
const CAUSE_TEXT: Record<number, string> = {
  1: "Unallocated (unassigned) number",
  3: "No route to destination",
  16: "Normal Clearing",
  17: "User busy",
  18: "No user responding",
  19: "User alerting, no answer",
  20: "Subscriber absent",
  21: "Call Rejected",
  22: "Number changed",
  27: "Destination out of order",
  28: "Invalid number format (addr incomplete)",
  31: "Normal, unspecified",
  34: "Circuit/channel congestion",
  38: "Network out of order",
  41: "Temporary failure",
  58: "Bearer capability not available",
  127: "Interworking, unspecified",
};

export function causeText(cause: number): string {
  return CAUSE_TEXT[cause] ?? "Unknown";
}

/** `reason=` names of `DELETE /channels/{id}` (res/ari/resource_channels.c convert_reason_to_hangup_code). */
export const HANGUP_REASONS: Record<string, number> = {
  normal: 16,
  busy: 17,
  congestion: 34,
  no_answer: 19,
  timeout: 18,
  rejected: 21,
  unallocated: 1,
  normal_unspecified: 31,
  number_incomplete: 28,
  codec_mismatch: 58,
  interworking: 127,
  failure: 38,
  answered_elsewhere: 26,
};

/** `callerId=` as ast_callerid_parse reads it: `"Name" <num>`, `Name <num>` or a bare number. */
export function parseCallerId(s: string | undefined): SimCallerId {
  if (!s) return { ...BLANK_ID };
  const m = /^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$/.exec(s);
  if (m) return { name: (m[1] ?? "").trim(), number: (m[2] ?? "").trim() };
  return /^[+\d*#]+$/.test(s.trim()) ? { name: "", number: s.trim() } : { name: s.trim(), number: "" };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** Formats Asterisk knows (a subset of the format cache; enough for externalMedia/originate validation). */
export const KNOWN_FORMATS = new Set([
  "ulaw", "alaw", "gsm", "g722", "g729", "opus", "speex", "speex16", "ilbc", "g726", "adpcm",
  "slin", "slin12", "slin16", "slin24", "slin32", "slin44", "slin48", "slin96", "slin192",
]);

/** chan_websocket's MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE (20 ms of the format; recorded 640 for slin16). */
export function optimalFrameSize(format: string): number {
  if (format === "ulaw" || format === "alaw") return 160;
  const m = /^slin(\d*)$/.exec(format);
  if (m) return ((Number(m[1] || "8") * 1000) / 50) * 2;
  return 160;
}
