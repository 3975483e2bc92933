/**
 * Re-chunker: turns PCM arriving in arbitrary sizes (TTS chunks, WebSocket messages, resampler output) into
 * fixed frames of `frameMs` (20 ms by default), which is what media legs and the VAD expect.
 *
 * Ownership: frames are emitted through the callback in one reused Int16Array. It is valid only during the
 * callback; a callee that keeps the samples must copy them. The callback must not call push/flush re-entrantly.
 */

import { samplesForMs } from "./frame.js";

export interface RechunkerOptions {
  sampleRate: number;
  /** Frame duration in ms; must be a whole number of samples at `sampleRate`. Default 20. */
  frameMs?: number;
}

/** Receives one frame and the media time of its first sample (ms since the first pushed sample). */
export type FrameCallback = (frame: Int16Array, timestampMs: number) => void;

export class Rechunker {
  readonly frameSamples: number;
  readonly sampleRate: number;
  private readonly frame: Int16Array;
  private fill = 0;
  private emitted = 0;

  constructor(
    options: RechunkerOptions,
    private readonly onFrame: FrameCallback,
  ) {
    this.sampleRate = options.sampleRate;
    this.frameSamples = samplesForMs(options.sampleRate, options.frameMs ?? 20);
    if (this.frameSamples === 0) throw new RangeError("frame duration must be at least one sample");
    this.frame = new Int16Array(this.frameSamples);
  }

  /** Samples waiting for a full frame. */
  get pending(): number {
    return this.fill;
  }

  /** Adds samples and emits every frame that became complete. */
  push(pcm: Int16Array): void {
    const size = this.frameSamples;
    const frame = this.frame;
    let i = 0;
    while (i < pcm.length) {
      const take = Math.min(size - this.fill, pcm.length - i);
      // Loop copy instead of set(subarray) so that no view object is allocated per frame.
      for (let k = 0; k < take; k++) frame[this.fill + k] = pcm[i + k] as number;
      this.fill += take;
      i += take;
      if (this.fill === size) this.emit(frame);
    }
  }

  /**
   * Emits what is pending: padded with silence to a full frame when `padWithSilence`, otherwise as a
   * shorter frame (a view of the reused buffer). Nothing is emitted when nothing is pending.
   */
  flush(padWithSilence = false): void {
    if (this.fill === 0) return;
    if (padWithSilence) {
      this.frame.fill(0, this.fill);
      this.fill = this.frameSamples;
      this.emit(this.frame);
    } else {
      this.emit(this.frame.subarray(0, this.fill));
    }
  }

  /** Drops pending samples and restarts the media clock at 0 (e.g. after a barge-in clear). */
  reset(): void {
    this.fill = 0;
    this.emitted = 0;
  }

  private emit(frame: Int16Array): void {
    const timestampMs = (this.emitted * 1000) / this.sampleRate;
    this.emitted += this.fill;
    this.fill = 0;
    this.onFrame(frame, timestampMs);
  }
}
