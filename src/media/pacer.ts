/**
 * AgentPacer: the real-time release of agent audio to the wire (DESIGN.md, "MediaLeg").
 *
 * Agent audio (TTS output, files) is written per utterance (`playId`) as PCM of any chunk size at the pacer's
 * rate; the pacer cuts it into frames of `frameMs` and hands them to a sink (the leg's wire encoder) paced by a
 * clock, at most `leadMs` ahead of real time. It keeps the books needed for barge-in and "what was heard":
 * per-playId written / released / played-out samples, trackStart (first frame sent) and trackEnd (last frame
 * played out, or stopped), and marks that resolve when the audio before them has been played out or cleared.
 *
 * Media time: ms since the pacer was created, on its clock. A frame released for media time t is heard from t
 * to t + frameMs; it is "played out" once the clock passes t + frameMs. When the wire ran dry (nothing was
 * released for the current time, e.g. between utterances) the next frame starts at the current time rounded up
 * to a whole ms, so agent frame timestamps stay aligned with real time (the recorder relies on that).
 *
 * Interruption: `clear()` drops everything not yet released at once. Audio already released (at most `leadMs`)
 * cannot be recalled: it is counted as played. With `fadeOutMs` > 0 the fade is laid on the real-time axis
 * starting at the moment of the clear (gain 1 - (t - clearTime) / fadeOutMs): the audio released ahead is heard
 * as it was, the part of the fade beyond it is cut from the queued audio of the current utterance, enveloped,
 * and released, and everything else is dropped. The agent therefore falls silent at
 * max(released ahead, fadeOutMs) after the clear, i.e. within 40 ms for the barge-in default (20 ms fade,
 * 40 ms lead), and within one frame after the released lead for a hard cut.
 *
 * Ownership and allocation: written PCM is copied into pooled frame buffers (the caller may reuse its arrays
 * right after `write` returns). The sink receives one reused AudioFrame object whose `pcm` is a pooled buffer:
 * both are valid only during the sink call; a sink that keeps samples must copy them. The steady state (write,
 * release, play-out accounting) allocates nothing per frame once the pool has grown to the working queue size.
 * The sink and the transform must not call back into the pacer synchronously.
 */

import type { AudioFrame } from "../audio/index.js";
import { Resampler, samplesForMs } from "../audio/index.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import { Deque } from "./deque.js";
import { TypedEmitter } from "./emitter.js";
import type { PacedFrameInfo, FrameSink, FrameTransform, AgentPacerOptions, PlaySummary, ClearOptions, ClearResult, MarkResult, PlayOutcome, PlayStatus, AgentPacerEvents, AgentAudio, PlayOptions } from "./pacer-types.js";
import { EPS, FramePool, InflightRing, MARK, Play, fadeEnvelope, flushPartial, writeFrames, type Completion, type Entry, type FrameEntry, type PendingEvent } from "./pacer-queue.js";

export type { PacedFrameInfo, FrameSink, FrameTransform, AgentPacerOptions, TrackStartEvent, TrackEndReason, TrackEndEvent, PlaySummary, ClearOptions, ClearResult, MarkResult, PlayOutcome, PlayStatus, AgentPacerEvents, AgentAudio, PlayOptions } from "./pacer-types.js";


export class AgentPacer {
  readonly sampleRate: number;
  readonly frameMs: number;
  readonly leadMs: number;
  readonly frameSamples: number;
  readonly events: TypedEmitter<AgentPacerEvents>;

  private readonly clock: MediaClock;
  private readonly sink: FrameSink;
  private transform: FrameTransform | undefined;
  private idleSilence: boolean;
  private taps: FrameSink[] = [];
  private readonly maxQueuedSamples: number;
  private readonly origin: number;

  private readonly plays = new Deque<Play>(8);
  /** Open (not ended, not stopped) utterances by id. */
  private readonly open = new Map<string, Play>();
  private readonly pool: FramePool;
  private readonly completions = new Deque<Completion>(8);
  private readonly spaceWaiters: (() => void)[] = [];
  private pendingEvents: PendingEvent[] = [];

  private readonly inflight: InflightRing;

  private readonly silence: Int16Array;
  private readonly out: AudioFrame;
  private readonly info: PacedFrameInfo = { playId: undefined, speaking: false, last: false };

  private releasedUntil = 0;
  private queuedSamples = 0;
  private isPaused = false;
  private isClosed = false;
  private inSink = false;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(options: AgentPacerOptions) {
    this.sampleRate = options.sampleRate;
    this.frameMs = options.frameMs ?? 20;
    this.leadMs = options.leadMs ?? 40;
    this.frameSamples = samplesForMs(this.sampleRate, this.frameMs);
    if (this.frameSamples < 1) throw new RangeError("frame must hold at least one sample");
    this.pool = new FramePool(this.frameSamples);
    if (!(this.leadMs >= this.frameMs)) {
      throw new RangeError(`leadMs (${this.leadMs}) must be at least one frame (${this.frameMs} ms)`);
    }
    this.clock = options.clock ?? realClock;
    this.sink = options.sink;
    this.transform = options.transform;
    this.idleSilence = options.idleSilence ?? false;
    this.maxQueuedSamples = Math.round(((options.maxQueuedMs ?? 60_000) * this.sampleRate) / 1000);
    this.origin = this.clock.now();
    const ring = Math.ceil(this.leadMs / this.frameMs) + 2;
    this.inflight = new InflightRing(ring);
    this.silence = new Int16Array(this.frameSamples);
    this.out = { pcm: this.silence, sampleRate: this.sampleRate, timestampMs: 0 };
    this.events = new TypedEmitter<AgentPacerEvents>();
    if (this.idleSilence) this.kick();
  }

  /**
   * Installs (or removes, with undefined) the in-place frame transform after construction, e.g. ambiance loaded
   * once the call is up. `idleSilence` (when given) switches the release of silence while the agent is quiet.
   */
  setTransform(transform: FrameTransform | undefined, options: { idleSilence?: boolean } = {}): void {
    this.transform = transform;
    if (options.idleSilence !== undefined && options.idleSilence !== this.idleSilence) {
      this.idleSilence = options.idleSilence;
      if (this.idleSilence) this.kick();
    }
  }

  /**
   * Observes every frame as it is sent (after the transform), e.g. a call recorder. Same ownership as the sink:
   * the frame is valid only during the call. Returns a function that removes the tap.
   */
  addTap(tap: FrameSink): () => void {
    this.taps = [...this.taps, tap];
    return () => {
      this.taps = this.taps.filter((t) => t !== tap);
    };
  }

  /** Current media time (ms since the pacer was created). */
  get nowMs(): number {
    return this.clock.now() - this.origin;
  }

  /** Media time at which the audio released so far ends. */
  get releasedUntilMs(): number {
    return this.releasedUntil;
  }

  /** Audio written but not yet released, in ms. */
  get queuedMs(): number {
    return (this.queuedSamples * 1000) / this.sampleRate;
  }

  /** True while any utterance is queued, playing or playing out. */
  get active(): boolean {
    return this.plays.length > 0 || this.inflight.count > 0;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Appends agent PCM (at `sampleRate`) to utterance `playId`. A new id, or the id of an utterance that ended
   * or was stopped, starts a new utterance queued after the existing ones. Never waits (see `play` for
   * backpressure); the samples are copied.
   */
  write(playId: string, pcm: Int16Array): void {
    if (this.isClosed) return;
    this.writeTo(this.openPlay(playId), pcm);
  }

  /** Ends utterance `playId`: its last partial frame is padded with silence; trackEnd follows its playout. */
  endPlay(playId: string): void {
    const p = this.open.get(playId);
    if (p) this.endOf(p);
  }

  /**
   * Plays a source (PCM at the pacer's rate, or frames at any rate, resampled) as utterance `playId`,
   * waiting for room when more than `maxQueuedMs` is queued. Resolves when the utterance has played out or
   * was stopped. An aborted `signal` stops reading the source (what was queued still plays unless cleared).
   */
  async play(source: AgentAudio | Iterable<AgentAudio> | AsyncIterable<AgentAudio>, options: PlayOptions): Promise<PlayOutcome> {
    if (this.isClosed) return { playId: options.playId, playedMs: 0, totalMs: 0, interrupted: true };
    const p = this.openPlay(options.playId);
    const done = new Promise<PlayOutcome>((resolve) => p.waiters.push(resolve));
    let resampler: Resampler | undefined;
    const push = (chunk: AgentAudio): void => {
      if (chunk instanceof Int16Array || chunk.sampleRate === this.sampleRate) {
        this.writeTo(p, chunk instanceof Int16Array ? chunk : chunk.pcm);
        return;
      }
      if (!resampler || resampler.from !== chunk.sampleRate) {
        if (resampler) this.writeTo(p, resampler.flush());
        resampler = new Resampler(chunk.sampleRate, this.sampleRate);
      }
      this.writeTo(p, resampler.process(chunk.pcm));
    };
    const single = source instanceof Int16Array || !(Symbol.iterator in source || Symbol.asyncIterator in source);
    try {
      if (single) {
        push(source as AgentAudio);
      } else {
        for await (const chunk of source as AsyncIterable<AgentAudio>) {
          if (p.stopped || this.isClosed || options.signal?.aborted) break;
          await this.waitForSpace(options.signal);
          if (p.stopped || this.isClosed) break;
          push(chunk);
        }
      }
      if (resampler && !p.stopped) this.writeTo(p, resampler.flush());
    } finally {
      if ((options.end ?? true) && !p.stopped) this.endOf(p);
    }
    return done;
  }

  /**
   * Resolves when the audio written before it has been played out (`played: true`) or was cleared
   * (`played: false`). It goes after utterance `playId` (default: the last queued one); a partial frame of that
   * utterance is completed with silence first. With nothing queued it resolves once the released audio has
   * played out.
   */
  mark(name: string, playId?: string): Promise<MarkResult> {
    return new Promise<MarkResult>((resolve) => {
      if (this.isClosed) {
        resolve({ name, played: false, atMs: this.nowMs });
        return;
      }
      const p = playId === undefined ? this.lastQueuedPlay() : this.findQueuedPlay(playId);
      if (p) {
        if (flushPartial(p)) this.queuedSamples += this.frameSamples;
        p.entries.push({ kind: MARK, name, resolve });
      } else {
        this.completions.push({ at: this.releasedUntil, run: (atMs) => resolve({ name, played: true, atMs }) });
      }
      this.kick();
    });
  }

  /**
   * Drops all queued agent audio at once (see the file comment for the fade). Emits trackEnd
   * {reason:"interrupted"} for every stopped utterance, resolves their marks with `played: false`, and returns
   * what each utterance played.
   */
  clear(options: ClearOptions = {}): ClearResult {
    if (this.inSink) throw new Error("AgentPacer.clear must not be called from the sink or transform");
    const elapsed = this.nowMs;
    this.retire(elapsed);
    const fadeMs = Math.max(0, options.fadeOutMs ?? 0);
    const plays: PlaySummary[] = [];

    // Utterances fully released but still playing out are heard to their end.
    for (let i = 0; i < this.completions.length; i++) {
      const p = this.completions.at(i)?.play;
      if (p) plays.push(this.summary(p, p.releasedSamples, false));
    }

    // The fade continues the audible utterance on the real-time axis.
    const head = this.plays.peek();
    let fadePlay: Play | undefined;
    let fadeStart = 0;
    let keep = 0;
    if (fadeMs > 0 && !this.isPaused && head && head.started && !head.stopped) {
      fadeStart = this.releasedUntil >= elapsed ? this.releasedUntil : Math.ceil(elapsed);
      keep = Math.max(0, Math.round(((elapsed + fadeMs - fadeStart) * this.sampleRate) / 1000));
      if (keep > 0) fadePlay = head;
    }
    const fadeEnd = elapsed + fadeMs;

    let stopAt = Math.max(this.releasedUntil, elapsed);
    const kept = new Deque<Entry>(4);
    let keptSamples = 0;
    let frameIndex = 0;
    for (let p = this.plays.shift(); p; p = this.plays.shift()) {
      for (let e = p.entries.shift(); e; e = p.entries.shift()) {
        if (e.kind === MARK) {
          e.resolve({ name: e.name, played: false, atMs: elapsed });
          continue;
        }
        this.queuedSamples -= this.frameSamples;
        if (p === fadePlay && keptSamples < keep) {
          const take = Math.min(e.samples, keep - keptSamples);
          fadeEnvelope(e.pcm, fadeStart + frameIndex * this.frameMs, fadeEnd, fadeMs, take, this.sampleRate);
          e.samples = take;
          keptSamples += take;
          frameIndex++;
          kept.push(e);
        } else {
          this.pool.free(e);
        }
      }
      if (p.partial) {
        this.pool.free(p.partial);
        p.partial = undefined;
      }
      p.ended = true;
      p.stopped = true;
      if (this.open.get(p.playId) === p) this.open.delete(p.playId);
      const played = p.releasedSamples + (p === fadePlay ? keptSamples : 0);
      const summary = this.summary(p, played, true);
      plays.push(summary);
      this.pendingEvents.push({
        type: "trackEnd",
        event: { playId: p.playId, reason: "interrupted", playedMs: summary.playedMs, totalMs: summary.totalMs, atMs: elapsed },
      });
      const outcome: PlayOutcome = { playId: p.playId, playedMs: summary.playedMs, totalMs: summary.totalMs, interrupted: true };
      for (const w of p.waiters.splice(0)) w(outcome);
    }
    this.queuedSamples = Math.max(0, this.queuedSamples);
    if (fadePlay && kept.length > 0) {
      // Re-queue the enveloped tail; it is released (paced) before anything written after the clear.
      for (let e = kept.shift(); e; e = kept.shift()) {
        fadePlay.entries.push(e);
        this.queuedSamples += this.frameSamples;
      }
      this.plays.push(fadePlay);
      stopAt = Math.max(stopAt, fadeStart + (keptSamples * 1000) / this.sampleRate);
    }
    this.wakeSpaceWaiters(true);
    this.pump();
    return { clearedAtMs: elapsed, stopAtMs: stopAt, plays };
  }

  /** Freezes playback at the current frame (released audio still plays out). Idempotent. */
  pause(): void {
    this.isPaused = true;
  }

  /** Continues from the same sample. Idempotent. */
  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.kick();
  }

  /** Books of one utterance still known to the pacer (queued, playing, or playing out). */
  status(playId: string): PlayStatus | undefined {
    let found: Play | undefined;
    for (let i = this.plays.length - 1; i >= 0 && !found; i--) {
      const p = this.plays.at(i);
      if (p?.playId === playId) found = p;
    }
    for (let i = 0; i < this.completions.length && !found; i++) {
      const p = this.completions.at(i)?.play;
      if (p?.playId === playId) found = p;
    }
    if (!found) return undefined;
    return {
      playId,
      playedMs: this.ms(found.playedSamples),
      releasedMs: this.ms(found.releasedSamples),
      totalMs: this.ms(found.writtenSamples),
      started: found.started,
      ended: found.ended,
    };
  }

  /**
   * Runs the pacer now: retires played-out frames, releases due frames, resolves marks, emits events.
   * Called by its own timer; tests and legs may call it after writing to avoid waiting for the next timer.
   */
  pump(): void {
    if (this.isClosed || this.inSink) return;
    const elapsed = this.nowMs;
    this.retire(elapsed);
    const starved = this.release(elapsed);
    this.retire(elapsed);
    this.flushEvents();
    this.schedule(elapsed, starved);
  }

  /** Stops the pacer: queued audio is dropped (trackEnd interrupted), marks resolve unplayed, timers stop. */
  close(): void {
    if (this.isClosed) return;
    this.clear();
    for (let c = this.completions.shift(); c; c = this.completions.shift()) c.run(this.nowMs);
    this.isClosed = true;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.wakeSpaceWaiters(true);
    this.flushEvents();
  }

  // ---------------------------------------------------------------------------------------------------------

  private ms(samples: number): number {
    return (samples * 1000) / this.sampleRate;
  }

  private summary(p: Play, playedSamples: number, interrupted: boolean): PlaySummary {
    return {
      playId: p.playId,
      playedMs: this.ms(playedSamples),
      totalMs: this.ms(p.writtenSamples),
      started: p.started || playedSamples > 0,
      interrupted,
    };
  }

  private openPlay(playId: string): Play {
    let p = this.open.get(playId);
    if (!p) {
      p = new Play(playId);
      this.open.set(playId, p);
      this.plays.push(p);
    }
    return p;
  }

  private lastQueuedPlay(): Play | undefined {
    return this.plays.at(this.plays.length - 1);
  }

  private findQueuedPlay(playId: string): Play | undefined {
    for (let i = this.plays.length - 1; i >= 0; i--) {
      const p = this.plays.at(i);
      if (p?.playId === playId && !p.stopped) return p;
    }
    return undefined;
  }

  private writeTo(p: Play, pcm: Int16Array): void {
    if (p.stopped || p.ended || this.isClosed || pcm.length === 0) return;
    const queued = writeFrames(p, pcm, this.pool);
    this.queuedSamples += queued;
    if (queued > 0) this.kick();
  }

  private endOf(p: Play): void {
    if (p.ended) return;
    if (flushPartial(p)) this.queuedSamples += this.frameSamples;
    p.ended = true;
    if (this.open.get(p.playId) === p) this.open.delete(p.playId);
    this.kick();
  }

  /** The utterance to release from, handling marks and finished utterances at the head of the queue. */
  private current(): Play | undefined {
    for (;;) {
      const p = this.plays.peek();
      if (!p) return undefined;
      let e = p.entries.peek();
      while (e && e.kind === MARK) {
        p.entries.shift();
        const mark = e;
        this.completions.push({ at: this.releasedUntil, run: (atMs) => mark.resolve({ name: mark.name, played: true, atMs }) });
        e = p.entries.peek();
      }
      if (e) return p;
      if (!p.ended || p.partial) return undefined; // underrun: the utterance waits for more audio
      this.plays.shift();
      if (this.open.get(p.playId) === p) this.open.delete(p.playId);
      if (!p.stopped) {
        this.completions.push({ at: this.releasedUntil, play: p, run: (atMs) => this.finish(p, atMs) });
      }
    }
  }

  private finish(p: Play, atMs: number): void {
    if (p.stopped) return;
    p.stopped = true;
    const playedMs = this.ms(p.releasedSamples);
    const totalMs = this.ms(p.writtenSamples);
    this.pendingEvents.push({ type: "trackEnd", event: { playId: p.playId, reason: "finished", playedMs, totalMs, atMs } });
    const outcome: PlayOutcome = { playId: p.playId, playedMs, totalMs, interrupted: false };
    for (const w of p.waiters.splice(0)) w(outcome);
  }

  /** Releases every due frame. Returns true when agent audio was wanted but none was available (underrun). */
  private release(elapsed: number): boolean {
    const frameMs = this.frameMs;
    for (;;) {
      const start = this.releasedUntil >= elapsed - EPS ? this.releasedUntil : Math.ceil(elapsed - EPS);
      if (start + frameMs > elapsed + this.leadMs + EPS) return false;
      const play = this.isPaused ? undefined : this.current();
      if (play) {
        const f = play.entries.shift() as FrameEntry;
        this.queuedSamples -= this.frameSamples;
        if (!play.started) {
          play.started = true;
          this.pendingEvents.push({ type: "trackStart", event: { playId: play.playId, atMs: start } });
        }
        play.releasedSamples += f.samples;
        this.emitFrame(f.pcm, start, play.playId, true, play.ended && !play.partial && play.releasedSamples >= play.writtenSamples);
        this.inflight.push(play, start + frameMs, f.samples);
        this.pool.free(f);
        this.releasedUntil = start + frameMs;
        this.wakeSpaceWaiters(false);
      } else if (this.idleSilence) {
        this.silence.fill(0);
        this.emitFrame(this.silence, start, undefined, false, false);
        this.releasedUntil = start + frameMs;
      } else {
        return !this.isPaused && this.plays.length > 0;
      }
    }
  }

  private emitFrame(pcm: Int16Array, start: number, playId: string | undefined, speaking: boolean, last: boolean): void {
    this.out.pcm = pcm;
    this.out.timestampMs = start;
    this.info.playId = playId;
    this.info.speaking = speaking;
    this.info.last = last;
    this.inSink = true;
    try {
      this.transform?.(pcm, speaking);
      this.sink(this.out, this.info);
      for (const tap of this.taps) tap(this.out, this.info);
    } catch (err) {
      this.events.emit("error", err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.inSink = false;
    }
  }

  private retire(elapsed: number): void {
    this.inflight.retireUntil(elapsed);
    for (let c = this.completions.peek(); c && c.at <= elapsed + EPS; c = this.completions.peek()) {
      this.completions.shift();
      c.run(Math.max(c.at, 0));
    }
  }

  private schedule(elapsed: number, starved: boolean): void {
    if (this.isClosed) return;
    let next = Infinity;
    const wantsRelease = this.idleSilence || (!this.isPaused && !starved && this.plays.length > 0);
    if (wantsRelease) next = Math.max(this.releasedUntil, elapsed) + this.frameMs - this.leadMs;
    next = Math.min(next, this.inflight.nextEndMs);
    const c = this.completions.peek();
    if (c) next = Math.min(next, c.at);
    if (next === Infinity) return;
    this.setTimer(Math.max(0, next - elapsed));
  }

  private setTimer(delayMs: number): void {
    const at = this.clock.now() + delayMs;
    if (this.timer) {
      if (this.timerAt <= at + EPS) return;
      this.clock.clearTimer(this.timer);
    }
    this.timerAt = at;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, delayMs);
  }

  /** Something changed: run the pacer as soon as possible (never synchronously inside write). */
  private kick(): void {
    if (this.isClosed) return;
    this.setTimer(0);
  }

  private flushEvents(): void {
    if (this.pendingEvents.length === 0) return;
    const list = this.pendingEvents;
    this.pendingEvents = [];
    for (const e of list) {
      if (e.type === "trackStart") this.events.emit("trackStart", e.event);
      else this.events.emit("trackEnd", e.event);
    }
  }

  private waitForSpace(signal: AbortSignal | undefined): Promise<void> {
    if (this.queuedSamples <= this.maxQueuedSamples || this.isClosed) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.spaceWaiters.indexOf(done);
        if (i >= 0) this.spaceWaiters.splice(i, 1);
        reject(signal?.reason);
      };
      const done = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.spaceWaiters.push(done);
    });
  }

  private wakeSpaceWaiters(all: boolean): void {
    if (this.spaceWaiters.length === 0) return;
    if (!all && this.queuedSamples > this.maxQueuedSamples) return;
    for (const w of this.spaceWaiters.splice(0)) w();
  }
}
