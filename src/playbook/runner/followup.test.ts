import { describe, expect, it } from "vitest";
import type { TimerClock } from "../../util/pausable-timer.js";
import { FollowupClock } from "./followup.js";

/** A manual clock: time moves only with `advance`, timers fire in due order. */
function manualClock() {
  let now = 0;
  let next = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: TimerClock<number> = {
    now: () => now,
    set: (fn, ms) => {
      timers.set(++next, { at: now + ms, fn });
      return next;
    },
    clear: (h) => void timers.delete(h),
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].fn();
    }
    now = end;
  };
  return { clock, advance, pending: () => timers.size };
}

function setup() {
  const m = manualClock();
  const fired: number[] = [];
  const f = new FollowupClock(m.clock, () => fired.push(m.clock.now()));
  return { ...m, f, fired };
}

describe("FollowupClock countdown", () => {
  it("fires once, timeoutMs after arm; arming again while it runs keeps the first deadline", () => {
    const { f, advance, fired } = setup();
    expect(f.arm(5000)).toBe(true);
    expect(f.running).toBe(true);
    advance(3000);
    expect(f.arm(5000)).toBe(false);
    advance(1999);
    expect(fired).toEqual([]);
    advance(1);
    expect(fired).toEqual([5000]);
    expect(f.running).toBe(false);
    advance(10_000);
    expect(fired).toEqual([5000]);
  });

  it("pause keeps what is left; arm is refused while paused; resume(true) goes on with the rest", () => {
    const { f, advance, fired, pending } = setup();
    f.arm(5000);
    advance(2000);
    f.pause();
    expect(f.paused).toBe(true);
    expect(f.running).toBe(false);
    expect(pending()).toBe(0);
    expect(f.arm(5000)).toBe(false);
    advance(60_000);
    expect(fired).toEqual([]);
    expect(f.resume(true)).toBe(false);
    expect(f.paused).toBe(false);
    advance(2999);
    expect(fired).toEqual([]);
    advance(1);
    expect(fired).toEqual([65_000]);
  });

  it("resume(false) drops the paused countdown and asks the owner to arm a new one", () => {
    const { f, advance, fired, pending } = setup();
    f.arm(5000);
    advance(1000);
    f.pause();
    expect(f.resume(false)).toBe(true);
    expect(pending()).toBe(0);
    advance(10_000);
    expect(fired).toEqual([]);
    expect(f.arm(4000)).toBe(true);
    advance(4000);
    expect(fired).toEqual([15_000]);
  });

  it("resume without pause does nothing; resume(true) with nothing left to continue asks for a new countdown", () => {
    const { f, advance, fired } = setup();
    expect(f.resume(true)).toBe(false);
    f.pause(); // idle: nothing to keep
    expect(f.resume(true)).toBe(true);
    f.arm(1000);
    f.pause();
    f.pause(); // a second pause changes nothing
    advance(500);
    expect(f.resume(true)).toBe(false);
    advance(1000);
    expect(fired).toEqual([1500]);
  });

  it("cancel stops the countdown and keeps the count; reset also starts the count again", () => {
    const { f, advance, fired } = setup();
    const fu = { timeout: 1000, max: 3, text: "Still there?" };
    f.next(fu);
    f.next(fu);
    f.arm(1000);
    f.cancel();
    advance(2000);
    expect(fired).toEqual([]);
    expect(f.count).toBe(2);
    f.arm(1000);
    f.reset();
    advance(2000);
    expect(fired).toEqual([]);
    expect(f.count).toBe(0);
    expect(f.total).toBe(2);
  });
});

describe("FollowupClock.next", () => {
  it("says the text max times in a row, then the goodbye; the count and the total go up by one each time", () => {
    const { f } = setup();
    const fu = { timeout: 8000, max: 2, text: "Are you still there?", goodbye: "Goodbye." };
    expect(f.next(fu)).toEqual({ kind: "say", text: "Are you still there?" });
    expect([f.count, f.total]).toEqual([1, 1]);
    expect(f.next(fu)).toEqual({ kind: "say", text: "Are you still there?" });
    expect([f.count, f.total]).toEqual([2, 2]);
    expect(f.next(fu)).toEqual({ kind: "goodbye", text: "Goodbye." });
    expect([f.count, f.total]).toEqual([2, 2]);
  });

  it("without text: a system note with the silence in whole seconds; a reset count allows max more", () => {
    const { f } = setup();
    expect(f.next({ timeout: 7400, max: 1 })).toEqual({ kind: "note", text: "[the caller has been silent for 7 seconds]" });
    expect(f.next({ timeout: 7400, max: 1 })).toEqual({ kind: "goodbye" });
    f.reset();
    expect(f.next({ timeout: 7600, max: 1 })).toEqual({ kind: "note", text: "[the caller has been silent for 8 seconds]" });
    expect(f.total).toBe(2);
  });

  it("max 0: the first timeout is the goodbye, and no follow-up is counted", () => {
    const { f } = setup();
    const action = f.next({ timeout: 5000, max: 0, text: "Hello?" });
    expect(action).toEqual({ kind: "goodbye" });
    expect("text" in action).toBe(false);
    expect([f.count, f.total]).toEqual([0, 0]);
  });
});
