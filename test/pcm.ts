// PCM helpers shared by the media tests. Not imported by app code.
import { concatPcm } from "../src/audio/index.js";
import type { MediaLeg } from "../src/media/leg.js";

/** An asymmetric, never-silent signal: byte-swapping or mis-decoding it changes every sample. */
export function signal(samples: number, seed = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) {
    const v = ((i * 97 + seed * 31) % 12000) + 300;
    a[i] = i % 2 === 0 ? v : -v - 17;
  }
  return a;
}

/** Reads a leg's caller audio as it comes; the returned function joins what arrived so far. */
export function collectCallerAudio(leg: MediaLeg): () => Int16Array {
  const frames: Int16Array[] = [];
  void (async () => {
    for await (const f of leg.callerAudio) frames.push(f.pcm);
  })();
  return () => concatPcm(frames);
}
