/**
 * Gain and mixing for PCM16: fades, ducking (lowering agent or music audio while the caller speaks) and
 * summing two streams. Everything saturates to the int16 range instead of wrapping around, because a wrapped
 * sample is a full-scale click.
 */

function clamp16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/** Linear gain for a level in dB (e.g. -20 dB -> 0.1). */
export function dbToGain(db: number): number {
  return 10 ** (db / 20);
}

/**
 * A gain stage whose gain moves linearly to a target over a given time.
 * The ramp is computed from a sample counter (not by accumulating increments), so it lands on the target
 * exactly: after `setTarget(g, ms)`, the sample at offset round(ms * rate / 1000) and all later ones get `g`.
 */
export class GainRamp {
  private current: number;
  private start: number;
  private goal: number;
  private length = 0;
  private position = 0;

  constructor(
    readonly sampleRate: number,
    initialGain = 1,
  ) {
    GainRamp.check(initialGain);
    this.current = this.start = this.goal = initialGain;
  }

  private static check(gain: number): void {
    if (!Number.isFinite(gain) || gain < 0) throw new RangeError(`gain must be a finite number >= 0, got ${gain}`);
  }

  /** The gain the next sample will get. */
  get gain(): number {
    return this.current;
  }

  /** The gain the ramp is heading to (equal to `gain` when done). */
  get target(): number {
    return this.goal;
  }

  /** True once the ramp reached its target. */
  get done(): boolean {
    return this.position >= this.length;
  }

  /**
   * Starts a ramp from the current gain to `gain` lasting `rampMs` (0 = jump now). A new target replaces a
   * ramp in progress, starting from wherever that ramp had got to, so there is no discontinuity.
   */
  setTarget(gain: number, rampMs = 0): void {
    GainRamp.check(gain);
    if (!Number.isFinite(rampMs) || rampMs < 0) throw new RangeError(`ramp must be >= 0 ms, got ${rampMs}`);
    this.start = this.current;
    this.goal = gain;
    this.length = Math.round((rampMs * this.sampleRate) / 1000);
    this.position = 0;
    if (this.length === 0) this.current = gain;
  }

  /** Applies the gain to `pcm` in place and returns it. */
  process(pcm: Int16Array): Int16Array {
    let i = 0;
    const n = pcm.length;
    if (this.position < this.length) {
      const span = this.goal - this.start;
      for (; i < n && this.position < this.length; i++) {
        const g = this.start + (span * this.position) / this.length;
        pcm[i] = clamp16(Math.round((pcm[i] as number) * g));
        this.position++;
      }
      this.current = this.position >= this.length ? this.goal : this.start + (span * this.position) / this.length;
    }
    const g = this.current;
    if (g === 1) return pcm;
    if (g === 0) {
      pcm.fill(0, i);
      return pcm;
    }
    for (; i < n; i++) pcm[i] = clamp16(Math.round((pcm[i] as number) * g));
    return pcm;
  }
}

/**
 * Adds `src * gain` into `dst` in place with saturation, over the first min(dst.length, src.length) samples.
 * Returns `dst`.
 */
export function mixInto(dst: Int16Array, src: Int16Array, gain = 1): Int16Array {
  const n = Math.min(dst.length, src.length);
  if (gain === 1) {
    for (let i = 0; i < n; i++) dst[i] = clamp16((dst[i] as number) + (src[i] as number));
  } else {
    for (let i = 0; i < n; i++) dst[i] = clamp16((dst[i] as number) + Math.round((src[i] as number) * gain));
  }
  return dst;
}
