/**
 * Offline TTS engines from Debian: espeak-ng and flite. One process per sentence, WAV read from its stdout as it
 * streams, resampled to the requested rate at the edge; the process is killed when the request aborts.
 */
import type { AudioFrame } from "../../audio/index.js";
import { providerError } from "../retry.js";
import { synthesizeBySentence, type EngineChunk } from "../text.js";
import type { TtsCapabilities, TtsOptions, TtsProvider } from "../types.js";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCollect, runStreaming } from "./process.js";
import { WavStream } from "../pcm.js";

export const TTS_SAMPLE_RATES = [8000, 16000, 24000, 48000] as const;

async function* wavChunks(provider: string, binary: string, args: string[], stdin: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<EngineChunk> {
  const wav = new WavStream(binary);
  for await (const bytes of runStreaming(binary, args, { provider, signal, stdin })) {
    let pcm: Int16Array;
    try {
      pcm = wav.push(bytes);
    } catch (err) {
      throw providerError(provider, (err as Error).message, { cause: err, retryable: false });
    }
    if (pcm.length > 0 && wav.format) yield { pcm, sampleRate: wav.format.sampleRate };
  }
}

export interface EspeakOptions {
  binary: string;
  voice: string;
  rateWpm: number;
  /** 0–99, espeak-ng's default is 50. */
  pitch?: number | undefined;
  /** Multiplies `rateWpm` (playbook `tts.speed`). */
  speed?: number | undefined;
  sampleRate: number;
}

export class EspeakTts implements TtsProvider {
  readonly name = "espeak";
  readonly capabilities: TtsCapabilities = { streaming: true, nativeSampleRate: 22050, sampleRates: TTS_SAMPLE_RATES, cancellable: true };
  readonly sampleRate: number;

  constructor(private readonly options: EspeakOptions) {
    this.sampleRate = options.sampleRate;
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    const o = this.options;
    const rate = Math.round(Math.min(500, Math.max(80, o.rateWpm * (o.speed ?? 1))));
    return synthesizeBySentence(text, this.sampleRate, options.signal, (sentence, signal) => {
      const args = ["--stdout", "-v", options.voice ?? o.voice, "-s", String(rate)];
      if (o.pitch !== undefined) args.push("-p", String(Math.round(o.pitch)));
      // Text on stdin, so that a sentence starting with "-" is never taken for an option.
      args.push("--stdin");
      return wavChunks(this.name, o.binary, args, sentence, signal);
    });
  }
}

export interface FliteOptions {
  binary: string;
  /** A built-in voice (slt, rms, awb, kal, kal16) or a path to a .flitevox file. */
  voice: string;
  speed?: number | undefined;
  sampleRate: number;
}

export class FliteTts implements TtsProvider {
  readonly name = "flite";
  readonly capabilities: TtsCapabilities = { streaming: false, nativeSampleRate: 16000, sampleRates: TTS_SAMPLE_RATES, cancellable: true };
  readonly sampleRate: number;

  constructor(private readonly options: FliteOptions) {
    this.sampleRate = options.sampleRate;
  }

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    const o = this.options;
    const provider = this.name;
    return synthesizeBySentence(text, this.sampleRate, options.signal, async function* (sentence, signal) {
      // flite cannot write to a pipe (it opens the output path, and Node's stdio pipes are sockets): a temp file.
      const dir = await mkdtemp(join(tmpdir(), "ac-flite-"));
      try {
        const file = join(dir, "out.wav");
        const args = ["-voice", options.voice ?? o.voice, "-o", file];
        if (o.speed !== undefined && o.speed !== 1) args.push("--setf", `duration_stretch=${(1 / o.speed).toFixed(3)}`);
        // Whatever follows `-t` is text, even when it starts with "-".
        args.push("-t", sentence);
        let stderr = "";
        await runCollect(o.binary, args, { provider, signal, onStderr: (t) => (stderr = t) });
        let bytes: Uint8Array;
        try {
          bytes = await readFile(file, { signal });
        } catch (err) {
          signal?.throwIfAborted();
          // flite exits 0 even when it could not load the voice or write the file.
          throw providerError(provider, `${o.binary} wrote no audio (voice "${options.voice ?? o.voice}"): ${stderr.trim() || "no output"}`, { cause: err, retryable: false });
        }
        const wav = new WavStream(o.binary);
        const pcm = wav.push(bytes);
        if (wav.format) yield { pcm, sampleRate: wav.format.sampleRate };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
}
