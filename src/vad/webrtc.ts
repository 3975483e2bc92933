/**
 * WebRTC VAD (libfvad compiled to WASM, @echogarden/fvad-wasm): the cheap option. It classifies 30 ms frames as
 * speech (1) or not (0); `webrtcMode` 0-3 sets its aggressiveness (3 = fewest false positives). One WASM module
 * per process; each stream owns an fvad instance and a frame buffer in the WASM heap (freed by close()).
 */
import fvadFactory, { type FvadModule } from "@echogarden/fvad-wasm";
import { AppError } from "../errors.js";
import type { VadEngine, VadStream } from "./types.js";

const FRAME_MS = 30;
/** WASM heap taken by one fvad instance (consecutive fvad_new() allocations are 744 bytes apart), for stateBytes. */
const FVAD_INSTANCE_BYTES = 744;

class WebRtcStream implements VadStream {
  readonly chunkSamples: number;
  readonly stateBytes: number;
  private inst: number;
  private readonly ptr: number;

  constructor(
    private readonly m: FvadModule,
    readonly sampleRate: number,
    private readonly mode: number,
  ) {
    this.chunkSamples = (sampleRate * FRAME_MS) / 1000;
    this.inst = m._fvad_new();
    this.ptr = m._malloc(this.chunkSamples * 2);
    if (!this.inst || !this.ptr) throw new AppError("PROVIDER_ERROR", "webrtc VAD: out of WASM memory", { details: { provider: "vad:webrtc" } });
    this.configure();
    this.stateBytes = FVAD_INSTANCE_BYTES + this.chunkSamples * 2;
  }

  private configure(): void {
    if (this.m._fvad_set_sample_rate(this.inst, this.sampleRate) !== 0 || this.m._fvad_set_mode(this.inst, this.mode) !== 0) {
      throw new AppError("INTERNAL", `webrtc VAD: unsupported sample rate ${this.sampleRate} or mode ${this.mode}`, { retryable: false });
    }
  }

  process(samples: Float32Array | Int16Array, offset = 0): number {
    const n = this.chunkSamples;
    if (offset < 0 || offset + n > samples.length) {
      throw new RangeError(`VAD chunk needs ${n} samples from offset ${offset}, got ${samples.length - offset}`);
    }
    const heap = this.m.HEAP16; // re-read: the view is replaced when the WASM memory grows
    const at = this.ptr >> 1;
    if (samples instanceof Int16Array) {
      for (let i = 0; i < n; i++) heap[at + i] = samples[offset + i] as number;
    } else {
      for (let i = 0; i < n; i++) {
        const v = Math.round((samples[offset + i] as number) * 32768);
        heap[at + i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
    }
    const r = this.m._fvad_process(this.inst, this.ptr, n);
    if (r < 0) throw new AppError("INTERNAL", "webrtc VAD: invalid frame", { retryable: false });
    return r;
  }

  reset(): void {
    this.m._fvad_reset(this.inst);
    this.configure(); // fvad_reset also resets mode and rate
  }

  close(): void {
    if (!this.inst) return;
    this.m._fvad_free(this.inst);
    this.m._free(this.ptr);
    this.inst = 0;
  }
}

export class WebRtcVadEngine implements VadEngine {
  readonly type = "webrtc" as const;
  readonly sampleRates = [8000, 16000, 32000, 48000] as const;
  readonly description: string;

  private constructor(
    private readonly m: FvadModule,
    private readonly mode: number,
  ) {
    this.description = `webrtc (libfvad wasm, mode ${mode}, ${FRAME_MS} ms frames)`;
  }

  /** Loads the WASM module (async: WebAssembly compilation). `mode` = aggressiveness 0-3 (default 3). */
  static async load(mode = 3): Promise<WebRtcVadEngine> {
    if (!Number.isInteger(mode) || mode < 0 || mode > 3) throw new AppError("INTERNAL", `webrtc VAD mode must be 0-3, not ${mode}`, { retryable: false });
    let m: FvadModule;
    try {
      m = await fvadFactory();
    } catch (err) {
      throw new AppError("PROVIDER_ERROR", `webrtc VAD unavailable: @echogarden/fvad-wasm does not load (${(err as Error).message})`, {
        cause: err,
        retryable: false,
        details: { provider: "vad:webrtc" },
      });
    }
    return new WebRtcVadEngine(m, mode);
  }

  chunkSamples(sampleRate: number): number {
    this.check(sampleRate);
    return (sampleRate * FRAME_MS) / 1000;
  }

  createStream(sampleRate: number): VadStream {
    this.check(sampleRate);
    return new WebRtcStream(this.m, sampleRate, this.mode);
  }

  private check(sampleRate: number): void {
    if (!(this.sampleRates as readonly number[]).includes(sampleRate)) {
      throw new AppError("INTERNAL", `webrtc VAD runs at 8000, 16000, 32000 or 48000 Hz, not ${sampleRate}`, { retryable: false });
    }
  }
}
