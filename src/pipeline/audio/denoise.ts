/**
 * Denoise processor: RNNoise on the caller's audio before VAD and ASR (playbook.md §2.12 `denoise`).
 *
 * RNNoise runs at 48 kHz on 480-sample frames: each caller frame is resampled up to 48 kHz (src/audio
 * Resampler), re-chunked to 480 samples (Rechunker), denoised, resampled back down, and read out of a FIFO into
 * the frame in place. The FIFO starts with 10 ms of silence, which bounds the chunking delay, so every frame
 * can be filled whatever its size: the processor adds a constant latency of `latencyMs` (10 ms plus the two
 * resampler delays, about 13 ms at 16 kHz). No allocation per frame once the first frame has sized the buffers.
 */

import type { AudioFrame } from "../../audio/index.js";
import { Rechunker, Resampler } from "../../audio/index.js";
import type { AudioProcessor, AudioProcessorFactory, ProcessorContext } from "./processors.js";
import type { RnnoiseState } from "./rnnoise.js";
import { RNNOISE_FRAME, RNNOISE_RATE, loadRnnoise } from "./rnnoise.js";

export interface DenoiseOptions {
  /** Override the RNNoise .wasm file (default: the one from the npm package). */
  wasmPath?: string;
}

export class DenoiseProcessor implements AudioProcessor {
  readonly name = "denoise";
  /** Constant delay the processor adds, in ms. */
  readonly latencyMs: number;
  /** RNNoise's voice probability for the last 10 ms it processed. */
  lastVoiceProbability = 0;

  private readonly up: Resampler | undefined;
  private readonly down: Resampler | undefined;
  private readonly chunker: Rechunker;
  private readonly denoised = new Int16Array(RNNOISE_FRAME);
  private fifo: Int16Array;
  private head = 0;
  private count = 0;
  private underruns = 0;

  private constructor(
    readonly sampleRate: number,
    private readonly state: RnnoiseState,
  ) {
    if (sampleRate !== RNNOISE_RATE) {
      this.up = new Resampler(sampleRate, RNNOISE_RATE);
      this.down = new Resampler(RNNOISE_RATE, sampleRate);
    }
    this.chunker = new Rechunker({ sampleRate: RNNOISE_RATE, frameMs: 10 }, (chunk) => this.denoise(chunk));
    const prime = Math.ceil(sampleRate / 100) + 2;
    this.fifo = new Int16Array(4 * prime + 2048);
    this.count = prime; // primed with silence
    const delays = (this.up ? this.up.delay / RNNOISE_RATE : 0) + (this.down ? this.down.delay / sampleRate : 0);
    this.latencyMs = (prime / sampleRate + delays) * 1000;
  }

  static async create(sampleRate: number, options: DenoiseOptions = {}): Promise<DenoiseProcessor> {
    const module = await loadRnnoise(options.wasmPath);
    return new DenoiseProcessor(sampleRate, module.createState());
  }

  /** Frames that could not be filled completely (should stay 0). */
  get underrunCount(): number {
    return this.underruns;
  }

  process(frame: AudioFrame): AudioFrame {
    if (frame.sampleRate !== this.sampleRate) {
      throw new RangeError(`denoise set up for ${this.sampleRate} Hz got a ${frame.sampleRate} Hz frame`);
    }
    this.chunker.push(this.up ? this.up.process(frame.pcm) : frame.pcm);
    const pcm = frame.pcm;
    const n = pcm.length;
    const take = Math.min(n, this.count);
    const fifo = this.fifo;
    let h = this.head;
    for (let i = 0; i < take; i++) {
      pcm[i] = fifo[h] as number;
      if (++h === fifo.length) h = 0;
    }
    this.head = h;
    this.count -= take;
    if (take < n) {
      pcm.fill(0, take);
      this.underruns++;
    }
    return frame;
  }

  close(): void {
    this.state.destroy();
  }

  private denoise(chunk: Int16Array): void {
    this.lastVoiceProbability = this.state.process(chunk, this.denoised);
    this.enqueue(this.down ? this.down.process(this.denoised) : this.denoised);
  }

  private enqueue(pcm: Int16Array): void {
    if (this.count + pcm.length > this.fifo.length) this.growFifo(this.count + pcm.length);
    const fifo = this.fifo;
    let t = (this.head + this.count) % fifo.length;
    for (let i = 0; i < pcm.length; i++) {
      fifo[t] = pcm[i] as number;
      if (++t === fifo.length) t = 0;
    }
    this.count += pcm.length;
  }

  private growFifo(min: number): void {
    const next = new Int16Array(Math.max(min, this.fifo.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.fifo[(this.head + i) % this.fifo.length] as number;
    this.fifo = next;
    this.head = 0;
  }
}

/** Registry entry: `denoise` (options: DenoiseOptions). */
export const denoiseProcessorFactory: AudioProcessorFactory<DenoiseOptions> = {
  name: "denoise",
  create: (context: ProcessorContext, options?: DenoiseOptions) => DenoiseProcessor.create(context.sampleRate, options),
};
