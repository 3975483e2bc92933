/**
 * CallControl (DESIGN.md "The seams"): what the call layer asks of the PBX that holds a call. FreeSWITCH
 * implements it over ESL, Asterisk over ARI; WebSocket and Twilio calls have none (the call layer then does
 * what the API specifies for them: in-band DTMF, `transfer {state:"requested"}` only).
 */
import type { TypedEmitter } from "../media/emitter.js";

export type PbxKind = "freeswitch" | "asterisk";

/** An inbound call a PBX (or a Twilio stream) hands over: what the router decides on (config.md §2.5). */
export interface IncomingCall {
  callId: string;
  callType: PbxKind | "twilio";
  direction: "inbound";
  caller: string;
  callerName?: string;
  callee: string;
  createdAt: string;
  /** SIP headers the PBX passed on. */
  headers: Record<string, string>;
  /** Variables the PBX passed (channel variables `active_call_var_*`, Stasis `name=value` arguments). */
  variables: Record<string, string | number | boolean>;
  /** Playbook named by the PBX (`active_call_playbook`, Stasis `playbook=`); it wins over every rule. */
  pbxPlaybook?: string | undefined;
  /** Where an application attaches to this call (`/call/pbx?id=…`). */
  attachUrl: string;
}

export interface TransferRequest {
  mode: "refer" | "dialplan";
  target: string;
  /** Dialplan context (`dialplan` mode); default the PBX's `transfer_context`. */
  context?: string | undefined;
  /** Extra SIP headers on the REFER / INVITE where the PBX allows it. */
  headers?: Record<string, string> | undefined;
  /** How long to wait for the REFER outcome (default 10 000 ms). */
  timeoutMs?: number | undefined;
}

export type TransferOutcome = { state: "accepted" } | { state: "failed"; code?: number | undefined; reason: string };

export type CallControlEvents = {
  /** The PBX ended the channel (the caller hung up, or it is gone). */
  hangup: [{ cause: string; sipCode?: number | undefined; initiator: "caller" | "system" }];
  hold: [{ onHold: boolean }];
  /** Outbound: the far end rings (180), or sent early media (183). */
  progress: [{ earlyMedia: boolean }];
  /** Outbound: the far end answered and the channel is ready for media. */
  answered: [];
  /** Outbound: the attempt failed before an answer. */
  failed: [{ cause: string; sipCode?: number | undefined }];
  /** PBX-specific events worth passing on (`other` event). */
  other: [{ sender: string; extra: Record<string, unknown> }];
};

/** An outbound call to place (ws-call-api §7.2 `Originate`). */
export interface OriginateRequest {
  id: string;
  to: string;
  from?: string | undefined;
  fromName?: string | undefined;
  timeoutMs: number;
  headers?: Record<string, string> | undefined;
}

export interface CallControl {
  readonly pbx: PbxKind;
  readonly events: TypedEmitter<CallControlEvents>;
  /** 200 OK (answers a pending inbound call). */
  answer(): Promise<void>;
  /** 180, or 183 with early media. */
  ringing(earlyMedia: boolean): Promise<void>;
  /** Rejects an unanswered call with a SIP code (as exactly as the PBX allows). */
  reject(code: number, reason: string): Promise<void>;
  /** Ends the channel; `headers` go on the BYE where the PBX can add them. Idempotent; "already gone" is fine. */
  hangup(options: { cause?: string; headers?: Record<string, string> | undefined }): Promise<void>;
  transfer(request: TransferRequest): Promise<TransferOutcome>;
  /** Out-of-band DTMF to the caller (`w` = 500 ms pause). */
  sendDtmf(digits: string, durationMs: number): Promise<void>;
  /** Stops what the PBX itself plays on the channel (barge-in on `pbx:` playback). */
  stopPlayback(): Promise<void>;
  /** `pbx:` playback on this channel, where the PBX can play files and tones. */
  readonly player?: PbxPlayer | undefined;
}

/**
 * Playback done by the PBX itself (`play` with a `pbx:` url, ws-call-api §3.5): FreeSWITCH `playback` of a file
 * path or `tone_stream://…`; Asterisk `sound:`/`tone:` media. The conversation reports trackStart/trackEnd from it.
 */
export interface PbxPlayer {
  /** Plays `target` once. `started` resolves when the PBX starts it; `ended` when it finished or was stopped. */
  play(target: string, playId: string): { started: Promise<void>; ended: Promise<{ status: "done" | "break" }> };
  /** Stops what the PBX plays on the channel (barge-in, interrupt). */
  stopPlayback(): Promise<void>;
  /** Pauses (or resumes) what the PBX plays (`pause`/`resume` commands, ws-call-api §3.7). */
  pausePlayback(paused: boolean): Promise<void>;
}
