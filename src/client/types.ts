// Wire types of the WebSocket call API (spec/ws-call-api.md §3 commands, §4 events).
// This file is standalone on purpose: src/client is published as `active-call/client` and must not import the
// server, so these types restate the spec instead of reusing the server's schemas.

/** Audio codecs of §5.1. */
export type Codec = "pcm" | "pcmu" | "pcma" | "g722" | "opus";

/** A JSON object as sent on the wire (provider option objects, playbook-schema objects). */
export type JsonObject = { [key: string]: unknown };

/** Template variables (`extra` / `variables`). */
export type Variables = Record<string, string | number | boolean>;

/** `invite` / `accept` options (§3.1). Every field is optional. */
export interface CallOption {
  codec?: Codec;
  sampleRate?: number;
  outputCodec?: Codec;
  outputSampleRate?: number;
  ptime?: 10 | 20 | 40 | 60;
  sendSilence?: boolean;
  playbook?: string;
  extra?: Variables;
  /** Alias of `extra`; merged over it. */
  variables?: Variables;
  caller?: string;
  callee?: string;
  timeoutMs?: number;
  asr?: JsonObject;
  tts?: JsonObject;
  vad?: JsonObject;
  llm?: JsonObject;
  realtime?: JsonObject;
  eou?: JsonObject;
  interruption?: JsonObject;
  ambiance?: JsonObject;
  recorder?: JsonObject;
  denoise?: JsonObject;
  followup?: JsonObject;
  sip?: { headers?: Record<string, string>; hangupHeaders?: Record<string, string> };
  subscribe?: boolean;
  inactivityTimeoutMs?: number;
  /** Seconds; accepted alias of `inactivityTimeoutMs`. */
  inactivityTimeout?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Commands (§3)

interface CommandBase {
  /** Copied into any `error` event this command causes. */
  requestId?: string;
}

export interface InviteCommand extends CommandBase {
  command: "invite";
  option?: CallOption;
}
export interface AcceptCommand extends CommandBase {
  command: "accept";
  option?: CallOption;
}
export interface RejectOptions {
  reason?: string;
  /** SIP status 400–699; default 486. */
  code?: number;
}
export interface RejectCommand extends CommandBase, RejectOptions {
  command: "reject";
}
export interface RingingOptions {
  earlyMedia?: boolean;
  ringtone?: string;
  recorder?: JsonObject;
}
export interface RingingCommand extends CommandBase, RingingOptions {
  command: "ringing";
}
/** Options shared by `tts` and `play` (§3.4, §3.5). */
export interface PlaybackOptions {
  playId?: string;
  autoHangup?: boolean;
  /** Milliseconds; 0 = off, 1–99 rejected, max 600 000. */
  waitInputTimeout?: number;
  interruptible?: boolean;
  queue?: boolean;
}
export interface TtsOptions extends PlaybackOptions {
  streaming?: boolean;
  endOfStream?: boolean;
  speaker?: string;
  option?: JsonObject;
  /** `text` is base64 PCM16 LE mono at `option.sampleRate` (default 16000). */
  base64?: boolean;
  cacheKey?: string;
}
export interface TtsCommand extends CommandBase, TtsOptions {
  command: "tts";
  text: string;
}
export interface PlayOptions extends PlaybackOptions {
  /** Times to play; 0 = until stopped. */
  loop?: number;
}
export interface PlayCommand extends CommandBase, PlayOptions {
  command: "play";
  url: string;
}
export interface InterruptOptions {
  graceful?: boolean;
  /** 0–2000 ms. */
  fadeOutMs?: number;
}
export interface InterruptCommand extends CommandBase, InterruptOptions {
  command: "interrupt";
}
export interface PauseCommand extends CommandBase {
  command: "pause";
}
export interface ResumeCommand extends CommandBase {
  command: "resume";
}
export type HangupInitiator = "caller" | "agent" | "client" | "system";
export interface HangupOptions {
  reason?: string;
  initiator?: HangupInitiator | "callee";
  headers?: Record<string, string>;
  afterPlayout?: boolean;
}
export interface HangupCommand extends CommandBase, HangupOptions {
  command: "hangup";
}
export interface ReferOptions {
  caller?: string;
  options?: { headers?: Record<string, string>; timeoutMs?: number; timeout?: number };
}
export interface ReferCommand extends CommandBase, ReferOptions {
  command: "refer";
  callee: string;
}
export interface TransferOptions {
  context?: string;
  mode?: "dialplan" | "refer";
}
export interface TransferCommand extends CommandBase, TransferOptions {
  command: "transfer";
  target: string;
}
export interface DtmfOptions {
  /** 40–500 ms, default 100. */
  durationMs?: number;
  /** 20–1000 ms, default 100. */
  gapMs?: number;
}
export interface DtmfCommand extends CommandBase, DtmfOptions {
  command: "dtmf";
  digits: string;
}
export interface MuteCommand extends CommandBase {
  command: "mute";
  trackId?: string;
}
export interface UnmuteCommand extends CommandBase {
  command: "unmute";
  trackId?: string;
}
export type HistorySpeaker = "user" | "assistant" | "system";
export interface HistoryCommand extends CommandBase {
  command: "history";
  speaker: HistorySpeaker | (string & {});
  text: string;
}

export type CallCommand =
  | InviteCommand
  | AcceptCommand
  | RejectCommand
  | RingingCommand
  | TtsCommand
  | PlayCommand
  | InterruptCommand
  | PauseCommand
  | ResumeCommand
  | HangupCommand
  | ReferCommand
  | TransferCommand
  | DtmfCommand
  | MuteCommand
  | UnmuteCommand
  | HistoryCommand;

export type CommandName = CallCommand["command"];

// ---------------------------------------------------------------------------------------------------------
// Events (§4)

interface EventBase {
  /** Integer milliseconds since the Unix epoch. */
  timestamp: number;
}

export type CallType = "websocket" | "twilio" | "freeswitch" | "asterisk";
export type CallState = "pending" | "dialing" | "ringing" | "active" | "ending" | "ended";
export type Direction = "inbound" | "outbound";

/** Negotiated media of a websocket call, echoed in `answer`. */
export interface AnswerMedia {
  codec: Codec;
  sampleRate: number;
  outputCodec: Codec;
  outputSampleRate: number;
  ptime: number;
}

export interface IncomingEvent extends EventBase {
  event: "incoming";
  trackId: string;
  caller: string;
  callee: string;
  direction: Direction;
  callType: CallType;
  state: CallState;
  headers: Record<string, string>;
  variables: Record<string, unknown>;
}
export interface RingingEvent extends EventBase {
  event: "ringing";
  trackId: string;
  earlyMedia: boolean;
  refer?: boolean;
}
export interface AnswerEvent extends EventBase {
  event: "answer";
  trackId: string;
  /** Always "". */
  sdp: string;
  /** Present on websocket calls. */
  media?: AnswerMedia;
  refer?: boolean;
}
export interface RejectEvent extends EventBase {
  event: "reject";
  trackId: string;
  reason: string;
  code?: number;
  refer?: boolean;
}
export type HangupReason =
  | "caller"
  | "client"
  | "agent"
  | "autohangup"
  | "maxFollowUp"
  | "inactivityTimeout"
  | "noAnswer"
  | "rejected"
  | "refer"
  | "transferred"
  | "error"
  | "pbxLost"
  | "shutdown";
export interface HangupEvent extends EventBase {
  event: "hangup";
  trackId: string;
  reason: HangupReason;
  detail?: string;
  initiator: HangupInitiator;
  /** RFC 3339 with milliseconds and `Z`. */
  startTime: string;
  ringingTime?: string;
  answerTime?: string;
  hangupTime: string;
  /** Answer → hangup; 0 if never answered. */
  durationMs: number;
  from?: { number: string; name?: string };
  to?: { number: string };
  extra?: Record<string, unknown>;
  refer?: boolean;
}
export interface SpeakingEvent extends EventBase {
  event: "speaking";
  trackId: string;
  startTime: number;
  isFiller?: boolean;
  confidence?: number;
}
export interface SilenceEvent extends EventBase {
  event: "silence";
  trackId: string;
  startTime: number;
  duration: number;
  reason: "vad" | "timeout" | "waitInputTimeout";
}
export interface EouEvent extends EventBase {
  event: "eou";
  trackId: string;
  completed: boolean;
  interruptPoint?: number;
}
export interface InactivityEvent extends EventBase {
  event: "inactivity";
  trackId: string;
}
export interface DtmfEvent extends EventBase {
  event: "dtmf";
  trackId: string;
  digit: string;
  durationMs?: number;
  source?: "rfc2833" | "info" | "inband" | "pbx";
}
export interface HoldEvent extends EventBase {
  event: "hold";
  trackId: string;
  onHold: boolean;
}
export interface TrackStartEvent extends EventBase {
  event: "trackStart";
  trackId: string;
  playId: string;
}
export type TrackEndReason = "finished" | "interrupted" | "replaced" | "error";
export interface TrackEndEvent extends EventBase {
  event: "trackEnd";
  trackId: string;
  playId: string;
  /** Milliseconds played. */
  duration: number;
  /** Always 0. */
  ssrc: number;
  reason: TrackEndReason;
}
export interface InterruptionEvent extends EventBase {
  event: "interruption";
  trackId: string;
  playId: string;
  reason: "bargeIn" | "command" | "replaced";
  subtitle?: string;
  position?: number;
  /** Milliseconds of audio known so far. */
  totalDuration: number;
  /** Milliseconds played. */
  current: number;
}
interface AsrFields {
  trackId: string;
  index: number;
  text: string;
  startTime?: number;
  endTime?: number;
  isFiller?: boolean;
  confidence?: number;
  taskId?: string;
}
export interface AsrDeltaEvent extends EventBase, AsrFields {
  event: "asrDelta";
}
export interface AsrFinalEvent extends EventBase, AsrFields {
  event: "asrFinal";
}
export interface LlmDeltaEvent extends EventBase {
  event: "llmDelta";
  playId: string;
  text: string;
}
export interface LlmFinalEvent extends EventBase {
  event: "llmFinal";
  playId: string;
  text: string;
  heard: string;
  interrupted: boolean;
}
export interface AddHistoryEvent extends EventBase {
  event: "addHistory";
  sender?: string;
  speaker: string;
  text: string;
}
export interface FunctionCallEvent extends EventBase {
  event: "functionCall";
  trackId: string;
  callId: string;
  name: string;
  /** JSON string. */
  arguments: string;
}
export interface FunctionResultEvent extends EventBase {
  event: "functionResult";
  callId: string;
  name: string;
  ok: boolean;
  result?: string;
  durationMs: number;
}
export interface SceneChangeEvent extends EventBase {
  event: "sceneChange";
  from: string;
  to: string;
  trigger: "llm" | "tool" | "dtmf";
}
export interface CollectedEvent extends EventBase {
  event: "collected";
  collector: string;
  var: string;
  digits: string;
  valid: boolean;
  attempt: number;
}
export interface TransferEvent extends EventBase {
  event: "transfer";
  trackId: string;
  mode: "refer" | "dialplan";
  target: string;
  state: "requested" | "accepted" | "failed";
  code?: number;
  reason?: string;
}

/** `data` of each `metrics.key` (§4). */
export interface TurnMetricsData {
  eouMs: number;
  asrMs: number;
  llmTtftMs: number;
  ttsTtfbMs: number;
  early: boolean;
}
export interface MetricsEvent extends EventBase {
  event: "metrics";
  /** `turn`, `ttfb.asr.<provider>`, `completed.llm.<provider>`, `tool.<name>`, `realtime.response`, ... */
  key: string;
  duration: number;
  data: Record<string, unknown>;
}
/** Narrowing helper for the `turn` metric. */
export function isTurnMetrics(e: MetricsEvent): e is MetricsEvent & { key: "turn"; data: TurnMetricsData } {
  return e.key === "turn";
}

export type ErrorCode =
  | "BAD_REQUEST"
  | "INVALID_NAME"
  | "UNAUTHORIZED"
  | "NOT_FOUND"
  | "CALL_NOT_FOUND"
  | "PLAYBOOK_NOT_FOUND"
  | "INVALID_STATE"
  | "ALREADY_ATTACHED"
  | "PLAYBOOK_INVALID"
  | "UNSUPPORTED"
  | "CAPACITY"
  | "PBX_UNAVAILABLE"
  | "PBX_ERROR"
  | "PROVIDER_ERROR"
  | "TIMEOUT"
  | "INTERNAL"
  | "BAD_COMMAND"
  | "UNKNOWN_COMMAND"
  | "AUDIO_FORMAT"
  | "PLAYBACK_ERROR"
  | "TOOL_ERROR"
  | "WEBHOOK_FAILED"
  | "RATE_LIMITED";
export type ErrorSender = "asr" | "tts" | "llm" | "realtime" | "media" | "pbx" | "playbook" | "command" | "tool";
export interface ErrorEvent extends EventBase {
  event: "error";
  trackId: string;
  sender: ErrorSender;
  /** Human-readable message; branch on `code`, never on this. */
  error: string;
  code: ErrorCode;
  requestId?: string;
}
export interface OtherEvent extends EventBase {
  event: "other";
  trackId: string;
  sender: string;
  extra: Record<string, unknown>;
}

export type CallEvent =
  | IncomingEvent
  | RingingEvent
  | AnswerEvent
  | RejectEvent
  | HangupEvent
  | SpeakingEvent
  | SilenceEvent
  | EouEvent
  | InactivityEvent
  | DtmfEvent
  | HoldEvent
  | TrackStartEvent
  | TrackEndEvent
  | InterruptionEvent
  | AsrDeltaEvent
  | AsrFinalEvent
  | LlmDeltaEvent
  | LlmFinalEvent
  | AddHistoryEvent
  | FunctionCallEvent
  | FunctionResultEvent
  | SceneChangeEvent
  | CollectedEvent
  | TransferEvent
  | MetricsEvent
  | ErrorEvent
  | OtherEvent;

export type CallEventName = CallEvent["event"];

/** The event of a given name. */
export type EventOf<N extends CallEventName> = Extract<CallEvent, { event: N }>;

/** Close codes of §1.3. */
export const CloseCode = {
  normal: 1000,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  badQuery: 4400,
  notFound: 4404,
  inviteTimeout: 4408,
  conflict: 4409,
  gone: 4410,
} as const;
