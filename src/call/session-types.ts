/** The shapes around CallSession (session.ts): call facts, its ports to the client, PBX, metrics and hooks. */
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { MediaLeg } from "../media/leg.js";
import type { CallControl } from "../pbx/call-control.js";
import type { Conversation, HangupInitiator } from "../pipeline/conversation.js";
import type { NewHook } from "../playbook/posthook/delivery.js";
import type { Playbook } from "../playbook/types.js";
import type { CallOption } from "./call-option.js";
import type { ConversationFactory } from "./conversation-factory.js";

export type CallType = "websocket" | "twilio" | "freeswitch" | "asterisk";
export type CallState = "pending" | "dialing" | "ringing" | "active" | "ending" | "ended";
export type Direction = "inbound" | "outbound";
export type LegKind = "websocket" | "twilio" | "audioFork" | "rtp" | "chanWebsocket" | "audioSocket" | "memory";
export type Variables = Record<string, string | number | boolean>;

/** A wire event (§4): `event`, `timestamp` and the event's fields. */
export type WireEvent = { event: string; timestamp: number } & Record<string, unknown>;

/** The controlling client of a call (`/call` socket, or the one `/call/pbx` attachment). */
export interface CallClientPort {
  send(event: WireEvent): void;
  close(code: number, reason: string): void;
}

export interface LegSetup {
  leg: MediaLeg;
  media: NegotiatedMedia;
}

export interface NegotiatedMedia {
  leg: LegKind;
  codec: string;
  sampleRate: number;
  outputCodec?: string;
  outputSampleRate?: number;
  ptime?: number;
}

/** What the call layer tells the metrics (CallMetrics implements it; tests may leave it out). */
export interface CallMetricsSink {
  callStarted(type: string): void;
  /** `durationMs` (answer -> hangup) only for answered calls. */
  callEnded(e: { type: string; direction: string; reason: string; durationMs?: number }): void;
  turnLatency(stage: "eou" | "asr" | "llm_ttft" | "tts_ttfb" | "first_audio", ms: number): void;
  bargeIn(strategy: string): void;
  falseInterruption(): void;
  eouSpeculation(outcome: "hit" | "miss"): void;
}

export interface PosthookSink {
  submit(hook: NewHook): Promise<string>;
}

/** Turns a name or inline text into a playbook (PlaybookStore). */
export interface PlaybookLoader {
  load(name: string): Promise<Playbook>;
  parseContent(content: string, label?: string): Promise<Playbook>;
}

export interface CallDeps {
  config: Config;
  log: Logger;
  playbooks: PlaybookLoader;
  conversations: ConversationFactory;
  posthooks?: PosthookSink | undefined;
  metrics?: CallMetricsSink | undefined;
  /** Epoch ms (tests). */
  now?: () => number;
}

/** What a `/api/playbook/run` entry (or a router decision) attached to the call before `invite`. */
export interface AttachedPlan {
  playbook?: Playbook | undefined;
  variables?: Variables | undefined;
  /** The handler said which rule chose the playbook (for logs). */
  source?: string | undefined;
}

export interface CallSessionOptions {
  id: string;
  callType: CallType;
  direction: Direction;
  caller?: string | undefined;
  callee?: string | undefined;
  deps: CallDeps;
  /** websocket calls: builds the leg from the invite's options (BAD_REQUEST for an unsupported codec/rate). */
  legFactory?: ((option: CallOption) => LegSetup | Promise<LegSetup>) | undefined;
  /** PBX calls: the channel's control (answer, reject, hangup, transfer, DTMF). */
  control?: CallControl | undefined;
  plan?: AttachedPlan | undefined;
  dump: boolean;
  agentTrackId?: string | undefined;
  /** Default `inactivityTimeoutMs` of this call type. */
  inactivityTimeoutMs: number;
  /** SIP headers / PBX facts shown in `incoming` (PBX calls). */
  headers?: Record<string, string> | undefined;
}

export interface HangupInfo {
  reason: string;
  initiator: HangupInitiator;
  detail?: string | undefined;
}

/** What the REST views and the post-call hook read of a call (CallSession's public state). */
export interface CallView {
  readonly id: string;
  readonly callType: CallType;
  readonly direction: Direction;
  readonly createdAt: number;
  readonly caller: string;
  readonly callee: string;
  readonly state: CallState;
  readonly answeredAt: number | undefined;
  readonly ringingAt: number | undefined;
  readonly firstAudioAt: number | undefined;
  readonly endedAt: number | undefined;
  readonly playbook: Playbook | undefined;
  readonly scene: string | undefined;
  readonly media: NegotiatedMedia | undefined;
  readonly turns: number;
  readonly lastTurn: Record<string, unknown> | undefined;
  readonly speaking: { agent: boolean; caller: boolean; playId?: string | undefined };
  readonly hangupInfo: HangupInfo | undefined;
  readonly recording: { path: string; bytes: number } | undefined;
  readonly variables: Variables;
  readonly conversation: Conversation | undefined;
  readonly attached: boolean;
}
