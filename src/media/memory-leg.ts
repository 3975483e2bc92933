/**
 * In-memory MediaLeg for tests and `simulate`: the test pushes caller audio and DTMF, the agent audio the pacer
 * releases is captured with its media timestamp and the clock time it was sent, on a controllable clock
 * (ManualClock by default), so tests assert pacing, "cleared within one frame", played ms and marks without
 * real timers.
 */

import type { AudioFrame } from "../audio/index.js";
import { Rechunker } from "../audio/index.js";
import { BoundedChannel } from "../util/channel.js";
import type { MediaClock } from "./clock.js";
import { ManualClock } from "./clock.js";
import { TypedEmitter } from "./emitter.js";
import type { DtmfSource, LegCloseReason, MediaLeg, MediaLegEvents } from "./leg.js";
import type {
  AgentAudio,
  ClearOptions,
  ClearResult,
  FrameSink,
  FrameTransform,
  MarkResult,
  PacedFrameInfo,
  PlayOptions,
  PlayOutcome,
  PlayStatus,
} from "./pacer.js";
import { AgentPacer } from "./pacer.js";

export interface MemoryLegOptions {
  id?: string;
  /** Default: a new ManualClock starting at 0. */
  clock?: MediaClock;
  callerRate?: number;
  agentRate?: number;
  frameMs?: number;
  leadMs?: number;
  /** Caller frames buffered before the oldest are dropped (default 250 = 5 s of 20 ms frames). */
  callerCapacity?: number;
  transform?: FrameTransform;
  idleSilence?: boolean;
  /** Observe each agent frame as it is sent (same ownership as a pacer sink: copy to keep). */
  onAgentFrame?: (frame: AudioFrame, info: PacedFrameInfo) => void;
}

/** One agent frame as the wire got it (a copy). */
export interface CapturedFrame {
  pcm: Int16Array;
  sampleRate: number;
  /** Media time the frame plays at. */
  timestampMs: number;
  /** Media time (pacer clock) at which it was handed to the wire. */
  sentAtMs: number;
  playId: string | undefined;
  speaking: boolean;
}

export class MemoryLeg implements MediaLeg {
  readonly id: string;
  readonly callerRate: number;
  readonly agentRate: number;
  readonly clock: MediaClock;
  readonly pacer: AgentPacer;
  readonly events = new TypedEmitter<MediaLegEvents>();
  /** Every agent frame sent so far, in order. */
  readonly captured: CapturedFrame[] = [];

  private readonly channel: BoundedChannel<AudioFrame>;
  private readonly chunker: Rechunker;
  private callerSamples = 0;
  private isClosed = false;

  constructor(options: MemoryLegOptions = {}) {
    this.id = options.id ?? "memory-leg";
    this.callerRate = options.callerRate ?? 16000;
    this.agentRate = options.agentRate ?? 16000;
    this.clock = options.clock ?? new ManualClock();
    const onAgentFrame = options.onAgentFrame;
    this.pacer = new AgentPacer({
      sampleRate: this.agentRate,
      frameMs: options.frameMs ?? 20,
      leadMs: options.leadMs ?? 40,
      clock: this.clock,
      transform: options.transform,
      idleSilence: options.idleSilence ?? false,
      sink: (frame, info) => {
        this.captured.push({
          pcm: frame.pcm.slice(),
          sampleRate: frame.sampleRate,
          timestampMs: frame.timestampMs,
          sentAtMs: this.pacer.nowMs,
          playId: info.playId,
          speaking: info.speaking,
        });
        onAgentFrame?.(frame, info);
      },
    });
    this.pacer.events.on("trackStart", (e) => this.events.emit("trackStart", e));
    this.pacer.events.on("trackEnd", (e) => this.events.emit("trackEnd", e));
    this.pacer.events.on("error", (e) => this.events.emit("error", e));
    this.channel = new BoundedChannel<AudioFrame>({ capacity: options.callerCapacity ?? 250, policy: "drop-oldest" });
    this.chunker = new Rechunker({ sampleRate: this.callerRate, frameMs: options.frameMs ?? 20 }, (pcm) => {
      const frame: AudioFrame = {
        pcm: pcm.slice(),
        sampleRate: this.callerRate,
        timestampMs: (this.callerSamples * 1000) / this.callerRate,
      };
      this.callerSamples += pcm.length;
      // A consumer that stopped iterating closed the channel: the caller's audio then goes nowhere, as on a wire.
      if (!this.channel.closed) this.channel.offer(frame);
    });
  }

  get callerAudio(): AsyncIterable<AudioFrame> {
    return this.channel;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get nowMs(): number {
    return this.pacer.nowMs;
  }

  get paused(): boolean {
    return this.pacer.paused;
  }

  /** Caller frames dropped because nobody read them in time. */
  get droppedCallerFrames(): number {
    return this.channel.droppedCount;
  }

  // --- test side -------------------------------------------------------------------------------------------

  /** Pushes caller audio (any length, at `callerRate`); it comes out of `callerAudio` as 20 ms frames. */
  pushCaller(audio: Int16Array | AudioFrame): void {
    if (this.isClosed) return;
    const pcm = audio instanceof Int16Array ? audio : audio.pcm;
    if (!(audio instanceof Int16Array) && audio.sampleRate !== this.callerRate) {
      throw new RangeError(`caller audio at ${audio.sampleRate} Hz on a ${this.callerRate} Hz leg`);
    }
    this.chunker.push(pcm);
  }

  /** Pushes `ms` of caller silence. */
  pushCallerSilence(ms: number): void {
    this.pushCaller(new Int16Array(Math.round((ms * this.callerRate) / 1000)));
  }

  /** The caller pressed a key. */
  pushDtmf(digit: string, options: { durationMs?: number; source?: DtmfSource } = {}): void {
    if (this.isClosed) return;
    this.events.emit("dtmf", { digit, ...options, atMs: (this.callerSamples * 1000) / this.callerRate });
  }

  /** The caller hung up (or the transport dropped). */
  hangup(reason: LegCloseReason = "caller", detail?: string): void {
    this.shutdown(reason, detail);
  }

  /** Advances a ManualClock (throws for another clock). */
  advance(ms: number): void {
    if (!(this.clock instanceof ManualClock)) throw new Error("MemoryLeg.advance needs a ManualClock");
    this.clock.advance(ms);
  }

  /**
   * Agent audio laid out on media time from `fromMs` to `toMs` (default: the end of the last frame), with
   * silence where nothing was sent.
   */
  agentAudio(fromMs = 0, toMs?: number): Int16Array {
    const last = this.captured[this.captured.length - 1];
    const end = toMs ?? (last ? last.timestampMs + (last.pcm.length * 1000) / this.agentRate : fromMs);
    const toSample = (ms: number): number => Math.round((ms * this.agentRate) / 1000);
    const base = toSample(fromMs);
    const out = new Int16Array(Math.max(0, toSample(end) - base));
    for (const f of this.captured) {
      const at = toSample(f.timestampMs) - base;
      for (let i = 0; i < f.pcm.length; i++) {
        const k = at + i;
        if (k >= 0 && k < out.length) out[k] = f.pcm[i] as number;
      }
    }
    return out;
  }

  /** Media time at which the last captured agent frame ends (0 when none). */
  get agentEndMs(): number {
    const last = this.captured[this.captured.length - 1];
    return last ? last.timestampMs + (last.pcm.length * 1000) / this.agentRate : 0;
  }

  // --- MediaLeg ----------------------------------------------------------------------------------------------

  play(source: AgentAudio | Iterable<AgentAudio> | AsyncIterable<AgentAudio>, options: PlayOptions): Promise<PlayOutcome> {
    return this.pacer.play(source, options);
  }

  write(playId: string, pcm: Int16Array): void {
    this.pacer.write(playId, pcm);
  }

  endPlay(playId: string): void {
    this.pacer.endPlay(playId);
  }

  mark(name: string, playId?: string): Promise<MarkResult> {
    return this.pacer.mark(name, playId);
  }

  clear(options?: ClearOptions): ClearResult {
    return this.pacer.clear(options);
  }

  pause(): void {
    this.pacer.pause();
  }

  resume(): void {
    this.pacer.resume();
  }

  status(playId: string): PlayStatus | undefined {
    return this.pacer.status(playId);
  }

  setAgentTransform(transform: FrameTransform | undefined, options?: { idleSilence?: boolean }): void {
    this.pacer.setTransform(transform, options);
  }

  tapAgent(tap: FrameSink): () => void {
    return this.pacer.addTap(tap);
  }

  close(detail?: string): Promise<void> {
    this.shutdown("local", detail);
    return Promise.resolve();
  }

  private shutdown(reason: LegCloseReason, detail: string | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.chunker.flush(true);
    this.pacer.close();
    this.channel.close();
    this.events.emit("close", detail === undefined ? { reason } : { reason, detail });
  }
}
