/**
 * Local engines: synthesis speed of flite and espeak-ng (time to first frame, whole sentence, real-time factor,
 * flite's ratio against espeak-ng measured in the same run), and pocketsphinx latency on one flite utterance.
 * Median and min of several rounds, engines alternating. Needs the Debian packages of .ci/install-system-deps.
 */
import { configSchema, type ConfigInput } from "../src/config/schema.js";
import { concatPcm } from "../src/providers/pcm.js";
import { resolveAsr, resolveTts } from "../src/providers/registry.js";
import type { TtsProvider } from "../src/providers/types.js";

const ROUNDS = 7;
const TEXT = "Thank you for calling Northwind support. Your order shipped yesterday and should arrive on Friday.";
const config = configSchema.parse({} as ConfigInput);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function synth(tts: TtsProvider): Promise<{ firstMs: number; totalMs: number; audioMs: number; pcm: Int16Array }> {
  const t0 = performance.now();
  let firstMs = -1;
  const frames: Int16Array[] = [];
  for await (const f of tts.synthesize(TEXT)) {
    if (firstMs < 0) firstMs = performance.now() - t0;
    frames.push(f.pcm.slice());
  }
  const pcm = concatPcm(frames);
  return { firstMs, totalMs: performance.now() - t0, audioMs: (pcm.length / 16000) * 1000, pcm };
}

const engines = { flite: await resolveTts({ provider: "flite", sampleRate: 16000 }, config), espeak: await resolveTts({ provider: "espeak", sampleRate: 16000 }, config) };
const results: Record<string, { first: number[]; total: number[]; rtf: number[] }> = { flite: { first: [], total: [], rtf: [] }, espeak: { first: [], total: [], rtf: [] } };
const ratios: number[] = [];
let utterance: Int16Array | undefined;
await synth(engines.flite);
await synth(engines.espeak);
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 === 0 ? (["flite", "espeak"] as const) : (["espeak", "flite"] as const);
  const round: Record<string, number> = {};
  for (const name of order) {
    const r = await synth(engines[name]);
    results[name]?.first.push(r.firstMs);
    results[name]?.total.push(r.totalMs);
    results[name]?.rtf.push(r.totalMs / r.audioMs);
    round[name] = r.totalMs;
    if (name === "flite") utterance = r.pcm;
  }
  ratios.push((round.flite as number) / (round.espeak as number));
}
console.log(`TTS, one ${TEXT.length}-character sentence, ${ROUNDS} rounds   first frame (median)   whole (median / min)    RTF`);
for (const [name, r] of Object.entries(results)) {
  console.log(`${name.padEnd(10)} ${median(r.first).toFixed(0).padStart(38)} ms ${median(r.total).toFixed(0).padStart(13)} / ${Math.min(...r.total).toFixed(0)} ms ${median(r.rtf).toFixed(3).padStart(8)}`);
}
console.log(`flite / espeak-ng time ratio (median of per-round ratios): ${median(ratios).toFixed(2)}`);

const asr = await resolveAsr({ provider: "pocketsphinx" }, config);
const times: number[] = [];
let text = "";
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  for await (const r of asr.transcribe({ pcm: utterance as Int16Array, sampleRate: 16000 })) if (r.type === "final") text = r.text;
  times.push(performance.now() - t0);
}
console.log(`pocketsphinx on ${((utterance as Int16Array).length / 16000).toFixed(2)} s of flite speech: median ${median(times).toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms; heard "${text}"`);
