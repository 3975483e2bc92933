/**
 * Speech detection over any VAD engine: per-chunk probabilities -> speech segments -> `speaking` / `silence`
 * events. Pure and synchronous (no timers: time is the count of samples pushed), 8 and 16 kHz (any rate the
 * engine runs), frames of any size (re-chunked internally to the engine's chunk size).
 *
 * Rules (those of Silero's get_speech_timestamps, applied as the chunks arrive; times in samples, chunk i covers
 * [i*W, (i+1)*W)):
 *  - speech starts at chunk i when p >= threshold (start = i*W);
 *  - while in speech, a chunk with p < negThreshold (default threshold - 0.15, at least 0.01) marks a possible end
 *    at its start (tempEnd = i*W) unless one is already marked; a later chunk with p >= threshold clears it
 *    (chunks between the two thresholds keep it);
 *  - the segment ends at tempEnd once a chunk i has i*W - tempEnd >= minSilence; it is kept only if
 *    tempEnd - start > minSpeech. At the end of the audio an open segment ends at the audio's length (same
 *    minSpeech rule);
 *  - padding: start - speechPad (>= 0) and end + speechPad (<= the audio seen so far, i.e. the audio length). Where Silero splits a gap shorter
 *    than 2*speechPad between the two segments, a streaming detector cannot look ahead: here the earlier segment
 *    keeps its full pad and the later one starts no earlier than its end. With minSilenceMs >= 2*speechPadMs (the
 *    defaults: 100 >= 60) that case cannot occur and the segments equal get_speech_timestamps'.
 *  - not implemented: Silero's max_speech_duration splitting (playbook `maxSpeechMs` is applied elsewhere).
 *
 * Events:
 *  - `speaking` as soon as the open segment is sure to be kept: no end is marked and (i+1)*W - start > minSpeech
 *    (so `speaking` comes minSpeechMs after the onset). startMs = padded start, durationMs = speech so far.
 *  - `silence` when the segment ends (minSilenceMs after the last speech chunk): startMs = padded start,
 *    durationMs = padded length (ws-call-api: startTime = speech start, duration = speech length).
 *  `atMs` is the stream time at which the event was decided (end of the chunk that triggered it).
 */
import { AppError } from "../errors.js";
import { copyAsFloat, type VadStream } from "./types.js";

export interface DetectorOptions {
  /** speech when p >= threshold (default 0.5) */
  threshold: number;
  /** speech ends only below this (default max(threshold - 0.15, 0.01)) */
  negThreshold?: number | undefined;
  /** default 250 */
  minSpeechMs: number;
  /** default 100 */
  minSilenceMs: number;
  /** default 30 */
  speechPadMs: number;
}

export const DEFAULT_DETECTOR_OPTIONS: Readonly<DetectorOptions> = {
  threshold: 0.5,
  minSpeechMs: 250,
  minSilenceMs: 100,
  speechPadMs: 30,
};

export interface VadEvent {
  type: "speaking" | "silence";
  /** padded start of the speech segment, ms since the start of the stream */
  startMs: number;
  /** `speaking`: speech so far; `silence`: the padded segment length */
  durationMs: number;
  /** stream time at which the event was decided */
  atMs: number;
}

export interface SpeechSegment {
  startMs: number;
  endMs: number;
  durationMs: number;
}

function resolve(options: Partial<DetectorOptions>): Required<DetectorOptions> {
  const o = { ...DEFAULT_DETECTOR_OPTIONS, ...options };
  const negThreshold = o.negThreshold ?? Math.max(o.threshold - 0.15, 0.01);
  for (const [k, v] of Object.entries({ threshold: o.threshold, negThreshold })) {
    if (!(v >= 0 && v <= 1)) throw new AppError("INTERNAL", `VAD ${k} must be within 0-1, not ${v}`, { retryable: false });
  }
  for (const [k, v] of Object.entries({ minSpeechMs: o.minSpeechMs, minSilenceMs: o.minSilenceMs, speechPadMs: o.speechPadMs })) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new AppError("INTERNAL", `VAD ${k} must be >= 0, not ${v}`, { retryable: false });
  }
  return { ...o, negThreshold };
}

/**
 * The segment rules on a probability sequence (one value per chunk of `chunkSamples`). Used by SpeechDetector and
 * by detectSegments(); works in samples and reports ms.
 */
export class SegmentTracker {
  private readonly opts: Required<DetectorOptions>;
  private readonly minSpeech: number;
  private readonly minSilence: number;
  private readonly pad: number;
  private index = 0;
  private triggered = false;
  private confirmed = false;
  private start = 0;
  /** 0 = none (as in Silero: an end at sample 0 is impossible because speech must have started before) */
  private tempEnd = 0;
  /** padded end of the last emitted segment */
  private lastEnd = 0;

  constructor(
    readonly sampleRate: number,
    readonly chunkSamples: number,
    options: Partial<DetectorOptions> = {},
  ) {
    this.opts = resolve(options);
    this.minSpeech = (sampleRate * this.opts.minSpeechMs) / 1000;
    this.minSilence = (sampleRate * this.opts.minSilenceMs) / 1000;
    this.pad = (sampleRate * this.opts.speechPadMs) / 1000;
  }

  get options(): Readonly<Required<DetectorOptions>> {
    return this.opts;
  }

  /** Feeds the probability of the next chunk; returns the event it causes, if any. */
  push(p: number): VadEvent | undefined {
    const i = this.index++;
    const W = this.chunkSamples;
    const { threshold, negThreshold } = this.opts;
    if (p >= threshold && this.tempEnd) this.tempEnd = 0;
    if (p >= threshold && !this.triggered) {
      this.triggered = true;
      this.confirmed = false;
      this.start = i * W;
      return this.confirm(i);
    }
    if (p < negThreshold && this.triggered) {
      if (!this.tempEnd) this.tempEnd = i * W;
      if (i * W - this.tempEnd < this.minSilence) return undefined;
      return this.end(this.tempEnd, (i + 1) * W);
    }
    return this.triggered ? this.confirm(i) : undefined;
  }

  /** End of the audio after `totalSamples` samples: closes an open segment. */
  finish(totalSamples: number): VadEvent[] {
    const out: VadEvent[] = [];
    if (this.triggered && totalSamples - this.start > this.minSpeech) {
      if (!this.confirmed) {
        this.confirmed = true;
        out.push(this.event("speaking", this.paddedStart(), totalSamples, totalSamples));
      }
      const e = this.end(totalSamples, totalSamples, totalSamples);
      if (e) out.push(e);
    }
    this.triggered = false;
    return out;
  }

  reset(): void {
    this.index = 0;
    this.triggered = false;
    this.confirmed = false;
    this.start = 0;
    this.tempEnd = 0;
    this.lastEnd = 0;
  }

  private paddedStart(): number {
    return Math.max(0, this.start - this.pad, this.lastEnd);
  }

  private confirm(i: number): VadEvent | undefined {
    const now = (i + 1) * this.chunkSamples;
    if (this.confirmed || this.tempEnd || now - this.start <= this.minSpeech) return undefined;
    this.confirmed = true;
    return this.event("speaking", this.paddedStart(), now, now);
  }

  private end(endSample: number, now: number, limit = now): VadEvent | undefined {
    const keep = endSample - this.start > this.minSpeech;
    const start = this.paddedStart();
    this.triggered = false;
    this.tempEnd = 0;
    if (!keep) return undefined;
    this.confirmed = false;
    const end = Math.min(endSample + this.pad, Math.max(limit, endSample));
    this.lastEnd = end;
    return this.event("silence", start, end, now);
  }

  private event(type: VadEvent["type"], start: number, end: number, now: number): VadEvent {
    const ms = 1000 / this.sampleRate;
    return { type, startMs: start * ms, durationMs: (end - start) * ms, atMs: now * ms };
  }
}

/** Segments of a whole probability sequence (the same rules, no engine): for tests and offline analysis. */
export function detectSegments(
  probabilities: ArrayLike<number>,
  sampleRate: number,
  chunkSamples: number,
  options: Partial<DetectorOptions> = {},
  totalSamples = probabilities.length * chunkSamples,
): SpeechSegment[] {
  const t = new SegmentTracker(sampleRate, chunkSamples, options);
  const events: VadEvent[] = [];
  for (let i = 0; i < probabilities.length; i++) {
    const e = t.push(probabilities[i] as number);
    if (e) events.push(e);
  }
  events.push(...t.finish(totalSamples));
  return segmentsOf(events);
}

/** The segments described by the `silence` events. */
export function segmentsOf(events: readonly VadEvent[]): SpeechSegment[] {
  return events
    .filter((e) => e.type === "silence")
    .map((e) => ({ startMs: e.startMs, endMs: e.startMs + e.durationMs, durationMs: e.durationMs }));
}

const NO_EVENTS: readonly VadEvent[] = Object.freeze([]);

export interface SpeechDetectorOptions extends Partial<DetectorOptions> {
  /** Called with each chunk's probability (e.g. to print or record them). */
  onProbability?: (p: number, chunkIndex: number) => void;
}

/**
 * Streaming detector: push frames of any size, get the events they complete. Owns one VadStream (per call leg).
 */
export class SpeechDetector {
  private readonly tracker: SegmentTracker;
  private readonly chunk: Float32Array;
  private fill = 0;
  private samples = 0;
  private chunks = 0;
  private readonly onProbability: ((p: number, chunkIndex: number) => void) | undefined;

  constructor(
    private readonly stream: VadStream,
    options: SpeechDetectorOptions = {},
  ) {
    const { onProbability, ...rules } = options;
    this.onProbability = onProbability;
    this.tracker = new SegmentTracker(stream.sampleRate, stream.chunkSamples, rules);
    this.chunk = new Float32Array(stream.chunkSamples);
  }

  get sampleRate(): number {
    return this.stream.sampleRate;
  }

  /** Stream time in ms (samples pushed so far). */
  get timeMs(): number {
    return (this.samples * 1000) / this.stream.sampleRate;
  }

  /**
   * Adds a frame (PCM16, or floats scaled as PCM16 / 32768) and returns the events it completed (usually none:
   * then a shared empty array).
   */
  push(frame: Int16Array | Float32Array): readonly VadEvent[] {
    let events: VadEvent[] | undefined;
    const size = this.chunk.length;
    let i = 0;
    while (i < frame.length) {
      const take = Math.min(size - this.fill, frame.length - i);
      copyAsFloat(frame, i, this.chunk, this.fill, take);
      this.fill += take;
      this.samples += take;
      i += take;
      if (this.fill === size) {
        this.fill = 0;
        const e = this.run();
        if (e) (events ??= []).push(e);
      }
    }
    return events ?? NO_EVENTS;
  }

  /**
   * End of the audio: a partial last chunk is zero-padded and run (as Silero does), then an open segment is
   * closed at the audio's length.
   */
  end(): readonly VadEvent[] {
    const events: VadEvent[] = [];
    if (this.fill > 0) {
      this.chunk.fill(0, this.fill);
      this.fill = 0;
      const e = this.run();
      if (e) events.push(e);
    }
    events.push(...this.tracker.finish(this.samples));
    return events;
  }

  reset(): void {
    this.stream.reset();
    this.tracker.reset();
    this.fill = 0;
    this.samples = 0;
    this.chunks = 0;
  }

  private run(): VadEvent | undefined {
    const p = this.stream.process(this.chunk);
    this.onProbability?.(p, this.chunks);
    this.chunks++;
    return this.tracker.push(p);
  }
}
