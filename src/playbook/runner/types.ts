/**
 * The scene runner's seams: what it receives (its options, call events, an LLM, a clock) and what it produces (the
 * commands of ws-call-api.md §3 and the playbook events of §4). Nothing here knows about audio or a PBX.
 */
import type { Logger } from "pino";
import type { ChatMessage, ChatRequest, LlmEvent, LlmProvider, ToolCallRef, ToolDefinition } from "../../providers/types.js";
import type { Playbook } from "../types.js";
import type { CallFacts } from "../variables.js";

// ------------------------------------------------------------------------------------------------ LLM
// The runner needs only `chat` of an LLM provider; the message and event shapes are the providers' own.

export type { ChatMessage, ToolCallRef, ToolDefinition };
export type LlmRequest = ChatRequest;
export type LlmStreamEvent = LlmEvent;
export type RunnerLlm = Pick<LlmProvider, "chat">;

// ------------------------------------------------------------------------------------------------ clock

/** Every timer of the runner goes through this (tests pass vitest fake timers or a manual clock). */
export interface Scheduler {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

// ------------------------------------------------------------------------------------------------ options

export interface RunnerOptions {
  playbook: Playbook;
  /** The call's facts (built-in variables); `scene` is kept up to date by the runner. */
  call: CallFacts;
  llm: RunnerLlm;
  sink: RunnerSink;
  scheduler?: Scheduler;
  /**
   * Epoch ms now: `date`/`time`/`weekday` in templates, and when history entries and transfers happened. Default
   * the scheduler's `now` (a media clock counts from its own start, so a pipeline passes its wall clock).
   */
  wallClock?: () => number;
  /** Variable layers between front matter `variables` and the runtime ones: handler rule, then the call's own. */
  variables?: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>;
  /** `[log] timezone` for `date`, `time`, `weekday`. */
  timeZone?: string;
  log?: Logger;
  /** For HTTP tools (tests may pass their own). */
  fetch?: typeof fetch;
  /**
   * false: an application drives the call (a `/call` without a playbook or `llm` option). Caller turns are kept
   * in the history (for a later `history`/LLM) but never answered. Default true.
   */
  respond?: boolean;
}

// ------------------------------------------------------------------------------------------------ outputs

/** Commands of ws-call-api.md §3, as the runner issues them (it always queues behind what is playing). */
export type RunnerCommand =
  | {
      command: "tts";
      text: string;
      playId: string;
      streaming?: boolean;
      endOfStream?: boolean;
      interruptible: boolean;
      queue: boolean;
    }
  | { command: "play"; url: string; playId: string; interruptible: boolean; queue: boolean }
  | { command: "interrupt"; graceful: boolean }
  | {
      command: "hangup";
      /** The hangup reason of the `hangup` event (§4): `agent`, or `maxFollowUp` when follow-ups ran out. */
      reason: "agent" | "maxFollowUp";
      initiator: "agent";
      /** Free text (e.g. `<hangup reason="…"/>`), reported as `hangup.detail`. */
      detail?: string;
      /** `sip.hangupHeaders`, rendered with `reason`. */
      headers?: Record<string, string>;
    }
  | { command: "refer"; callee: string }
  | { command: "transfer"; target: string; context?: string; mode: "dialplan" }
  | { command: "dtmf"; digits: string };

export type SceneTrigger = "llm" | "tool" | "dtmf";

/** Events of ws-call-api.md §4 that the runner originates (the call adds `timestamp`/`trackId`). */
export type RunnerEvent =
  | { event: "sceneChange"; from: string; to: string; trigger: SceneTrigger }
  | { event: "collected"; collector: string; var: string; digits: string; valid: boolean; attempt: number }
  | { event: "functionCall"; callId: string; name: string; arguments: string }
  | { event: "functionResult"; callId: string; name: string; ok: boolean; result?: string; durationMs: number }
  | { event: "llmDelta"; playId: string; text: string }
  | { event: "error"; sender: "playbook" | "tool" | "llm"; code: "BAD_REQUEST" | "TOOL_ERROR" | "PROVIDER_ERROR" | "TIMEOUT" | "INTERNAL"; error: string }
  /** Not in the WebSocket vocabulary: for the post-call hook and logs. Internal (`_`) names are not reported. */
  | { event: "variableChanged"; name: string; value: string; source: "set_var" | "collector" | "tool" };

export interface RunnerSink {
  command(command: RunnerCommand): void;
  event(event: RunnerEvent): void;
}

// ------------------------------------------------------------------------------------------------ inputs

/** Call events the runner consumes (mapped by the conversation engine from the call's events). */
export type RunnerInput =
  /** `trackEnd` of an utterance the runner started. `interrupted` with the text the caller heard (barge-in). */
  | { type: "agentSpeechEnded"; playId: string; interrupted?: boolean; heard?: string }
  /** `speaking`: caller speech confirmed. Stops the follow-up timer. */
  | { type: "callerSpeechStarted" }
  /** The caller's turn ended with this final transcript. */
  | { type: "callerTurn"; text: string }
  | { type: "dtmf"; digit: string }
  /** `pause` / `resume` of agent playback: follow-up timers are suspended. */
  | { type: "paused" }
  | { type: "resumed" }
  /** `transfer {state:"failed"}`: the call goes on. */
  | { type: "transferFailed"; reason?: string }
  /** The call is over (any side); same as `stop()`. */
  | { type: "hangup" };

// ------------------------------------------------------------------------------------------------ records

export interface HistoryEntry {
  message: ChatMessage;
  /** Epoch ms when added (the runner's wall clock). */
  at: number;
  /** Assistant text cut by a barge-in. */
  interrupted?: boolean;
  /** Tool messages: the tool's name. */
  name?: string;
}

export interface TransferRecord {
  mode: "refer" | "dialplan";
  target: string;
  context?: string;
  trigger: "llm" | "tool" | "dtmf";
  at: number;
}

/** What the post-call hook needs from the runner. */
export interface RunnerSnapshot {
  /** Scenes entered, in order (the initial one first; repeats kept). */
  scenes: string[];
  lastScene: string;
  /** Runtime variables (set_var, collectors, tool setVars); internal names left out. */
  variables: Record<string, string>;
  /** Collector results by variable name (valid ones only). */
  collected: Record<string, string>;
  transfers: TransferRecord[];
  history: HistoryEntry[];
  followUps: number;
}
