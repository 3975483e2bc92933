/**
 * The caller's keys on a Realtime call: the scene's key actions (playbook.md §2.9), the DTMF collectors (§2.10,
 * the scene runner's CollectorRun: digits, finish key, lengths, timers, validation, retries; its prompts and error
 * messages spoken by the model word for word, not interruptible), and otherwise a message to the model (§5.4).
 * While a collector runs every key goes to it (key actions are suspended).
 */
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import type { DtmfEvent } from "../../media/leg.js";
import { collectedNote, openCollector, type CollectorResult, type CollectorRun } from "../../playbook/runner/index.js";
import type { Playbook } from "../../playbook/types.js";
import type { RealtimeSession } from "../../providers/types.js";
import type { EventBody } from "../core/index.js";
import type { RealtimeScenes, Terminal } from "./scenes.js";

export interface KeypadHost {
  readonly clock: MediaClock;
  readonly callId: string;
  readonly playbook: Pick<Playbook, "collectors">;
  readonly scenes: RealtimeScenes;
  session(): RealtimeSession | undefined;
  ended(): boolean;
  /** A terminal action is waiting for the playout: keys no longer act, collectors bring no reply. */
  ending(): boolean;
  emit(e: EventBody): void;
  /** A fixed text spoken by the model word for word; its playId (undefined when it renders empty). */
  say(source: string, opts: { interruptible: boolean; prefix?: string }): string | undefined;
  /** A key press: the follow-up countdown stops and its count starts again. */
  resetFollowup(): void;
  /** A collector starts: the follow-up countdown stops. */
  cancelFollowup(): void;
  /** Something caller input may not cut is playing or being spoken. */
  uninterruptible(): boolean;
  /** A mapped key cuts interruptible playback. */
  cutPlayback(): void;
  /** The scene changed: the session gets its instructions and tools (and, with `plays`, its sounds start). */
  sceneChanged(plays: boolean): void;
  /** The model replies. */
  answer(): void;
  /** hangup, refer or transfer once the agent's speech before it has been heard. */
  terminal(t: Terminal): void;
}

export class Keypad {
  private run: CollectorRun | undefined;

  constructor(private readonly h: KeypadHost) {}

  /** The DTMF collector running. */
  get collector(): CollectorRun | undefined {
    return this.run;
  }

  /** A non-interruptible collector ignores caller speech: the model hears silence meanwhile. */
  get silencesCaller(): boolean {
    return this.run !== undefined && !this.run.interruptible;
  }

  /**
   * The caller's turn ended: caller speech cancels an interruptible collector and is a normal turn (a
   * non-interruptible one never hears it: the caller's audio reaches the model as silence while it runs).
   */
  callerTurnEnded(): void {
    if (!this.run?.interruptible) return;
    this.run.cancel();
    this.run = undefined;
  }

  /** An utterance ended (or will never be spoken): a collector waiting for its prompt's end starts its timer. */
  playEnded(playId: string): void {
    this.run?.onPlayEnded(playId);
  }

  /** The call ends. */
  cancel(): void {
    this.run?.cancel();
    this.run = undefined;
  }

  digit(e: DtmfEvent): void {
    if (this.h.ended()) return;
    const digit = e.digit;
    this.h.emit({ event: "dtmf", trackId: this.h.callId, digit, durationMs: e.durationMs, source: e.source });
    this.h.resetFollowup();
    if (this.run) {
      this.run.onDigit(digit);
      return;
    }
    const action = this.h.scenes.keyAction(digit);
    if (this.h.ending()) return;
    if (action) {
      // §2.9: a mapped key cuts interruptible playback at once; `say` is spoken (not interruptible) before the action.
      if (!this.h.uninterruptible()) this.h.cutPlayback();
      if (action.say) this.h.say(action.say, { interruptible: false });
      switch (action.action) {
        case "goto":
          if (this.h.scenes.switchScene(action.scene, "dtmf")) {
            this.h.sceneChanged(true);
            this.h.answer();
          }
          return;
        case "collect":
          this.startCollector(action.collector, action.var, undefined);
          return;
        case "hangup":
          this.h.terminal({ kind: "hangup" });
          return;
        case "refer":
          this.h.terminal({ kind: "refer", target: action.target ?? "" });
          return;
        case "transfer":
          this.h.terminal({ kind: "transfer", target: action.target ?? "", context: action.context });
          return;
      }
    }
    // No key action: the model is told, as a message (§5.4), and answers.
    const text = `[the caller pressed ${digit}]`;
    this.h.session()?.addMessage("user", text);
    this.h.scenes.add({ role: "user", content: text });
    this.h.answer();
  }

  /** Starts a collector (a key action's or a `collect_digits` call's); false, with an `error`, when it cannot. */
  startCollector(name: string | undefined, varName: string | undefined, prompt: string | undefined): boolean {
    const run = openCollector(this.h.playbook, { name, varName, prompt }, (self) => ({
      say: (source) => this.h.say(source, { interruptible: false, prefix: "collect" }),
      setTimer: (fn, ms) =>
        this.h.clock.setTimer(() => {
          if (!this.h.ended()) fn();
        }, ms),
      clearTimer: (t) => this.h.clock.clearTimer(t as TimerHandle),
      done: (result) => this.collected(self(), result),
    }));
    if (typeof run === "string") {
      this.h.emit({ event: "error", trackId: this.h.callId, sender: "playbook", code: "BAD_REQUEST", error: run });
      return false;
    }
    this.h.cancelFollowup();
    this.run?.cancel();
    this.run = run;
    run.start();
    return true;
  }

  /** §2.10 steps 6–7: the variable, `collected`, the system note (history and model), then the model replies. */
  private collected(run: CollectorRun, r: CollectorResult): void {
    if (this.run === run) this.run = undefined;
    if (this.h.ended()) return;
    if (r.valid) this.h.scenes.setCollected(r.var, r.digits);
    this.h.emit({ event: "collected", collector: r.collector, var: r.var, digits: r.digits, valid: r.valid, attempt: r.attempt });
    const note = collectedNote(r);
    this.h.scenes.add({ role: "system", content: note });
    this.h.session()?.addMessage("system", note);
    if (!this.h.ending()) this.h.answer();
  }
}
