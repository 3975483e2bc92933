/**
 * TinySilero: our own forward pass of Silero VAD v5 (16 kHz: 512-sample chunks with the previous 64 samples in
 * front; 8 kHz: 256 + 32), equal to onnxruntime on the same model within ~3e-6 and several times faster.
 *
 * Kernels, chosen once per process:
 *  - native (native/, Node-API C addon): real FFT instead of the DFT convolution, register-blocked GEMMs, AVX2+FMA
 *    when the CPU has it (__builtin_cpu_supports), portable generic-vector code otherwise;
 *  - TypeScript (./forward.ts) when the addon is missing or fails to load: same results, slower. This is logged once.
 *
 * The weights are parsed from the ONNX file once per process and shared; a stream owns only its input window
 * (context + chunk floats) and the LSTM state (256 floats).
 */
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { loadSileroWeights, type SileroWeights } from "../silero-model.js";
import { copyAsFloat, isSileroRate, SILERO_GEOMETRY, type SileroRate, type VadEngine, type VadStream } from "../types.js";
import { SileroForwardTs } from "./forward.js";
import { loadAddon } from "./native.js";

/** Runs one model call on a stream's own state. */
interface Kernel {
  forward(state: Float32Array, input: Float32Array): number;
}

export interface TinySileroOptions {
  /** `auto` (default): the native addon when it loads, else TypeScript. `native`: fail without the addon. `ts`: TypeScript only. */
  kernel?: "auto" | "native" | "ts";
  /** Native instruction set: -1 best available (default), 0 portable baseline, 1 AVX2+FMA. */
  isa?: -1 | 0 | 1;
  /** Model file (default: silero_vad_v5.onnx of @ricky0123/vad-web). */
  modelPath?: string;
  /** Where the one-time fallback warning goes (default: a Node process warning). */
  logger?: Pick<Logger, "warn">;
}

let fallbackWarned = false;

function warnFallback(reason: string, logger: Pick<Logger, "warn"> | undefined): void {
  if (fallbackWarned) return;
  fallbackWarned = true;
  if (logger) logger.warn({ reason }, "tinysilero native addon unavailable; using the TypeScript forward pass (slower)");
  else process.emitWarning(`tinysilero native addon unavailable (${reason}); using the TypeScript forward pass (slower)`, "TinySileroWarning");
}

class TinySileroStream implements VadStream {
  readonly chunkSamples: number;
  readonly stateBytes: number;
  private readonly context: number;
  /** [context | chunk]: the model input; its tail is the next call's context. */
  private readonly input: Float32Array;
  /** h[128], c[128] */
  private readonly state = new Float32Array(256);

  constructor(
    readonly sampleRate: SileroRate,
    private readonly kernel: Kernel,
  ) {
    const g = SILERO_GEOMETRY[sampleRate];
    this.chunkSamples = g.chunk;
    this.context = g.context;
    this.input = new Float32Array(g.context + g.chunk);
    this.stateBytes = this.input.byteLength + this.state.byteLength;
  }

  process(samples: Float32Array | Int16Array, offset = 0): number {
    const { input, context, chunkSamples } = this;
    input.copyWithin(0, chunkSamples, chunkSamples + context); // last `context` samples of the previous input
    copyAsFloat(samples, offset, input, context, chunkSamples);
    return this.kernel.forward(this.state, input);
  }

  reset(): void {
    this.input.fill(0);
    this.state.fill(0);
  }

  close(): void {}
}

export class TinySileroEngine implements VadEngine {
  readonly type = "tinysilero" as const;
  readonly sampleRates = [16000, 8000] as const;
  readonly description: string;
  /** "native" or "ts" */
  readonly kernelKind: "native" | "ts";
  /** "avx2+fma", "baseline" or "typescript" */
  readonly isa: string;
  private readonly kernels = new Map<SileroRate, Kernel>();
  private readonly weights: Record<SileroRate, SileroWeights>;
  private readonly makeKernel: (w: SileroWeights) => Kernel;

  constructor(options: TinySileroOptions = {}) {
    this.weights = loadSileroWeights(options.modelPath);
    const want = options.kernel ?? "auto";
    const load = want === "ts" ? undefined : loadAddon();
    if (load?.addon) {
      const addon = load.addon;
      const isaWanted = options.isa ?? -1;
      this.makeKernel = (w) => {
        const model = addon.create(w.sampleRate, w.tensors, isaWanted);
        return { forward: (state, input) => addon.forward(model, state, input) };
      };
      this.kernelKind = "native";
      this.isa = addon.selectIsa(isaWanted);
    } else {
      if (want === "native") {
        throw new AppError("PROVIDER_ERROR", `tinysilero native addon unavailable: ${load && !load.addon ? load.reason : "not loaded"}`, {
          retryable: false,
          details: { provider: "vad:tinysilero" },
        });
      }
      if (load && !load.addon) warnFallback(load.reason, options.logger);
      this.makeKernel = (w) => new SileroForwardTs(w);
      this.kernelKind = "ts";
      this.isa = "typescript";
    }
    this.description = this.kernelKind === "native" ? `tinysilero (native, ${this.isa})` : "tinysilero (typescript)";
  }

  chunkSamples(sampleRate: number): number {
    return SILERO_GEOMETRY[this.rate(sampleRate)].chunk;
  }

  createStream(sampleRate: number): VadStream {
    const rate = this.rate(sampleRate);
    let kernel = this.kernels.get(rate);
    if (!kernel) {
      kernel = this.makeKernel(this.weights[rate]);
      this.kernels.set(rate, kernel);
    }
    return new TinySileroStream(rate, kernel);
  }

  private rate(sampleRate: number): SileroRate {
    if (!isSileroRate(sampleRate)) {
      throw new AppError("INTERNAL", `tinysilero runs at 8000 or 16000 Hz, not ${sampleRate} (resample first)`, { retryable: false });
    }
    return sampleRate;
  }
}
