/**
 * ARI REST models (media-protocols.md §3): only the fields the controller reads. Asterisk sends more; extra
 * fields are kept on the objects as received but not typed.
 */

export interface AriCallerId {
  name: string;
  number: string;
}

export interface AriDialplanCep {
  context: string;
  exten: string;
  priority: number;
  /** Current dialplan application (`Stasis` while in our app). */
  app_name?: string;
  /** Its argument (`<app>[,args]` for Stasis). */
  app_data?: string;
}

/** Channel states as Asterisk spells them. */
export type AriChannelState =
  | "Down"
  | "Rsrved"
  | "OffHook"
  | "Dialing"
  | "Ring"
  | "Ringing"
  | "Up"
  | "Busy"
  | "Dialing Offhook"
  | "Pre-ring"
  | "Unknown";

export interface AriChannel {
  id: string;
  /** `PJSIP/…`, `UnicastRTP/…`, `WebSocket/INCOMING/…`, … */
  name: string;
  state: AriChannelState | (string & {});
  caller: AriCallerId;
  connected?: AriCallerId;
  dialplan: AriDialplanCep;
  creationtime?: string;
  language?: string;
  protocol_id?: string;
  /** Present on the externalMedia response (and with `channelvars` configured in ari.conf). */
  channelvars?: Record<string, string>;
}

export interface AriBridge {
  id: string;
  technology: string;
  bridge_type: string;
  bridge_class?: string;
  name?: string;
  channels: string[];
}

export type AriPlaybackState = "queued" | "playing" | "paused" | "continuing" | "done" | "failed" | "canceled";

export interface AriPlayback {
  id: string;
  media_uri: string;
  /** `channel:<id>` or `bridge:<id>`. */
  target_uri: string;
  language?: string;
  state: AriPlaybackState | (string & {});
}

export interface AriAsteriskInfo {
  system?: { version: string; entity_id?: string };
  build?: { os?: string; options?: string };
  config?: { name?: string; default_language?: string };
  status?: { startup_time?: string; last_reload_time?: string };
}

export interface AriVariable {
  value: string;
}

/** Error bodies: `{"message": "..."}`. */
export interface AriErrorBody {
  message?: string;
}

// ---- request parameters ---------------------------------------------------------------------------------------

export interface ExternalMediaParams {
  /** Defaults to the client's app. */
  app?: string;
  channelId: string;
  format: string;
  /** `host:port`; RTP and AudioSocket only (§3.5, §3.7). */
  externalHost?: string;
  encapsulation?: "rtp" | "audiosocket" | "none";
  transport?: "udp" | "tcp" | "websocket";
  /** chan_websocket: `server` (we connect to Asterisk) or `client`. */
  connectionType?: "server" | "client";
  /** chan_websocket extra data, e.g. `f(json)`. */
  transportData?: string;
  direction?: "both" | "in" | "out";
  /** AudioSocket UUID, or free data for the other transports. */
  data?: string;
  variables?: Record<string, string>;
}

export interface OriginateParams {
  endpoint: string;
  app?: string;
  appArgs?: string;
  channelId?: string;
  otherChannelId?: string;
  callerId?: string;
  /** Seconds. */
  timeout?: number;
  /** Sent in the JSON body (`PJSIP_HEADER(add,X-…)` etc.). */
  variables?: Record<string, string>;
}

export interface ContinueParams {
  context?: string;
  extension?: string;
  priority?: number;
  label?: string;
}

export interface DtmfParams {
  /** ms; Asterisk's default 100. */
  duration?: number;
  /** ms between digits; Asterisk's default 100. */
  between?: number;
  before?: number;
  after?: number;
}

export interface PlayParams {
  playbackId?: string;
  lang?: string;
  offsetms?: number;
  skipms?: number;
}

export interface CreateBridgeParams {
  /** Default `mixing`. */
  type?: string;
  bridgeId?: string;
  name?: string;
}

export type PlaybackOperation = "pause" | "unpause" | "restart" | "reverse" | "forward";
