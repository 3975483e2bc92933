/**
 * The Conversation seam (DESIGN.md "The seams"): the per-call engine. The serial pipeline (VAD -> ASR -> LLM ->
 * TTS, ./serial/) and the realtime pipeline implement it, so the call layer drives either the same way: it feeds
 * the commands of ws-call-api.md §3, listens to the events of §4, and waits for `closed` to run the post-call
 * hook with `snapshot()`.
 *
 * Events are lifecycle-grade (a few per second), so they go through a TypedEmitter; audio never does.
 */
import type { TypedEmitter } from "../media/emitter.js";
import type { RunnerCommand, RunnerSnapshot } from "../playbook/runner/types.js";

// ------------------------------------------------------------------------------------------------ commands

/** The ws-call-api §3 commands a conversation handles itself (invite/accept/reject/refer/transfer are the call's). */
export type ConversationCommand =
  | {
      command: "tts";
      text: string;
      playId?: string | undefined;
      streaming?: boolean | undefined;
      endOfStream?: boolean | undefined;
      autoHangup?: boolean | undefined;
      interruptible?: boolean | undefined;
      queue?: boolean | undefined;
      waitInputTimeout?: number | undefined;
      /** Voice for this utterance (shorthand for `option.voice`). */
      speaker?: string | undefined;
      /** Per-utterance TTS overrides (the playbook `tts` schema); `voice` and `sampleRate` (for `base64`) are used here. */
      option?: TtsCommandOption | undefined;
      /** `text` is base64 of raw PCM16 LE mono at `option.sampleRate` (default 16000), played without synthesis. */
      base64?: boolean | undefined;
      cacheKey?: string | undefined;
    }
  | {
      command: "play";
      url: string;
      playId?: string | undefined;
      autoHangup?: boolean | undefined;
      interruptible?: boolean | undefined;
      queue?: boolean | undefined;
      waitInputTimeout?: number | undefined;
      /** Times to play; 0 = until stopped (default 1). */
      loop?: number | undefined;
    }
  | { command: "interrupt"; graceful?: boolean | undefined; fadeOutMs?: number | undefined }
  | { command: "pause" }
  | { command: "resume" }
  | { command: "mute"; trackId?: string | undefined }
  | { command: "unmute"; trackId?: string | undefined }
  | {
      command: "hangup";
      reason?: string | undefined;
      initiator?: HangupInitiator | undefined;
      headers?: Record<string, string> | undefined;
      afterPlayout?: boolean | undefined;
    }
  | { command: "history"; speaker: string; text: string };

/** `tts.option`: the playbook `tts` schema; the fields the conversation itself reads are typed. */
export interface TtsCommandOption {
  voice?: string | undefined;
  sampleRate?: number | undefined;
  [key: string]: unknown;
}

// ------------------------------------------------------------------------------------------------ events

export type HangupInitiator = "caller" | "agent" | "client" | "system";
export type HangupReason = "caller" | "client" | "agent" | "autohangup" | "maxFollowUp" | "error" | "shutdown" | "inactivityTimeout";
export type ErrorSender = "asr" | "tts" | "llm" | "realtime" | "media" | "pbx" | "playbook" | "command" | "tool";

interface Base {
  /** Epoch ms (the conversation's wall clock). */
  timestamp: number;
  trackId?: string | undefined;
}

/** The ws-call-api §4 events a conversation emits (the call layer adds answer, transfer, the hangup times...). */
export type ConversationEvent = Base &
  (
    | { event: "speaking"; startTime: number }
    | { event: "silence"; startTime: number; duration: number; reason: "vad" | "timeout" | "waitInputTimeout" }
    | { event: "eou"; completed: boolean }
    | { event: "asrDelta"; index: number; text: string }
    | { event: "asrFinal"; index: number; text: string }
    | { event: "llmDelta"; playId: string; text: string }
    | { event: "trackStart"; playId: string }
    | { event: "trackEnd"; playId: string; duration: number; ssrc: 0; reason: "finished" | "interrupted" | "replaced" | "error" }
    | {
        event: "interruption";
        playId: string;
        reason: "bargeIn" | "command" | "replaced";
        subtitle?: string | undefined;
        position?: number | undefined;
        totalDuration: number;
        current: number;
      }
    | { event: "inactivity" }
    | { event: "dtmf"; digit: string; durationMs?: number | undefined; source?: string | undefined }
    | { event: "metrics"; key: string; duration: number; data: Record<string, unknown> }
    | { event: "error"; sender: ErrorSender; error: string; code: string }
    | { event: "hangup"; reason: HangupReason; initiator: HangupInitiator; detail?: string | undefined }
    | { event: "sceneChange"; from: string; to: string; trigger: string }
    | { event: "collected"; collector: string; var: string; digits: string; valid: boolean; attempt: number }
    | { event: "functionCall"; callId: string; name: string; arguments: string }
    | { event: "functionResult"; callId: string; name: string; ok: boolean; result?: string | undefined; durationMs: number }
    | { event: "addHistory"; speaker: string; text: string }
    | { event: "transfer"; mode: "refer" | "dialplan"; target: string; state: "requested"; context?: string | undefined }
    | { event: "other"; sender: string; extra: Record<string, unknown> }
  );

/** What only the call layer can do, asked for on a conversation's `control` channel: transfers and DTMF out. */
export type ControlRequest = Extract<RunnerCommand, { command: "refer" | "transfer" | "dtmf" }>;

export type ConversationEventName = ConversationEvent["event"];

export type ConversationEvents = {
  event: [ConversationEvent];
};

/** Why and how the conversation ended (the call layer turns it into the PBX hangup and the `hangup` event). */
export interface ConversationEnd {
  reason: HangupReason;
  initiator: HangupInitiator;
  detail?: string | undefined;
  /** SIP headers for the BYE (`hangup.headers`, `sip.hangupHeaders`). */
  headers?: Record<string, string> | undefined;
}

/** What the post-call hook needs from the conversation. */
export interface ConversationSnapshot {
  runner: RunnerSnapshot | undefined;
  turns: { turns: number; speculations: number; hits: number; misses: number; dropped: number };
  interruptions: { bargeIns: number; falseInterruptions: number };
  end: ConversationEnd | undefined;
}

export interface Conversation {
  readonly events: TypedEmitter<ConversationEvents>;
  /** Starts consuming caller audio and the playbook (greeting). Resolves once running. */
  start(): Promise<void>;
  /** A ws-call-api command (from the WebSocket client, REST, or the playbook runner). Never throws. */
  handleCommand(command: ConversationCommand): void;
  /** Ends the conversation (e.g. the caller hung up); idempotent. */
  stop(end?: ConversationEnd): Promise<void>;
  /**
   * A transfer the playbook asked for (a `control` request) did not happen (§3.9 `transfer {state:"failed"}`): the
   * agent, which stopped taking turns for it, goes on with the call and tells the caller.
   */
  transferFailed(reason: string): void;
  /** Resolves once, when the conversation is over (hangup from any side). */
  readonly closed: Promise<ConversationEnd>;
  snapshot(): ConversationSnapshot;
}
