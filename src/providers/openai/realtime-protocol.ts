/**
 * The OpenAI Realtime wire protocol (media-protocols.md §5.4), pure functions only: the WebSocket URL and
 * headers for OpenAI and Azure, the `session.update` body in the GA or beta shape, and server events (GA and
 * beta names both accepted) normalised to RealtimeEvent. No sockets here, so every shape is unit-testable.
 */
import type { RealtimeAudioFormat, RealtimeEvent, RealtimeSessionConfig, RealtimeTurnDetection, Usage } from "../types.js";

export type RealtimeProtocol = "ga" | "beta";

export interface RealtimeEndpoint {
  flavor: "openai" | "azure";
  /** openai: the API base URL (…/v1); azure: the resource endpoint. */
  baseUrl: string;
  apiKey: string;
  /** The model (azure: the deployment name). */
  model: string;
  protocol: RealtimeProtocol;
  organization?: string | undefined;
  project?: string | undefined;
  /** azure beta only (the GA path carries no version). */
  apiVersion?: string | undefined;
}

/** http(s) → ws(s); a ws(s) URL stays as it is. */
function toWs(url: string): string {
  return url.replace(/^http(s?):\/\//i, (_m, s: string) => `ws${s}://`);
}

const trim = (url: string): string => url.replace(/\/+$/, "");

/** The socket URL (§5.4): `…/v1/realtime?model=` for OpenAI; Azure GA `/openai/v1/realtime?model=<deployment>`, beta `/openai/realtime?api-version&deployment`. */
export function realtimeUrl(e: RealtimeEndpoint): string {
  const model = encodeURIComponent(e.model);
  if (e.flavor === "azure") {
    const base = toWs(trim(e.baseUrl));
    if (e.protocol === "beta") return `${base}/openai/realtime?api-version=${encodeURIComponent(e.apiVersion ?? "2024-10-01-preview")}&deployment=${model}`;
    return `${base}/openai/v1/realtime?model=${model}`;
  }
  return `${toWs(trim(e.baseUrl))}/realtime?model=${model}`;
}

/** Handshake headers: `Authorization: Bearer` (OpenAI) or `api-key` (Azure), plus `OpenAI-Beta` for the beta protocol. */
export function realtimeHeaders(e: RealtimeEndpoint): Record<string, string> {
  const h: Record<string, string> = e.flavor === "azure" ? { "api-key": e.apiKey } : { Authorization: `Bearer ${e.apiKey}` };
  if (e.flavor === "openai" && e.organization) h["OpenAI-Organization"] = e.organization;
  if (e.flavor === "openai" && e.project) h["OpenAI-Project"] = e.project;
  if (e.protocol === "beta") h["OpenAI-Beta"] = "realtime=v1";
  return h;
}

/** PCM in Realtime is 24 kHz only; G.711 is 8 kHz. */
export const rateOf = (format: RealtimeAudioFormat): number => (format === "pcm16" ? 24000 : 8000);

const GA_FORMAT: Record<RealtimeAudioFormat, Record<string, unknown>> = {
  pcm16: { type: "audio/pcm", rate: 24000 },
  pcmu: { type: "audio/pcmu" },
  pcma: { type: "audio/pcma" },
};
const BETA_FORMAT: Record<RealtimeAudioFormat, string> = { pcm16: "pcm16", pcmu: "g711_ulaw", pcma: "g711_alaw" };

/** `turnDetection` → `turn_detection` (`local` → null: the controller commits turns itself). */
export function turnDetectionJson(td: RealtimeTurnDetection | undefined): Record<string, unknown> | null {
  const t = td ?? { type: "server_vad" as const };
  if (t.type === "local") return null;
  const out: Record<string, unknown> = { type: t.type };
  if (t.type === "server_vad") {
    out.threshold = t.threshold ?? 0.5;
    out.prefix_padding_ms = t.prefixPaddingMs ?? 300;
    out.silence_duration_ms = t.silenceDurationMs ?? 500;
    if (t.idleTimeoutMs !== undefined) out.idle_timeout_ms = t.idleTimeoutMs;
  } else {
    out.eagerness = t.eagerness ?? "auto";
  }
  out.create_response = t.createResponse ?? true;
  out.interrupt_response = t.interruptResponse ?? true;
  return out;
}

function toolsJson(config: RealtimeSessionConfig): Record<string, unknown> {
  if (config.tools === undefined) return {};
  return {
    tools: config.tools.map((t) => ({ type: "function", name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters })),
    tool_choice: config.toolChoice ?? "auto",
  };
}

/**
 * The `session` object of a `session.update`. Only the fields set in `config` are sent, so a scene switch
 * (instructions + tools) leaves the audio set-up alone; GA always carries `type: "realtime"`.
 */
export function sessionJson(config: RealtimeSessionConfig, protocol: RealtimeProtocol, model?: string): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  const transcription = config.inputTranscription === undefined ? undefined : config.inputTranscription === false ? null : { model: config.inputTranscription.model, ...(config.inputTranscription.language ? { language: config.inputTranscription.language } : {}) };
  if (protocol === "ga") {
    s.type = "realtime";
    if (model !== undefined) s.model = model;
    if (config.instructions !== undefined) s.instructions = config.instructions;
    if (config.audioFormat !== undefined || config.voice !== undefined || config.turnDetection !== undefined || transcription !== undefined) {
      s.output_modalities = ["audio"];
      const input: Record<string, unknown> = {};
      const output: Record<string, unknown> = {};
      if (config.audioFormat !== undefined) {
        input.format = GA_FORMAT[config.audioFormat];
        output.format = GA_FORMAT[config.audioFormat];
      }
      if (transcription !== undefined) input.transcription = transcription;
      if (config.turnDetection !== undefined) input.turn_detection = turnDetectionJson(config.turnDetection);
      if (config.voice !== undefined) output.voice = config.voice;
      s.audio = { input, output };
    }
  } else {
    if (config.instructions !== undefined) s.instructions = config.instructions;
    if (config.audioFormat !== undefined || config.voice !== undefined) s.modalities = ["text", "audio"];
    if (config.voice !== undefined) s.voice = config.voice;
    if (config.audioFormat !== undefined) {
      s.input_audio_format = BETA_FORMAT[config.audioFormat];
      s.output_audio_format = BETA_FORMAT[config.audioFormat];
    }
    if (transcription !== undefined) s.input_audio_transcription = transcription;
    if (config.turnDetection !== undefined) s.turn_detection = turnDetectionJson(config.turnDetection);
  }
  return { ...s, ...toolsJson(config) };
}

/** `conversation.item.create` of a text message; assistant text is `output_text` (GA) / `text` (beta). */
export function messageItem(role: "user" | "assistant" | "system", text: string, protocol: RealtimeProtocol): Record<string, unknown> {
  const type = role === "assistant" ? (protocol === "ga" ? "output_text" : "text") : "input_text";
  return { type: "conversation.item.create", item: { type: "message", role, content: [{ type, text }] } };
}

/** Beta event names → GA names, so the parser has one table. */
const BETA_NAMES: Record<string, string> = {
  "response.audio.delta": "response.output_audio.delta",
  "response.audio.done": "response.output_audio.done",
  "response.audio_transcript.delta": "response.output_audio_transcript.delta",
  "response.audio_transcript.done": "response.output_audio_transcript.done",
};

type Json = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** Per-connection state the parser keeps: transcripts so far, function names by call id, audio ms per item. */
export class ServerEventParser {
  private readonly inputText = new Map<string, string>();
  private readonly outputText = new Map<string, string>();
  private readonly callNames = new Map<string, string>();

  constructor(private readonly decodeAudio: (base64: string, responseId: string, itemId: string) => RealtimeEvent | undefined) {}

  /** The normalised event(s) of one server message; unknown and ignorable events give none. */
  parse(raw: Json): RealtimeEvent | undefined {
    const type = BETA_NAMES[str(raw.type)] ?? str(raw.type);
    switch (type) {
      case "session.created":
        return { type: "ready" };
      case "session.updated":
        return { type: "session_updated" };
      case "input_audio_buffer.speech_started":
        return { type: "speech_started", audioStartMs: num(raw.audio_start_ms), itemId: str(raw.item_id) || undefined };
      case "input_audio_buffer.speech_stopped":
        return { type: "speech_stopped", audioEndMs: num(raw.audio_end_ms), itemId: str(raw.item_id) || undefined };
      case "conversation.item.input_audio_transcription.delta": {
        const itemId = str(raw.item_id);
        const text = (this.inputText.get(itemId) ?? "") + str(raw.delta);
        this.inputText.set(itemId, text);
        return { type: "input_transcript", itemId, delta: str(raw.delta), final: false, text };
      }
      case "conversation.item.input_audio_transcription.completed": {
        const itemId = str(raw.item_id);
        this.inputText.delete(itemId);
        return { type: "input_transcript", itemId, final: true, text: str(raw.transcript) };
      }
      case "conversation.item.input_audio_transcription.failed": {
        const err = (raw.error ?? {}) as Json;
        return { type: "error", errorType: str(err.type) || "transcription_failed", code: str(err.code) || undefined, message: str(err.message) || "input transcription failed" };
      }
      case "response.created":
        return { type: "response_started", responseId: str((raw.response as Json | undefined)?.id) };
      case "response.output_item.added": {
        const item = (raw.item ?? {}) as Json;
        if (item.type === "function_call") this.callNames.set(str(item.call_id), str(item.name));
        return { type: "output_item", responseId: str(raw.response_id), itemId: str(item.id), itemType: str(item.type) };
      }
      case "response.output_audio.delta":
        return this.decodeAudio(str(raw.delta), str(raw.response_id), str(raw.item_id));
      case "response.output_audio.done":
        return { type: "audio_done", responseId: str(raw.response_id), itemId: str(raw.item_id) };
      case "response.output_audio_transcript.delta": {
        const itemId = str(raw.item_id);
        const text = (this.outputText.get(itemId) ?? "") + str(raw.delta);
        this.outputText.set(itemId, text);
        return { type: "transcript", responseId: str(raw.response_id), itemId, delta: str(raw.delta), final: false, text };
      }
      case "response.output_audio_transcript.done": {
        const itemId = str(raw.item_id);
        const text = typeof raw.transcript === "string" ? raw.transcript : (this.outputText.get(itemId) ?? "");
        this.outputText.delete(itemId);
        return { type: "transcript", responseId: str(raw.response_id), itemId, final: true, text };
      }
      case "response.function_call_arguments.done": {
        const callId = str(raw.call_id);
        const name = str(raw.name) || (this.callNames.get(callId) ?? "");
        this.callNames.delete(callId);
        return { type: "function_call", responseId: str(raw.response_id), itemId: str(raw.item_id) || undefined, callId, name, arguments: str(raw.arguments) };
      }
      case "response.done": {
        const r = (raw.response ?? {}) as Json;
        const status = str(r.status);
        const u = r.usage as Json | undefined;
        const usage: Usage | undefined = u
          ? { promptTokens: num(u.input_tokens) ?? 0, completionTokens: num(u.output_tokens) ?? 0, totalTokens: num(u.total_tokens) ?? 0 }
          : undefined;
        return {
          type: "response_done",
          responseId: str(r.id),
          status: status === "cancelled" || status === "incomplete" || status === "failed" ? status : "completed",
          usage,
        };
      }
      case "error": {
        const err = (raw.error ?? {}) as Json;
        return { type: "error", errorType: str(err.type) || "error", code: str(err.code) || undefined, message: str(err.message) || "realtime error" };
      }
      default:
        return undefined;
    }
  }
}
