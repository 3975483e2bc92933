/**
 * Post-call hooks: the payload of playbook.md §6 and its summary. The summary request is the conversation
 * followed by one instruction, made with the configured LLM (non-streaming use of the chat stream), 30 s at
 * most. A failed summary never stops the hook: `summary` is then null and `summaryError` says why.
 */
import type { ChatMessage, LlmProvider } from "../../providers/types.js";
import type { NewHook } from "./delivery.js";
import type { HookEntry } from "./spool.js";
import { deadline } from "../../util/deadline.js";

export const SUMMARY_INSTRUCTIONS: Readonly<Record<"short" | "detailed" | "intent" | "json", string>> = {
  short: "Summarise this phone call in at most two sentences.",
  detailed:
    "Summarise this phone call in detail: what the caller asked for, what the agent answered, any decisions taken, and any follow-up actions.",
  intent: "In one or two sentences, state what the caller wanted and whether it was resolved.",
  json:
    "Reply with only a JSON object with these keys: `intent` (string), `keyPoints` (array of strings), `sentiment` (`positive`, `neutral` or `negative`), `resolved` (boolean), `followUp` (string or null).",
};

export const SUMMARY_TIMEOUT_MS = 30_000;

export interface HistoryItem {
  role: "user" | "assistant" | "tool";
  content: string;
  name?: string;
  timestamp?: string;
  interrupted?: boolean;
}

/** What the summariser needs, kept in the spool entry so a restart can summarise again. */
export interface PendingSummary {
  /** `short`, `detailed`, `intent`, `json`, or a custom prompt already rendered from its template. */
  kind: string;
  model?: string | undefined;
  history: HistoryItem[];
}

export interface SummaryResult {
  summary: unknown;
  summaryError: string | null;
}

/** The transcript as the model reads it: one line per turn, tool results marked as such. */
function transcript(history: readonly HistoryItem[]): string {
  return history
    .map((h) => {
      const who = h.role === "user" ? "Caller" : h.role === "assistant" ? "Agent" : `Tool ${h.name ?? ""}`.trim();
      return `${who}: ${h.content}${h.interrupted ? " [interrupted]" : ""}`;
    })
    .join("\n");
}

/** Asks the LLM for the summary of one call. Never throws. */
export async function summariseCall(llm: LlmProvider, pending: PendingSummary, signal?: AbortSignal): Promise<SummaryResult> {
  const instruction = SUMMARY_INSTRUCTIONS[pending.kind as keyof typeof SUMMARY_INSTRUCTIONS] ?? pending.kind;
  const messages: ChatMessage[] = [
    { role: "system", content: "You summarise phone calls between a caller and a voice agent." },
    { role: "user", content: `The call:\n${transcript(pending.history) || "(nothing was said)"}` },
    { role: "user", content: instruction },
  ];
  const limit = deadline(SUMMARY_TIMEOUT_MS, signal);
  let text = "";
  try {
    for await (const event of llm.chat({ messages, signal: limit.signal, timeoutMs: SUMMARY_TIMEOUT_MS })) {
      if (event.type === "text") text += event.delta;
    }
  } catch (err) {
    const e = err as Error;
    return { summary: null, summaryError: e.name === "TimeoutError" || limit.timedOut ? "summary timed out after 30 s" : `summary failed: ${e.message}` };
  } finally {
    limit.clear();
  }
  text = text.trim();
  if (text === "") return { summary: null, summaryError: "the model returned an empty summary" };
  if (pending.kind !== "json") return { summary: text, summaryError: null };
  // Models like to wrap JSON in a code fence; the object inside is what the receiver wants.
  const unfenced = text.replace(/^```(?:json)?\s*/i, "").replace(/\s*```$/, "");
  try {
    const parsed: unknown = JSON.parse(unfenced);
    return { summary: parsed, summaryError: null };
  } catch {
    return { summary: text, summaryError: null };
  }
}

/** The §6 payload fields the call knows at hangup (everything but the delivery id and the summary). */
export interface CallOutcome {
  callId: string;
  callType: string;
  direction: "inbound" | "outbound";
  caller: string;
  callee: string;
  playbook: string;
  scenes: string[];
  lastScene: string | null;
  startedAt: string;
  answeredAt: string | null;
  endedAt: string;
  hangupReason: string;
  hangupInitiator: string;
  hangupDetail: string | null;
  history: HistoryItem[];
  variables: Record<string, unknown>;
  collected: Record<string, string>;
  transfers: unknown[];
  recording: { path: string; durationMs: number } | null;
  metrics: Record<string, number>;
}

export interface HookTarget {
  url: string;
  method: "POST" | "PUT";
  headers: Record<string, string>;
  timeoutMs: number;
  /** Summary kind or rendered custom prompt; undefined = no summary. */
  summary?: string | undefined;
  summaryModel?: string | undefined;
  includeHistory: boolean;
  includeVariables: boolean;
}

/** Builds the hook to spool: the payload without summary, and what the summariser needs. */
export function buildHook(call: CallOutcome, target: HookTarget, now: Date = new Date()): NewHook {
  const durationMs = Math.max(0, Date.parse(call.endedAt) - Date.parse(call.answeredAt ?? call.startedAt));
  const payload: Record<string, unknown> = {
    event: "call.ended",
    callId: call.callId,
    sessionId: call.callId,
    callType: call.callType,
    direction: call.direction,
    caller: call.caller,
    callee: call.callee,
    playbook: call.playbook,
    scenes: call.scenes,
    lastScene: call.lastScene,
    startedAt: call.startedAt,
    answeredAt: call.answeredAt,
    endedAt: call.endedAt,
    durationMs,
    hangupReason: call.hangupReason,
    hangupInitiator: call.hangupInitiator,
    hangupDetail: call.hangupDetail,
    summaryKind: target.summary === undefined ? null : target.summary in SUMMARY_INSTRUCTIONS ? target.summary : "custom",
    summary: null,
    summaryError: null,
    collected: call.collected,
    transfers: call.transfers,
    recording: call.recording,
    metrics: call.metrics,
    timestamp: now.toISOString(),
  };
  if (target.includeHistory) payload.history = call.history;
  if (target.includeVariables) payload.variables = call.variables;
  const pending: PendingSummary | undefined =
    target.summary === undefined ? undefined : { kind: target.summary, model: target.summaryModel, history: call.history };
  return {
    url: target.url,
    method: target.method,
    headers: target.headers,
    timeoutMs: target.timeoutMs,
    payload,
    pendingSummary: pending as Record<string, unknown> | undefined,
  };
}

/** The `summarise` callback of PosthookDelivery, given a way to get the LLM for a model name. */
export function makeSummariser(llmFor: (model: string | undefined) => Promise<LlmProvider>): (entry: HookEntry) => Promise<SummaryResult> {
  return async (entry) => {
    const pending = entry.pendingSummary as PendingSummary | undefined;
    if (!pending) return { summary: null, summaryError: null };
    try {
      return await summariseCall(await llmFor(pending.model), pending);
    } catch (err) {
      return { summary: null, summaryError: `summary failed: ${(err as Error).message}` };
    }
  };
}
