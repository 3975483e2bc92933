// npm run bench:vad — TinySilero vs onnxruntime-node vs WebRTC VAD over the 60 s fixture, in one process,
// engines alternating within each round (order rotated per round), warm-up first, then ROUNDS timed rounds.
// Prints per engine: median and min ms per 60 s of audio, RTF, the median over rounds of the per-round ratio
// TinySilero / ONNX, max abs diff vs the reference probabilities, and bytes of state per stream. No assertions.
// Usage: npm run bench:vad [-- --rounds 9]
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readWav } from "../src/audio/index.js";
import { createVadEngine, type TinySileroEngine, type VadStream } from "../src/vad/index.js";
import { FIXTURES } from "../src/vad/testutil.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "9" }, warmup: { type: "string", default: "2" } } });
const ROUNDS = Math.max(7, Number(values.rounds));
const WARMUP = Math.max(1, Number(values.warmup));

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface Runner {
  name: string;
  stream: VadStream;
  reference: boolean;
  times: number[];
  probs: Float32Array;
}

function runOnce(r: Runner, audio: Float32Array): number {
  const s = r.stream;
  const n = s.chunkSamples;
  s.reset();
  const t0 = performance.now();
  let k = 0;
  for (let o = 0; o + n <= audio.length; o += n) r.probs[k++] = s.process(audio, o);
  return performance.now() - t0;
}

const tiny = (await createVadEngine("tinysilero")) as TinySileroEngine;
const engines = [
  { name: `tinysilero (${tiny.isa})`, engine: tiny, reference: true },
  ...(tiny.isa === "avx2+fma"
    ? [{ name: "tinysilero (baseline)", engine: await createVadEngine("tinysilero", { tinysilero: { isa: 0 } }), reference: true }]
    : []),
  { name: "onnx (onnxruntime-node)", engine: await createVadEngine("onnx"), reference: true },
  { name: "webrtc (fvad wasm)", engine: await createVadEngine("webrtc"), reference: false },
];

console.log(`VAD bench: node ${process.version}, ${cpus()[0]?.model ?? "cpu?"} (${cpus().length} cpus), ${WARMUP} warm-up + ${ROUNDS} rounds, 60 s of audio per round`);
for (const sr of [16000, 8000] as const) {
  const wav = await readWav(join(FIXTURES, sr === 16000 ? "vad-bench-16k.wav" : "vad-bench-8k.wav"));
  const audio = Float32Array.from(wav.pcm, (v) => v / 32768);
  const seconds = audio.length / sr;
  const ref = JSON.parse(readFileSync(join(FIXTURES, sr === 16000 ? "vad-reference-probs.json" : "vad-reference-probs-8k.json"), "utf8")) as number[];
  const runners: Runner[] = engines.map((e) => {
    const stream = e.engine.createStream(sr);
    return { name: e.name, stream, reference: e.reference, times: [], probs: new Float32Array(Math.floor(audio.length / stream.chunkSamples)) };
  });
  for (let w = 0; w < WARMUP; w++) for (const r of runners) runOnce(r, audio);
  const ratios = new Map<Runner, number[]>(runners.map((r) => [r, []]));
  const onnx = runners.find((r) => r.name.startsWith("onnx")) as Runner;
  for (let round = 0; round < ROUNDS; round++) {
    const t = new Map<Runner, number>();
    for (let i = 0; i < runners.length; i++) {
      const r = runners[(i + round) % runners.length] as Runner;
      const ms = runOnce(r, audio);
      r.times.push(ms);
      t.set(r, ms);
    }
    for (const r of runners) ratios.get(r)?.push((t.get(r) as number) / (t.get(onnx) as number));
  }
  const rows = runners.map((r) => {
    let diff = "-";
    if (r.reference) {
      let m = 0;
      for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs((r.probs[i] as number) - (ref[i] as number)));
      diff = m.toExponential(2);
    }
    const med = median(r.times) * (60 / seconds);
    const min = Math.min(...r.times) * (60 / seconds);
    return [
      r.name,
      med.toFixed(1),
      min.toFixed(1),
      (med / 60000).toFixed(5),
      r === onnx ? "1" : median(ratios.get(r) ?? []).toFixed(3),
      diff,
      String(r.stream.stateBytes),
    ];
  });
  const head = ["engine", "median ms/60s", "min ms/60s", "RTF", "ratio vs ONNX (median)", "max |diff| vs ref", "state B/stream"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(`\n${sr} Hz (${runners[0]?.stream.chunkSamples} + ${sr === 16000 ? 64 : 32} context samples per Silero call; WebRTC 30 ms frames)`);
  console.log(line(head));
  for (const row of rows) console.log(line(row));
  for (const r of runners) r.stream.close();
}
