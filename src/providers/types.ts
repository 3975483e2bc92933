/**
 * The provider seams (DESIGN.md, "Providers"): ASR, TTS, LLM and Realtime. The pipeline sees only these
 * interfaces; concrete vendors are created by the registry (registry.ts) from playbook sections and config.
 *
 * Conventions shared by every provider:
 * - Streams are `AsyncIterable`s; every call takes an `AbortSignal`. Aborting ends the iteration by throwing the
 *   signal's reason, releases the network request or child process, and never leaves work running.
 * - Failures are `AppError`s: `PROVIDER_ERROR` (details.provider, details.status when HTTP) or `TIMEOUT`
 *   (no first byte within the configured time).
 * - Each provider declares its capabilities, so the pipeline never guesses (e.g. whether ASR streams deltas).
 */
import type { AudioFrame } from "../audio/index.js";
import type { AppError } from "../errors.js";

export type ProviderKind = "asr" | "tts" | "llm" | "realtime";

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

// ------------------------------------------------------------------------------------------------ ASR

export interface AsrCapabilities {
  /** True when partial results (deltas) arrive before the final text of an utterance. */
  readonly streaming: boolean;
  /** True when the engine works on whole, endpointed utterances (the pipeline's VAD decides the end). */
  readonly endpointed: boolean;
  /** Rates accepted without resampling; other rates are resampled by the session to the first one. */
  readonly sampleRates: readonly number[];
  readonly languages: "any" | readonly string[];
}

/** One caller turn of audio, mono PCM16. */
export interface AsrUtterance {
  pcm: Int16Array;
  sampleRate: number;
}

export type AsrResult =
  /** `text` is everything recognised so far in this utterance; `delta` what this event added. */
  | { type: "partial"; utterance: number; text: string; delta: string }
  /** One per utterance, possibly with empty text (nothing recognised)... */
  | { type: "final"; utterance: number; text: string }
  /** ...or, when recognition of that utterance failed, this instead (the session goes on with the next one). */
  | { type: "error"; utterance: number; error: AppError };

/** A streaming session: frames in, results out. Utterances are numbered from 0 in the order they were ended. */
export interface AsrSession {
  /** Adds caller audio to the current utterance. Frames may be of any rate; they are converted as needed. */
  write(frame: AudioFrame): void;
  /** Ends the current utterance: it is recognised and its results follow on `results`. */
  endUtterance(): void;
  /** Drops the audio of the current utterance without recognising it (e.g. a false start). */
  discardUtterance(): void;
  /** Partial and final results, in utterance order. Ends after `close()` once pending work finished. */
  readonly results: AsyncIterable<AsrResult>;
  /** No more utterances. Pending recognition completes unless the session's signal aborts. */
  close(): void;
}

export interface AsrProvider {
  readonly name: string;
  readonly capabilities: AsrCapabilities;
  /** Recognises one endpointed utterance, yielding partials (if streaming) then one final. */
  transcribe(utterance: AsrUtterance, options?: CallOptions): AsyncIterable<AsrResult>;
  /** A session over `transcribe` (or the engine's own streaming) for a call. */
  session(options?: CallOptions): AsrSession;
}

// ------------------------------------------------------------------------------------------------ TTS

export interface TtsCapabilities {
  /** True when audio starts before the whole sentence is synthesised (network streaming). */
  readonly streaming: boolean;
  /** The rate the engine produces natively (before the edge resampling to `sampleRate`). */
  readonly nativeSampleRate: number;
  /** Output rates this provider can be asked for (all of them are reached by resampling when needed). */
  readonly sampleRates: readonly number[];
  readonly cancellable: true;
}

export interface TtsOptions extends CallOptions {
  /** Overrides the provider's voice for this request. */
  voice?: string | undefined;
}

export interface TtsProvider {
  readonly name: string;
  readonly capabilities: TtsCapabilities;
  /** The rate of every frame `synthesize` yields. */
  readonly sampleRate: number;
  /**
   * Speaks a sentence, or a stream of text deltas (cut into sentences as they complete). Yields mono frames of
   * 20 ms at `sampleRate` (the last one of a sentence may be shorter), timestamps counting from 0 per call.
   * Aborting stops the request or kills the engine process at once.
   */
  synthesize(text: string | AsyncIterable<string>, options?: TtsOptions): AsyncIterable<AudioFrame>;
}

// ------------------------------------------------------------------------------------------------ LLM

export interface ToolCallRef {
  id: string;
  name: string;
  /** The arguments as the model wrote them (a JSON string). */
  arguments: string;
}

export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string | null; toolCalls?: ToolCallRef[] | undefined }
  | { role: "tool"; toolCallId: string; content: string };

export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ChatRequest extends CallOptions {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[] | undefined;
  toolChoice?: "auto" | "none" | "required" | undefined;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
  /** Time to the first streamed token, overriding the provider default (playbook `llm.timeoutMs`). */
  timeoutMs?: number | undefined;
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "aborted" | "unknown";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type LlmEvent =
  | { type: "text"; delta: string }
  /**
   * A complete tool call, emitted when the model finished it. `arguments` is the parsed JSON object, or
   * undefined with `error: "invalid arguments"` when the model's text is not a JSON object.
   */
  | {
      type: "tool_call";
      id: string;
      name: string;
      arguments: Record<string, unknown> | undefined;
      argumentsText: string;
      error?: "invalid arguments";
    }
  | { type: "done"; finishReason: FinishReason; usage?: Usage | undefined };

export interface LlmCapabilities {
  readonly streaming: true;
  readonly tools: boolean;
}

export interface LlmProvider {
  readonly name: string;
  readonly model: string;
  readonly capabilities: LlmCapabilities;
  /** Streams one reply: text deltas, tool calls (complete), then exactly one `done`. */
  chat(request: ChatRequest): AsyncIterable<LlmEvent>;
}

// ------------------------------------------------------------------------------------------------ Realtime

export type RealtimeAudioFormat = "pcm16" | "pcmu" | "pcma";

export interface RealtimeTurnDetection {
  type: "server_vad" | "semantic_vad" | "local";
  threshold?: number | undefined;
  prefixPaddingMs?: number | undefined;
  silenceDurationMs?: number | undefined;
  idleTimeoutMs?: number | undefined;
  eagerness?: "low" | "medium" | "high" | "auto" | undefined;
  /** false: the caller's speech does not cancel the model's response (barge-in off). Default true. */
  interruptResponse?: boolean | undefined;
  /** false: the end of the caller's turn commits the audio but does not start a response. Default true. */
  createResponse?: boolean | undefined;
}

export interface RealtimeSessionConfig {
  instructions?: string | undefined;
  voice?: string | undefined;
  /** pcm16 = 24 kHz PCM16 in both directions; pcmu/pcma = 8 kHz G.711. */
  audioFormat?: RealtimeAudioFormat | undefined;
  turnDetection?: RealtimeTurnDetection | undefined;
  inputTranscription?: { model: string; language?: string | undefined } | false | undefined;
  tools?: readonly ToolDefinition[] | undefined;
  toolChoice?: "auto" | "none" | "required" | undefined;
}

/** Server events, normalised over the GA and beta protocols (media-protocols.md §5.4). */
export type RealtimeEvent =
  | { type: "ready" }
  | { type: "session_updated" }
  | { type: "speech_started"; audioStartMs?: number | undefined; itemId?: string | undefined }
  | { type: "speech_stopped"; audioEndMs?: number | undefined; itemId?: string | undefined }
  | { type: "input_transcript"; itemId: string; delta?: string | undefined; final: boolean; text: string }
  | { type: "response_started"; responseId: string }
  | { type: "output_item"; responseId: string; itemId: string; itemType: string }
  /** Agent audio in the session format (PCM16 24 kHz decoded to samples, or G.711 bytes decoded to PCM16 8 kHz). */
  | { type: "audio"; responseId: string; itemId: string; frame: AudioFrame }
  | { type: "audio_done"; responseId: string; itemId: string }
  | { type: "transcript"; responseId: string; itemId: string; delta?: string | undefined; final: boolean; text: string }
  | { type: "function_call"; responseId: string; itemId?: string | undefined; callId: string; name: string; arguments: string }
  | { type: "response_done"; responseId: string; status: "completed" | "cancelled" | "incomplete" | "failed"; usage?: Usage | undefined }
  | { type: "error"; errorType: string; code?: string | undefined; message: string }
  | { type: "closed"; code: number; reason: string };

export interface RealtimeSession {
  /** Server events until the socket closes (the last event is `closed`). */
  readonly events: AsyncIterable<RealtimeEvent>;
  /** Caller audio in the session's rate (24 kHz for pcm16, 8 kHz for G.711); resampled by the caller. */
  sendAudio(frame: AudioFrame): void;
  /** Local turn detection: commit the buffered caller audio (then usually `createResponse`). */
  commitAudio(): void;
  clearAudio(): void;
  createResponse(options?: { instructions?: string | undefined }): void;
  cancelResponse(): void;
  /** Cuts an assistant audio item to what was played (`audioEndMs` is clamped to the audio received). */
  truncate(itemId: string, audioEndMs: number): void;
  sendFunctionOutput(callId: string, output: string): void;
  /** A text message item (DTMF, `history` commands, the history replayed after a reconnect). */
  addMessage(role: "user" | "assistant" | "system", text: string): void;
  updateSession(config: RealtimeSessionConfig): void;
  close(): Promise<void>;
}

export interface RealtimeCapabilities {
  readonly sampleRates: readonly number[];
  readonly audioFormats: readonly RealtimeAudioFormat[];
  readonly protocols: readonly ("ga" | "beta")[];
}

export interface RealtimeProvider {
  readonly name: string;
  readonly model: string;
  readonly capabilities: RealtimeCapabilities;
  connect(config: RealtimeSessionConfig, options?: CallOptions): Promise<RealtimeSession>;
}
