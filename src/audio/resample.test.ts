import { describe, expect, it } from "vitest";
import { AlignedResampler, Resampler, resample } from "./resample.js";
import { concatPcm } from "./measure.js";

const RATES = [8000, 16000, 24000, 48000];
const PAIRS = RATES.flatMap((from) => RATES.map((to) => [from, to] as const));
const AMPLITUDE = 10000;

function sine(freq: number, rate: number, n: number): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(AMPLITUDE * Math.sin((2 * Math.PI * freq * i) / rate)));
}

/** SNR (dB) of y against the ideal sine at `rate`, y[n] standing for time (n - delay) / rate; 50 ms edges ignored. */
function sineSnrDb(y: Int16Array, freq: number, rate: number, delay: number): number {
  const edge = rate / 20;
  let signal = 0;
  let noise = 0;
  for (let n = edge + delay; n < y.length - edge; n++) {
    const ideal = AMPLITUDE * Math.sin((2 * Math.PI * freq * (n - delay)) / rate);
    signal += ideal * ideal;
    noise += ((y[n] as number) - ideal) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

function rms(x: Int16Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] as number) ** 2;
  return Math.sqrt(sum / (to - from));
}

/** Deterministic pseudo-random chunk sizes: 0, 1, typical frames and several frames at once. */
function chunkSizes(seed: number): () => number {
  const sizes = [0, 1, 2, 7, 160, 320, 333, 960, 4099];
  let s = seed;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return sizes[(s >>> 16) % sizes.length] as number;
  };
}


describe("Resampler quality", () => {
  it.each(PAIRS)("%i -> %i: a 1 kHz sine comes out at >= 40 dB SNR", (from, to) => {
    const r = new Resampler(from, to);
    const y = r.process(sine(1000, from, from)); // 1 s
    expect(sineSnrDb(y, 1000, to, r.delay)).toBeGreaterThanOrEqual(40);
  });

  it.each(PAIRS)("%i -> %i: the one-shot helper is time-aligned with the input", (from, to) => {
    const y = resample(sine(1000, from, from / 2), from, to);
    expect(y.length).toBe(to / 2);
    expect(sineSnrDb(y, 1000, to, 0)).toBeGreaterThanOrEqual(40);
  });

  const aliasCases = [
    [16000, 8000, 6000],
    [16000, 8000, 4500],
    [24000, 16000, 10000],
    [24000, 8000, 6000],
    [48000, 16000, 20000],
    [48000, 16000, 9000],
    [48000, 8000, 13000],
    [48000, 24000, 14000],
  ] as const;
  it.each(aliasCases)("%i -> %i: a %i Hz tone above the new Nyquist is attenuated >= 40 dB", (from, to, freq) => {
    const x = sine(freq, from, from);
    const y = new Resampler(from, to).process(x);
    const attenuationDb = 20 * Math.log10(rms(x, 0, x.length) / Math.max(rms(y, to / 20, y.length - to / 20), 1e-9));
    expect(attenuationDb).toBeGreaterThanOrEqual(40);
  });

  it.each([
    [16000, 8000, 3000],
    [8000, 16000, 3400],
    [48000, 16000, 7000],
  ] as const)("%i -> %i: a %i Hz tone in the pass band keeps its level within 0.1 dB", (from, to, freq) => {
    const x = sine(freq, from, from);
    const y = new Resampler(from, to).process(x);
    const ratioDb = 20 * Math.log10(rms(y, to / 20, y.length - to / 20) / rms(x, from / 20, x.length - from / 20));
    expect(Math.abs(ratioDb)).toBeLessThan(0.1);
  });

  it("identity conversion copies the input", () => {
    const x = sine(1234, 16000, 999);
    expect(Array.from(new Resampler(16000, 16000).process(x))).toEqual(Array.from(x));
    expect(new Resampler(8000, 8000).delay).toBe(0);
  });

  it("also converts other rational rates (44.1 kHz WAV prompts)", () => {
    const r = new Resampler(44100, 16000);
    expect(sineSnrDb(r.process(sine(1000, 44100, 44100)), 1000, 16000, r.delay)).toBeGreaterThanOrEqual(40);
  });
});

describe("Resampler streaming", () => {
  it.each(PAIRS)("%i -> %i: chunked input gives bit-exactly the one-call output", (from, to) => {
    const x = sine(937, from, from / 2);
    const whole = new Resampler(from, to);
    const expected = concatPcm([whole.process(x).slice(), whole.flush().slice()]);
    const chunked = new Resampler(from, to);
    const parts: Int16Array[] = [];
    const next = chunkSizes(from + to);
    for (let pos = 0; pos < x.length; ) {
      const chunk = x.subarray(pos, Math.min(x.length, pos + next()));
      parts.push(chunked.process(chunk).slice()); // copy: the view is only valid until the next call
      pos += chunk.length;
    }
    parts.push(chunked.flush().slice());
    const got = concatPcm(parts);
    expect(got.length).toBe(expected.length);
    expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it.each(PAIRS)("%i -> %i: output length tracks input * to / from within 1 sample", (from, to) => {
    const r = new Resampler(from, to);
    const next = chunkSizes(7 * from + to);
    let inCount = 0;
    let outCount = 0;
    const chunk = new Int16Array(5000);
    let worst = 0;
    while (inCount < from * 20) {
      const n = next();
      outCount += r.process(chunk.subarray(0, n)).length;
      inCount += n;
      worst = Math.max(worst, Math.abs(outCount - (inCount * to) / from));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(r.flush().length).toBe(Math.ceil((inCount * to) / from) - outCount + r.delay);
  });

  it("flush emits the delayed tail, then the resampler starts a fresh stream", () => {
    const x = sine(1000, 16000, 1600);
    const r = new Resampler(16000, 8000);
    const first = concatPcm([r.process(x).slice(), r.flush().slice()]);
    expect(first.length).toBe(800 + r.delay);
    // The tail holds the end of the signal, not just zeros.
    expect(Math.max(...first.subarray(800).map(Math.abs))).toBeGreaterThan(1000);
    const second = concatPcm([r.process(x).slice(), r.flush().slice()]);
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(r.flush().length).toBe(0); // nothing pending
  });

  it("reset forgets the history", () => {
    const r = new Resampler(8000, 16000);
    const x = sine(500, 8000, 800);
    const fresh = r.process(x).slice();
    r.process(sine(3000, 8000, 123));
    r.reset();
    expect(Array.from(r.process(x))).toEqual(Array.from(fresh));
  });

  it("returns a view into a reused buffer", () => {
    const r = new Resampler(8000, 16000);
    const a = r.process(new Int16Array(160));
    const b = r.process(new Int16Array(160));
    expect(a.buffer).toBe(b.buffer);
    expect(b.length).toBe(320);
  });

  it("saturates instead of wrapping on full-scale square waves", () => {
    const x = Int16Array.from({ length: 1600 }, (_, i) => (Math.floor(i / 20) % 2 ? -32768 : 32767));
    const y = resample(x, 16000, 48000);
    // Gibbs overshoot would exceed int16; a wrapped sample would flip sign next to a full-scale one.
    for (let i = 1; i < y.length; i++) {
      expect(Math.abs((y[i] as number) - (y[i - 1] as number))).toBeLessThan(40000);
    }
    expect(Math.max(...y)).toBe(32767);
  });

  it("rejects invalid rates", () => {
    expect(() => new Resampler(0, 8000)).toThrow(RangeError);
    expect(() => new Resampler(8000, 16000.5)).toThrow(RangeError);
    expect(() => new Resampler(8000, 999983)).toThrow(/too fine/);
  });
});

describe("AlignedResampler", () => {
  it("streams exactly what the one-shot resample gives, whatever the chunking", () => {
    const x = new Int16Array(4003);
    for (let i = 0; i < x.length; i++) x[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000) + ((i * 7919) % 200) - 100);
    for (const [from, to] of [[8000, 16000], [16000, 8000], [24000, 16000], [48000, 16000]] as const) {
      const expected = resample(x, from, to);
      const r = new AlignedResampler(from, to);
      const parts: Int16Array[] = [];
      for (let i = 0, size = 1; i < x.length; i += size, size = (size * 3) % 331 + 1) parts.push(r.process(x.subarray(i, i + size)).slice());
      parts.push(r.flush().slice());
      expect(concatPcm(parts)).toEqual(expected);
      // flush resets it: a second stream gives the same again.
      expect(concatPcm([r.process(x).slice(), r.flush().slice()])).toEqual(expected);
    }
  });
});
