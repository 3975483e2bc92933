/**
 * Kaiser-windowed sinc low-pass design (used by the resampler; runs once per rate pair, never per frame).
 * Formulas: Kaiser's empirical relations for beta and the length from the stop-band attenuation and the
 * transition width (Oppenheim & Schafer, "Discrete-Time Signal Processing", 7.6).
 */

/** Zeroth-order modified Bessel function of the first kind, by its power series (converges fast for x < 50). */
export function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Kaiser's beta for a stop-band attenuation of `attenuationDb`. */
export function kaiserBeta(attenuationDb: number): number {
  if (attenuationDb > 50) return 0.1102 * (attenuationDb - 8.7);
  if (attenuationDb >= 21) return 0.5842 * (attenuationDb - 21) ** 0.4 + 0.07886 * (attenuationDb - 21);
  return 0;
}

/** Taps needed (Kaiser's estimate) for `attenuationDb` with a transition of `transition` (fraction of the rate). */
export function kaiserLength(attenuationDb: number, transition: number): number {
  return Math.ceil((attenuationDb - 7.95) / (2.285 * 2 * Math.PI * transition)) + 1;
}

/**
 * Linear-phase low-pass of `length` taps (odd, so the delay (length-1)/2 is a whole number of samples),
 * cut-off `cutoff` as a fraction of the sampling rate (0 < cutoff < 0.5), normalised to unity gain at DC.
 */
export function kaiserLowPass(length: number, cutoff: number, beta: number): Float64Array {
  if (length % 2 !== 1) throw new RangeError(`low-pass length must be odd, got ${length}`);
  const h = new Float64Array(length);
  const centre = (length - 1) / 2;
  const i0Beta = besselI0(beta);
  let sum = 0;
  for (let k = 0; k < length; k++) {
    const t = k - centre;
    const sinc = t === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * t) / (Math.PI * t);
    const r = centre === 0 ? 0 : t / centre;
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta;
    h[k] = sinc * window;
    sum += h[k] as number;
  }
  for (let k = 0; k < length; k++) h[k] = (h[k] as number) / sum;
  return h;
}
