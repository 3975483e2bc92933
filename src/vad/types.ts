/**
 * The common VAD engine interface. An engine holds what is shared by every call in the process (weights, a
 * session, a WASM module); a stream holds the few KB of state of one audio stream (one call leg).
 */

/** Engine names accepted by createVadEngine; `silero` is an alias of `tinysilero`. */
export const VAD_ENGINE_TYPES = ["tinysilero", "silero", "onnx", "webrtc"] as const;
export type VadEngineType = (typeof VAD_ENGINE_TYPES)[number];

export interface VadStream {
  readonly sampleRate: number;
  /** Samples that `process` consumes per call (512 / 256 for Silero at 16 / 8 kHz, 30 ms for WebRTC). */
  readonly chunkSamples: number;
  /** Bytes of per-stream state and buffers (the weights are shared and not counted). */
  readonly stateBytes: number;
  /**
   * Runs one chunk: `chunkSamples` samples of `samples` starting at `offset` (default 0), either PCM16 or floats
   * scaled like PCM16 / 32768. Returns the speech probability of the chunk (0 or 1 for WebRTC). Synchronous and
   * allocation-free on the hot path.
   */
  process(samples: Float32Array | Int16Array, offset?: number): number;
  /** Back to the state of a new stream. */
  reset(): void;
  /** Frees resources outside the JS heap (WebRTC's WASM instance). The stream must not be used afterwards. */
  close(): void;
}

export interface VadEngine {
  /** Canonical engine name (`silero` resolves to `tinysilero`). */
  readonly type: "tinysilero" | "onnx" | "webrtc";
  /** Human readable, e.g. "tinysilero (native, avx2+fma)". */
  readonly description: string;
  /** Sample rates this engine runs natively. */
  readonly sampleRates: readonly number[];
  chunkSamples(sampleRate: number): number;
  createStream(sampleRate: number): VadStream;
}

/** Silero v5 geometry per sample rate: new samples per call and the context of the previous call in front. */
export const SILERO_GEOMETRY = {
  16000: { chunk: 512, context: 64 },
  8000: { chunk: 256, context: 32 },
} as const;
export type SileroRate = keyof typeof SILERO_GEOMETRY;

export function isSileroRate(sampleRate: number): sampleRate is SileroRate {
  return sampleRate === 16000 || sampleRate === 8000;
}

/** Copies `n` samples from `src[offset..]` into `dst[at..]`, converting PCM16 to float (/32768). No allocation. */
export function copyAsFloat(src: Float32Array | Int16Array, offset: number, dst: Float32Array, at: number, n: number): void {
  if (offset < 0 || offset + n > src.length) {
    throw new RangeError(`VAD chunk needs ${n} samples from offset ${offset}, got ${src.length - offset}`);
  }
  if (src instanceof Int16Array) {
    for (let i = 0; i < n; i++) dst[at + i] = (src[offset + i] as number) / 32768;
  } else {
    for (let i = 0; i < n; i++) dst[at + i] = src[offset + i] as number;
  }
}
