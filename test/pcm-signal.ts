// A shared test signal. Not imported by app code.

/** An asymmetric, never-silent signal: byte-swapping or mis-decoding it changes every sample. */
export function signal(samples: number, seed = 1): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) {
    const v = ((i * 97 + seed * 31) % 12000) + 300;
    a[i] = i % 2 === 0 ? v : -v - 17;
  }
  return a;
}
