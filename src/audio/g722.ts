/**
 * ITU-T G.722 wideband codec, mode 1 (64 kbit/s): 16 kHz PCM16 <-> one byte per two samples.
 *
 * Structure (G.722 clause 3/4/6, block names in comments follow the standard):
 *  - a 24-tap QMF splits the 16 kHz signal into a lower and a higher 8 kHz sub-band;
 *  - the lower band is coded with 6-bit embedded ADPCM (the predictor adapts on the 4-bit core, so that the
 *    decoder can drop bits), the higher band with 2-bit ADPCM;
 *  - each band has a pole-zero predictor (2 poles, 6 zeros) and a log-domain step size adaptation.
 * All arithmetic is the standard's 16-bit fixed point: values are saturated where the standard limits them,
 * because the encoder and the decoder must stay in lock-step bit for bit.
 *
 * Input and output are 16-bit linear PCM rather than the standard's 14-bit interface: the transmit QMF sums are
 * shifted by 14 and the receive ones by 11, the convention of 16-bit implementations. With it the bitstream is
 * the one other 16-bit G.722 implementations produce (g722.test.ts compares bit for bit with FFmpeg; spandsp's
 * encoder gives the same bytes too), so it interoperates with PBX endpoints. The receive QMF output saturates
 * to 16 bits (spandsp's wraps around instead).
 *
 * The codec delay (transmit + receive QMF) is 22 samples at 16 kHz.
 */

/** QMF coefficients h(0..23) of the standard (scaled by 2^13); the filter is symmetric. */
const QMF = [
  3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3,
];
const QMF_EVEN = Int32Array.from({ length: 12 }, (_, i) => QMF[2 * i] as number);
const QMF_ODD = Int32Array.from({ length: 12 }, (_, i) => QMF[2 * i + 1] as number);

/** Lower-band decision levels Q6(mil), mil = 0..29, in units of DETL / 4096 (QUANTL). */
const Q6 = Int32Array.from([
  0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219,
  1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
]);

/**
 * 6-bit code of quantiser interval mil (1..30) for negative (ILN) and positive (ILP) differences.
 * The two innermost negative intervals use codes 63 and 62; codes 0..3 are never produced.
 */
const ILN = Int32Array.from({ length: 31 }, (_, mil) => (mil === 0 ? 0 : mil === 1 ? 63 : mil === 2 ? 62 : 34 - mil));
const ILP = Int32Array.from({ length: 31 }, (_, mil) => (mil === 0 ? 0 : 62 - mil));

/** Lower-band 6-bit reconstruction levels by interval mil (1..30), in units of DETL / 32768. */
const RL6 = [
  136, 432, 728, 1040, 1360, 1688, 2032, 2400, 2776, 3168, 3576, 4008, 4464, 4944, 5456, 6000, 6576, 7192, 7856,
  8576, 9360, 10232, 11192, 12280, 13512, 14984, 16704, 19008, 21904, 24808,
];

/** QQ6: 6-bit code -> signed reconstruction level; the unused codes 0..3 decode as the smallest negative level. */
const QM6 = (() => {
  const t = new Int32Array(64).fill(-(RL6[0] as number));
  for (let mil = 1; mil <= 30; mil++) {
    const level = RL6[mil - 1] as number;
    t[ILP[mil] as number] = level;
    t[ILN[mil] as number] = -level;
  }
  return t;
})();

/** QQ4: 4-bit core code (6-bit code >> 2) -> signed reconstruction level used by the predictor. */
const QM4 = Int32Array.from([
  0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
]);
/** 4-bit code -> magnitude class 0..7 (RIL -> IL4 in LOGSCL). */
const RL42 = Int32Array.from([0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0]);
/** Lower-band log step-size multipliers WL by magnitude class. */
const WL = Int32Array.from([-60, -30, 58, 172, 334, 538, 1198, 3042]);

/** Higher band: 2-bit codes, reconstruction levels QQ2 and log step-size multipliers WH. */
const IHN = [0, 1, 0];
const IHP = [0, 3, 2];
const QM2 = Int32Array.from([-7408, -1616, 7408, 1616]);
const IH2 = Int32Array.from([2, 1, 2, 1]);
const WH = Int32Array.from([0, -214, 798]);

/** ILB: 2048 * 2^(i/32), the mantissa of the inverse log step size (SCALEL/SCALEH). */
const ILB = Int32Array.from([
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
  3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
]);

/** Upper bounds of the log step sizes NBL / NBH. */
const NBL_MAX = 18432;
const NBH_MAX = 22528;

function sat16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/** SCALEL / SCALEH: log step size -> linear step size; `offset` is 8 for the lower and 10 for the higher band. */
function scale(nb: number, offset: number): number {
  const mantissa = ILB[(nb >> 6) & 31] as number;
  const shift = offset - (nb >> 11);
  return (shift >= 0 ? mantissa >> shift : mantissa << -shift) << 2;
}

/** State of one sub-band's adaptive predictor and quantiser step size. */
class Band {
  /** Predicted signal S = SP + SZ for the next sample. */
  s = 0;
  sp = 0;
  sz = 0;
  /** Reconstructed signal R(k-1), R(k-2). */
  r1 = 0;
  r2 = 0;
  /** Partially reconstructed signal P(k-1), P(k-2). */
  p1 = 0;
  p2 = 0;
  /** Pole coefficients A1, A2 (Q14). */
  a1 = 0;
  a2 = 0;
  /** Zero coefficients B1..B6 (Q14) at index 1..6; index 0 unused. */
  readonly b = new Int32Array(7);
  /** Quantised differences D(k-1)..D(k-6) at index 1..6. */
  readonly d = new Int32Array(7);
  /** Log step size and the step size it yields. */
  nb = 0;
  det: number;

  constructor(private readonly initialDet: number) {
    this.det = initialDet;
  }

  reset(): void {
    this.s = this.sp = this.sz = 0;
    this.r1 = this.r2 = this.p1 = this.p2 = 0;
    this.a1 = this.a2 = 0;
    this.b.fill(0);
    this.d.fill(0);
    this.nb = 0;
    this.det = this.initialDet;
  }

  /** Block 4 of the standard: reconstruct, adapt the predictor on quantised difference `dq`, predict. */
  adapt(dq: number): void {
    const b = this.b;
    const d = this.d;
    // RECONS and PARREC
    const r = sat16(this.s + dq);
    const p = sat16(dq + this.sz);

    // UPPOL2: second pole, leak 2^-7, sign correlation with P(k-1) weighted by f(A1) = 4*A1 (saturated).
    const sg0 = p >> 15;
    const sg1 = this.p1 >> 15;
    const sg2 = this.p2 >> 15;
    const f = sat16(this.a1 * 4);
    const corr = (sg0 === sg1 ? sat16(-f) : f) >> 7;
    let a2 = corr + (sg0 === sg2 ? 128 : -128) + ((this.a2 * 32512) >> 15);
    if (a2 > 12288) a2 = 12288;
    else if (a2 < -12288) a2 = -12288;

    // UPPOL1: first pole, leak 2^-8, step 3 * 2^-8, kept inside the stability triangle |A1| <= 1 - 2^-4 - A2.
    let a1 = sat16((sg0 === sg1 ? 192 : -192) + ((this.a1 * 32640) >> 15));
    const limit = 15360 - a2;
    if (a1 > limit) a1 = limit;
    else if (a1 < -limit) a1 = -limit;

    // UPZERO: sign-sign update of the six zeros, leak 2^-8, step 2^-7 (no step when DQ is zero).
    const step = dq === 0 ? 0 : 128;
    const sgd = dq >> 15;
    for (let i = 1; i <= 6; i++) {
      const inc = (d[i] as number) >> 15 === sgd ? step : -step;
      b[i] = sat16(inc + (((b[i] as number) * 32640) >> 15));
    }

    // DELAYA
    for (let i = 6; i > 1; i--) d[i] = d[i - 1] as number;
    d[1] = dq;
    this.r2 = this.r1;
    this.r1 = r;
    this.p2 = this.p1;
    this.p1 = p;
    this.a1 = a1;
    this.a2 = a2;

    // FILTEP: pole section on the reconstructed signal.
    const sp = sat16(((a1 * sat16(this.r1 + this.r1)) >> 15) + ((a2 * sat16(this.r2 + this.r2)) >> 15));
    // FILTEZ: zero section on the quantised differences.
    let sz = 0;
    for (let i = 6; i >= 1; i--) {
      sz = sat16(sz + (((b[i] as number) * sat16((d[i] as number) * 2)) >> 15));
    }
    this.sp = sp;
    this.sz = sz;
    // PREDIC
    this.s = sat16(sp + sz);
  }
}

/** LOGSCL + SCALEL: adapt the lower-band step size from the 4-bit core code. */
function adaptLowStep(band: Band, code4: number): void {
  let nb = ((band.nb * 127) >> 7) + (WL[RL42[code4] as number] as number);
  if (nb < 0) nb = 0;
  else if (nb > NBL_MAX) nb = NBL_MAX;
  band.nb = nb;
  band.det = scale(nb, 8);
}

/** LOGSCH + SCALEH: adapt the higher-band step size from the 2-bit code. */
function adaptHighStep(band: Band, code2: number): void {
  let nb = ((band.nb * 127) >> 7) + (WH[IH2[code2] as number] as number);
  if (nb < 0) nb = 0;
  else if (nb > NBH_MAX) nb = NBH_MAX;
  band.nb = nb;
  band.det = scale(nb, 10);
}

/** Initial step sizes DETL = 32 and DETH = 8 (what SCALEL/SCALEH give for a zero log step). */
const DETL_RESET = 32;
const DETH_RESET = 8;

/** Bytes produced by encoding `samples` samples (one byte per pair; an odd sample waits for its partner). */
export function g722EncodedLength(samples: number): number {
  return samples >> 1;
}

/**
 * Stateful G.722 encoder for one stream. Samples may arrive in chunks of any size, odd included:
 * an unpaired last sample is kept until the next call, so chunked encoding equals one-shot encoding.
 */
export class G722Encoder {
  private readonly low = new Band(DETL_RESET);
  private readonly high = new Band(DETH_RESET);
  /** Transmit QMF delay line; x[0] is the newest sample. */
  private readonly x = new Int32Array(24);
  private pending = 0;
  private hasPending = false;

  /**
   * Encodes `pcm` (16 kHz) into `out` and returns the number of bytes written.
   * `out` must hold at least `(pcm.length + 1) >> 1` bytes.
   */
  encode(pcm: Int16Array, out: Uint8Array): number {
    const total = pcm.length + (this.hasPending ? 1 : 0);
    const bytes = total >> 1;
    if (out.length < bytes) throw new RangeError(`G.722 output holds ${out.length} bytes, ${bytes} needed`);
    let i = 0;
    let o = 0;
    if (this.hasPending && pcm.length > 0) {
      out[o++] = this.encodePair(this.pending, pcm[0] as number);
      i = 1;
      this.hasPending = false;
    }
    const end = pcm.length - 1;
    for (; i < end; i += 2) out[o++] = this.encodePair(pcm[i] as number, pcm[i + 1] as number);
    if (i === end) {
      this.pending = pcm[i] as number;
      this.hasPending = true;
    }
    return o;
  }

  reset(): void {
    this.low.reset();
    this.high.reset();
    this.x.fill(0);
    this.pending = 0;
    this.hasPending = false;
  }

  private encodePair(older: number, newer: number): number {
    const x = this.x;
    // Transmit QMF: shift in two samples; the even taps see the newest sample, the odd ones the older.
    for (let k = 23; k >= 2; k--) x[k] = x[k - 2] as number;
    x[1] = older;
    x[0] = newer;
    let sumEven = 0;
    let sumOdd = 0;
    for (let i = 0; i < 12; i++) {
      sumEven += (QMF_EVEN[i] as number) * (x[2 * i] as number);
      sumOdd += (QMF_ODD[i] as number) * (x[2 * i + 1] as number);
    }
    const xl = (sumEven + sumOdd) >> 14;
    const xh = (sumEven - sumOdd) >> 14;

    // Lower band. SUBTRA, then QUANTL on the one's-complement magnitude (as the standard does).
    const low = this.low;
    const el = sat16(xl - low.s);
    const wdl = el >= 0 ? el : -(el + 1);
    let mil = 1;
    while (mil < 30 && wdl >= (((Q6[mil] as number) * low.det) >> 12)) mil++;
    const il = el < 0 ? (ILN[mil] as number) : (ILP[mil] as number);
    // INVQAL: the predictor works on the 4-bit core so that it matches every decoder mode.
    const code4 = il >> 2;
    const dlt = (low.det * (QM4[code4] as number)) >> 15;
    adaptLowStep(low, code4);
    low.adapt(dlt);

    // Higher band: SUBTRA, QUANTH (one decision level 564 * DETH / 4096), INVQAH.
    const high = this.high;
    const eh = sat16(xh - high.s);
    const wdh = eh >= 0 ? eh : -(eh + 1);
    const mih = wdh >= (564 * high.det) >> 12 ? 2 : 1;
    const ih = (eh < 0 ? IHN[mih] : IHP[mih]) as number;
    const dh = (high.det * (QM2[ih] as number)) >> 15;
    adaptHighStep(high, ih);
    high.adapt(dh);

    return (ih << 6) | il;
  }
}

/** Stateful G.722 decoder for one stream (64 kbit/s mode): each byte yields two 16 kHz samples. */
export class G722Decoder {
  private readonly low = new Band(DETL_RESET);
  private readonly high = new Band(DETH_RESET);
  /** Receive QMF delay lines of the difference and sum signals; index 0 is the newest. */
  private readonly xd = new Int32Array(12);
  private readonly xs = new Int32Array(12);

  /**
   * Decodes `bytes` into `out` and returns the number of samples written (2 per byte).
   * `out` must hold at least `2 * bytes.length` samples.
   */
  decode(bytes: Uint8Array, out: Int16Array): number {
    const n = bytes.length * 2;
    if (out.length < n) throw new RangeError(`G.722 output holds ${out.length} samples, ${n} needed`);
    const xd = this.xd;
    const xs = this.xs;
    const low = this.low;
    const high = this.high;
    let o = 0;
    for (let k = 0; k < bytes.length; k++) {
      const code = bytes[k] as number;
      const ilr = code & 0x3f;
      const ih = code >> 6;

      // Lower band: output from the full 6-bit level, predictor adaptation from the 4-bit core (LIMIT to 15 bits).
      let rl = low.s + ((low.det * (QM6[ilr] as number)) >> 15);
      if (rl > 16383) rl = 16383;
      else if (rl < -16384) rl = -16384;
      const code4 = ilr >> 2;
      const dlt = (low.det * (QM4[code4] as number)) >> 15;
      adaptLowStep(low, code4);
      low.adapt(dlt);

      // Higher band.
      const dh = (high.det * (QM2[ih] as number)) >> 15;
      let rh = high.s + dh;
      if (rh > 16383) rh = 16383;
      else if (rh < -16384) rh = -16384;
      adaptHighStep(high, ih);
      high.adapt(dh);

      // Receive QMF: the difference signal feeds the even taps (first output sample), the sum the odd ones.
      for (let i = 11; i >= 1; i--) {
        xd[i] = xd[i - 1] as number;
        xs[i] = xs[i - 1] as number;
      }
      xd[0] = rl - rh;
      xs[0] = rl + rh;
      let out1 = 0;
      let out2 = 0;
      for (let i = 0; i < 12; i++) {
        out1 += (QMF_EVEN[i] as number) * (xd[i] as number);
        out2 += (QMF_ODD[i] as number) * (xs[i] as number);
      }
      out[o++] = sat16(out1 >> 11);
      out[o++] = sat16(out2 >> 11);
    }
    return o;
  }

  reset(): void {
    this.low.reset();
    this.high.reset();
    this.xd.fill(0);
    this.xs.fill(0);
  }
}

/** One-shot encode of a whole 16 kHz buffer (allocates); an odd last sample is dropped. */
export function g722Encode(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(g722EncodedLength(pcm.length));
  new G722Encoder().encode(pcm, out);
  return out;
}

/** One-shot decode of a whole G.722 buffer to 16 kHz PCM (allocates). */
export function g722Decode(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length * 2);
  new G722Decoder().decode(bytes, out);
  return out;
}
