/**
 * Call recorder: a WAV file with the caller on the left channel and the agent on the right (or both mixed when
 * `stereo` is false), at 8 or 16 kHz (playbook.md §2.12, config.md §2.11).
 *
 * Alignment: both sides are placed by their frames' `timestampMs` on the call's media clock (caller frames are
 * stamped by the leg from its sample count, agent frames by the pacer from the same start), not by arrival
 * order. Where a side sent nothing (caller muted or silent on the wire, agent not speaking) the channel holds
 * silence. Frames at another rate are resampled per side; the resampler's group delay is taken out, so a click
 * at media time t lands on sample round(t * rate / 1000) in both channels.
 *
 * Incremental and crash-safe: samples are kept in a per-channel ring for `latencyMs` (so the side that lags a
 * little, typically the caller behind the paced agent, still lands in place) and then written in batches of
 * about `batchMs` through src/audio's WavWriter, which rewrites the header sizes after each batch: a crash
 * leaves a valid WAV holding everything written so far. All file I/O is asynchronous and never awaited on the
 * audio path; a write error stops the recording (reported once via `onError` and by `close()`), never the call.
 * Audio that arrives for a position already written (later than `latencyMs`) is dropped and counted.
 */

import type { AudioFrame } from "../../audio/index.js";
import { Resampler, WavWriter } from "../../audio/index.js";
import type { Logger } from "../../log.js";

export type RecorderSide = "caller" | "agent";

export interface RecorderOptions {
  path: string;
  /** 8000 or 16000 (default 16000). */
  sampleRate?: number;
  /** Caller left, agent right (default true); false = both mixed into one channel. */
  stereo?: boolean;
  /** How long samples wait for the other side before being written (default 500 ms). */
  latencyMs?: number;
  /** Approximate size of a write (default 250 ms of audio). */
  batchMs?: number;
  /** fsync after each batch (survives power loss, not just a crash). Default false. */
  fsync?: boolean;
  /** Called once with the first write error. */
  onError?: (err: Error) => void;
  logger?: Logger;
}

const RING_SECONDS = 10;

class Side {
  resampler: Resampler | undefined;
  rate = 0;
  /** Media time expected for the next frame (discontinuity detection). */
  nextMs = Number.NaN;
  /** Absolute output index where the next resampler output lands. */
  pos = 0;
  /** One past the highest absolute index written by this side. */
  end = 0;
  constructor(readonly ring: Int16Array) {}
}

function clamp16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

export class Recorder {
  readonly path: string;
  readonly sampleRate: number;
  readonly stereo: boolean;
  private readonly writer: WavWriter;
  private readonly capacity: number;
  private readonly latency: number;
  private readonly batch: number;
  private readonly sides: Record<RecorderSide, Side>;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly logger: Logger | undefined;
  /** Absolute index of the first sample not yet handed to the writer. */
  private written = 0;
  private late = 0;
  private failure: Error | undefined;
  private isClosed = false;
  private pending: Promise<void> = Promise.resolve();
  private readonly spare: Int16Array[] = [];

  private constructor(writer: WavWriter, options: RecorderOptions, sampleRate: number) {
    this.writer = writer;
    this.path = options.path;
    this.sampleRate = sampleRate;
    this.stereo = options.stereo ?? true;
    this.capacity = RING_SECONDS * sampleRate;
    this.latency = Math.round(((options.latencyMs ?? 500) * sampleRate) / 1000);
    this.batch = Math.max(1, Math.round(((options.batchMs ?? 250) * sampleRate) / 1000));
    if (this.latency + 2 * this.batch > this.capacity / 2) throw new RangeError("recorder latency/batch too large");
    this.sides = { caller: new Side(new Int16Array(this.capacity)), agent: new Side(new Int16Array(this.capacity)) };
    this.onError = options.onError;
    this.logger = options.logger;
  }

  /** Creates the file (with an empty WAV header) and returns the recorder. */
  static async open(options: RecorderOptions): Promise<Recorder> {
    const sampleRate = options.sampleRate ?? 16000;
    if (sampleRate !== 8000 && sampleRate !== 16000) throw new RangeError(`recorder sample rate must be 8000 or 16000, got ${sampleRate}`);
    const stereo = options.stereo ?? true;
    const writer = await WavWriter.open(options.path, { sampleRate, channels: stereo ? 2 : 1, fsync: options.fsync ?? false });
    return new Recorder(writer, options, sampleRate);
  }

  /** Samples per channel handed to the file so far. */
  get samplesWritten(): number {
    return this.written;
  }

  /** Samples dropped because they arrived after their position had been written. */
  get lateSamples(): number {
    return this.late;
  }

  /** The write error that stopped the recording, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Caller audio as received (before denoise), stamped on the call's media clock. */
  writeCaller(frame: AudioFrame): void {
    this.write("caller", frame);
  }

  /** Agent audio as sent to the caller (after ambiance mixing), stamped on the call's media clock. */
  writeAgent(frame: AudioFrame): void {
    this.write("agent", frame);
  }

  /** Places one frame of a side. The frame is copied; the caller keeps ownership. */
  write(sideName: RecorderSide, frame: AudioFrame): void {
    if (this.isClosed || this.failure || frame.pcm.length === 0) return;
    const side = this.sides[sideName];
    const rate = frame.sampleRate;
    const at = Math.round((frame.timestampMs * this.sampleRate) / 1000);
    const continuous = Math.abs(frame.timestampMs - side.nextMs) < 0.5;
    if (rate === this.sampleRate) {
      if (side.resampler) this.endSegment(side);
      // Within a continuous stream, keep counting samples (no rounding jitter between frames).
      this.place(side, continuous && side.rate === rate ? side.pos : at, frame.pcm);
      side.pos = (continuous && side.rate === rate ? side.pos : at) + frame.pcm.length;
    } else {
      if (!side.resampler || side.rate !== rate || !continuous) {
        this.endSegment(side);
        side.resampler = new Resampler(rate, this.sampleRate);
        side.pos = at - side.resampler.delay;
      }
      const out = side.resampler.process(frame.pcm);
      this.place(side, side.pos, out);
      side.pos += out.length;
    }
    side.rate = rate;
    side.nextMs = frame.timestampMs + (frame.pcm.length * 1000) / rate;
    this.maybeFlush();
  }

  /**
   * Writes everything placed so far (silence-filled up to the furthest side) and waits for the file. The
   * recording goes on; later audio for positions before that point is dropped.
   */
  async flush(): Promise<void> {
    this.writeUpTo(this.maxEnd());
    await this.pending;
  }

  /**
   * Ends the recording: drains the resamplers, writes what is left (the shorter side padded with silence) and
   * closes the file. Rejects with the write error if the recording failed. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      if (!this.failure) {
        this.endSegment(this.sides.caller);
        this.endSegment(this.sides.agent);
        this.writeUpTo(this.maxEnd());
      }
      const finished = this.pending.then(() => this.writer.close());
      this.pending = finished.catch((err: unknown) => this.fail(err));
    }
    await this.pending;
    if (this.failure) throw this.failure;
  }

  // ---------------------------------------------------------------------------------------------------------

  private maxEnd(): number {
    return Math.max(this.sides.caller.end, this.sides.agent.end);
  }

  /** Drains a side's resampler (the filter tail) into place and forgets it. */
  private endSegment(side: Side): void {
    const r = side.resampler;
    if (!r) return;
    const tail = r.flush();
    this.place(side, side.pos, tail);
    side.pos += tail.length;
    side.resampler = undefined;
  }

  private place(side: Side, pos: number, pcm: Int16Array): void {
    let start = 0;
    if (pos < this.written) {
      start = Math.min(pcm.length, this.written - pos);
      if (pos >= 0) this.late += start; // negative positions are the resampler's leading delay, not late audio
    }
    const endAbs = pos + pcm.length;
    if (endAbs > this.written + this.capacity) this.writeUpTo(endAbs - this.capacity); // runaway side: force out
    const ring = side.ring;
    const cap = this.capacity;
    for (let i = start; i < pcm.length; i++) {
      const abs = pos + i;
      if (abs < this.written) continue;
      const k = abs % cap;
      ring[k] = clamp16((ring[k] as number) + (pcm[i] as number));
    }
    if (endAbs > side.end) side.end = endAbs;
  }

  private maybeFlush(): void {
    const horizon = this.maxEnd() - this.latency;
    if (horizon - this.written >= this.batch) this.writeUpTo(horizon);
  }

  /** Hands [written, to) to the writer (asynchronously) and clears those ring slots. */
  private writeUpTo(to: number): void {
    if (this.failure || to <= this.written) return;
    const n = to - this.written;
    const channels = this.stereo ? 2 : 1;
    let buf = this.spare.pop();
    if (!buf || buf.length < n * channels) buf = new Int16Array(Math.max(n * channels, this.batch * 2 * channels));
    const left = this.sides.caller.ring;
    const right = this.sides.agent.ring;
    const cap = this.capacity;
    for (let i = 0; i < n; i++) {
      const k = (this.written + i) % cap;
      const l = left[k] as number;
      const r = right[k] as number;
      left[k] = 0;
      right[k] = 0;
      if (channels === 2) {
        buf[2 * i] = l;
        buf[2 * i + 1] = r;
      } else {
        buf[i] = clamp16(l + r);
      }
    }
    this.written = to;
    const chunk = buf.subarray(0, n * channels);
    const owned = buf;
    const op = this.writer.append(chunk);
    this.pending = op.then(
      () => {
        if (this.spare.length < 2) this.spare.push(owned);
      },
      (err: unknown) => this.fail(err),
    );
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.logger?.error({ err: this.failure, path: this.path }, "recording stopped by a write error");
    this.onError?.(this.failure);
  }
}
