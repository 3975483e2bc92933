/**
 * PacedLeg: the MediaLeg plumbing shared by legs whose agent audio is paced locally by an AgentPacer and whose
 * caller audio is decoded PCM re-chunked into 20 ms frames (the /call WebSocket, Twilio, the in-memory leg).
 *
 * - Caller side: a subclass decodes its wire format and calls `pushCallerPcm`; frames (copies, `timestampMs`
 *   counted in samples) go into a drop-oldest BoundedChannel, exposed as `callerAudio`.
 * - Agent side: every MediaLeg playback member delegates to the pacer; the subclass implements `sendFrame`,
 *   the pacer's sink (encode + send). The sink must not call back into the pacer synchronously (reads such as
 *   `pacer.status` are fine).
 * - `close()` / `shutdown()` emit `close` exactly once, drop queued agent audio and end `callerAudio`.
 * - Optional `callerGapFill` (the Asterisk legs): wires that send nothing while the caller is silent get their
 *   caller stream held to wall clock by a CallerGapFiller (silence fed in the gaps, late audio absorbed); the
 *   subclass calls `startCallerGapFill()` once its media path is up.
 */

import type { AudioFrame } from "../audio/index.js";
import { Rechunker } from "../audio/index.js";
import { BoundedChannel } from "../util/channel.js";
import type { CallerGapFillOptions, CallerGapStats } from "./caller-gap-filler.js";
import { CallerGapFiller } from "./caller-gap-filler.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import { TypedEmitter } from "./emitter.js";
import type {
  TrackEndEvent, DtmfSource, LegCloseReason, MediaLeg, MediaLegEvents } from "./leg.js";
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

export interface PacedLegOptions {
  id: string;
  clock: MediaClock;
  callerRate: number;
  agentRate: number;
  /** Agent frame duration (the wire's ptime). */
  agentFrameMs: number;
  /** Caller frame duration (default 20). */
  callerFrameMs?: number;
  leadMs: number;
  idleSilence?: boolean;
  transform?: FrameTransform;
  /** Caller frames buffered before the oldest are dropped (default 250 = 5 s of 20 ms frames). */
  callerCapacity?: number;
  /** Keep the caller stream continuous when the wire sends nothing in silence (see CallerGapFiller). */
  callerGapFill?: CallerGapFillOptions;
}

export abstract class PacedLeg implements MediaLeg {
  readonly id: string;
  readonly callerRate: number;
  readonly agentRate: number;
  readonly clock: MediaClock;
  readonly pacer: AgentPacer;
  readonly events = new TypedEmitter<MediaLegEvents>();

  private readonly channel: BoundedChannel<AudioFrame>;
  private readonly chunker: Rechunker;
  private callerSamples = 0;
  private isClosed = false;
  private readonly gapFiller: CallerGapFiller | undefined;
  private fadeFlushTimer: TimerHandle | undefined;

  constructor(options: PacedLegOptions) {
    this.id = options.id;
    this.callerRate = options.callerRate;
    this.agentRate = options.agentRate;
    this.clock = options.clock;
    this.pacer = new AgentPacer({
      sampleRate: this.agentRate,
      frameMs: options.agentFrameMs,
      leadMs: options.leadMs,
      clock: this.clock,
      transform: options.transform,
      idleSilence: options.idleSilence ?? false,
      // The pacer never calls its sink synchronously from its constructor, so subclass fields exist by then.
      sink: (frame, info) => this.sendFrame(frame, info),
    });
    this.pacer.events.on("trackStart", (e) => this.events.emit("trackStart", e));
    this.pacer.events.on("trackEnd", (e) => this.forwardTrackEnd(e));
    this.pacer.events.on("error", (e) => this.events.emit("error", e));
    this.channel = new BoundedChannel<AudioFrame>({ capacity: options.callerCapacity ?? 250, policy: "drop-oldest" });
    this.chunker = new Rechunker({ sampleRate: this.callerRate, frameMs: options.callerFrameMs ?? 20 }, (pcm) => {
      const frame: AudioFrame = {
        pcm: pcm.slice(),
        sampleRate: this.callerRate,
        timestampMs: (this.callerSamples * 1000) / this.callerRate,
        // Stamped where the wire data that completed the frame was handled (media/frame-lag.ts).
        receivedAtMs: performance.now(),
      };
      this.callerSamples += pcm.length;
      // A consumer that stopped iterating closed the channel: the caller's audio then goes nowhere, as on a wire.
      if (!this.channel.closed) this.channel.offer(frame);
    });
    if (options.callerGapFill) {
      this.gapFiller = new CallerGapFiller({
        ...options.callerGapFill,
        sampleRate: this.callerRate,
        clock: this.clock,
        push: (pcm) => this.chunker.push(pcm),
      });
    }
  }

  /** The pacer's sink: encode and send one agent frame (`frame` and its pcm are valid only during the call). */
  protected abstract sendFrame(frame: AudioFrame, info: PacedFrameInfo): void;

  /** The pacer finished or stopped an utterance; a leg whose far end confirms playout may hold it until then. */
  protected forwardTrackEnd(e: TrackEndEvent): void {
    this.events.emit("trackEnd", e);
  }

  /** Called once by `shutdown`, after the pacer stopped and before `close` is emitted. */
  protected onShutdown(_reason: LegCloseReason, _detail: string | undefined): void {}

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

  /** Media time of the caller stream (ms of caller audio framed so far). */
  get callerMs(): number {
    return (this.callerSamples * 1000) / this.callerRate;
  }

  /** Silence fed / late audio dropped by the caller gap filler (undefined when the leg has none). */
  get callerGapStats(): CallerGapStats | undefined {
    return this.gapFiller?.stats;
  }

  /** Decoded caller PCM (any length, at `callerRate`); it comes out of `callerAudio` as 20 ms frames. */
  protected pushCallerPcm(pcm: Int16Array): void {
    if (this.isClosed || pcm.length === 0) return;
    if (this.gapFiller) this.gapFiller.audio(pcm);
    else this.chunker.push(pcm);
  }

  /**
   * Runs the wire's flush (killAudio, FLUSH_MEDIA, Twilio `clear`) once the fade of a `clear` has played out by
   * the local clock, or at once without a fade; a newer clear replaces a flush still waiting.
   */
  protected flushAfterFade(result: ClearResult, options: ClearOptions | undefined, flush: () => void): void {
    if (this.fadeFlushTimer) this.clock.clearTimer(this.fadeFlushTimer);
    this.fadeFlushTimer = undefined;
    const fade = (options?.fadeOutMs ?? 0) > 0 && result.stopAtMs > result.clearedAtMs;
    if (!fade) return flush();
    this.fadeFlushTimer = this.clock.setTimer(() => {
      this.fadeFlushTimer = undefined;
      if (!this.isClosed) flush();
    }, result.stopAtMs - result.clearedAtMs);
  }

  /** Starts holding the caller stream to wall clock (no-op without `callerGapFill`, or once closed). */
  protected startCallerGapFill(): void {
    if (!this.isClosed) this.gapFiller?.start();
  }

  protected emitDtmf(digit: string, durationMs: number | undefined, source: DtmfSource): void {
    if (this.isClosed) return;
    this.events.emit("dtmf", durationMs === undefined ? { digit, source, atMs: this.callerMs } : { digit, durationMs, source, atMs: this.callerMs });
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

  /** Ends the leg once: pending caller samples are padded into a last frame, agent audio dropped, `close` emitted. */
  protected shutdown(reason: LegCloseReason, detail: string | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.fadeFlushTimer) this.clock.clearTimer(this.fadeFlushTimer);
    this.fadeFlushTimer = undefined;
    this.gapFiller?.stop();
    this.chunker.flush(true);
    this.pacer.close();
    this.channel.close();
    this.onShutdown(reason, detail);
    this.events.emit("close", detail === undefined ? { reason } : { reason, detail });
  }
}
