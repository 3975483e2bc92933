/**
 * A one-shot timer that can be paused and resumed with what was left of it (the follow-up timer of playbooks:
 * `pause` freezes it, `resume` continues it). It runs on whatever clock its owner uses (the runner's scheduler,
 * a media clock), so tests can drive it with a manual clock.
 */

export interface TimerClock<H> {
  now(): number;
  set(fn: () => void, ms: number): H;
  clear(handle: H): void;
}

export class PausableTimer<H> {
  private handle: H | undefined;
  private armedAt = 0;
  /** Running: its length; paused: what is left; idle: undefined. */
  private remaining: number | undefined;

  constructor(
    private readonly clock: TimerClock<H>,
    private readonly fire: () => void,
  ) {}

  /** Counting down now. */
  get running(): boolean {
    return this.handle !== undefined;
  }

  /** Fires `fire` after `ms` (replacing a running or paused countdown). */
  start(ms: number): void {
    this.cancel();
    this.armedAt = this.clock.now();
    this.remaining = ms;
    this.handle = this.clock.set(() => {
      this.handle = undefined;
      this.remaining = undefined;
      this.fire();
    }, ms);
  }

  /** Stops it for good (running or paused). */
  cancel(): void {
    if (this.handle !== undefined) this.clock.clear(this.handle);
    this.handle = undefined;
    this.remaining = undefined;
  }

  /** Stops a running countdown, keeping what is left of it for `resume`. */
  pause(): void {
    if (this.handle === undefined || this.remaining === undefined) return;
    const left = Math.max(0, this.remaining - (this.clock.now() - this.armedAt));
    this.clock.clear(this.handle);
    this.handle = undefined;
    this.remaining = left;
  }

  /** Continues a paused countdown; false (and idle) when nothing was paused. */
  resume(): boolean {
    const left = this.handle === undefined ? this.remaining : undefined;
    if (left === undefined) return false;
    this.start(left);
    return true;
  }
}
