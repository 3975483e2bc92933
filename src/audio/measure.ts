/** Small whole-buffer helpers for PCM16: joining and level measurement (tests, benches, local engines). */
import type { AudioFrame } from "./frame.js";

/** Root mean square of PCM16 samples, in full-scale units (0..1). */
export function rms(pcm: Int16Array): number {
  if (pcm.length === 0) return 0;
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / pcm.length) / 32768;
}

/** Joins frames (or sample arrays) into one array. */
export function concatPcm(parts: readonly (Int16Array | AudioFrame)[]): Int16Array {
  const arrays = parts.map((p) => (p instanceof Int16Array ? p : p.pcm));
  const out = new Int16Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
