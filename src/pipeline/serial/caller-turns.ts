/**
 * The serial pipeline's caller side: turn taking. Caller frames go to the ASR session and our VAD; VAD events
 * and ASR results (stamped with the leg's media time, the axis the barge-in windows are on) feed the pure
 * TurnDetector (end of utterance, eou, speculate/discard/commit/reply) and InterruptionPolicy (barge-in,
 * false interruption), ticked every `tickMs` on the media clock. It decides and reports; the conversation acts:
 * a decided turn goes to the playbook runner, a barge-in cuts the agent's speech.
 */
import type { AudioFrame } from "../../audio/index.js";
import type { Logger } from "../../log.js";
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { AsrResult, AsrSession } from "../../providers/types.js";
import type { VadEvent } from "../../vad/index.js";
import type { ErrorSender } from "../conversation.js";
import type { CallerVad, EventBody } from "../core/index.js";
import {
  InterruptionPolicy,
  TurnDetector,
  type InterruptionInput,
  type InterruptionOptions,
  type InterruptionOutput,
  type TurnDetectorOptions,
  type TurnOutput,
} from "../turn/index.js";

/** A decided (or speculative) caller turn for the conversation to act on. */
export type TurnDecision = Extract<TurnOutput, { type: "speculate" | "discard" | "commit" | "reply" }>;

export interface CallerTurnsHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly callId: string;
  readonly log?: Logger | undefined;
  readonly tickMs: number;
  /** `vad.silenceTimeoutMs`: `silence {reason:"timeout"}` per full silent period (0 = off). */
  readonly silenceTimeoutMs: number;
  ended(): boolean;
  /** `pause`: the caller cannot barge in meanwhile. */
  paused(): boolean;
  emit(e: EventBody): void;
  error(sender: ErrorSender, err: unknown): void;
  /** Caller speech or words: a pending `waitInputTimeout` is moot. */
  callerInput(): void;
  speechStarted(): void;
  interruption(outputs: readonly InterruptionOutput[]): void;
  decision(d: TurnDecision): void;
  /** The ASR failed (the `error` event is out). */
  asrFailed(): void;
}

export class CallerTurns {
  readonly turns: TurnDetector;
  readonly interruptions: InterruptionPolicy;
  private asr: AsrSession | undefined;
  private vad: CallerVad | undefined;
  private ticker: TimerHandle | undefined;
  private speaking = false;
  /** `vad.silenceTimeoutMs` state: the caller is silent since (leg ms), unless speaking. */
  private silentSinceMs = 0;

  constructor(
    private readonly h: CallerTurnsHost,
    eou: Partial<TurnDetectorOptions>,
    interruption: Partial<InterruptionOptions> | undefined,
  ) {
    this.turns = new TurnDetector(eou);
    this.interruptions = new InterruptionPolicy(interruption);
  }

  start(vad: CallerVad, asr: AsrSession): void {
    this.vad = vad;
    this.asr = asr;
    this.silentSinceMs = this.h.leg.nowMs;
    this.scheduleTick();
    void this.asrLoop(asr);
  }

  stop(): void {
    if (this.ticker) this.h.clock.clearTimer(this.ticker);
    this.ticker = undefined;
    this.asr?.close();
  }

  /** A caller frame after mute and the processors. */
  push(frame: AudioFrame): void {
    this.asr?.write(frame);
    const events = this.vad?.push(frame.pcm) ?? [];
    for (const ev of events) this.onVad(ev);
  }

  /** The agent's playback state (trackStart/trackEnd/interruptible) for the barge-in policy. */
  playback(input: Extract<InterruptionInput, { type: "trackStart" | "trackEnd" | "interruptible" }>, act = true): void {
    const out = this.interruptions.process(input);
    if (act) this.h.interruption(out);
  }

  private onVad(ev: VadEvent): void {
    const now = this.h.leg.nowMs;
    const h = this.h;
    if (ev.type === "speaking") {
      this.speaking = true;
      h.callerInput();
      h.emit({ event: "speaking", trackId: h.callId, startTime: ev.startMs });
      h.speechStarted();
      h.interruption(h.paused() ? [] : this.interruptions.process({ type: "speaking", atMs: now, startMs: now - (ev.atMs - ev.startMs) }));
      this.onTurn(this.turns.process({ type: "speaking", atMs: now }));
    } else {
      this.speaking = false;
      this.silentSinceMs = now;
      h.emit({ event: "silence", trackId: h.callId, startTime: ev.startMs, duration: ev.durationMs, reason: "vad" });
      h.interruption(this.interruptions.process({ type: "silence", atMs: now }));
      this.onTurn(this.turns.process({ type: "silence", atMs: now }));
    }
  }

  private async asrLoop(session: AsrSession): Promise<void> {
    try {
      for await (const r of session.results) {
        if (this.h.ended()) break;
        this.onAsr(r);
      }
    } catch (err) {
      if (!this.h.ended()) {
        this.h.error("asr", err);
        this.h.asrFailed();
      }
    }
  }

  private onAsr(r: AsrResult): void {
    const h = this.h;
    const now = h.leg.nowMs;
    if (r.type !== "error") h.callerInput();
    if (r.type === "partial") h.emit({ event: "asrDelta", trackId: h.callId, index: r.utterance, text: r.text });
    else if (r.type === "final") h.emit({ event: "asrFinal", trackId: h.callId, index: r.utterance, text: r.text });
    else h.emit({ event: "error", trackId: h.callId, sender: "asr", code: r.error.code, error: r.error.message });
    if (!this.turns.isDecided(r.utterance) && !h.paused()) h.interruption(this.interruptions.process({ type: "asr", atMs: now, result: r }));
    this.onTurn(this.turns.process({ type: "asr", atMs: now, result: r }));
    if (r.type === "error") h.asrFailed();
  }

  private scheduleTick(): void {
    this.ticker = this.h.clock.setTimer(() => {
      this.ticker = undefined;
      if (this.h.ended()) return;
      try {
        const now = this.h.leg.nowMs;
        this.checkSilenceTimeout(now);
        this.h.interruption(this.interruptions.tick(now));
        this.onTurn(this.turns.tick(now));
      } catch (err) {
        this.h.error("playbook", err);
      }
      this.scheduleTick();
    }, this.h.tickMs);
  }

  private onTurn(outputs: readonly TurnOutput[]): void {
    for (const o of outputs) {
      if (this.h.ended()) return;
      switch (o.type) {
        case "endUtterance":
          this.asr?.endUtterance();
          break;
        case "eou":
          this.h.emit({ event: "eou", trackId: this.h.callId, completed: o.completed });
          break;
        case "drop":
          // The caller spoke but no transcript came within eou.maxWaitMs: say so, or the silence is a mystery.
          this.h.log?.info({ turn: o.turn }, "caller turn dropped: no transcript within eou.maxWaitMs");
          break;
        default:
          this.h.decision(o);
      }
    }
  }

  /** `vad.silenceTimeoutMs`: one `silence {reason:"timeout"}` per full period the caller has been silent. */
  private checkSilenceTimeout(now: number): void {
    const period = this.h.silenceTimeoutMs;
    if (!(period > 0) || this.speaking) return;
    if (now - this.silentSinceMs < period) return;
    this.h.emit({ event: "silence", trackId: this.h.callId, startTime: this.silentSinceMs, duration: period, reason: "timeout" });
    this.silentSinceMs += period;
  }
}
