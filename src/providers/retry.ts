/**
 * Failure handling shared by the network providers (media-protocols.md §5, config.md §2.10):
 * - a request is retried only on connection errors (resets, refused), 408, 429 (honouring `retry-after`), 5xx and
 *   a missing first byte, and only while nothing of its response was received;
 * - the time to the first byte is bounded (`timeoutMs`), and so is every gap between later chunks;
 * - everything stops at once when the caller's signal aborts (the iteration then throws the signal's reason).
 */
import { AppError } from "../errors.js";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Time to the first byte of a response, and the longest gap between two chunks after it. */
  timeoutMs: number;
  /** First backoff delay when the server gives no `retry-after`; doubles per retry (with ±20 % jitter). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A `retry-after` longer than this is not waited for: the request fails at once. */
  maxRetryAfterMs?: number;
}

/** What a failed attempt tells the retry loop. */
export interface Failure {
  error: AppError;
  /** Whether the policy allows another attempt (before any output only). */
  retryable: boolean;
  /** The server's `retry-after`, in ms. */
  retryAfterMs?: number | undefined;
}

export function providerError(
  provider: string,
  message: string,
  options: { status?: number | undefined; cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {},
): AppError {
  const details: Record<string, unknown> = { provider, ...options.details };
  if (options.status !== undefined) details.status = options.status;
  return new AppError("PROVIDER_ERROR", message, {
    cause: options.cause,
    details,
    ...(options.retryable === undefined ? {} : { retryable: options.retryable }),
  });
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `retry-after-ms`, or `retry-after` in seconds or as an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(get: (name: string) => string | null | undefined, now = Date.now()): number | undefined {
  const ms = get("retry-after-ms");
  if (ms) {
    const v = Number.parseFloat(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const after = get("retry-after");
  if (!after) return undefined;
  const seconds = Number.parseFloat(after);
  if (Number.isFinite(seconds) && /^\s*[\d.]+\s*$/.test(after)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The reason our own timer aborts an attempt with, so it is told apart from the caller's abort. */
class StallTimeout extends Error {
  constructor(readonly phase: "first-byte" | "idle") {
    super(phase);
  }
}

export interface AttemptContext {
  signal: AbortSignal;
  /** 0 for the first attempt. */
  attempt: number;
}

/**
 * Runs `attempt` under the policy and yields its items. An item counts as received output: once one was yielded,
 * a failure is final. `classify` turns an attempt's error into a Failure (with its retryability).
 */
export async function* withRetries<T>(
  provider: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (ctx: AttemptContext) => AsyncIterable<T>,
  classify: (err: unknown) => Failure,
): AsyncGenerator<T> {
  const base = policy.baseDelayMs ?? 500;
  const maxDelay = policy.maxDelayMs ?? 8000;
  const maxRetryAfter = policy.maxRetryAfterMs ?? 30000;
  for (let n = 0; ; n++) {
    signal?.throwIfAborted();
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const arm = (phase: "first-byte" | "idle") => {
      clearTimeout(timer);
      if (policy.timeoutMs > 0) timer = setTimeout(() => controller.abort(new StallTimeout(phase)), policy.timeoutMs);
    };
    let started = false;
    let failure: Failure;
    try {
      arm("first-byte");
      const iterator = attempt({ signal: controller.signal, attempt: n })[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await raceAbort(iterator.next(), controller.signal);
          if (next.done) break;
          started = true;
          clearTimeout(timer);
          yield next.value;
          arm("idle");
        }
      } finally {
        clearTimeout(timer);
        // Release the request (or process) when we stop early: on error, abort or a consumer that broke off.
        if (!controller.signal.aborted) controller.abort(new Error("iteration ended"));
        void Promise.resolve(iterator.return?.()).catch(() => {});
      }
      return;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const reason: unknown = controller.signal.reason;
      if (reason instanceof StallTimeout) {
        const what = reason.phase === "first-byte" ? "no response" : "the response stalled";
        failure = {
          error: new AppError("TIMEOUT", `${provider}: ${what} within ${policy.timeoutMs} ms`, { details: { provider, timeoutMs: policy.timeoutMs } }),
          retryable: true,
        };
      } else {
        failure = classify(err);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (started || !failure.retryable || n >= policy.maxRetries) throw failure.error;
    let delay = failure.retryAfterMs;
    if (delay !== undefined && delay > maxRetryAfter) throw failure.error;
    if (delay === undefined) delay = Math.min(maxDelay, base * 2 ** n) * (0.8 + 0.4 * Math.random());
    await sleep(delay, signal);
  }
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (an SDK stream may not notice the abort itself). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}
