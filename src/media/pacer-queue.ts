/**
 * AgentPacer's books (pacer.ts): the per-utterance queue of frames and marks (Play) and the pooled frame
 * buffers it is cut into, the ring of released frames not yet played out (InflightRing), and the fade-out
 * envelope. Pure and synchronous: no clock, no I/O.
 */
import { Deque } from "./deque.js";
import type { MarkResult, PlayOutcome, TrackEndEvent, TrackStartEvent } from "./pacer-types.js";

/** Tolerance for media-time comparisons (ms): a frame ending at t is played out once the clock reaches t. */
export const EPS = 1e-6;

export const FRAME = 0;
export const MARK = 1;

export interface FrameEntry {
  kind: typeof FRAME;
  pcm: Int16Array;
  /** Real samples in the frame (the rest is silence padding). */
  samples: number;
}

export interface MarkEntry {
  kind: typeof MARK;
  name: string;
  resolve: (result: MarkResult) => void;
}

export type Entry = FrameEntry | MarkEntry;

export class Play {
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

export interface Completion {
  at: number;
  run: (atMs: number) => void;
  /** Set for "utterance fully released, trackEnd at playout". */
  play?: Play;
}

export type PendingEvent = { type: "trackStart"; event: TrackStartEvent } | { type: "trackEnd"; event: TrackEndEvent };

/**
 * Released frames not yet played out, oldest first: a fixed ring (at most lead / frame + 1 entries are ever in
 * flight). Retiring a frame counts its samples as played for its utterance.
 */
export class InflightRing {
  private readonly play: (Play | undefined)[];
  private readonly end: Float64Array;
  private readonly samples: Int32Array;
  private head = 0;
  private size = 0;

  constructor(capacity: number) {
    this.play = new Array<Play | undefined>(capacity);
    this.end = new Float64Array(capacity);
    this.samples = new Int32Array(capacity);
  }

  get count(): number {
    return this.size;
  }

  /** When the oldest frame in flight has played out (media ms); Infinity when none is. */
  get nextEndMs(): number {
    return this.size > 0 ? (this.end[this.head] as number) : Infinity;
  }

  push(play: Play, endMs: number, samples: number): void {
    const n = this.play.length;
    if (this.size === n) this.retireOne(); // cannot happen with lead-bounded release; keeps the ring safe
    const i = (this.head + this.size) % n;
    this.play[i] = play;
    this.end[i] = endMs;
    this.samples[i] = samples;
    this.size++;
  }

  /** Retires every frame that has played out by `elapsedMs`. */
  retireUntil(elapsedMs: number): void {
    while (this.size > 0 && (this.end[this.head] as number) <= elapsedMs + EPS) this.retireOne();
  }

  private retireOne(): void {
    const i = this.head;
    const p = this.play[i];
    if (p) p.playedSamples += this.samples[i] as number;
    this.play[i] = undefined;
    this.head = (i + 1) % this.play.length;
    this.size--;
  }
}

/** Keep at most this many idle frame buffers (about 5 s at 20 ms). */
const MAX_POOL = 256;

/** Reused frame buffers of `frameSamples`: the steady state allocates none per frame. */
export class FramePool {
  private readonly idle: FrameEntry[] = [];
  constructor(readonly frameSamples: number) {}

  alloc(): FrameEntry {
    const e = this.idle.pop();
    if (e) {
      e.samples = 0;
      return e;
    }
    return { kind: FRAME, pcm: new Int16Array(this.frameSamples), samples: 0 };
  }

  free(e: FrameEntry): void {
    if (this.idle.length < MAX_POOL) this.idle.push(e);
  }
}

/**
 * Copies `pcm` into `p`'s frames (the caller may reuse `pcm` afterwards): fills the partial frame, queues each
 * full one. Returns the samples newly queued (whole frames), 0 when only the partial frame grew.
 */
export function writeFrames(p: Play, pcm: Int16Array, pool: FramePool): number {
  const size = pool.frameSamples;
  let queued = 0;
  let i = 0;
  while (i < pcm.length) {
    let f = p.partial;
    if (!f) f = p.partial = pool.alloc();
    const take = Math.min(size - f.samples, pcm.length - i);
    const dst = f.pcm;
    const off = f.samples;
    for (let k = 0; k < take; k++) dst[off + k] = pcm[i + k] as number;
    f.samples += take;
    i += take;
    if (f.samples === size) {
      p.entries.push(f);
      p.partial = undefined;
      queued += size;
    }
  }
  p.writtenSamples += pcm.length;
  return queued;
}

/** Queues `p`'s partial frame padded with silence; false when there was none. */
export function flushPartial(p: Play): boolean {
  const f = p.partial;
  if (!f) return false;
  f.pcm.fill(0, f.samples);
  p.entries.push(f);
  p.partial = undefined;
  return true;
}

/**
 * The fade-out's gain envelope, in place: the sample at media time t (ms) gets clamp((fadeEnd - t) / fadeMs, 0, 1);
 * samples from index `samples` on (padding) are zeroed.
 */
export function fadeEnvelope(pcm: Int16Array, frameStartMs: number, fadeEndMs: number, fadeMs: number, samples: number, sampleRate: number): void {
  const step = 1000 / sampleRate;
  for (let i = 0; i < pcm.length; i++) {
    if (i >= samples) {
      pcm[i] = 0;
      continue;
    }
    const g = (fadeEndMs - (frameStartMs + i * step)) / fadeMs;
    pcm[i] = g >= 1 ? (pcm[i] as number) : g <= 0 ? 0 : Math.round((pcm[i] as number) * g);
  }
}
