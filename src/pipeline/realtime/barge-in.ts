/**
 * Cutting what the realtime conversation plays, and the caller barge-in that decides it: the same
 * InterruptionPolicy as the serial pipeline (playbook.md §2.7), fed with the leg's trackStart/trackEnd, the
 * caller's speech and its transcripts.
 *
 * With `turnDetection: local` our VAD reports the speech and the policy applies in full: `strategy`,
 * `minSpeechMs`, `ignoreFirstMs`, `interruptible`, the filler filter, and the verdict on a VAD barge-in (a false
 * interruption re-plays a cut file from its start with `resumeOnFalse`; model speech is not re-spoken: its
 * audio is gone and the model takes the turn). With server turn detection the server has already cancelled
 * the response at `speech_started` (`interrupt_response`), so speech cuts at once there (no `minSpeechMs` or
 * `ignoreFirstMs`); what is not interruptible is protected on the server too (responses.ts).
 *
 * The cut (§5.4): clear the leg (fade, flush), cancel the active response, truncate each assistant item that was
 * playing to what the caller heard of it; `interruption` events come first, then the trackEnds the leg reported
 * from inside its clear (§3.6 step 5), with reason `replaced` for a replacing command.
 */
import type { MediaLeg, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import type { CutReason } from "../core/index.js";
import { InterruptionPolicy, type InterruptionInput, type InterruptionOptions, type InterruptionOutput } from "../turn/interruption.js";
import type { AgentItems } from "./agent-items.js";
import type { LegPlays } from "./leg-plays.js";
import type { Responses } from "./responses.js";

export interface BargeInHost {
  readonly leg: MediaLeg;
  readonly responses: Responses;
  readonly items: AgentItems;
  readonly plays: LegPlays;
  interruption(playId: string, reason: Exclude<CutReason, "error">, heard: { text: string; position: number; totalMs: number; playedMs: number }): void;
  /**
   * A leg trackEnd, handled as usual (after the cut's interruptions when it came from inside the clear); `reason`
   * is the event's own, or `replaced` for a sound a replacing command stopped.
   */
  trackEnded(e: TrackEndEvent, reason: TrackEndEvent["reason"] | "replaced"): void;
}

/** `hangup`: the call ends; trackEnds {interrupted} only, no `interruption` (nobody is left to take the turn). */
type CutKind = "bargeIn" | "command" | "replaced" | "hangup";

export class BargeIn {
  private readonly policy: InterruptionPolicy;
  /** TrackEnds the leg reported from inside a clear, held until the cut's interruptions are out. */
  private deferred: TrackEndEvent[] | undefined;
  /** The policy's utterance index for the caller's transcripts (every final counts, empty ones too). */
  private utterance = 0;

  constructor(
    private readonly h: BargeInHost,
    options: Partial<InterruptionOptions>,
    /** `turnDetection: local`: our VAD, so the policy's timing rules apply. */
    private readonly local: boolean,
  ) {
    const server = local ? {} : { minSpeechMs: 0, ignoreFirstMs: 0, strategy: options.strategy === "none" ? ("none" as const) : ("vad" as const) };
    this.policy = new InterruptionPolicy({ ...options, ...server });
  }

  /** Caller speech may cut the agent at all (`strategy` is not `none`). */
  get enabled(): boolean {
    return this.policy.options.strategy !== "none";
  }

  get stats(): { bargeIns: number; falseInterruptions: number } {
    return this.policy.stats;
  }

  trackStart(e: TrackStartEvent): void {
    this.act(this.policy.process({ type: "trackStart", atMs: e.atMs, playId: e.playId, interruptible: this.interruptible(e.playId) }));
  }

  /** A leg trackEnd: handled now, or after the cut in progress has said what it cut. */
  trackEnd(e: TrackEndEvent, reason: TrackEndEvent["reason"] | "replaced" = e.reason): void {
    if (this.deferred) {
      this.deferred.push(e);
      return;
    }
    this.act(this.policy.process({ type: "trackEnd", atMs: e.atMs, playId: e.playId }));
    this.h.trackEnded(e, reason);
  }

  /** The caller started speaking (`startMs`: the onset, on the leg's clock). */
  speaking(startMs: number): void {
    const outputs = this.policy.process({ type: "speaking", atMs: this.h.leg.nowMs, startMs });
    this.act(outputs);
    // Server turn detection: the server has cancelled its response at speech_started, audible or not. One that
    // has not reached the leg yet is no track for the policy, so it is cut here: its late audio must not play.
    if (!this.local && this.enabled && !outputs.some((o) => o.type === "bargeIn") && !this.uninterruptible()) this.cut("bargeIn");
  }

  silence(): void {
    this.feed({ type: "silence", atMs: this.h.leg.nowMs });
  }

  /** A caller transcript: a delta (`final` false) or the turn's final text, empty included. */
  transcript(final: boolean, text: string): void {
    const utterance = this.utterance;
    if (final) this.utterance++;
    this.feed({ type: "asr", atMs: this.h.leg.nowMs, result: final ? { type: "final", utterance, text } : { type: "partial", utterance, text, delta: "" } });
  }

  /** The media clock moved (a caller frame): decisions that became due. */
  tick(): void {
    this.act(this.policy.tick(this.h.leg.nowMs));
  }

  /**
   * Stops what plays: every model item and leg sound, the active response cancelled. `command` (interrupt) and
   * `replaced` (a play or tts without queue) never fade; a barge-in fades over `fadeOutMs`.
   */
  cut(reason: CutKind, fadeOutMs = reason === "bargeIn" ? this.policy.options.fadeOutMs : 0): void {
    const { items, responses, plays, leg } = this.h;
    const live = items.live();
    const active = responses.active;
    if (live.length === 0 && !active && !responses.requested && plays.size === 0) return;
    // Taken before the clear: the leg reports their trackEnd from inside it (held in `deferred`).
    const legPlays = plays.cutAll();
    this.deferred = [];
    let ends: TrackEndEvent[];
    try {
      const result = leg.closed ? undefined : leg.clear({ fadeOutMs });
      responses.cancel(active);
      if (reason === "bargeIn") responses.dropQueuedAnswers();
      for (const playId of legPlays.playIds) {
        const play = result?.plays.find((p) => p.playId === playId);
        if (!play || reason === "hangup") continue; // still loading (or on the PBX): it is never written
        this.h.interruption(playId, reason, { text: "", position: 0, totalMs: Math.round(play.totalMs), playedMs: Math.round(play.playedMs) });
      }
      // The PBX's own sounds are not on the leg: their interruption and trackEnd are ours to report.
      for (const { playId, playedMs } of legPlays.pbx) {
        const ms = Math.round(playedMs);
        if (reason !== "hangup") this.h.interruption(playId, reason, { text: "", position: 0, totalMs: ms, playedMs: ms });
        this.deferred.push({ playId, atMs: leg.nowMs, playedMs: ms, totalMs: ms, reason: "interrupted" });
      }
      items.cut(live, result?.plays, reason);
    } finally {
      ends = this.deferred;
      this.deferred = undefined;
    }
    for (const e of ends) this.trackEnd(e, reason === "replaced" && e.reason !== "finished" ? "replaced" : e.reason);
  }

  private feed(input: InterruptionInput): void {
    this.act(this.policy.process(input));
  }

  private act(outputs: readonly InterruptionOutput[]): void {
    for (const o of outputs) {
      if (o.type === "bargeIn") {
        // The policy saw this track start as interruptible; a later non-interruptible response protects it too.
        if (!this.uninterruptible()) this.cut("bargeIn", o.fadeOutMs);
      } else if (o.type === "falseInterruption" && o.resume) {
        this.h.plays.replay(o.playId);
      }
    }
  }

  /** Whether this playId, when it starts, may be cut by the caller. */
  private interruptible(playId: string): boolean {
    return this.h.plays.get(playId)?.interruptible ?? this.h.items.interruptibleOf(playId) ?? true;
  }

  /**
   * Something caller speech may not cut is playing or being spoken. (A non-interruptible text only requested, not
   * started, does not count: a barge-in cuts what plays before it and leaves the request alone.)
   */
  uninterruptible(): boolean {
    return this.h.responses.uninterruptible() || this.h.items.uninterruptible() || this.h.plays.uninterruptible();
  }
}
