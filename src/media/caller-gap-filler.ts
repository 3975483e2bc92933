/**
 * CallerGapFiller: keeps a caller stream continuous and close to wall clock when the wire goes quiet.
 *
 * Asterisk sends nothing while the caller is silent (no comfort noise, media-protocols.md §3.5 pitfalls), on every
 * media leg (RTP, chan_websocket, AudioSocket). The VAD and turn detection downstream need a continuous caller
 * stream to notice the end of speech, so the leg's caller stream is held to real time here:
 *
 * - The stream's position P (samples delivered) is compared with the wall clock R (samples since `start`).
 * - While the wire is quiet for longer than `jitterMs` (P < R - jitter), silence is fed in whole frames until P
 *   catches up with R. Short stalls (network jitter, the caller's 30 ms packetisation) are left alone.
 * - Audio that then arrives late would push P ahead of R (the silence already stood in for it). Only up to
 *   `aheadMs` ahead of R is accepted; the rest of the packet is dropped (its oldest samples), so the stream never
 *   drifts away from wall clock and nothing is counted twice. Bursts within `aheadMs` pass untouched.
 *
 * Allocation: silence comes from one reused zero buffer; the only timer is one per `frameMs` tick.
 */

import type { MediaClock, TimerHandle } from "./clock.js";

export interface CallerGapFillOptions {
  /**
   * A stall longer than this is filled with silence (default 80 ms: the recorded Asterisk 23 RTP stream of a
   * transcoded 30 ms caller arrives in bursts with gaps up to 94 ms; 60 ms would insert silence mid-speech there).
   */
  jitterMs?: number;
  /**
   * Audio may run at most this far ahead of wall clock; beyond, it is dropped. Default 300 ms: the recorded stream
   * runs at most 32 ms ahead, and more ahead only comes from late audio that silence already stood in for — but
   * that audio is caller speech after a stall of the PBX or the network, and losing words costs the ASR more than a
   * stream running a few hundred ms ahead costs the turn timing (the filler then adds nothing until it is back).
   */
  aheadMs?: number;
  /** Silence is fed in frames of this size (default 20 ms). */
  frameMs?: number;
}

export interface CallerGapFillerOptions extends CallerGapFillOptions {
  sampleRate: number;
  clock: MediaClock;
  /** Receives caller PCM (the real audio and the filled silence); the array is valid only during the call. */
  push: (pcm: Int16Array) => void;
}

export interface CallerGapStats {
  /** Silence fed while the wire was quiet, in ms. */
  filledMs: number;
  /** Late caller audio dropped because silence had already stood in for it, in ms. */
  droppedMs: number;
}

export class CallerGapFiller {
  readonly sampleRate: number;
  private readonly clock: MediaClock;
  private readonly push: (pcm: Int16Array) => void;
  private readonly jitterSamples: number;
  private readonly aheadSamples: number;
  private readonly frameMs: number;
  private readonly zeros: Int16Array;
  private origin = 0;
  private delivered = 0;
  private filled = 0;
  private dropped = 0;
  private timer: TimerHandle | undefined;
  private running = false;
  private readonly tick = (): void => {
    this.timer = undefined;
    if (!this.running) return;
    this.fill();
    this.timer = this.clock.setTimer(this.tick, this.frameMs);
  };

  constructor(options: CallerGapFillerOptions) {
    this.sampleRate = options.sampleRate;
    this.clock = options.clock;
    this.push = options.push;
    this.frameMs = options.frameMs ?? 20;
    this.jitterSamples = Math.round(((options.jitterMs ?? 80) * this.sampleRate) / 1000);
    this.aheadSamples = Math.round(((options.aheadMs ?? 300) * this.sampleRate) / 1000);
    this.zeros = new Int16Array(Math.round((this.frameMs * this.sampleRate) / 1000));
    if (this.zeros.length === 0) throw new RangeError("gap fill frame must hold at least one sample");
  }

  /** Starts the wall clock of the stream (the media path is up); idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.origin = this.clock.now();
    this.delivered = 0;
    this.timer = this.clock.setTimer(this.tick, this.frameMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  get started(): boolean {
    return this.running;
  }

  get stats(): CallerGapStats {
    return { filledMs: (this.filled * 1000) / this.sampleRate, droppedMs: (this.dropped * 1000) / this.sampleRate };
  }

  /** Caller audio from the wire (decoded, at `sampleRate`). Before `start` it passes straight through. */
  audio(pcm: Int16Array): void {
    if (!this.running) {
      this.push(pcm);
      return;
    }
    const allowed = this.wallSamples() + this.aheadSamples - this.delivered;
    if (pcm.length <= allowed) {
      this.delivered += pcm.length;
      this.push(pcm);
      return;
    }
    // Silence already stood in for (part of) this audio: keep only its newest part (rare path, one view).
    const keep = Math.max(0, Math.floor(allowed));
    this.dropped += pcm.length - keep;
    if (keep === 0) return;
    this.delivered += keep;
    this.push(pcm.subarray(pcm.length - keep));
  }

  /** Feeds silence when the stream lags wall clock by more than the jitter allowance (called every frame). */
  fill(): void {
    if (!this.running) return;
    const wall = this.wallSamples();
    if (wall - this.delivered <= this.jitterSamples) return;
    const frame = this.zeros.length;
    while (wall - this.delivered >= frame) {
      this.delivered += frame;
      this.filled += frame;
      this.push(this.zeros);
    }
  }

  private wallSamples(): number {
    return ((this.clock.now() - this.origin) * this.sampleRate) / 1000;
  }
}
