import { describe, expect, it } from "vitest";
import { deadline } from "./deadline.js";

describe("deadline", () => {
  it("aborts with a TimeoutError after ms, even when a garbage collection runs in between", async () => {
    const parent = new AbortController();
    const d = deadline(30, parent.signal);
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(true);
    expect(d.timedOut).toBe(true);
    expect((d.signal.reason as Error).name).toBe("TimeoutError");
  });

  it("follows the parent's abort and reason, and is not a timeout then", () => {
    const parent = new AbortController();
    const d = deadline(10_000, parent.signal);
    parent.abort(new Error("stopped"));
    expect(d.signal.aborted).toBe(true);
    expect(d.timedOut).toBe(false);
    expect((d.signal.reason as Error).message).toBe("stopped");
    d.clear();
  });

  it("an already aborted parent aborts at once; clear() stops the timer", async () => {
    const parent = new AbortController();
    parent.abort();
    expect(deadline(10_000, parent.signal).signal.aborted).toBe(true);
    const d = deadline(20);
    d.clear();
    await new Promise((r) => setTimeout(r, 40));
    expect(d.signal.aborted).toBe(false);
  });
});
