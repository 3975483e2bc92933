/**
 * The caller side both pipelines share: the VAD run on the caller's audio (TinySilero by default, at a rate it
 * supports), the inactivity watch (no caller audio frame for a while ends the call) and the silence that stands
 * in for muted audio. Synchronous and allocation-free per frame.
 */
import { AlignedResampler } from "../../audio/index.js";
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import { SpeechDetector, createVadEngine, type SpeechDetectorOptions, type VadEngine, type VadEvent } from "../../vad/index.js";

/** Zeroed PCM of any length from one growing buffer (a view: the caller writes it out before asking again). */
export class SilenceBuffer {
  private buf = new Int16Array(0);

  of(length: number): Int16Array {
    if (this.buf.length < length) this.buf = new Int16Array(Math.max(length, 2 * this.buf.length));
    // Processors work in place on caller frames: the shared buffer is zeroed again each time.
    return this.buf.subarray(0, length).fill(0);
  }
}

/** Our VAD on the caller's audio, resampled to a rate the engine supports. */
export class CallerVad {
  private constructor(
    private readonly detector: SpeechDetector,
    /** One streaming resampler per call: a one-shot resample per 20 ms frame would click at every edge and allocate. */
    private readonly resampler: AlignedResampler | undefined,
    readonly rate: number,
  ) {}

  static async create(opts: { callerRate: number; engine?: VadEngine | undefined; type?: string | undefined; detector?: SpeechDetectorOptions | undefined }): Promise<CallerVad> {
    const engine = opts.engine ?? (await createVadEngine(opts.type ?? "tinysilero"));
    return CallerVad.over(engine, opts.callerRate, opts.detector);
  }

  static over(engine: VadEngine, callerRate: number, detector?: SpeechDetectorOptions): CallerVad {
    const rate = engine.sampleRates.includes(callerRate) ? callerRate : (engine.sampleRates[0] ?? 16000);
    const resampler = rate === callerRate ? undefined : new AlignedResampler(callerRate, rate);
    return new CallerVad(new SpeechDetector(engine.createStream(rate), detector), resampler, rate);
  }

  /** The detector copies what it keeps, so the resampler's reused output view is safe to hand over. */
  push(pcm: Int16Array): readonly VadEvent[] {
    return this.detector.push(this.resampler ? this.resampler.process(pcm) : pcm);
  }
}

/**
 * `inactivityTimeoutMs`: fires once when no caller frame arrived for `ms`. `touch()` per frame only stores the
 * time; one timer re-arms for what is left (at most every second), so there is no timer churn per frame.
 */
export class InactivityWatch {
  private last = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: MediaClock,
    private readonly ms: number,
    private readonly onIdle: (ms: number) => void,
  ) {}

  start(): void {
    if (this.ms <= 0 || this.timer !== undefined) return;
    this.last = this.clock.now();
    this.arm(this.ms);
  }

  touch(): void {
    this.last = this.clock.now();
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private arm(inMs: number): void {
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      const idle = this.clock.now() - this.last;
      if (idle >= this.ms) this.onIdle(this.ms);
      else this.arm(Math.min(1000, this.ms - idle));
    }, Math.min(1000, inMs));
  }
}
