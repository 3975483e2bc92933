/**
 * `waitInputTimeout` (ws-call-api §3.4): after an utterance ends, caller silence for that long is reported as
 * `silence {reason: "waitInputTimeout"}`. One countdown at a time (the last utterance's); caller speech, words,
 * a key or a new utterance cancel it; `pause` freezes it with what is left, `resume` continues it.
 */
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import { PausableTimer } from "../../util/pausable-timer.js";

export class WaitInputTimer {
  private readonly timer: PausableTimer<TimerHandle>;
  private startTime = 0;
  private duration = 0;

  constructor(
    clock: MediaClock,
    private readonly wall: () => number,
    /** The caller stayed silent: `startTime` is the wall time it began, `duration` the timeout. */
    fire: (startTime: number, duration: number) => void,
  ) {
    this.timer = new PausableTimer({ now: () => clock.now(), set: (fn, ms) => clock.setTimer(fn, ms), clear: (h) => clock.clearTimer(h) }, () =>
      fire(this.startTime, this.duration),
    );
  }

  /** Starts the countdown now (frozen at once when the conversation is paused). */
  start(ms: number, paused: boolean): void {
    this.startTime = this.wall();
    this.duration = ms;
    this.timer.start(ms);
    if (paused) this.timer.pause();
  }

  pause(): void {
    this.timer.pause();
  }

  resume(): void {
    this.timer.resume();
  }

  cancel(): void {
    this.timer.cancel();
  }
}
