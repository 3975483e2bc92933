/**
 * The runner's timers, all on its injected scheduler: `stop` clears every one still pending and none fires after
 * it (playbook runner rule: after `stop()` nothing runs). It is a TimerClock, so the follow-up clock runs on it too.
 */
import type { TimerClock } from "../../util/pausable-timer.js";
import type { Scheduler } from "./types.js";

export interface TimerRef {
  handle: unknown;
}

export class RunnerTimers implements TimerClock<TimerRef> {
  private readonly pending = new Set<TimerRef>();
  private stopped = false;

  constructor(private readonly scheduler: Scheduler) {}

  now(): number {
    return this.scheduler.now();
  }

  set(fn: () => void, ms: number): TimerRef {
    const t: TimerRef = { handle: undefined };
    t.handle = this.scheduler.setTimeout(() => {
      this.pending.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.pending.add(t);
    return t;
  }

  clear(t: TimerRef | undefined): void {
    if (!t) return;
    this.scheduler.clearTimeout(t.handle);
    this.pending.delete(t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.pending) this.scheduler.clearTimeout(t.handle);
    this.pending.clear();
  }
}
