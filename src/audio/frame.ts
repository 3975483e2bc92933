/**
 * The one audio currency inside the controller: mono PCM16 frames (DESIGN.md, "AudioFrame").
 * Wire formats (G.711, G.722, other rates) are converted at the edges by the rest of src/audio.
 */

export interface AudioFrame {
  /** Mono signed 16-bit samples. Ownership: whoever created the frame; consumers copy if they keep it. */
  pcm: Int16Array;
  /** Samples per second, e.g. 8000 or 16000. */
  sampleRate: number;
  /** Media time of the first sample, in ms since the start of the stream. */
  timestampMs: number;
  /** performance.now() when a media leg received the wire data that completed this caller frame (frame lag). */
  receivedAtMs?: number;
}

/** Samples in one millisecond; fractional for rates that are not multiples of 1000 (e.g. 44100 -> 44.1). */
export function samplesPerMs(sampleRate: number): number {
  return sampleRate / 1000;
}

/**
 * Whole number of samples in `ms` milliseconds at `sampleRate`.
 * Throws when the duration does not fall on a sample boundary, because a frame size that is silently
 * rounded would make the stream drift against the wall clock.
 */
export function samplesForMs(sampleRate: number, ms: number): number {
  const n = (sampleRate * ms) / 1000;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${ms} ms at ${sampleRate} Hz is not a whole number of samples`);
  }
  return n;
}

/** Duration in ms of `samples` samples at `sampleRate`. */
export function durationMs(samples: number, sampleRate: number): number {
  return (samples * 1000) / sampleRate;
}

/** Duration in ms of a frame. */
export function frameDurationMs(frame: AudioFrame): number {
  return durationMs(frame.pcm.length, frame.sampleRate);
}
