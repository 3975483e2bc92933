// Shared test helpers: waiting and per-test cleanup. Not imported by app code.
import { afterEach } from "vitest";

export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `stepMs` until it holds; throws `timed out waiting for ${what}` after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 20_000, stepMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Registers an `afterEach` that runs (and awaits) the pushed functions in reverse order; returns the push. */
export function useCleanups(): (fn: () => unknown) => void {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return (fn) => {
    cleanups.push(fn);
  };
}
