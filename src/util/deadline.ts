/**
 * A signal that aborts after `ms`, or when `parent` aborts, whichever comes first.
 *
 * Why not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal inside `any()` is
 * only weakly held, and a garbage collection before it fires loses the timeout (nodejs/node#57736). CI saw it: a
 * 200 ms tool timeout that never fired. Here the timer holds the controller strongly, and `clear()` releases the
 * timer and the parent listener as soon as the work is done, so nothing lingers on long-lived parents.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True when the deadline (not the parent) aborted the signal. */
  readonly timedOut: boolean;
  /** Stops the timer and detaches from the parent; call it when the guarded work is over. */
  clear(): void;
}

export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const ctrl = new AbortController();
  let timedOut = false;
  const onParentAbort = (): void => {
    clearTimeout(timer);
    ctrl.abort(parent!.reason);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    parent?.removeEventListener("abort", onParentAbort);
    ctrl.abort(new DOMException(`The operation timed out after ${ms} ms`, "TimeoutError"));
  }, ms);
  timer.unref?.();
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: ctrl.signal,
    get timedOut() {
      return timedOut;
    },
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
