/**
 * The Silero VAD v5 forward pass in plain TypeScript: the portable fallback when the native addon is missing.
 * It computes exactly the graph (DFT as a convolution with the model's own basis, no FFT) in float64 with the
 * float32 weights, so it matches onnxruntime to ~2e-6; it is several times slower than the native kernel.
 *
 * One instance per sample rate is shared by every stream (its scratch buffers are reused; calls never overlap in
 * one JS thread). The per-stream state is passed in: 256 floats, h[128] then c[128] (the ONNX `state` layout).
 */
import type { SileroWeights } from "../silero-model.js";
import { SILERO_GEOMETRY } from "../types.js";

const HIDDEN = 128;

/** Conv1d, kernel 3, padding 1, then ReLU. Layout [channel][time]. Returns the output length. */
function conv3Relu(
  inp: Float64Array,
  cin: number,
  lin: number,
  w: Float32Array,
  b: Float32Array,
  cout: number,
  stride: number,
  out: Float64Array,
): number {
  const lout = Math.floor((lin - 1) / stride) + 1;
  for (let o = 0; o < cout; o++) {
    for (let t = 0; t < lout; t++) {
      let s = b[o] as number;
      const base = t * stride - 1;
      for (let i = 0; i < cin; i++) {
        const wo = (o * cin + i) * 3;
        const io = i * lin;
        for (let k = 0; k < 3; k++) {
          const p = base + k;
          if (p >= 0 && p < lin) s += (w[wo + k] as number) * (inp[io + p] as number);
        }
      }
      out[o * lout + t] = s > 0 ? s : 0;
    }
  }
  return lout;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

export class SileroForwardTs {
  readonly chunk: number;
  readonly context: number;
  private readonly n: number;
  private readonly pad: number;
  private readonly k: number;
  private readonly hop: number;
  private readonly nb: number;
  private readonly frames: number;
  private readonly w: readonly Float32Array[];
  private readonly xp: Float64Array;
  private readonly mag: Float64Array;
  private readonly a0: Float64Array;
  private readonly a1: Float64Array;
  private readonly a2: Float64Array;
  private readonly a3: Float64Array;
  private readonly gates: Float64Array;
  private readonly bias: Float64Array;

  constructor(weights: SileroWeights) {
    const g = SILERO_GEOMETRY[weights.sampleRate];
    this.chunk = g.chunk;
    this.context = g.context;
    this.n = g.chunk + g.context;
    this.pad = g.context; // reflect pad on the right only
    this.k = weights.sampleRate === 16000 ? 256 : 128;
    this.hop = this.k / 2;
    this.nb = this.k / 2 + 1;
    this.frames = (this.n + this.pad - this.k) / this.hop + 1; // 4
    this.w = weights.tensors;
    this.xp = new Float64Array(this.n + this.pad);
    this.mag = new Float64Array(this.nb * this.frames);
    this.a0 = new Float64Array(128 * this.frames);
    this.a1 = new Float64Array(64 * this.frames);
    this.a2 = new Float64Array(64 * this.frames);
    this.a3 = new Float64Array(128 * this.frames);
    this.gates = new Float64Array(4 * HIDDEN);
    this.bias = new Float64Array(4 * HIDDEN);
    const bih = this.w[11] as Float32Array;
    const bhh = this.w[12] as Float32Array;
    for (let r = 0; r < 4 * HIDDEN; r++) this.bias[r] = (bih[r] as number) + (bhh[r] as number);
  }

  /** One model call: `input` = context + chunk samples (floats), `state` updated in place. Returns the probability. */
  forward(state: Float32Array, input: Float32Array): number {
    const { n, pad, k, hop, nb, frames, xp, mag, w } = this;
    for (let i = 0; i < n; i++) xp[i] = input[i] as number;
    for (let j = 0; j < pad; j++) xp[n + j] = input[n - 2 - j] as number;
    // STFT as a strided convolution with the basis [2nb][K] (real rows, then imaginary rows), then magnitude.
    const basis = w[0] as Float32Array;
    for (let f = 0; f < nb; f++) {
      const br = f * k;
      const bi = (nb + f) * k;
      for (let t = 0; t < frames; t++) {
        let re = 0;
        let im = 0;
        const o = t * hop;
        for (let s = 0; s < k; s++) {
          const x = xp[o + s] as number;
          re += (basis[br + s] as number) * x;
          im += (basis[bi + s] as number) * x;
        }
        mag[f * frames + t] = Math.sqrt(re * re + im * im);
      }
    }
    let len = conv3Relu(mag, nb, frames, w[1] as Float32Array, w[2] as Float32Array, 128, 1, this.a0);
    len = conv3Relu(this.a0, 128, len, w[3] as Float32Array, w[4] as Float32Array, 64, 2, this.a1);
    len = conv3Relu(this.a1, 64, len, w[5] as Float32Array, w[6] as Float32Array, 64, 2, this.a2);
    conv3Relu(this.a2, 64, len, w[7] as Float32Array, w[8] as Float32Array, 128, 1, this.a3); // length 1: x = a3
    // LSTM step, PyTorch gate order i, f, g, o.
    const x = this.a3;
    const gt = this.gates;
    const wih = w[9] as Float32Array;
    const whh = w[10] as Float32Array;
    for (let r = 0; r < 4 * HIDDEN; r++) {
      let s = this.bias[r] as number;
      const o = r * HIDDEN;
      for (let j = 0; j < HIDDEN; j++) s += (wih[o + j] as number) * (x[j] as number) + (whh[o + j] as number) * (state[j] as number);
      gt[r] = s;
    }
    const wd = w[13] as Float32Array;
    let z = (w[14] as Float32Array)[0] as number;
    for (let j = 0; j < HIDDEN; j++) {
      const ig = sigmoid(gt[j] as number);
      const fg = sigmoid(gt[HIDDEN + j] as number);
      const gg = Math.tanh(gt[2 * HIDDEN + j] as number);
      const og = sigmoid(gt[3 * HIDDEN + j] as number);
      const c = fg * (state[HIDDEN + j] as number) + ig * gg;
      const h = og * Math.tanh(c);
      state[HIDDEN + j] = c;
      state[j] = h;
      // decoder: ReLU, 1x1 conv 128 -> 1, sigmoid
      if (h > 0) z += (wd[j] as number) * h;
    }
    return sigmoid(z);
  }
}
