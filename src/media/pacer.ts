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

export interface PacedFrameInfo {
  /** Utterance the frame belongs to; undefined for idle silence. */
  playId: string | undefined;
  /** True when the frame carries agent audio (false for idle/paused silence). */
  speaking: boolean;
  /**
   * The utterance's final frame: it has ended (`endPlay`) and nothing of it is left to send. A leg marks the end of
   * the utterance on the wire here (Twilio / mod_audio_fork marks). An utterance ended after its last frame was
   * sent gets no `last` frame; its trackEnd is then the moment.
   */
  last: boolean;
}

/** Receives each released frame. `frame` and `frame.pcm` are reused: valid only during the call. */
export type FrameSink = (frame: AudioFrame, info: PacedFrameInfo) => void;

/** In-place processing of each released frame before the sink (e.g. ambiance mixing). */
export type FrameTransform = (pcm: Int16Array, speaking: boolean) => void;

export interface AgentPacerOptions {
  sampleRate: number;
  sink: FrameSink;
  /** Frame duration (default 20 ms). */
  frameMs?: number;
  /** How far ahead of real time audio is released (default 40 ms, at least one frame). */
  leadMs?: number;
  clock?: MediaClock;
  /** Applied in place to every released frame (agent audio and, with `idleSilence`, silence). */
  transform?: FrameTransform;
  /**
   * Release silence frames when there is no agent audio (paused, idle, underrun), e.g. to carry ambiance or
   * for wires that need a continuous stream. Default false: nothing is sent while the agent is silent.
   */
  idleSilence?: boolean;
  /** `play()` waits while more than this much audio is queued (default 60 000 ms). `write()` never waits. */
  maxQueuedMs?: number;
}

export interface TrackStartEvent {
  playId: string;
  /** Media time of the utterance's first frame. */
  atMs: number;
}

export type TrackEndReason = "finished" | "interrupted";

export interface TrackEndEvent {
  playId: string;
  reason: TrackEndReason;
  /** Audio of the utterance the caller heard (or will hear: released audio cannot be recalled). */
  playedMs: number;
  /** Audio of the utterance known so far (written). */
  totalMs: number;
  /** Media time: end of the last played frame ("finished") or of the clear ("interrupted"). */
  atMs: number;
}

export interface PlaySummary {
  playId: string;
  /** What the caller heard of it, including audio already released ahead and the fade tail. */
  playedMs: number;
  /** Audio written for it so far. */
  totalMs: number;
  /** Its first frame had been sent. */
  started: boolean;
  /** False when the clear cut it; true when it had been fully released before (it just plays out). */
  interrupted: boolean;
}

export interface ClearOptions {
  /** Linear fade to silence starting at the clear (0 = hard cut at the end of the audio already released). */
  fadeOutMs?: number;
}

export interface ClearResult {
  /** Media time of the clear. */
  clearedAtMs: number;
  /** Media time at which agent audio stops (end of the released lead or of the fade). */
  stopAtMs: number;
  /** Every utterance that was queued, playing, or still playing out; in playback order. */
  plays: PlaySummary[];
}

export interface MarkResult {
  name: string;
  /** True when the audio before the mark was played out; false when it was cleared first. */
  played: boolean;
  /** Media time at which the mark was resolved. */
  atMs: number;
}

export interface PlayOutcome {
  playId: string;
  playedMs: number;
  totalMs: number;
  interrupted: boolean;
}

export interface PlayStatus {
  playId: string;
  /** Played out so far (the clock passed the end of the frame). */
  playedMs: number;
  /** Handed to the sink so far. */
  releasedMs: number;
  totalMs: number;
  started: boolean;
  ended: boolean;
}

export type AgentPacerEvents = {
  trackStart: [TrackStartEvent];
  trackEnd: [TrackEndEvent];
  /** A sink or transform threw; the frame is counted as released anyway. */
  error: [Error];
};

/** Anything `play()` accepts: PCM at the pacer's rate, or frames at any rate (resampled). */
export type AgentAudio = Int16Array | AudioFrame;

export interface PlayOptions {
  playId: string;
  signal?: AbortSignal;
  /** End the utterance when the source ends (default true). */
  end?: boolean;
}

const FRAME = 0;
const MARK = 1;

interface FrameEntry {
  kind: typeof FRAME;
  pcm: Int16Array;
  /** Real samples in the frame (the rest is silence padding). */
  samples: number;
}

interface MarkEntry {
  kind: typeof MARK;
  name: string;
  resolve: (result: MarkResult) => void;
}

type Entry = FrameEntry | MarkEntry;

class Play {
  readonly entries = new Deque<Entry>(32);
  partial: FrameEntry | undefined;
  writtenSamples = 0;
  releasedSamples = 0;
  playedSamples = 0;
  started = false;
  ended = false;
  /** Stopped by clear/close: its trackEnd has been emitted. */
  stopped = false;
  readonly waiters: ((outcome: PlayOutcome) => void)[] = [];
  constructor(readonly playId: string) {}
}

interface Completion {
  at: number;
  run: (atMs: number) => void;
  /** Set for "utterance fully released, trackEnd at playout". */
  play?: Play;
}

type PendingEvent = { type: "trackStart"; event: TrackStartEvent } | { type: "trackEnd"; event: TrackEndEvent };

/** Keep at most this many idle frame buffers (about 5 s at 20 ms). */
const MAX_POOL = 256;
const EPS = 1e-6;

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
  private readonly pool: FrameEntry[] = [];
  private readonly completions = new Deque<Completion>(8);
  private readonly spaceWaiters: (() => void)[] = [];
  private pendingEvents: PendingEvent[] = [];

  // Released frames not yet played out: a fixed ring (at most lead / frame + 1 entries).
  private readonly inflightPlay: (Play | undefined)[];
  private readonly inflightEnd: Float64Array;
  private readonly inflightSamples: Int32Array;
  private inflightHead = 0;
  private inflightCount = 0;

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
    this.inflightPlay = new Array<Play | undefined>(ring);
    this.inflightEnd = new Float64Array(ring);
    this.inflightSamples = new Int32Array(ring);
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
    return this.plays.length > 0 || this.inflightCount > 0;
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
        this.flushPartial(p);
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
          this.envelope(e.pcm, fadeStart + frameIndex * this.frameMs, fadeEnd, fadeMs, take);
          e.samples = take;
          keptSamples += take;
          frameIndex++;
          kept.push(e);
        } else {
          this.free(e);
        }
      }
      if (p.partial) {
        this.free(p.partial);
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

  private alloc(): FrameEntry {
    const e = this.pool.pop();
    if (e) {
      e.samples = 0;
      return e;
    }
    return { kind: FRAME, pcm: new Int16Array(this.frameSamples), samples: 0 };
  }

  private free(e: FrameEntry): void {
    if (this.pool.length < MAX_POOL) this.pool.push(e);
  }

  private writeTo(p: Play, pcm: Int16Array): void {
    if (p.stopped || p.ended || this.isClosed || pcm.length === 0) return;
    const size = this.frameSamples;
    let completed = false;
    let i = 0;
    while (i < pcm.length) {
      let f = p.partial;
      if (!f) f = p.partial = this.alloc();
      const take = Math.min(size - f.samples, pcm.length - i);
      const dst = f.pcm;
      const off = f.samples;
      for (let k = 0; k < take; k++) dst[off + k] = pcm[i + k] as number;
      f.samples += take;
      i += take;
      if (f.samples === size) {
        p.entries.push(f);
        p.partial = undefined;
        this.queuedSamples += size;
        completed = true;
      }
    }
    p.writtenSamples += pcm.length;
    if (completed) this.kick();
  }

  private flushPartial(p: Play): void {
    const f = p.partial;
    if (!f) return;
    f.pcm.fill(0, f.samples);
    p.entries.push(f);
    p.partial = undefined;
    this.queuedSamples += this.frameSamples;
  }

  private endOf(p: Play): void {
    if (p.ended) return;
    this.flushPartial(p);
    p.ended = true;
    if (this.open.get(p.playId) === p) this.open.delete(p.playId);
    this.kick();
  }

  /** Gain envelope of the fade: sample at media time t gets clamp((fadeEnd - t) / fadeMs, 0, 1). */
  private envelope(pcm: Int16Array, frameStart: number, fadeEnd: number, fadeMs: number, samples: number): void {
    const step = 1000 / this.sampleRate;
    for (let i = 0; i < pcm.length; i++) {
      if (i >= samples) {
        pcm[i] = 0;
        continue;
      }
      const g = (fadeEnd - (frameStart + i * step)) / fadeMs;
      pcm[i] = g >= 1 ? (pcm[i] as number) : g <= 0 ? 0 : Math.round((pcm[i] as number) * g);
    }
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
        this.pushInflight(play, start + frameMs, f.samples);
        this.free(f);
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

  private pushInflight(play: Play, end: number, samples: number): void {
    const n = this.inflightPlay.length;
    if (this.inflightCount === n) this.retireOne(); // cannot happen with lead-bounded release; keeps the ring safe
    const i = (this.inflightHead + this.inflightCount) % n;
    this.inflightPlay[i] = play;
    this.inflightEnd[i] = end;
    this.inflightSamples[i] = samples;
    this.inflightCount++;
  }

  private retireOne(): void {
    const i = this.inflightHead;
    const p = this.inflightPlay[i];
    if (p) p.playedSamples += this.inflightSamples[i] as number;
    this.inflightPlay[i] = undefined;
    this.inflightHead = (i + 1) % this.inflightPlay.length;
    this.inflightCount--;
  }

  private retire(elapsed: number): void {
    while (this.inflightCount > 0 && (this.inflightEnd[this.inflightHead] as number) <= elapsed + EPS) this.retireOne();
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
    if (this.inflightCount > 0) next = Math.min(next, this.inflightEnd[this.inflightHead] as number);
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
