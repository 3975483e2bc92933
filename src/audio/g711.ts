/**
 * ITU-T G.711 companding: mu-law (PCMU) and A-law (PCMA), one byte per sample.
 *
 * Encoding follows the standard's segment (chord) construction on 16-bit input:
 * mu-law works on the 14-bit magnitude (x >> 2), A-law on the 13-bit one (x >> 3).
 * Negative inputs use the one's complement (~x) as magnitude, as the ITU reference software (G.191) does,
 * so the negative half of the quantiser is the exact mirror of the positive half in two's complement
 * (x and ~x = -x-1 always map to the same level with opposite sign).
 *
 * Decoding is a 256-entry table per law, built once at module load from the segment formula.
 *
 * All functions write into a caller-supplied output (no allocation) and return it; when `out` is omitted a new
 * array of the input's length is allocated (convenience for cold paths and tests).
 */

/** Largest biased 14-bit mu-law magnitude that still lands in the top segment (8158 + 33 = 8191). */
const MU_MAX_MAGNITUDE = 8158;
const MU_BIAS = 33;

function buildMuLawTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    // Transmitted mu-law bytes are bit-inverted; after inversion bit 7 set means negative.
    const u = ~code & 0xff;
    const segment = (u >> 4) & 7;
    const mantissa = u & 0x0f;
    // Reconstruction level (2m + 33) * 2^seg - 33 in 14-bit units, times 4 for 16-bit.
    const magnitude = (((mantissa << 3) + (MU_BIAS << 2)) << segment) - (MU_BIAS << 2);
    table[code] = u & 0x80 ? -magnitude : magnitude;
  }
  return table;
}

function buildALawTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    // A-law bytes have the even bits inverted (XOR 0x55); after that bit 7 set means positive.
    const u = code ^ 0x55;
    const segment = (u >> 4) & 7;
    const mantissa = u & 0x0f;
    // Reconstruction level at the middle of the step, in 13-bit units times 8 for 16-bit:
    // segment 0 and 1 share step 2 (linear part), each later segment doubles the step.
    const magnitude = segment === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (segment - 1);
    table[code] = u & 0x80 ? magnitude : -magnitude;
  }
  return table;
}

const MU_LAW_DECODE = buildMuLawTable();
const A_LAW_DECODE = buildALawTable();

/** One 16-bit sample to a mu-law byte. */
export function muLawEncodeSample(x: number): number {
  let magnitude: number;
  let sign: number;
  if (x >= 0) {
    magnitude = x >> 2;
    sign = 0x80;
  } else {
    magnitude = ~x >> 2;
    sign = 0x00;
  }
  if (magnitude > MU_MAX_MAGNITUDE) magnitude = MU_MAX_MAGNITUDE;
  magnitude += MU_BIAS;
  // magnitude is now in [33, 8191]: the segment is the position of the leading one above bit 5.
  const segment = 26 - Math.clz32(magnitude);
  const mantissa = (magnitude >> (segment + 1)) & 0x0f;
  return sign | (0x7f ^ ((segment << 4) | mantissa));
}

/** One 16-bit sample to an A-law byte. */
export function aLawEncodeSample(x: number): number {
  let magnitude: number;
  let sign: number;
  if (x >= 0) {
    magnitude = x >> 3;
    sign = 0x80;
  } else {
    magnitude = ~x >> 3;
    sign = 0x00;
  }
  // magnitude is in [0, 4095]; below 32 the law is linear with step 2 (segment 0).
  let segment: number;
  let mantissa: number;
  if (magnitude < 32) {
    segment = 0;
    mantissa = magnitude >> 1;
  } else {
    segment = 27 - Math.clz32(magnitude);
    mantissa = (magnitude >> segment) & 0x0f;
  }
  return (sign | (segment << 4) | mantissa) ^ 0x55;
}

export function muLawDecodeSample(code: number): number {
  return MU_LAW_DECODE[code & 0xff] as number;
}

export function aLawDecodeSample(code: number): number {
  return A_LAW_DECODE[code & 0xff] as number;
}

function checkOutput(inLength: number, outLength: number): void {
  if (outLength < inLength) {
    throw new RangeError(`G.711 output holds ${outLength} samples, input has ${inLength}`);
  }
}

/** Encodes `pcm` into `out[0 .. pcm.length)` and returns `out`. */
export function muLawEncode(pcm: Int16Array, out: Uint8Array = new Uint8Array(pcm.length)): Uint8Array {
  checkOutput(pcm.length, out.length);
  for (let i = 0; i < pcm.length; i++) out[i] = muLawEncodeSample(pcm[i] as number);
  return out;
}

/** Decodes `bytes` into `out[0 .. bytes.length)` and returns `out`. */
export function muLawDecode(bytes: Uint8Array, out: Int16Array = new Int16Array(bytes.length)): Int16Array {
  checkOutput(bytes.length, out.length);
  for (let i = 0; i < bytes.length; i++) out[i] = MU_LAW_DECODE[bytes[i] as number] as number;
  return out;
}

/** Encodes `pcm` into `out[0 .. pcm.length)` and returns `out`. */
export function aLawEncode(pcm: Int16Array, out: Uint8Array = new Uint8Array(pcm.length)): Uint8Array {
  checkOutput(pcm.length, out.length);
  for (let i = 0; i < pcm.length; i++) out[i] = aLawEncodeSample(pcm[i] as number);
  return out;
}

/** Decodes `bytes` into `out[0 .. bytes.length)` and returns `out`. */
export function aLawDecode(bytes: Uint8Array, out: Int16Array = new Int16Array(bytes.length)): Int16Array {
  checkOutput(bytes.length, out.length);
  for (let i = 0; i < bytes.length; i++) out[i] = A_LAW_DECODE[bytes[i] as number] as number;
  return out;
}
