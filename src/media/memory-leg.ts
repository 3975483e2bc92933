/**
 * In-memory MediaLeg for tests and `simulate`: the test pushes caller audio and DTMF, the agent audio the pacer
 * releases is captured with its media timestamp and the clock time it was sent, on a controllable clock
 * (ManualClock by default), so tests assert pacing, "cleared within one frame", played ms and marks without
 * real timers.
 */

import type { AudioFrame } from "../audio/index.js";
import type { MediaClock } from "./clock.js";
import { ManualClock } from "./clock.js";
import type { DtmfSource, LegCloseReason, MediaLeg } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import type { FrameTransform, PacedFrameInfo } from "./pacer.js";

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

export class MemoryLeg extends PacedLeg implements MediaLeg {
  /** Every agent frame sent so far, in order. */
  readonly captured: CapturedFrame[] = [];

  private readonly onAgentFrame: ((frame: AudioFrame, info: PacedFrameInfo) => void) | undefined;

  constructor(options: MemoryLegOptions = {}) {
    super({
      id: options.id ?? "memory-leg",
      clock: options.clock ?? new ManualClock(),
      callerRate: options.callerRate ?? 16000,
      agentRate: options.agentRate ?? 16000,
      agentFrameMs: options.frameMs ?? 20,
      callerFrameMs: options.frameMs ?? 20,
      leadMs: options.leadMs ?? 40,
      transform: options.transform,
      idleSilence: options.idleSilence ?? false,
      callerCapacity: options.callerCapacity,
    });
    this.onAgentFrame = options.onAgentFrame;
  }

  protected sendFrame(frame: AudioFrame, info: PacedFrameInfo): void {
    this.captured.push({
      pcm: frame.pcm.slice(),
      sampleRate: frame.sampleRate,
      timestampMs: frame.timestampMs,
      sentAtMs: this.pacer.nowMs,
      playId: info.playId,
      speaking: info.speaking,
    });
    this.onAgentFrame?.(frame, info);
  }

  // --- test side -------------------------------------------------------------------------------------------

  /** Pushes caller audio (any length, at `callerRate`); it comes out of `callerAudio` as 20 ms frames. */
  pushCaller(audio: Int16Array | AudioFrame): void {
    if (this.closed) return;
    const pcm = audio instanceof Int16Array ? audio : audio.pcm;
    if (!(audio instanceof Int16Array) && audio.sampleRate !== this.callerRate) {
      throw new RangeError(`caller audio at ${audio.sampleRate} Hz on a ${this.callerRate} Hz leg`);
    }
    this.pushCallerPcm(pcm);
  }

  /** Pushes `ms` of caller silence. */
  pushCallerSilence(ms: number): void {
    this.pushCaller(new Int16Array(Math.round((ms * this.callerRate) / 1000)));
  }

  /** The caller pressed a key. */
  pushDtmf(digit: string, options: { durationMs?: number; source?: DtmfSource } = {}): void {
    if (this.closed) return;
    this.events.emit("dtmf", { digit, ...options, atMs: this.callerMs });
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
}
