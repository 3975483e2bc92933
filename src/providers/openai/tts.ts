/**
 * Speech (media-protocols.md §5.3): one `POST /audio/speech` per sentence with `response_format: pcm`; the body
 * streams raw PCM16 LE 24 kHz mono, which is cut into samples (an odd byte carried over), resampled to the
 * requested rate and framed. `instructions` is omitted for tts-1 / tts-1-hd, which reject it.
 */
import type { SpeechCreateParams } from "openai/resources/audio/speech";
import type { AudioFrame } from "../../audio/index.js";
import { PcmBytes } from "../pcm.js";
import { withRetries } from "../retry.js";
import { synthesizeBySentence, type EngineChunk } from "../text.js";
import type { TtsCapabilities, TtsOptions, TtsProvider } from "../types.js";
import { classifyOpenAiError, type OpenAiProviderOptions } from "./client.js";

export const OPENAI_TTS_RATE = 24000;

export interface OpenAiTtsOptions extends OpenAiProviderOptions {
  model: string;
  voice: string;
  speed?: number | undefined;
  instructions?: string | undefined;
  /** Output rate of the frames. */
  sampleRate: number;
}

export function supportsInstructions(model: string): boolean {
  return !/^tts-1(-hd)?$/.test(model);
}

export class OpenAiTts implements TtsProvider {
  readonly name: string;
  readonly capabilities: TtsCapabilities = { streaming: true, nativeSampleRate: OPENAI_TTS_RATE, sampleRates: [8000, 16000, 24000, 48000], cancellable: true };
  readonly sampleRate: number;

  constructor(private readonly options: OpenAiTtsOptions) {
    this.name = options.provider;
    this.sampleRate = options.sampleRate;
  }

  /** The request body for one sentence (exposed for tests). */
  body(input: string, voice?: string): SpeechCreateParams {
    const o = this.options;
    const body: SpeechCreateParams = { model: o.model, input, voice: voice ?? o.voice, response_format: "pcm" };
    if (o.speed !== undefined) body.speed = o.speed;
    if (o.instructions && supportsInstructions(o.model)) body.instructions = o.instructions;
    return body;
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    return synthesizeBySentence(text, this.sampleRate, options.signal, (sentence, signal) => this.speak(sentence, options.voice, signal));
  }

  private async *speak(sentence: string, voice: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<EngineChunk> {
    const o = this.options;
    const body = this.body(sentence, voice);
    const bytes = withRetries<Uint8Array>(
      this.name,
      o.policy,
      signal,
      async function* ({ signal: attemptSignal }) {
        const response = await o.client.audio.speech.create(body, { signal: attemptSignal, maxRetries: 0 });
        if (!response.body) return;
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          if (chunk.length > 0) yield chunk;
        }
      },
      (err) => classifyOpenAiError(this.name, err),
    );
    const pcm = new PcmBytes();
    for await (const chunk of bytes) {
      const samples = pcm.push(chunk);
      if (samples.length > 0) yield { pcm: samples, sampleRate: OPENAI_TTS_RATE };
    }
  }
}
