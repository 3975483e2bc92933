/**
 * The time source of media pacing. Production uses `realClock` (performance.now + setTimeout); tests use
 * `ManualClock`, whose time moves only when the test calls `advance`, so pacing is asserted without real timers.
 */

export interface TimerHandle {
  readonly id: number;
}

export interface MediaClock {
  /** Monotonic time in ms (arbitrary origin). */
  now(): number;
  /** Calls `callback` once, `delayMs` from now (0 = as soon as possible, never synchronously). */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

class RealTimer implements TimerHandle {
  constructor(
    readonly id: number,
    readonly timeout: ReturnType<typeof setTimeout>,
  ) {}
}

let realIds = 0;

/** performance.now() and setTimeout. Timers are unref'd: a pacer alone does not keep the process alive. */
export const realClock: MediaClock = {
  now: () => performance.now(),
  setTimer(callback, delayMs) {
    const t = setTimeout(callback, Math.max(0, delayMs));
    t.unref?.();
    return new RealTimer(++realIds, t);
  },
  clearTimer(handle) {
    if (handle instanceof RealTimer) clearTimeout(handle.timeout);
  },
};

interface ManualTimer extends TimerHandle {
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * A clock for tests: time stands still until `advance(ms)`, which runs due timers in time order, setting `now()`
 * to each timer's due time while it runs (so code sees exactly the time it asked for).
 */
export class ManualClock implements MediaClock {
  private time: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer: ManualTimer = { id: ++this.seq, seq: this.seq, at: this.time + Math.max(0, delayMs), callback };
    this.timers.push(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    const i = this.timers.findIndex((t) => t.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Timers not yet run. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, running every timer that falls due (including ones they schedule). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    const end = this.time + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = Math.max(this.time, next.at);
      next.callback();
    }
    this.time = end;
  }

  /** Advances in `stepMs` steps up to `ms` in total (handy to interleave test actions with pacing). */
  advanceBy(ms: number, stepMs: number): void {
    for (let done = 0; done < ms; done += stepMs) this.advance(Math.min(stepMs, ms - done));
  }
}
