/**
 * A `tts` section (over `[defaults.tts]`) and `[providers.elevenlabs]` to an ElevenLabsTts. The defaults of
 * `[defaults.tts]` are OpenAI's (voice alloy, model gpt-4o-mini-tts), so a voice only counts when it is not an
 * OpenAI voice name and a model only when it is an ElevenLabs one (`eleven_*`); otherwise the
 * `[providers.elevenlabs]` voice_id / model_id apply.
 */
import type { Config } from "../../config/schema.js";
import type { TtsSection } from "../../config/sections.js";
import { AppError } from "../../errors.js";
import { ElevenLabsTts, elevenLabsVoice } from "./tts.js";

export function resolveElevenLabsTts(t: TtsSection, config: Config, sampleRate: number, retry: { maxRetries?: number | undefined } = {}): ElevenLabsTts {
  const e = config.providers.elevenlabs;
  const apiKey = t.apiKey || e.api_key;
  if (apiKey === "") {
    throw new AppError("CONFIG_INVALID", "tts provider elevenlabs needs an API key: set ELEVENLABS_API_KEY (or [providers.elevenlabs] api_key, or tts.apiKey)", {
      details: { key: "tts.apiKey" },
    });
  }
  return new ElevenLabsTts({
    apiKey,
    baseUrl: t.baseUrl || e.base_url,
    voiceId: elevenLabsVoice(t.voice, e.voice_id),
    modelId: t.model?.startsWith("eleven_") ? t.model : e.model_id,
    sampleRate,
    outputFormat: e.output_format === "auto" ? undefined : e.output_format,
    timeoutMs: e.timeout_ms,
    maxRetries: retry.maxRetries ?? e.max_retries,
    speed: t.speed,
  });
}
