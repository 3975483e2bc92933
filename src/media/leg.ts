/**
 * MediaLeg: the seam between a call's media transport and the conversation engine (DESIGN.md, "The seams").
 *
 * Caller audio comes in as an async iterable of mono PCM16 frames at `callerRate` (bounded, live audio: a slow
 * consumer loses the oldest frames, never the newest). Agent audio goes out through an AgentPacer (real-time,
 * small lead): `play`/`write` queue it per utterance (`playId`), `mark` resolves when the audio before it was
 * played out or cleared, `clear` drops queued audio at once (barge-in) and reports what each utterance played.
 * DTMF, close and playback lifecycle arrive as events.
 *
 * Each transport (FreeSWITCH audio fork, Asterisk, the /call WebSocket, Twilio, in-memory) implements this; the
 * wire-specific stop on `clear` (killAudio, FLUSH_MEDIA, `clear` message...) is the implementation's business.
 */

import type { AudioFrame } from "../audio/index.js";
import type { TypedEmitter } from "./emitter.js";
import type {
  AgentAudio,
  ClearOptions,
  FrameSink,
  FrameTransform,
  ClearResult,
  MarkResult,
  PlayOptions,
  PlayOutcome,
  PlayStatus,
  TrackEndEvent,
  TrackStartEvent,
} from "./pacer.js";

export type {
  AgentAudio,
  ClearOptions,
  FrameSink,
  FrameTransform,
  PacedFrameInfo,
  ClearResult,
  MarkResult,
  PlayOptions,
  PlayOutcome,
  PlayStatus,
  PlaySummary,
  TrackEndEvent,
  TrackStartEvent,
} from "./pacer.js";

export type DtmfSource = "rfc2833" | "info" | "inband" | "pbx";

export interface DtmfEvent {
  digit: string;
  durationMs?: number;
  source?: DtmfSource;
  /** Media time (caller stream) when it arrived. */
  atMs: number;
}

export type LegCloseReason = "caller" | "local" | "error" | "transport";

export interface LegCloseEvent {
  reason: LegCloseReason;
  detail?: string;
}

export type MediaLegEvents = {
  dtmf: [DtmfEvent];
  /** The leg ended (the caller hung up, the transport dropped, or `close()`); emitted once. */
  close: [LegCloseEvent];
  /** First frame of an utterance sent to the caller. */
  trackStart: [TrackStartEvent];
  /** An utterance played out, or was stopped. */
  trackEnd: [TrackEndEvent];
  /** A non-fatal media problem (undecodable caller audio, a sink error...). */
  error: [Error];
};

export interface MediaLeg {
  /** Identifies the leg in logs (usually the call id). */
  readonly id: string;
  /** Sample rate of caller frames. */
  readonly callerRate: number;
  /** Sample rate agent audio is paced and sent at (`write` expects PCM at this rate). */
  readonly agentRate: number;
  /**
   * Caller audio, one frame per `ptime` (20 ms), `timestampMs` counted in samples from the start of the leg.
   * Iterate it once; it ends when the leg closes.
   */
  readonly callerAudio: AsyncIterable<AudioFrame>;
  readonly events: TypedEmitter<MediaLegEvents>;
  readonly closed: boolean;

  /** Current media time of the agent side (ms since the leg started, on the pacer clock). */
  readonly nowMs: number;

  /**
   * Plays agent audio as utterance `options.playId` (PCM at `agentRate`, or frames at any rate), with
   * backpressure. Resolves when it has played out or was stopped.
   */
  play(source: AgentAudio | Iterable<AgentAudio> | AsyncIterable<AgentAudio>, options: PlayOptions): Promise<PlayOutcome>;
  /** Appends PCM at `agentRate` to utterance `playId` without waiting (copied). */
  write(playId: string, pcm: Int16Array): void;
  /** Ends utterance `playId`: trackEnd follows its playout. */
  endPlay(playId: string): void;
  /** Resolves when the audio written before it was played out (`played: true`) or cleared (`played: false`). */
  mark(name: string, playId?: string): Promise<MarkResult>;
  /** Drops queued agent audio at once (optionally fading over `fadeOutMs`); reports what each utterance played. */
  clear(options?: ClearOptions): ClearResult;
  /** Freezes agent playback at the current frame; `resume` continues from the same sample. */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** What the pacer knows about an utterance still queued, playing or playing out. */
  status(playId: string): PlayStatus | undefined;
  /**
   * Optional: installs an in-place transform of every agent frame sent (ambiance mixing), after the leg exists;
   * `idleSilence: true` also sends (transformed) silence while the agent is quiet. Legs whose agent audio is not
   * paced here (PBX-side playback) may leave it out.
   */
  setAgentTransform?(transform: FrameTransform | undefined, options?: { idleSilence?: boolean }): void;
  /** Optional: observes every agent frame as it is sent (after the transform); returns a remover. */
  tapAgent?(tap: FrameSink): () => void;
  /** Ends the leg: agent audio is dropped, caller audio ends, `close` is emitted. Idempotent. */
  close(detail?: string): Promise<void>;
}
