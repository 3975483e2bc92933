/**
 * ElevenLabs TTS over the stream-input WebSocket (protocol.ts): text in as it is written, audio out as it is
 * generated, in 20 ms frames at the requested rate. One socket per `synthesize` call, so a barge-in cancels
 * exactly the utterance it interrupts by closing its socket.
 *
 * Why `ws` and not @elevenlabs/elevenlabs-js: the SDK's WebSocket helpers cover realtime speech-to-text and
 * agents; text-to-speech in it is HTTP only (whole text up front). Streaming input needs the socket itself,
 * and `ws` is already the transport of the OpenAI Realtime provider.
 *
 * Failures before any audio was delivered (connection errors, 429/5xx on the handshake, a missing first audio)
 * are retried up to `maxRetries` times with the same text; after the first audio a failure is final.
 */
import type { AudioFrame } from "../../audio/index.js";
import { FrameOutput } from "../pcm.js";
import { sleep } from "../retry.js";
import type { TtsCapabilities, TtsOptions, TtsProvider } from "../types.js";
import { clampSpeed, ELEVENLABS_PROVIDER, formatForRate, rateOfFormat, type OutputFormat, type VoiceSettings } from "./protocol.js";
import { streamOnce } from "./socket.js";
import { TextFeed } from "./text-feed.js";

export interface ElevenLabsTtsOptions {
  apiKey: string;
  /** wss://api.elevenlabs.io, or a local server in tests. */
  baseUrl: string;
  voiceId: string;
  modelId: string;
  /** Rate of the frames `synthesize` yields. */
  sampleRate: number;
  /** Default: the PCM format of `sampleRate` (or the nearest rate above it). */
  outputFormat?: OutputFormat | undefined;
  /** Handshake, first audio, and gaps once the text has ended. */
  timeoutMs: number;
  maxRetries: number;
  /** 0.7–1.2 (wider values are clamped). */
  speed?: number | undefined;
  languageCode?: string | undefined;
  /** First retry delay (doubles per retry). */
  retryDelayMs?: number | undefined;
  /** Seconds the server waits for more text before it gives up (default 60; ElevenLabs allows 5–180). */
  inactivityTimeoutS?: number | undefined;
}

/** Seconds the server keeps waiting for more text; long enough for a slow LLM, ElevenLabs allows up to 180. */
const INACTIVITY_TIMEOUT_S = 60;

/** Voices of OpenAI's speech API (the `[defaults.tts]` voice is `alloy`): not ElevenLabs voice ids. */
const OPENAI_VOICES = new Set(["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"]);

/** The voice id to use: `voice` unless it is empty or one of OpenAI's voice names. */
export function elevenLabsVoice(voice: string | undefined, fallback: string): string {
  return voice !== undefined && voice !== "" && !OPENAI_VOICES.has(voice) ? voice : fallback;
}

export class ElevenLabsTts implements TtsProvider {
  readonly name = ELEVENLABS_PROVIDER;
  readonly capabilities: TtsCapabilities;
  readonly sampleRate: number;
  readonly outputFormat: OutputFormat;

  constructor(private readonly options: ElevenLabsTtsOptions) {
    this.sampleRate = options.sampleRate;
    this.outputFormat = options.outputFormat ?? formatForRate(options.sampleRate);
    this.capabilities = { streaming: true, nativeSampleRate: rateOfFormat(this.outputFormat), sampleRates: [8000, 16000, 24000, 48000], cancellable: true };
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    return this.run(text, options);
  }

  private async *run(text: string | AsyncIterable<string>, options: TtsOptions): AsyncGenerator<AudioFrame> {
    const o = this.options;
    const signal = options.signal ?? new AbortController().signal;
    const feed = new TextFeed(text);
    const output = new FrameOutput(this.sampleRate);
    const rate = rateOfFormat(this.outputFormat);
    const endpoint = {
      baseUrl: o.baseUrl,
      voiceId: elevenLabsVoice(options.voice, o.voiceId),
      modelId: o.modelId,
      outputFormat: this.outputFormat,
      inactivityTimeoutS: o.inactivityTimeoutS ?? INACTIVITY_TIMEOUT_S,
      languageCode: o.languageCode,
    };
    const voiceSettings: VoiceSettings | undefined = o.speed !== undefined && o.speed !== 1 ? { stability: 0.5, similarity_boost: 0.75, speed: clampSpeed(o.speed) } : undefined;
    let delivered = false;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          for await (const pcm of streamOnce({ endpoint, apiKey: o.apiKey, voiceSettings, timeoutMs: o.timeoutMs, feed, signal })) {
            delivered = true;
            yield* output.push(pcm, rate);
          }
          yield* output.end();
          return;
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          const retryable = (err as { retryable?: unknown }).retryable === true;
          if (delivered || !retryable || attempt >= o.maxRetries) throw err;
        }
        const base = (o.retryDelayMs ?? 250) * 2 ** attempt;
        await sleep(Math.min(4000, base) * (0.8 + 0.4 * Math.random()), signal);
      }
    } finally {
      feed.close();
    }
  }
}
