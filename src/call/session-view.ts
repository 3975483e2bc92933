/**
 * What a call looks like from outside (ws-call-api.md): the REST list and detail views, and the outcome the
 * post-call hook reports. Pure functions of the call's public state (CallView) and the time.
 */
import { hookHistory } from "./hook-history.js";
import type { Config } from "../config.js";
import type { CallOutcome, HookTarget } from "../playbook/posthook/summary.js";
import type { Playbook } from "../playbook/types.js";
import type { HangupInitiator } from "../pipeline/conversation.js";
import type { CallView, HangupInfo, NegotiatedMedia, WireEvent } from "./session-types.js";

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
/** Variables whose names look like secrets are masked in the detail view. */
const SECRET_KEY = /(token|secret|password|key)/i;

/** GET /api/calls: one line per call. */
export function callSummary(c: CallView, nowMs: number): Record<string, unknown> {
  return {
    id: c.id,
    callType: c.callType,
    direction: c.direction,
    state: c.state,
    caller: c.caller,
    callee: c.callee,
    ...(c.playbook ? { playbook: c.playbook.name } : {}),
    ...(c.scene !== undefined ? { scene: c.scene } : {}),
    createdAt: iso(c.createdAt),
    ...(c.answeredAt !== undefined ? { answeredAt: iso(c.answeredAt) } : {}),
    ...(c.endedAt !== undefined ? { endedAt: iso(c.endedAt) } : {}),
    durationMs: c.answeredAt === undefined ? 0 : Math.max(0, (c.endedAt ?? nowMs) - c.answeredAt),
    attached: c.attached,
  };
}

/** GET /api/calls/<id>: the summary plus media, times, turns, speaking state and (on request) variables. */
export function callDetail(c: CallView, nowMs: number, includeVariables: boolean): Record<string, unknown> {
  const variables = Object.fromEntries(Object.entries(c.variables).map(([k, v]) => [k, SECRET_KEY.test(k) ? "***" : v]));
  return {
    ...callSummary(c, nowMs),
    pipeline: c.playbook ? c.playbook.pipeline : c.conversation ? "serial" : "none",
    ...(c.media ? { media: { leg: c.media.leg, codec: c.media.codec, sampleRate: c.media.sampleRate } } : {}),
    times: {
      createdAt: iso(c.createdAt),
      ...(c.ringingAt !== undefined ? { ringingAt: iso(c.ringingAt) } : {}),
      ...(c.answeredAt !== undefined ? { answeredAt: iso(c.answeredAt) } : {}),
      ...(c.firstAudioAt !== undefined ? { firstAudioAt: iso(c.firstAudioAt) } : {}),
      ...(c.endedAt !== undefined ? { endedAt: iso(c.endedAt) } : {}),
    },
    turns: c.turns,
    ...(c.lastTurn ? { lastTurn: pick(c.lastTurn, ["eouMs", "asrMs", "llmTtftMs", "ttsTtfbMs", "firstAudioMs"]) } : {}),
    speaking: { agent: c.speaking.agent, caller: c.speaking.caller, ...(c.speaking.playId !== undefined ? { playId: c.speaking.playId } : {}) },
    ...(includeVariables ? { variables } : {}),
    ...(c.hangupInfo ? { hangup: c.hangupInfo } : {}),
    ...(c.recording ? { recording: c.recording } : {}),
  };
}

/** The one `hangup` event (ws-call-api.md §4), once endedAt is set. Variables starting with `_` stay private. */
export function hangupEvent(c: CallView, end: { reason: string; initiator: HangupInitiator; detail?: string | undefined }, durationMs: number): Omit<WireEvent, "timestamp"> {
  const extra = Object.fromEntries(Object.entries(c.variables).filter(([k]) => !k.startsWith("_")));
  return {
    event: "hangup",
    trackId: c.id,
    reason: end.reason,
    ...(end.detail !== undefined ? { detail: end.detail } : {}),
    initiator: end.initiator,
    startTime: iso(c.createdAt),
    ...(c.ringingAt !== undefined ? { ringingTime: iso(c.ringingAt) } : {}),
    ...(c.answeredAt !== undefined ? { answerTime: iso(c.answeredAt) } : {}),
    hangupTime: iso(c.endedAt),
    durationMs,
    ...(c.caller !== "" ? { from: { number: c.caller } } : {}),
    ...(c.callee !== "" ? { to: { number: c.callee } } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

/** The post-call hook's facts of an ended call (hangupInfo and endedAt are set by then). */
export function callOutcome(c: CallView): CallOutcome {
  const snap = c.conversation?.snapshot();
  const runner = snap?.runner;
  const info = c.hangupInfo as HangupInfo;
  return {
    callId: c.id,
    callType: c.callType,
    direction: c.direction,
    caller: c.caller,
    callee: c.callee,
    playbook: c.playbook?.name ?? "",
    scenes: runner?.scenes ?? [],
    lastScene: runner?.lastScene ?? null,
    startedAt: iso(c.createdAt) as string,
    answeredAt: iso(c.answeredAt) ?? null,
    endedAt: iso(c.endedAt) as string,
    hangupReason: info.reason,
    hangupInitiator: info.initiator,
    hangupDetail: info.detail ?? null,
    history: hookHistory(runner?.history ?? []),
    variables: runner?.variables ?? { ...c.variables },
    collected: runner?.collected ?? {},
    transfers: runner?.transfers ?? [],
    recording: c.recording ? { path: c.recording.path, durationMs: 0 } : null,
    metrics: {
      turns: c.turns,
      bargeIns: snap?.interruptions.bargeIns ?? 0,
      falseInterruptions: snap?.interruptions.falseInterruptions ?? 0,
    },
  };
}

/** Where the post-call hook goes: the playbook's `posthook` over `[posthook]`; undefined when neither names a URL. */
export function hookTarget(playbook: Playbook | undefined, cfg: Config["posthook"]): HookTarget | undefined {
  const section = playbook?.settings.posthook;
  const url = section?.url ?? cfg.url;
  if (url === "" || url === undefined) return undefined;
  return {
    url,
    method: section?.method ?? "POST",
    headers: section?.headers ?? {},
    timeoutMs: section?.timeoutMs ?? cfg.timeout_ms,
    summary: section?.summary,
    summaryModel: section?.summaryModel,
    includeHistory: section?.includeHistory ?? true,
    includeVariables: section?.includeVariables ?? true,
  };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

/** The `answer` event's `media` (ws-call-api §4): the negotiated formats both ways, the ptime. */
export function wireMedia(m: NegotiatedMedia): Record<string, unknown> {
  return { codec: m.codec, sampleRate: m.sampleRate, outputCodec: m.outputCodec ?? m.codec, outputSampleRate: m.outputSampleRate ?? m.sampleRate, ptime: m.ptime ?? 20 };
}
