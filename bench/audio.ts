/**
 * Audio primitives on 60 s of speech-like audio, fed in 20 ms frames as a media leg does.
 * Prints the median wall time over several rounds and the realtime factor (how many times faster than real time
 * one stream runs on one core). Figures only; no assertions.
 *
 *   node --import tsx bench/audio.ts [rounds]
 */

import {
  G722Decoder,
  G722Encoder,
  GainRamp,
  Rechunker,
  Resampler,
  aLawDecode,
  aLawEncode,
  decodeWav,
  encodeWav,
  mixInto,
  muLawDecode,
  muLawEncode,
} from "../src/audio/index.js";

const SECONDS = 60;
const ROUNDS = Math.max(1, Number(process.argv[2] ?? 7));

function speechLike(rate: number): Int16Array {
  const freqs = [180, 360, 540, 900, 1300, 2100, 3100];
  return Int16Array.from({ length: rate * SECONDS }, (_, i) => {
    const t = i / rate;
    const envelope = Math.max(0, Math.sin(2 * Math.PI * 3 * t));
    let v = 0;
    freqs.forEach((f, k) => (v += Math.sin(2 * Math.PI * f * t + k) / (k + 1)));
    return Math.round(8000 * envelope * v);
  });
}

/** The 20 ms frames of `signal` as views, created up front so the timed loops allocate nothing. */
function framesOf<T extends Int16Array | Uint8Array>(signal: T, samplesPerFrame: number): T[] {
  const frames: T[] = [];
  for (let i = 0; i + samplesPerFrame <= signal.length; i += samplesPerFrame) {
    frames.push(signal.subarray(i, i + samplesPerFrame) as T);
  }
  return frames;
}

/** `setup` runs untimed before every round and returns the timed body. */
function bench(name: string, setup: () => () => void): void {
  setup()(); // warm-up round (JIT)
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const body = setup();
    const start = process.hrtime.bigint();
    body();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const medianMs = times[Math.floor(times.length / 2)] as number;
  const realtime = (SECONDS * 1000) / medianMs;
  console.log(`${name.padEnd(34)} ${medianMs.toFixed(2).padStart(9)} ms ${realtime.toFixed(0).padStart(9)}x`);
}

const pcm8 = speechLike(8000);
const pcm16 = speechLike(16000);
const pcm24 = speechLike(24000);
const pcm48 = speechLike(48000);
const frames = new Map<number, Int16Array[]>([
  [8000, framesOf(pcm8, 160)],
  [16000, framesOf(pcm16, 320)],
  [24000, framesOf(pcm24, 480)],
  [48000, framesOf(pcm48, 960)],
]);
const framesAt = (rate: number) => frames.get(rate) as Int16Array[];

console.log(`audio primitives: ${SECONDS} s of audio in 20 ms frames, median of ${ROUNDS} rounds`);
console.log(`${"primitive".padEnd(34)} ${"median".padStart(12)} ${"realtime".padStart(10)}`);

const mu8 = muLawEncode(pcm8);
const a8 = aLawEncode(pcm8);
const bytes160 = new Uint8Array(160);
const pcm160 = new Int16Array(160);
bench("G.711 mu-law encode 8k", () => () => {
  for (const f of framesAt(8000)) muLawEncode(f, bytes160);
});
bench("G.711 mu-law decode 8k", () => {
  const fr = framesOf(mu8, 160);
  return () => {
    for (const f of fr) muLawDecode(f, pcm160);
  };
});
bench("G.711 A-law encode 8k", () => () => {
  for (const f of framesAt(8000)) aLawEncode(f, bytes160);
});
bench("G.711 A-law decode 8k", () => {
  const fr = framesOf(a8, 160);
  return () => {
    for (const f of fr) aLawDecode(f, pcm160);
  };
});

const g722Bytes = new Uint8Array(pcm16.length / 2);
new G722Encoder().encode(pcm16, g722Bytes);
bench("G.722 encode 16k", () => {
  const enc = new G722Encoder();
  return () => {
    for (const f of framesAt(16000)) enc.encode(f, bytes160);
  };
});
bench("G.722 decode 16k", () => {
  const dec = new G722Decoder();
  const fr = framesOf(g722Bytes, 160);
  const out = new Int16Array(320);
  return () => {
    for (const f of fr) dec.decode(f, out);
  };
});

for (const [from, to] of [
  [8000, 16000],
  [16000, 8000],
  [8000, 48000],
  [48000, 8000],
  [16000, 48000],
  [48000, 16000],
  [24000, 16000],
  [16000, 24000],
] as const) {
  bench(`resample ${from / 1000}k -> ${to / 1000}k`, () => {
    const r = new Resampler(from, to);
    return () => {
      for (const f of framesAt(from)) r.process(f);
    };
  });
}

bench("rechunk 16k (ragged -> 20 ms)", () => {
  // TTS-like ragged chunks of 1..1500 samples.
  const chunks: Int16Array[] = [];
  let seed = 1;
  for (let i = 0; i < pcm16.length; ) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const n = 1 + ((seed >>> 16) % 1500);
    chunks.push(pcm16.subarray(i, i + n));
    i += n;
  }
  let sink = 0;
  const r = new Rechunker({ sampleRate: 16000 }, (frame) => (sink += frame[0] as number));
  return () => {
    for (const c of chunks) r.push(c);
    r.flush();
  };
});

bench("gain ramp 8k (duck/restore each s)", () => {
  const copies = framesAt(8000).map((f) => f.slice());
  const g = new GainRamp(8000);
  return () => {
    copies.forEach((f, i) => {
      if (i % 50 === 0) g.setTarget(i % 100 === 0 ? 0.25 : 1, 200);
      g.process(f);
    });
  };
});

bench("mixInto 8k (gain 0.5)", () => {
  const dsts = framesAt(8000).map((f) => f.slice());
  const src = framesAt(8000);
  return () => {
    dsts.forEach((d, i) => mixInto(d, src[i] as Int16Array, 0.5));
  };
});

const wavBytes = encodeWav(pcm16, 16000);
bench("WAV encode 16k (whole buffer)", () => () => {
  encodeWav(pcm16, 16000);
});
bench("WAV decode 16k (whole buffer)", () => () => {
  decodeWav(wavBytes);
});
