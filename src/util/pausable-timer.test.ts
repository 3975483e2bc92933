import { describe, expect, it } from "vitest";
import { PausableTimer, type TimerClock } from "./pausable-timer.js";

/** A manual clock: time moves only when the test says so. */
function manualClock(): TimerClock<number> & { advance(ms: number): void } {
  let now = 0;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    set(fn, ms) {
      timers.set(++seq, { at: now + ms, fn });
      return seq;
    },
    clear(h) {
      timers.delete(h);
    },
    advance(ms) {
      now += ms;
      for (const [h, t] of [...timers]) {
        if (t.at > now) continue;
        timers.delete(h);
        t.fn();
      }
    },
  };
}

describe("PausableTimer", () => {
  it("fires once after its length", () => {
    const clock = manualClock();
    let fired = 0;
    const t = new PausableTimer(clock, () => fired++);
    t.start(1000);
    clock.advance(999);
    expect(fired).toBe(0);
    expect(t.running).toBe(true);
    clock.advance(1);
    expect(fired).toBe(1);
    expect(t.running).toBe(false);
    expect(t.resume()).toBe(false);
  });

  it("pause keeps what is left; resume counts down only that", () => {
    const clock = manualClock();
    let fired = 0;
    const t = new PausableTimer(clock, () => fired++);
    t.start(1000);
    clock.advance(600);
    t.pause();
    clock.advance(5000);
    expect(fired).toBe(0);
    expect(t.resume()).toBe(true);
    clock.advance(399);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
  });

  it("cancel forgets a paused countdown; start replaces a running one", () => {
    const clock = manualClock();
    let fired = 0;
    const t = new PausableTimer(clock, () => fired++);
    t.start(1000);
    t.pause();
    t.cancel();
    expect(t.resume()).toBe(false);
    t.start(1000);
    clock.advance(500);
    t.start(1000);
    clock.advance(999);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
  });
});
