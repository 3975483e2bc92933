/** Playbook section + `[providers.deepgram]` -> a Deepgram endpoint, for the registry. */
import type { Config } from "../../config/schema.js";
import { AppError } from "../../errors.js";
import type { DeepgramEndpoint } from "./protocol.js";

export function deepgramEndpoint(kind: "asr" | "tts", section: { baseUrl?: string | undefined; apiKey?: string | undefined }, config: Config): DeepgramEndpoint {
  const d = config.providers.deepgram;
  const apiKey = section.apiKey || d.api_key;
  if (apiKey === "") {
    throw new AppError("CONFIG_INVALID", `${kind} provider deepgram needs an API key: set DEEPGRAM_API_KEY (or [providers.deepgram] api_key, or ${kind}.apiKey)`, {
      details: { key: `${kind}.apiKey` },
    });
  }
  return { baseUrl: section.baseUrl || d.base_url, apiKey, timeoutMs: d.timeout_ms };
}

/**
 * The ASR model: the playbook's, else `[defaults.asr] model` unless it is an OpenAI model (the built-in default is
 * `gpt-4o-mini-transcribe`), else `[providers.deepgram] asr_model`.
 */
export function deepgramModel(playbookModel: string | undefined, mergedModel: string | undefined, fallback: string): string {
  if (playbookModel) return playbookModel;
  if (mergedModel && !/^(gpt-|whisper-1$)/.test(mergedModel)) return mergedModel;
  return fallback;
}
