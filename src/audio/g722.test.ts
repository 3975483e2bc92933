import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { G722Decoder, G722Encoder, g722Decode, g722Encode, g722EncodedLength } from "./g722.js";

const RATE = 16000;

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../test/fixtures/audio/${name}`, import.meta.url)));
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 16;
  };
}

/**
 * The input of the reference files in test/fixtures/audio/ (see its README): integer arithmetic only, so it is identical
 * everywhere. Ten 1000-sample sections exercise silence, low noise, a chirp, a full-scale square wave,
 * loud noise, a near-Nyquist pattern, isolated impulses, a 4 kHz square wave, DC and decaying noise
 * (between them they drive both pole coefficients into their limits).
 */
function conformanceInput(): Int16Array {
  const seg = 1000;
  const x = new Int16Array(seg * 10);
  const rnd = lcg(722);
  let phase = 0;
  for (let i = 0; i < x.length; i++) {
    const k = i % seg;
    let v: number;
    switch (Math.floor(i / seg)) {
      case 0:
        v = 0;
        break;
      case 1:
        v = (rnd() & 127) - 64;
        break;
      case 2: {
        phase = (phase + 64 + k) & 0xffff;
        const t = phase >> 2;
        v = (t < 8192 ? t : 16383 - t) * 3 - 12288;
        break;
      }
      case 3:
        v = Math.floor(k / 20) % 2 === 0 ? 32767 : -32768;
        break;
      case 4:
        v = (rnd() % 40001) - 20000;
        break;
      case 5:
        v = (k % 3 === 0 ? 8000 : -4000) + ((k * 37) % 2001) - 1000;
        break;
      case 6:
        v = k % 100 === 0 ? 30000 : k % 100 === 50 ? -30000 : 0;
        break;
      case 7:
        v = (k & 2) === 0 ? 20000 : -20000;
        break;
      case 8:
        v = 20000;
        break;
      default:
        v = (((rnd() & 2047) - 1024) * (seg - k)) >> 5;
        break;
    }
    x[i] = v;
  }
  return x;
}

function randomBytes(n: number): Uint8Array {
  const r = lcg(2024);
  return Uint8Array.from({ length: n }, () => r() & 0xff);
}

/** Speech-like test signal: harmonics-rich sum of sines 300..3000 Hz under a syllable-rate envelope. */
function speechLike(n: number): Int16Array {
  const freqs = [300, 450, 700, 1100, 1600, 2200, 3000];
  return Int16Array.from({ length: n }, (_, i) => {
    const t = i / RATE;
    const envelope = 0.55 + 0.45 * Math.sin(2 * Math.PI * 4 * t);
    let v = 0;
    freqs.forEach((f, k) => (v += Math.sin(2 * Math.PI * f * t + k) / (k + 1)));
    return Math.round(9000 * envelope * v);
  });
}

function sine(freq: number, n: number, amplitude = 12000): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / RATE)));
}

/** Lag (0..maxLag) at which `y` best matches `x` delayed, by normalised cross-correlation. */
function bestLag(x: Int16Array, y: Int16Array, maxLag: number): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let lag = 0; lag <= maxLag; lag++) {
    let xy = 0;
    let yy = 0;
    for (let i = 0; i + lag < y.length && i < x.length; i++) {
      xy += (x[i] as number) * (y[i + lag] as number);
      yy += (y[i + lag] as number) ** 2;
    }
    const score = xy / Math.sqrt(yy || 1);
    if (score > bestScore) {
      bestScore = score;
      best = lag;
    }
  }
  return best;
}

/** SNR in dB of `y` against `x` delayed by `lag`, skipping `skip` samples at both ends (codec start-up). */
function snrDb(x: Int16Array, y: Int16Array, lag: number, skip: number): number {
  let signal = 0;
  let noise = 0;
  for (let i = skip; i < x.length - skip - lag; i++) {
    const ref = x[i] as number;
    signal += ref * ref;
    noise += (ref - (y[i + lag] as number)) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

describe("G.722 against an independent implementation (FFmpeg, see test/fixtures/audio/README.md)", () => {
  it("encodes bit-exactly like FFmpeg's encoder", () => {
    const expected = fixture("g722-ffmpeg-encoded.g722");
    const got = g722Encode(conformanceInput());
    expect(got.length).toBe(expected.length);
    const firstDiff = got.findIndex((b, i) => b !== expected[i]);
    expect(firstDiff).toBe(-1);
  });

  it("decodes bit-exactly like FFmpeg's decoder, including arbitrary (and unused) code words", () => {
    const encoded = fixture("g722-ffmpeg-encoded.g722");
    const input = new Uint8Array(encoded.length + 1024);
    input.set(encoded);
    input.set(randomBytes(1024), encoded.length);
    const raw = fixture("g722-ffmpeg-decoded.s16le");
    const expected = new Int16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
    const got = g722Decode(input);
    expect(got.length).toBe(expected.length);
    const firstDiff = got.findIndex((v, i) => v !== expected[i]);
    expect(firstDiff).toBe(-1);
  });
});

describe("G.722 round trip", () => {
  it("has a codec delay of 22 samples", () => {
    const x = speechLike(RATE);
    expect(bestLag(x, g722Decode(g722Encode(x)), 64)).toBe(22);
  });

  it("keeps a speech-like signal at >= 20 dB SNR", () => {
    const x = speechLike(2 * RATE);
    const y = g722Decode(g722Encode(x));
    const lag = bestLag(x, y, 64);
    expect(snrDb(x, y, lag, 800)).toBeGreaterThanOrEqual(20);
  });

  it("keeps a 1 kHz sine at >= 20 dB SNR", () => {
    const x = sine(1000, RATE);
    const y = g722Decode(g722Encode(x));
    const lag = bestLag(x, y, 64);
    expect(snrDb(x, y, lag, 800)).toBeGreaterThanOrEqual(20);
  });

  it("carries a 6 kHz tone through the higher sub-band", () => {
    const x = sine(6000, RATE, 8000);
    const y = g722Decode(g722Encode(x));
    // The higher band has only 2 bits per sample, but the adaptive predictor tracks a steady tone well.
    expect(snrDb(x, y, bestLag(x, y, 64), 800)).toBeGreaterThanOrEqual(15);
  });

  it("keeps silence silent and low noise low", () => {
    const silence = g722Decode(g722Encode(new Int16Array(RATE)));
    // Idle-channel noise of the ADPCM loops stays within a few LSB (-78 dBFS).
    expect(Math.max(...silence.map(Math.abs))).toBeLessThanOrEqual(8);
    const r = lcg(5);
    const hiss = Int16Array.from({ length: RATE }, () => (r() & 31) - 16);
    const out = g722Decode(g722Encode(hiss));
    expect(Math.max(...out.map(Math.abs))).toBeLessThan(200);
  });
});

describe("G.722 streaming", () => {
  it("produces one byte per two samples and two samples per byte", () => {
    const enc = new G722Encoder();
    const bytes = new Uint8Array(100);
    expect(enc.encode(new Int16Array(160), bytes)).toBe(80);
    expect(enc.encode(new Int16Array(7), bytes)).toBe(3); // one sample left over
    expect(enc.encode(new Int16Array(1), bytes)).toBe(1); // ...paired now
    expect(g722EncodedLength(321)).toBe(160);
    const dec = new G722Decoder();
    expect(dec.decode(new Uint8Array(80), new Int16Array(160))).toBe(160);
    expect(g722Decode(new Uint8Array(33)).length).toBe(66);
  });

  it("encodes chunks of odd sizes exactly like one call", () => {
    const x = speechLike(RATE);
    const whole = g722Encode(x);
    const enc = new G722Encoder();
    const out = new Uint8Array(whole.length);
    const sizes = [1, 3, 0, 7, 161, 2, 319, 5, 1000, 1];
    let pos = 0;
    let written = 0;
    for (let k = 0; pos < x.length; k++) {
      const size = sizes[k % sizes.length] as number;
      const chunk = x.subarray(pos, Math.min(x.length, pos + size));
      written += enc.encode(chunk, out.subarray(written));
      pos += chunk.length;
    }
    expect(written).toBe(whole.length);
    expect(Buffer.from(out).equals(Buffer.from(whole))).toBe(true);
  });

  it("decodes chunks exactly like one call", () => {
    const bytes = g722Encode(speechLike(RATE));
    const whole = g722Decode(bytes);
    const dec = new G722Decoder();
    const out = new Int16Array(whole.length);
    let pos = 0;
    for (const size of [1, 13, 0, 80, 2, 999]) {
      const chunk = bytes.subarray(pos, pos + size);
      pos += dec.decode(chunk, out.subarray(pos * 2)) / 2;
    }
    dec.decode(bytes.subarray(pos), out.subarray(pos * 2));
    expect(Array.from(out)).toEqual(Array.from(whole));
  });

  it("reset returns encoder and decoder to the initial state", () => {
    const x = speechLike(4000);
    const enc = new G722Encoder();
    const a = new Uint8Array(2000);
    const b = new Uint8Array(2000);
    enc.encode(x, a);
    enc.encode(Int16Array.of(1234), new Uint8Array(1)); // leaves a pending sample
    enc.reset();
    enc.encode(x, b);
    expect(Array.from(b)).toEqual(Array.from(a));
    const dec = new G722Decoder();
    const y1 = new Int16Array(4000);
    const y2 = new Int16Array(4000);
    dec.decode(a, y1);
    dec.reset();
    dec.decode(a, y2);
    expect(Array.from(y2)).toEqual(Array.from(y1));
  });

  it("rejects an output buffer that is too small", () => {
    expect(() => new G722Encoder().encode(new Int16Array(10), new Uint8Array(4))).toThrow(RangeError);
    expect(() => new G722Decoder().decode(new Uint8Array(10), new Int16Array(19))).toThrow(RangeError);
  });
});
