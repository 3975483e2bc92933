/**
 * Deepgram Aura TTS (speak v1 REST): one `POST /v1/speak?model=aura-2-…&encoding=linear16&sample_rate=<rate>
 * &container=none` per sentence with `{"text": …}`; the body streams raw PCM16 LE at the rate asked for, so no
 * resampling is needed for 8/16/24/48 kHz. Aborting (barge-in) aborts the fetch, which stops reading the body.
 */
import type { AudioFrame } from "../../audio/index.js";
import { PcmBytes } from "../pcm.js";
import { providerError, withRetries, type Failure, type RetryPolicy } from "../retry.js";
import { synthesizeBySentence, type EngineChunk } from "../text.js";
import type { TtsCapabilities, TtsOptions, TtsProvider } from "../types.js";
import { AppError } from "../../errors.js";
import { authHeaders, deepgramUrl, httpError, type DeepgramEndpoint } from "./protocol.js";

export interface DeepgramTtsOptions extends DeepgramEndpoint {
  /** An Aura model, which is also the voice (`aura-2-thalia-en`). */
  model: string;
  sampleRate: number;
  speed?: number | undefined;
  policy: RetryPolicy;
}

export const DEEPGRAM_TTS_RATES = [8000, 16000, 24000, 32000, 48000] as const;

/** Whether a voice or model name is one of Deepgram's (an OpenAI voice like `alloy` from the defaults is not). */
export function isAuraModel(name: string | undefined): name is string {
  return name !== undefined && /^aura-/.test(name);
}

export class DeepgramTts implements TtsProvider {
  readonly name = "deepgram";
  readonly capabilities: TtsCapabilities;
  readonly sampleRate: number;
  private readonly engineRate: number;

  constructor(private readonly options: DeepgramTtsOptions) {
    this.sampleRate = options.sampleRate;
    this.engineRate = (DEEPGRAM_TTS_RATES as readonly number[]).includes(options.sampleRate) ? options.sampleRate : 24000;
    this.capabilities = { streaming: true, nativeSampleRate: this.engineRate, sampleRates: [8000, 16000, 24000, 48000], cancellable: true };
  }

  /** The request URL for one sentence (exposed for tests). */
  url(voice?: string): string {
    const o = this.options;
    return deepgramUrl(o, "/v1/speak", {
      model: isAuraModel(voice) ? voice : o.model,
      encoding: "linear16",
      sample_rate: this.engineRate,
      container: "none",
      speed: o.speed,
    });
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    return synthesizeBySentence(text, this.sampleRate, options.signal, (sentence, signal) => this.speak(sentence, options.voice, signal));
  }

  private async *speak(sentence: string, voice: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<EngineChunk> {
    const o = this.options;
    const url = this.url(voice);
    const bytes = withRetries<Uint8Array>(
      this.name,
      o.policy,
      signal,
      async function* ({ signal: attemptSignal }) {
        const response = await fetch(url, {
          method: "POST",
          headers: { ...authHeaders(o), "content-type": "application/json" },
          body: JSON.stringify({ text: sentence }),
          signal: attemptSignal,
        });
        if (!response.ok) {
          await response.body?.cancel().catch(() => {});
          throw httpError("tts", response.status, response.headers.get("dg-request-id") ?? undefined);
        }
        if (!response.body) return;
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          if (chunk.length > 0) yield chunk;
        }
      },
      classify,
    );
    const pcm = new PcmBytes();
    for await (const chunk of bytes) {
      const samples = pcm.push(chunk);
      if (samples.length > 0) yield { pcm: samples, sampleRate: this.engineRate };
    }
  }
}

function classify(err: unknown): Failure {
  if (err instanceof AppError) return { error: err, retryable: err.retryable };
  // fetch's network failures (refused, reset) are worth another attempt.
  return { error: providerError("deepgram", "deepgram tts: connection failed", { cause: err }), retryable: true };
}
