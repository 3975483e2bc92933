// Test helpers: the shared VAD fixtures (../shared/fixtures/vad beside the repository). Not imported by app code.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readWav } from "../audio/index.js";
import { sharedFixtures } from "../../test/shared-fixtures.js";

export const FIXTURES = sharedFixtures("vad");

export interface VadFixture {
  sampleRate: 16000 | 8000;
  wav: string;
  pcm: Int16Array;
  reference: number[];
  chunk: number;
}

const cache = new Map<number, VadFixture>();

/** The 60 s benchmark file and its reference probabilities (convention: vad-reference-meta.json). */
export async function vadFixture(sampleRate: 16000 | 8000): Promise<VadFixture> {
  const hit = cache.get(sampleRate);
  if (hit) return hit;
  const wav = join(FIXTURES, sampleRate === 16000 ? "vad-bench-16k.wav" : "vad-bench-8k.wav");
  const ref = join(FIXTURES, sampleRate === 16000 ? "vad-reference-probs.json" : "vad-reference-probs-8k.json");
  const meta = JSON.parse(readFileSync(join(FIXTURES, "vad-reference-meta.json"), "utf8")) as {
    files: Record<string, { sr: number; chunk: number; context: number }>;
  };
  const m = meta.files[sampleRate === 16000 ? "vad-reference-probs.json" : "vad-reference-probs-8k.json"];
  const audio = await readWav(wav);
  if (audio.sampleRate !== sampleRate || audio.channels !== 1 || m?.sr !== sampleRate) throw new Error(`unexpected fixture ${wav}`);
  const f: VadFixture = { sampleRate, wav, pcm: audio.pcm, reference: JSON.parse(readFileSync(ref, "utf8")) as number[], chunk: m.chunk };
  cache.set(sampleRate, f);
  return f;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
