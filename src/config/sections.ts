/**
 * The pipeline sections shared by playbook front matter and the config's `[defaults.*]` tables
 * (playbook.md §2.1–2.7, config.md §2.9). Every field is optional here: a playbook section is laid over the
 * config default of the same name, which is laid over the built-in default. Names are camelCase; the
 * documented aliases are mapped to them by `ALIASES` before validation.
 */
import { z } from "zod";
import { expects } from "./issues.js";

const url = z.string().refine((s) => s === "" || URL.canParse(s), { message: "must be a URL" });
const ms = expects(z.number().int().min(0), "an integer number of milliseconds (≥ 0)");
const unit = expects(z.number().min(0).max(1), "a number from 0 to 1");

/**
 * A JavaScript regular expression given as a string. The issue carries `params.code = "regex"` so that playbook
 * diagnostics classify it (playbook.md §8); the message quotes the engine's reason.
 */
export const regexString = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (err) {
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, "");
    ctx.addIssue({ code: "custom", message: `is not a valid regular expression (${reason})`, input: source, params: { code: "regex" } });
  }
});

/** The built-in tools of playbook.md §4.3, by the names `llm.builtinTools` uses. */
export const BUILTIN_TOOLS = [
  "hangup_call",
  "transfer_call",
  "goto_scene",
  "play_audio",
  "set_variable",
  "collect_digits",
  "http_request",
  "send_dtmf",
] as const;

export const ASR_PROVIDERS = ["openai", "deepgram", "pocketsphinx", "scripted", "auto"] as const;
export const TTS_PROVIDERS = ["openai", "deepgram", "elevenlabs", "flite", "espeak", "scripted", "auto"] as const;
export const LLM_PROVIDERS = ["openai", "azure", "scripted", "auto"] as const;
export const REALTIME_PROVIDERS = ["openai", "azure"] as const;
export const VAD_TYPES = ["tinysilero", "silero", "onnx", "webrtc", "none"] as const;
export const INTERRUPTION_STRATEGIES = ["both", "vad", "asr", "none"] as const;

const vendor = { baseUrl: url, apiKey: z.string() };

export const asrSection = z.strictObject({
  provider: z.enum(ASR_PROVIDERS),
  model: z.string(),
  language: z.string(),
  prompt: z.string(),
  streaming: z.boolean(),
  script: z.array(z.string()),
  ...vendor,
}).partial();

export const ttsSection = z.strictObject({
  provider: z.enum(TTS_PROVIDERS),
  model: z.string(),
  voice: z.string(),
  speed: z.number().min(0.25).max(4),
  instructions: z.string(),
  gainDb: z.number().min(-20).max(20),
  sampleRate: z.union([z.literal(8000), z.literal(16000), z.literal(24000), z.literal(48000)]),
  cache: z.boolean(),
  ...vendor,
}).partial();

export const llmSection = z.strictObject({
  provider: z.enum(LLM_PROVIDERS),
  model: z.string(),
  apiVersion: z.string(),
  temperature: z.number().min(0).max(2),
  maxTokens: z.number().int().min(1),
  prompt: z.string(),
  greeting: z.string(),
  toolMode: z.enum(["native", "tags", "both"]),
  builtinTools: z.union([z.array(z.enum(BUILTIN_TOOLS)), z.literal(false)]),
  maxToolRounds: z.number().int().min(1).max(10),
  historyLimit: z.number().int().min(4),
  features: z.array(z.preprocess((v) => (v === "context_repair" ? "contextRepair" : v), z.enum(["contextRepair"]))),
  repairWindowMs: ms,
  timeoutMs: ms,
  rules: z.array(z.strictObject({ match: regexString, reply: z.string() })),
  fallback: z.string(),
  ...vendor,
}).partial();

export const turnDetection = z.strictObject({
  type: z.enum(["server_vad", "semantic_vad", "local"]),
  threshold: unit,
  prefixPaddingMs: ms,
  silenceDurationMs: ms,
  idleTimeoutMs: ms,
  eagerness: z.enum(["low", "medium", "high", "auto"]),
}).partial();

export const realtimeSection = z.strictObject({
  provider: z.enum(REALTIME_PROVIDERS),
  model: z.string(),
  voice: z.string(),
  instructions: z.string(),
  turnDetection,
  inputTranscription: expects(
    z.union([z.strictObject({ model: z.string(), language: z.string().optional() }), z.literal(false)]),
    "{model, language} or false",
  ),
  audioFormat: z.enum(["auto", "pcm16", "pcmu", "pcma"]),
  protocol: z.enum(["ga", "beta"]),
  apiVersion: z.string(),
  ...vendor,
}).partial();

export const vadSection = z.strictObject({
  type: z.enum(VAD_TYPES),
  threshold: unit,
  negThreshold: unit,
  minSpeechMs: ms,
  minSilenceMs: ms,
  speechPadMs: ms,
  prePaddingMs: ms,
  maxSpeechMs: ms,
  silenceTimeoutMs: ms,
  webrtcMode: z.number().int().min(0).max(3),
}).partial();

export const interruptionSection = z.strictObject({
  strategy: z.enum(INTERRUPTION_STRATEGIES),
  minSpeechMs: ms,
  minWords: z.number().int().min(0),
  ignoreFirstMs: ms,
  fillerWordFilter: z.boolean(),
  fillerWords: expects(
    z.union([z.array(z.string()), z.record(z.string(), z.array(z.string()))]),
    "a list of words, or a map of language to a list of words",
  ),
  fadeOutMs: z.number().int().min(0).max(2000),
  resumeOnFalse: z.boolean(),
}).partial();

export type AsrSection = z.infer<typeof asrSection>;
export type TtsSection = z.infer<typeof ttsSection>;
export type LlmSection = z.infer<typeof llmSection>;
export type RealtimeSection = z.infer<typeof realtimeSection>;
export type VadSection = z.infer<typeof vadSection>;
export type InterruptionSection = z.infer<typeof interruptionSection>;

/** An alias key, the canonical key it stands for, and how its value converts (e.g. seconds to ms). */
export interface Alias {
  alias: string;
  canonical: string;
  convert?: (value: unknown) => unknown;
}

const vendorAliases: Alias[] = [
  { alias: "endpoint", canonical: "baseUrl" },
  { alias: "secretKey", canonical: "apiKey" },
];
const secondsToMs = (v: unknown) => (typeof v === "number" ? Math.round(v * 1000) : v);

/** Aliases per section (playbook.md §2.15). `vad.type: silero` is a value alias, handled by the VAD factory. */
export const ALIASES: Record<"asr" | "tts" | "llm" | "realtime" | "vad" | "interruption", Alias[]> = {
  asr: vendorAliases,
  tts: [...vendorAliases, { alias: "speaker", canonical: "voice" }, { alias: "samplerate", canonical: "sampleRate" }],
  llm: [...vendorAliases, { alias: "deployment", canonical: "model" }],
  realtime: vendorAliases,
  vad: [
    { alias: "provider", canonical: "type" },
    { alias: "voiceThreshold", canonical: "threshold" },
    { alias: "speechPadding", canonical: "minSpeechMs" },
    { alias: "silencePadding", canonical: "minSilenceMs" },
    { alias: "maxBufferDurationSecs", canonical: "maxSpeechMs", convert: secondsToMs },
  ],
  interruption: [{ alias: "volumeFadeMs", canonical: "fadeOutMs" }],
};

export interface AliasConflict {
  alias: string;
  canonical: string;
}

/**
 * Renames alias keys of one object to their canonical names, in place of a copy.
 * Returns the conflicts (both names set) and the renames done, so errors can point at the key the user wrote.
 */
export function applyAliases(
  obj: Record<string, unknown>,
  aliases: readonly Alias[],
): { value: Record<string, unknown>; conflicts: AliasConflict[]; renamed: Map<string, string> } {
  const value: Record<string, unknown> = { ...obj };
  const conflicts: AliasConflict[] = [];
  const renamed = new Map<string, string>();
  for (const { alias, canonical, convert } of aliases) {
    if (!(alias in value)) continue;
    if (canonical in obj) {
      conflicts.push({ alias, canonical });
      delete value[alias];
      continue;
    }
    // Two aliases of one key (recorder `file` and `path`): the second conflicts with the first.
    const earlier = renamed.get(canonical);
    if (earlier !== undefined) {
      conflicts.push({ alias, canonical: earlier });
      delete value[alias];
      continue;
    }
    value[canonical] = convert ? convert(value[alias]) : value[alias];
    delete value[alias];
    renamed.set(canonical, alias);
  }
  return { value, conflicts, renamed };
}
