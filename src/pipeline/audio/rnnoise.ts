/**
 * RNNoise compiled to WebAssembly (npm `@jitsi/rnnoise-wasm`), instantiated directly from its .wasm file:
 * the package's Emscripten glue targets browsers only, and the module needs just two imports (heap growth
 * and a large memcpy), so we provide them. The export names are the minified ones of the pinned build (0.2.1),
 * checked at load time.
 *
 * One WebAssembly instance per process, shared by all calls (each call gets its own RNNoise state in it).
 * RNNoise works on 480-sample frames at 48 kHz, floats in the int16 range.
 */

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { AppError } from "../../errors.js";

export const RNNOISE_PACKAGE = "@jitsi/rnnoise-wasm";
export const RNNOISE_VERSION = "0.2.1";
export const RNNOISE_FRAME = 480;
export const RNNOISE_RATE = 48000;

/** Minified export names of the 0.2.1 build (see the package's dist/rnnoise.js glue). */
const NAMES = {
  memory: "c",
  ctors: "d",
  create: "f",
  malloc: "g",
  destroy: "h",
  free: "i",
  processFrame: "j",
} as const;

/** The parts of the WebAssembly API we use (the project's lib settings do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }>;
  Memory: abstract new (...args: never[]) => WasmMemory;
}

const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  create: (model: number) => number;
  malloc: (bytes: number) => number;
  destroy: (state: number) => void;
  free: (ptr: number) => void;
  processFrame: (state: number, out: number, input: number) => number;
}

/** One RNNoise state with its input/output buffers in WASM memory. */
export class RnnoiseState {
  private state: number;
  private readonly inPtr: number;
  private readonly outPtr: number;
  private buffer: ArrayBuffer | undefined;
  private inView: Float32Array = new Float32Array(0);
  private outView: Float32Array = new Float32Array(0);

  constructor(private readonly wasm: Exports) {
    this.state = wasm.create(0);
    this.inPtr = wasm.malloc(RNNOISE_FRAME * 4);
    this.outPtr = wasm.malloc(RNNOISE_FRAME * 4);
    if (!this.state || !this.inPtr || !this.outPtr) throw new AppError("INTERNAL", "RNNoise: out of WASM memory");
  }

  /** Denoises 480 samples at 48 kHz from `input` into `output` (may be the same array). Returns RNNoise's voice probability. */
  process(input: Int16Array, output: Int16Array): number {
    if (!this.state) throw new Error("RNNoise state used after destroy");
    this.views();
    const inView = this.inView;
    for (let i = 0; i < RNNOISE_FRAME; i++) inView[i] = input[i] as number;
    const vad = this.wasm.processFrame(this.state, this.outPtr, this.inPtr);
    const outView = this.outView;
    for (let i = 0; i < RNNOISE_FRAME; i++) {
      const v = Math.round(outView[i] as number);
      output[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return vad;
  }

  destroy(): void {
    if (!this.state) return;
    this.wasm.destroy(this.state);
    this.wasm.free(this.inPtr);
    this.wasm.free(this.outPtr);
    this.state = 0;
  }

  /** (Re)creates the typed views when the heap grew (growth detaches the old buffer). */
  private views(): void {
    const buffer = this.wasm.memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.inView = new Float32Array(buffer, this.inPtr, RNNOISE_FRAME);
    this.outView = new Float32Array(buffer, this.outPtr, RNNOISE_FRAME);
  }
}

export class RnnoiseModule {
  constructor(private readonly wasm: Exports) {}

  createState(): RnnoiseState {
    return new RnnoiseState(this.wasm);
  }
}

let shared: Promise<RnnoiseModule> | undefined;

/** Loads (once per process) the RNNoise WASM module. `wasmPath` overrides the file from the npm package. */
export function loadRnnoise(wasmPath?: string): Promise<RnnoiseModule> {
  if (wasmPath !== undefined) return instantiate(wasmPath);
  shared ??= instantiate(undefined).catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

async function instantiate(wasmPath: string | undefined): Promise<RnnoiseModule> {
  let path = wasmPath;
  try {
    if (path === undefined) {
      const require = createRequire(import.meta.url);
      const pkgPath = require.resolve(`${RNNOISE_PACKAGE}/package.json`);
      const pkg = JSON.parse(await readFile(pkgPath, "utf8")) as { version?: string };
      if (pkg.version !== RNNOISE_VERSION) {
        throw new Error(`${RNNOISE_PACKAGE} ${pkg.version} is installed; the denoiser supports ${RNNOISE_VERSION}`);
      }
      path = require.resolve(`${RNNOISE_PACKAGE}/dist/rnnoise.wasm`);
    }
    const bytes = await readFile(path);
    // Set once the instance exists; the imports are only called after that.
    const heap: { memory?: WasmMemory } = {};
    const imports = {
      a: {
        // emscripten_resize_heap(requestedSize): grow to at least the request (20 % headroom), max 2 GiB.
        a: (requested: number): number => {
          const mem = heap.memory;
          if (!mem) return 0;
          const want = requested >>> 0;
          const old = mem.buffer.byteLength;
          if (want > 2 ** 31) return 0;
          const target = Math.min(2 ** 31, Math.max(want, Math.ceil(old * 1.2)));
          try {
            mem.grow(Math.ceil((target - old) / 65536));
            return 1;
          } catch {
            return 0;
          }
        },
        // emscripten_memcpy_big(dest, src, n)
        b: (dest: number, src: number, n: number): void => {
          if (heap.memory) new Uint8Array(heap.memory.buffer).copyWithin(dest, src, src + n);
        },
      },
    };
    const { instance } = await wasmApi.instantiate(bytes, imports);
    const e = instance.exports;
    const fn = (name: string): ((...args: number[]) => number) => {
      const f = e[name];
      if (typeof f !== "function") throw new Error(`export "${name}" missing: not the expected RNNoise build`);
      return f as (...args: number[]) => number;
    };
    const mem = e[NAMES.memory];
    if (!(mem instanceof wasmApi.Memory)) throw new Error("no exported memory: not the expected RNNoise build");
    heap.memory = mem;
    fn(NAMES.ctors)();
    const wasm: Exports = {
      memory: mem,
      create: fn(NAMES.create),
      malloc: fn(NAMES.malloc),
      destroy: fn(NAMES.destroy),
      free: fn(NAMES.free),
      processFrame: fn(NAMES.processFrame),
    };
    // Smoke test: one frame of silence must come back as silence with a probability in [0, 1].
    const probe = new RnnoiseState(wasm);
    const zeros = new Int16Array(RNNOISE_FRAME);
    const p = probe.process(zeros, zeros);
    probe.destroy();
    if (!(p >= 0 && p <= 1) || zeros.some((x) => x !== 0)) throw new Error("RNNoise self-test failed");
    return new RnnoiseModule(wasm);
  } catch (err) {
    throw new AppError("INTERNAL", `cannot load RNNoise (${path ?? RNNOISE_PACKAGE}): ${(err as Error).message}`, { cause: err });
  }
}
