/** The public shapes of AgentPacer (pacer.ts): options, events, play/clear/mark results. */
import type { AudioFrame } from "../audio/index.js";
import type { MediaClock } from "./clock.js";

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
