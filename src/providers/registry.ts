/**
 * Provider names (playbook.md §7) to providers, with the `auto` rules of config.md §2.9:
 * - asr: openai when an OpenAI key is configured, else pocketsphinx;
 * - tts: openai with a key, else flite when installed, else espeak (espeak-ng);
 * - llm: openai with a key, else scripted (which echoes the caller).
 * A playbook section is laid over `[defaults.<kind>]`. An unknown name, or a vendor without its key, is a
 * CONFIG_INVALID error naming what to set, raised when the playbook is loaded, never a silently dead pipeline.
 */
import type { Config } from "../config/schema.js";
import type { AsrSection, LlmSection, RealtimeSection, TtsSection } from "../config/sections.js";
import { AppError } from "../errors.js";
import { binaryExists as probeBinary, pathExists } from "./local/process.js";
import { POCKETSPHINX_BINARY, PocketsphinxAsr } from "./local/pocketsphinx.js";
import { EspeakTts, FliteTts } from "./local/tts.js";
import { DeepgramAsr } from "./deepgram/asr.js";
import { deepgramEndpoint, deepgramModel } from "./deepgram/resolve.js";
import { DeepgramTts, isAuraModel } from "./deepgram/tts.js";
import { resolveElevenLabsTts } from "./elevenlabs/resolve.js";
import { OpenAiAsr } from "./openai/asr.js";
import { createOpenAiClient, OPENAI_DEFAULT_BASE_URL, type OpenAiEndpoint } from "./openai/client.js";
import { OpenAiLlm } from "./openai/llm.js";
import { OpenAiRealtime } from "./openai/realtime.js";
import { OpenAiTts } from "./openai/tts.js";
import type { RetryPolicy } from "./retry.js";
import { ScriptedAsr, ScriptedLlm, ScriptedTts } from "./scripted.js";
import type { AsrProvider, LlmProvider, ProviderKind, RealtimeProvider, TtsProvider } from "./types.js";

/** The names each kind accepts (besides `auto` where listed). */
export const PROVIDER_NAMES = {
  asr: ["openai", "deepgram", "pocketsphinx", "scripted", "auto"],
  tts: ["openai", "deepgram", "elevenlabs", "flite", "espeak", "scripted", "auto"],
  llm: ["openai", "azure", "scripted", "auto"],
  realtime: ["openai", "azure"],
} as const satisfies Record<ProviderKind, readonly string[]>;

type Sections = { asr: AsrSection; tts: TtsSection; llm: LlmSection; realtime: RealtimeSection };
type Providers = { asr: AsrProvider; tts: TtsProvider; llm: LlmProvider; realtime: RealtimeProvider };

export interface ResolveOptions {
  /** Whether a local binary can be started (default: spawn it once and cache the answer). */
  binaryExists?: ((binary: string) => Promise<boolean>) | undefined;
  /** Output rate for TTS when the section does not set one (e.g. the call leg's rate). Default 16000. */
  sampleRate?: number | undefined;
  /** Realtime: time allowed for the WebSocket handshake (default `[providers.openai] timeout_ms`). */
  connectTimeoutMs?: number | undefined;
  /** Overrides of the retry policy (tests shorten the backoff). */
  retry?: Partial<RetryPolicy> | undefined;
}

/** Voices of OpenAI's speech API: meaningless to a local engine, which then uses its configured voice. */
const OPENAI_VOICES = new Set(["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"]);

const LLM_TIMEOUT_MS = 15000;

function configError(message: string, key: string, extra: Record<string, unknown> = {}): AppError {
  return new AppError("CONFIG_INVALID", message, { details: { key, ...extra } });
}

/** The section with `[defaults.<kind>]` under it. */
function merged<K extends ProviderKind>(kind: K, section: Sections[K] | undefined, config: Config): Sections[K] {
  return { ...(config.defaults[kind] as Sections[K]), ...(section ?? {}) };
}

function openAiKey(section: { apiKey?: string | undefined }, config: Config): string {
  return section.apiKey || config.providers.openai.api_key;
}

/**
 * The concrete provider name a section resolves to (`auto` decided), after checking that the name is known.
 */
export async function resolveName<K extends ProviderKind>(kind: K, section: Sections[K] | undefined, config: Config, options: ResolveOptions = {}): Promise<string> {
  const s = merged(kind, section, config) as { provider?: string; apiKey?: string };
  const name = s.provider ?? (kind === "realtime" ? undefined : "auto");
  const available: readonly string[] = PROVIDER_NAMES[kind];
  if (name === undefined) throw configError(`${kind}.provider is required (one of: ${available.join(", ")})`, `${kind}.provider`, { available });
  if (!available.includes(name)) {
    throw configError(`unknown ${kind} provider "${name}"; available: ${available.join(", ")}`, `${kind}.provider`, { provider: name, available });
  }
  if (name !== "auto") return name;
  if (openAiKey(s, config) !== "") return "openai";
  if (kind === "asr") return "pocketsphinx";
  if (kind === "llm") return "scripted";
  const exists = options.binaryExists ?? ((b: string) => probeBinary(b));
  return (await exists(config.providers.flite.binary)) ? "flite" : "espeak";
}

function openAiEndpoint(kind: ProviderKind, name: string, section: { baseUrl?: string | undefined; apiKey?: string | undefined; apiVersion?: string | undefined }, config: Config): OpenAiEndpoint {
  if (name === "azure") {
    const az = config.providers.azure;
    const endpoint = section.baseUrl || az.endpoint;
    const apiKey = section.apiKey || az.api_key;
    if (endpoint === "") {
      throw configError(`${kind} provider azure needs an endpoint: set AZURE_OPENAI_ENDPOINT (or [providers.azure] endpoint, or ${kind}.baseUrl)`, `${kind}.baseUrl`);
    }
    if (apiKey === "") {
      throw configError(`${kind} provider azure needs an API key: set AZURE_OPENAI_API_KEY (or [providers.azure] api_key, or ${kind}.apiKey)`, `${kind}.apiKey`);
    }
    return { flavor: "azure", baseUrl: endpoint, apiKey, apiVersion: section.apiVersion || az.api_version };
  }
  const oa = config.providers.openai;
  const apiKey = section.apiKey || oa.api_key;
  if (apiKey === "") {
    throw configError(`${kind} provider openai needs an API key: set OPENAI_API_KEY (or [providers.openai] api_key, or ${kind}.apiKey)`, `${kind}.apiKey`);
  }
  return { flavor: "openai", baseUrl: section.baseUrl || oa.base_url || OPENAI_DEFAULT_BASE_URL, apiKey, organization: oa.organization, project: oa.project };
}

function policy(config: Config, timeoutMs: number, options: ResolveOptions): RetryPolicy {
  return { maxRetries: config.providers.openai.max_retries, timeoutMs, ...options.retry };
}

/** Creates the provider of `kind` for a (playbook or defaults) section. */
export async function resolveProvider<K extends ProviderKind>(kind: K, section: Sections[K] | undefined, config: Config, options: ResolveOptions = {}): Promise<Providers[K]> {
  const resolvers: { [P in ProviderKind]: (section: Sections[P] | undefined, config: Config, options: ResolveOptions) => Promise<Providers[P]> } = {
    asr: resolveAsr,
    tts: resolveTts,
    llm: resolveLlm,
    realtime: resolveRealtime,
  };
  return resolvers[kind](section, config, options);
}

export async function resolveAsr(section: AsrSection | undefined, config: Config, options: ResolveOptions = {}): Promise<AsrProvider> {
  const kind = "asr";
  const name = await resolveName(kind, section, config, options);
  const s = merged(kind, section, config);
  const timeout = config.providers.openai.timeout_ms;
  const a = s;
  if (name === "scripted") return new ScriptedAsr({ script: a.script ?? [] });
  if (name === "pocketsphinx") {
    const p = config.providers.pocketsphinx;
    return new PocketsphinxAsr({ hmm: p.hmm, lm: p.lm, dict: p.dict });
  }
  if (name === "deepgram") {
    const d = config.providers.deepgram;
    return new DeepgramAsr({ ...deepgramEndpoint("asr", a, config), model: deepgramModel(section?.model, a.model, d.asr_model), language: a.language, endpointingMs: d.endpointing_ms });
  }
  const endpoint = openAiEndpoint(kind, name, a, config);
  return new OpenAiAsr({
    client: createOpenAiClient(endpoint),
    provider: name,
    baseUrl: endpoint.baseUrl,
    policy: policy(config, timeout, options),
    model: a.model ?? "gpt-4o-mini-transcribe",
    language: a.language,
    prompt: a.prompt,
    streaming: a.streaming,
  });
}

export async function resolveTts(section: TtsSection | undefined, config: Config, options: ResolveOptions = {}): Promise<TtsProvider> {
  const kind = "tts";
  const name = await resolveName(kind, section, config, options);
  const s = merged(kind, section, config);
  const timeout = config.providers.openai.timeout_ms;
  const t = s;
  const sampleRate = t.sampleRate ?? options.sampleRate ?? 16000;
  const localVoice = t.voice !== undefined && !OPENAI_VOICES.has(t.voice) ? t.voice : undefined;
  if (name === "scripted") return new ScriptedTts({ sampleRate });
  if (name === "espeak") {
    const e = config.providers.espeak;
    return new EspeakTts({ binary: e.binary, voice: localVoice ?? e.voice, rateWpm: e.rate_wpm, speed: t.speed, sampleRate });
  }
  if (name === "flite") {
    const f = config.providers.flite;
    return new FliteTts({ binary: f.binary, voice: localVoice ?? f.voice, speed: t.speed, sampleRate });
  }
  if (name === "deepgram") {
    const d = config.providers.deepgram;
    const endpoint = deepgramEndpoint("tts", t, config);
    // Aura's model is the voice: the first aura-* name of voice/model wins (OpenAI defaults like alloy do not).
    const model = [t.voice, t.model].find(isAuraModel) ?? d.tts_model;
    return new DeepgramTts({ ...endpoint, model, sampleRate, speed: t.speed, policy: { maxRetries: d.max_retries, timeoutMs: d.timeout_ms, ...options.retry } });
  }
  if (name === "elevenlabs") return resolveElevenLabsTts(t, config, sampleRate, options.retry);
  const endpoint = openAiEndpoint(kind, name, t, config);
  return new OpenAiTts({
    client: createOpenAiClient(endpoint),
    provider: name,
    baseUrl: endpoint.baseUrl,
    policy: policy(config, timeout, options),
    model: t.model ?? "gpt-4o-mini-tts",
    voice: t.voice ?? "alloy",
    speed: t.speed,
    instructions: t.instructions,
    sampleRate,
  });
}

export async function resolveLlm(section: LlmSection | undefined, config: Config, options: ResolveOptions = {}): Promise<LlmProvider> {
  const kind = "llm";
  const name = await resolveName(kind, section, config, options);
  const s = merged(kind, section, config);
  const l = s;
  if (name === "scripted") return new ScriptedLlm({ rules: l.rules, fallback: l.fallback });
  const endpoint = openAiEndpoint(kind, name, l, config);
  return new OpenAiLlm({
    client: createOpenAiClient(endpoint),
    provider: name,
    baseUrl: endpoint.baseUrl,
    policy: policy(config, l.timeoutMs ?? LLM_TIMEOUT_MS, options),
    model: l.model ?? "gpt-4o-mini",
    temperature: l.temperature,
    maxTokens: l.maxTokens,
  });
}

export async function resolveRealtime(section: RealtimeSection | undefined, config: Config, options: ResolveOptions = {}): Promise<RealtimeProvider> {
  const kind = "realtime";
  const name = await resolveName(kind, section, config, options);
  const s = merged(kind, section, config);
  // Validates the name and the key now, so a playbook fails at load rather than at the first call.
  const endpoint = openAiEndpoint(kind, name, s, config);
  return new OpenAiRealtime({
    flavor: endpoint.flavor,
    baseUrl: endpoint.baseUrl,
    apiKey: endpoint.apiKey,
    model: s.model ?? "gpt-realtime",
    protocol: s.protocol ?? "ga",
    organization: endpoint.organization,
    project: endpoint.project,
    apiVersion: endpoint.apiVersion,
    connectTimeoutMs: options.connectTimeoutMs ?? config.providers.openai.timeout_ms,
  });
}

/**
 * Start-up check (config.md §2.10): the local engines the configuration can use, with a warning for each
 * missing binary or model path. `names` adds providers named by playbooks (e.g. `["tts:espeak"]`).
 */
export async function checkProviders(config: Config, names: readonly `${ProviderKind}:${string}`[] = [], options: ResolveOptions = {}): Promise<string[]> {
  const exists = options.binaryExists ?? ((b: string) => probeBinary(b));
  const used = new Set<string>(names);
  const warnings: string[] = [];
  for (const kind of ["asr", "tts", "llm"] as const) {
    try {
      used.add(`${kind}:${await resolveName(kind, undefined, config, { ...options, binaryExists: exists })}`);
    } catch (err) {
      used.add(`${kind}:error`);
      if (err instanceof AppError) warnings.push(`[defaults.${kind}]: ${err.message}`);
    }
  }
  if (used.has("tts:espeak") && !(await exists(config.providers.espeak.binary))) {
    warnings.push(`espeak-ng not found: "${config.providers.espeak.binary}" (install the Debian package espeak-ng, or set [providers.espeak] binary)`);
  }
  if (used.has("tts:flite") && !(await exists(config.providers.flite.binary))) {
    warnings.push(`flite not found: "${config.providers.flite.binary}" (install the Debian package flite, or set [providers.flite] binary)`);
  }
  if (used.has("asr:pocketsphinx")) {
    if (!(await exists(POCKETSPHINX_BINARY))) warnings.push(`${POCKETSPHINX_BINARY} not found (install the Debian package pocketsphinx)`);
    const p = config.providers.pocketsphinx;
    for (const [key, path] of [["hmm", p.hmm], ["lm", p.lm], ["dict", p.dict]] as const) {
      if (!(await pathExists(path))) warnings.push(`pocketsphinx ${key} not found: ${path} (install pocketsphinx-en-us, or set [providers.pocketsphinx] ${key})`);
    }
  }
  return warnings;
}
