/**
 * Scripted providers, deterministic and offline, for tests and keyless demos (playbook.md §2.1–2.3):
 * - ASR returns the `script` entries in order, one per utterance, then "";
 * - TTS is a 440 Hz tone, 60 ms per character;
 * - LLM answers with the first `rules` entry whose case-insensitive regex matches the caller's last text
 *   (`{{ text }}` is that text), else `fallback` ("You said: {{ text }}"). For tests it can also play a script
 *   of turns, including tool calls.
 */
import type { AudioFrame } from "../audio/index.js";
import { AppError } from "../errors.js";
import { EndpointedAsrSession } from "./asr-session.js";
import { fillText, parseArguments, synthesizeBySentence } from "./text.js";
import type {
  AsrCapabilities,
  AsrProvider,
  AsrResult,
  AsrSession,
  AsrUtterance,
  CallOptions,
  ChatRequest,
  LlmCapabilities,
  LlmEvent,
  LlmProvider,
  TtsCapabilities,
  TtsOptions,
  TtsProvider,
} from "./types.js";

// ------------------------------------------------------------------------------------------------ ASR

export interface ScriptedAsrOptions {
  script: readonly string[];
  /** Emit word-by-word partials before each final (to exercise streaming ASR paths). */
  partials?: boolean | undefined;
}

export class ScriptedAsr implements AsrProvider {
  readonly name = "scripted";
  readonly capabilities: AsrCapabilities;
  private index = 0;

  constructor(private readonly options: ScriptedAsrOptions) {
    this.capabilities = { streaming: options.partials === true, endpointed: true, sampleRates: [8000, 16000, 24000, 48000], languages: "any" };
  }

  /** Each session replays the script from its start. */
  session(options: CallOptions = {}): AsrSession {
    return new EndpointedAsrSession(new ScriptedAsr(this.options), options);
  }

  async *transcribe(_utterance: AsrUtterance, options: CallOptions = {}): AsyncGenerator<AsrResult> {
    options.signal?.throwIfAborted();
    const text = this.options.script[this.index++] ?? "";
    if (this.options.partials) {
      let sofar = "";
      for (const word of text.split(/(?<=\s)/)) {
        if (word === "") continue;
        sofar += word;
        yield { type: "partial", utterance: 0, text: sofar, delta: word };
      }
    }
    yield { type: "final", utterance: 0, text };
  }
}

// ------------------------------------------------------------------------------------------------ TTS

export const SCRIPTED_TONE_HZ = 440;
export const SCRIPTED_MS_PER_CHAR = 60;

export class ScriptedTts implements TtsProvider {
  readonly name = "scripted";
  readonly capabilities: TtsCapabilities;
  readonly sampleRate: number;

  constructor(options: { sampleRate: number }) {
    this.sampleRate = options.sampleRate;
    this.capabilities = { streaming: true, nativeSampleRate: options.sampleRate, sampleRates: [8000, 16000, 24000, 48000], cancellable: true };
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    const rate = this.sampleRate;
    return synthesizeBySentence(text, rate, options.signal, async function* (sentence) {
      yield { pcm: tone([...sentence].length * SCRIPTED_MS_PER_CHAR, rate), sampleRate: rate };
    });
  }
}

/** A 440 Hz sine of `ms` at a quarter of full scale. */
export function tone(ms: number, sampleRate: number, hz = SCRIPTED_TONE_HZ): Int16Array {
  const n = Math.round((ms * sampleRate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8192 * Math.sin((2 * Math.PI * hz * i) / sampleRate));
  return out;
}

// ------------------------------------------------------------------------------------------------ LLM

export interface ScriptedRule {
  match: string;
  reply: string;
}

/** One scripted reply (tests): text and/or tool calls. */
export interface ScriptedTurn {
  text?: string | undefined;
  toolCalls?: { name: string; arguments: Record<string, unknown> | string; id?: string | undefined }[] | undefined;
  finishReason?: "stop" | "length" | "tool_calls" | undefined;
}

export interface ScriptedLlmOptions {
  rules?: readonly ScriptedRule[] | undefined;
  fallback?: string | undefined;
  /** Replies played in order before the rules apply (each `chat` call takes the next one). */
  turns?: readonly ScriptedTurn[] | undefined;
  model?: string | undefined;
}

export const SCRIPTED_FALLBACK = "You said: {{ text }}";

export class ScriptedLlm implements LlmProvider {
  readonly name = "scripted";
  readonly model: string;
  readonly capabilities: LlmCapabilities = { streaming: true, tools: true };
  private readonly rules: { re: RegExp; reply: string }[];
  private readonly fallback: string;
  private readonly turns: ScriptedTurn[];
  private calls = 0;

  constructor(options: ScriptedLlmOptions = {}) {
    this.model = options.model ?? "scripted";
    this.fallback = options.fallback ?? SCRIPTED_FALLBACK;
    this.turns = [...(options.turns ?? [])];
    this.rules = (options.rules ?? []).map((r, i) => {
      try {
        return { re: new RegExp(r.match, "i"), reply: r.reply };
      } catch (err) {
        throw new AppError("CONFIG_INVALID", `llm.rules[${i}].match: ${(err as Error).message}`, { cause: err, details: { key: `llm.rules[${i}].match` } });
      }
    });
  }

  /** The reply text for a caller's text, by the rules (no script). */
  reply(text: string): string {
    const rule = this.rules.find((r) => r.re.test(text));
    return fillText(rule ? rule.reply : this.fallback, text);
  }

  async *chat(request: ChatRequest): AsyncGenerator<LlmEvent> {
    const signal = request.signal;
    signal?.throwIfAborted();
    const call = this.calls++;
    const turn = this.turns.shift() ?? this.ruleTurn(request);
    const text = turn.text ?? "";
    // Word-sized deltas, like a real model's stream.
    for (const delta of text.split(/(?<=\s)/)) {
      if (delta === "") continue;
      signal?.throwIfAborted();
      yield { type: "text", delta };
    }
    const toolCalls = turn.toolCalls ?? [];
    for (const [i, tc] of toolCalls.entries()) {
      signal?.throwIfAborted();
      const argumentsText = typeof tc.arguments === "string" ? tc.arguments : JSON.stringify(tc.arguments);
      const parsed = parseArguments(argumentsText);
      const id = tc.id ?? `call_scripted_${call}_${i}`;
      yield parsed === undefined
        ? { type: "tool_call", id, name: tc.name, arguments: undefined, argumentsText, error: "invalid arguments" }
        : { type: "tool_call", id, name: tc.name, arguments: parsed, argumentsText };
    }
    const promptChars = request.messages.reduce((n, m) => n + (m.content?.length ?? 0), 0);
    const completionTokens = Math.ceil(text.length / 4);
    const promptTokens = Math.ceil(promptChars / 4);
    yield {
      type: "done",
      finishReason: turn.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop"),
      usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
    };
  }

  private ruleTurn(request: ChatRequest): ScriptedTurn {
    const last = request.messages.at(-1);
    // After tool results there is no caller text to answer: an empty reply ends the round.
    if (!last || last.role !== "user") return { text: "" };
    return { text: this.reply(last.content) };
  }
}
