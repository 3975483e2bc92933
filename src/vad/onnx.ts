/**
 * Silero VAD v5 run by onnxruntime-node (CPU execution provider): the reference TinySilero is measured against,
 * and a fallback. One InferenceSession per process is shared by every stream; a stream owns its input window
 * and its state tensor.
 *
 * onnxruntime-node's public `InferenceSession.run` is async (it defers the synchronous native call with
 * setImmediate). VadStream.process is synchronous, so this engine calls the package's native session directly
 * (`onnxruntime-node/dist/binding.js`, the object the public API wraps): same kernels, same results, and no
 * event-loop hop per chunk. intraOpNumThreads = 1: parallelism comes from many calls, not from one small model.
 *
 * Install note: onnxruntime-node's postinstall downloads CUDA libraries; package.json denies it through
 * "allowScripts" (the CPU library is in the npm tarball), so `npm ci` works offline.
 */
import { createRequire } from "node:module";
import { AppError } from "../errors.js";
import { readSileroModel } from "./silero-model.js";
import { copyAsFloat, isSileroRate, SILERO_GEOMETRY, type SileroRate, type VadEngine, type VadStream } from "./types.js";

interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
type OrtTensorCtor = new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: Record<string, unknown>): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, OrtTensor>;
  dispose(): void;
}
interface OrtBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

function loadOrt(): { Tensor: OrtTensorCtor; session: NativeSession } {
  const require = createRequire(import.meta.url);
  let Tensor: OrtTensorCtor;
  let bindingModule: OrtBinding;
  try {
    Tensor = (require("onnxruntime-node") as { Tensor: OrtTensorCtor }).Tensor;
    bindingModule = require("onnxruntime-node/dist/binding.js") as OrtBinding;
  } catch (err) {
    throw new AppError("PROVIDER_ERROR", `onnx VAD unavailable: onnxruntime-node does not load (${(err as Error).message})`, {
      cause: err,
      retryable: false,
      details: { provider: "vad:onnx" },
    });
  }
  const bytes = readSileroModel();
  try {
    bindingModule.initOrt();
    const session = new bindingModule.binding.InferenceSession();
    session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: "sequential",
    });
    return { Tensor, session };
  } catch (err) {
    throw new AppError("PROVIDER_ERROR", `onnx VAD unavailable: onnxruntime-node cannot create a session (${(err as Error).message})`, {
      cause: err,
      retryable: false,
      details: { provider: "vad:onnx" },
    });
  }
}

const FETCHES = { output: null, stateN: null };
const RUN_OPTIONS = {};

class OnnxStream implements VadStream {
  readonly chunkSamples: number;
  readonly stateBytes: number;
  private readonly context: number;
  private readonly input: Float32Array;
  private readonly state = new Float32Array(256);
  private readonly feeds: Record<string, OrtTensor>;

  constructor(
    readonly sampleRate: SileroRate,
    private readonly session: NativeSession,
    Tensor: OrtTensorCtor,
  ) {
    const g = SILERO_GEOMETRY[sampleRate];
    this.chunkSamples = g.chunk;
    this.context = g.context;
    this.input = new Float32Array(g.context + g.chunk);
    this.stateBytes = this.input.byteLength + this.state.byteLength;
    // The tensors wrap our buffers; the session reads them at each run.
    this.feeds = {
      input: new Tensor("float32", this.input, [1, this.input.length]),
      state: new Tensor("float32", this.state, [2, 1, 128]),
      sr: new Tensor("int64", BigInt64Array.of(BigInt(sampleRate)), []),
    };
  }

  process(samples: Float32Array | Int16Array, offset = 0): number {
    const { input, context, chunkSamples } = this;
    input.copyWithin(0, chunkSamples, chunkSamples + context);
    copyAsFloat(samples, offset, input, context, chunkSamples);
    const out = this.session.run(this.feeds, FETCHES, RUN_OPTIONS);
    this.state.set(out.stateN?.data as Float32Array);
    return (out.output?.data as Float32Array)[0] as number;
  }

  reset(): void {
    this.input.fill(0);
    this.state.fill(0);
  }

  close(): void {}
}

export class OnnxVadEngine implements VadEngine {
  readonly type = "onnx" as const;
  readonly sampleRates = [16000, 8000] as const;
  readonly description = "onnx (onnxruntime-node, CPU, 1 thread)";
  private readonly ort = loadOrt();

  chunkSamples(sampleRate: number): number {
    return SILERO_GEOMETRY[this.rate(sampleRate)].chunk;
  }

  createStream(sampleRate: number): VadStream {
    return new OnnxStream(this.rate(sampleRate), this.ort.session, this.ort.Tensor);
  }

  private rate(sampleRate: number): SileroRate {
    if (!isSileroRate(sampleRate)) {
      throw new AppError("INTERNAL", `onnx VAD runs at 8000 or 16000 Hz, not ${sampleRate} (resample first)`, { retryable: false });
    }
    return sampleRate;
  }
}
