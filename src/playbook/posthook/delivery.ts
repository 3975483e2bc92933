/**
 * Delivers post-call hooks (config.md §2.12): spooled before the first attempt, summarised (again after a
 * restart if the summary was still pending), signed, retried with exponential backoff and jitter on connection
 * errors, timeouts, 408, 429 and 5xx, and moved to `failed/` when a 4xx says no or the retries run out.
 * Delivery is at least once: receivers deduplicate by `X-Active-Call-Delivery`.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../log.js";
import { signBody } from "../../util/hmac.js";
import { HookSpool, type HookEntry } from "./spool.js";

export interface DeliveryOptions {
  spoolRoot: string;
  /** HMAC key; empty = unsigned. */
  secret: string;
  retries: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  concurrency: number;
  userAgent: string;
  log: Logger;
  /** Makes the summary of an entry whose `pendingSummary` is set. Must not throw (report errors in the result). */
  summarise?: (entry: HookEntry) => Promise<{ summary: unknown; summaryError: string | null }>;
  /** Called with each attempt's outcome (metrics). */
  onOutcome?: (outcome: "ok" | "retry" | "failed") => void;
  /** For tests: jitter source in [0, 1). */
  random?: () => number;
}

export type NewHook = Omit<HookEntry, "deliveryId" | "attempts" | "createdAt"> & { deliveryId?: string };

const RETRYABLE_STATUS = (s: number) => s === 408 || s === 429 || s >= 500;

export class PosthookDelivery {
  private readonly spool: HookSpool;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private stopped = false;
  private spooled = 0;

  constructor(private readonly options: DeliveryOptions) {
    this.spool = new HookSpool(options.spoolRoot);
  }

  /** Hooks in the spool (waiting for delivery or a retry). */
  get pending(): number {
    return this.spooled;
  }

  /** Creates the spool folders and resumes what a previous run left there. */
  async start(): Promise<void> {
    await this.spool.init();
    const entries = await this.spool.list((file, err) => this.options.log.error({ file, err }, "unreadable posthook spool file moved to failed"));
    if (entries.length) this.options.log.info({ count: entries.length }, "resuming spooled posthooks");
    for (const entry of entries) {
      this.spooled++;
      this.track(this.prepareAndDeliver(entry));
    }
  }

  /**
   * Spools a hook (durably, before anything else), then summarises and delivers it in the background.
   * Resolves once the hook is safe on disk.
   */
  async submit(hook: NewHook): Promise<string> {
    const entry: HookEntry = { ...hook, deliveryId: hook.deliveryId ?? randomUUID(), attempts: 0, createdAt: new Date().toISOString() };
    entry.payload = { ...entry.payload, deliveryId: entry.deliveryId };
    await this.spool.write(entry);
    this.spooled++;
    this.track(this.prepareAndDeliver(entry));
    return entry.deliveryId;
  }

  /** Stops retrying (spooled hooks stay on disk for the next start) and waits for attempts under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when nothing is under way or scheduled (tests, and shutdown with a deadline). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0 || this.timers.size > 0) {
      await Promise.allSettled([...this.inFlight]);
      if (this.inFlight.size === 0 && this.timers.size > 0) await new Promise((r) => setTimeout(r, 5));
    }
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) => this.options.log.error({ err }, "posthook delivery crashed"));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
  }

  private async prepareAndDeliver(entry: HookEntry): Promise<void> {
    if (entry.pendingSummary && this.options.summarise) {
      const { summary, summaryError } = await this.options.summarise(entry);
      entry.payload = { ...entry.payload, summary, summaryError };
      entry.pendingSummary = undefined;
      await this.spool.write(entry);
    }
    await this.attempt(entry);
  }

  private async attempt(entry: HookEntry): Promise<void> {
    if (this.stopped) return;
    await this.acquire();
    if (this.stopped) return this.release();
    entry.attempts++;
    let retryable: boolean;
    let detail: Record<string, unknown>;
    let retryAfterMs = 0;
    try {
      // The attempt count is on disk before the request leaves: after a crash mid-request the repeat carries the
      // next `X-Active-Call-Attempt` (same `X-Active-Call-Delivery`), so a receiver can tell it is a repeat.
      await this.spool.write(entry, false);
      const body = JSON.stringify(entry.payload);
      const headers: Record<string, string> = {
        ...entry.headers,
        "Content-Type": "application/json",
        "User-Agent": this.options.userAgent,
        "X-Active-Call-Event": "call.ended",
        "X-Active-Call-Delivery": entry.deliveryId,
        "X-Active-Call-Attempt": String(entry.attempts),
      };
      if (this.options.secret) headers["X-Signature"] = signBody(this.options.secret, body);
      const res = await fetch(entry.url, { method: entry.method, headers, body, signal: AbortSignal.timeout(entry.timeoutMs) });
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) {
        await this.spool.remove(entry.deliveryId);
        this.spooled--;
        this.options.onOutcome?.("ok");
        this.options.log.info({ deliveryId: entry.deliveryId, attempts: entry.attempts, status: res.status }, "posthook delivered");
        return;
      }
      retryable = RETRYABLE_STATUS(res.status);
      retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      detail = { status: res.status };
    } catch (err) {
      // Connection errors and timeouts: the receiver may or may not have it; retry (at least once).
      retryable = true;
      detail = { error: (err as Error).name === "TimeoutError" ? "timeout" : (err as Error).message };
    } finally {
      this.release();
    }

    if (retryable && entry.attempts <= this.options.retries && !this.stopped) {
      const delayMs = Math.max(this.backoff(entry.attempts), Math.min(retryAfterMs, this.options.backoffMaxMs));
      this.options.onOutcome?.("retry");
      this.options.log.warn({ deliveryId: entry.deliveryId, attempts: entry.attempts, delayMs, ...detail }, "posthook attempt failed; retrying");
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.track(this.attempt(entry));
      }, delayMs);
      timer.unref();
      this.timers.add(timer);
      return;
    }
    if (this.stopped) return;
    await this.spool.write(entry); // keep the final attempt count with the failed hook
    await this.spool.moveToFailed(entry.deliveryId);
    this.spooled--;
    this.options.onOutcome?.("failed");
    this.options.log.error({ deliveryId: entry.deliveryId, attempts: entry.attempts, url: entry.url, ...detail }, "posthook failed for good; moved to the failed spool");
  }

  /** initial * 2^(n-1), capped, ±20 % jitter. */
  private backoff(attempts: number): number {
    const base = Math.min(this.options.backoffInitialMs * 2 ** (attempts - 1), this.options.backoffMaxMs);
    const jitter = 1 + ((this.options.random ?? Math.random)() * 0.4 - 0.2);
    return Math.round(base * jitter);
  }

  private acquire(): Promise<void> {
    if (this.running < this.options.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) =>
      this.waiting.push(() => {
        this.running++;
        resolve();
      }),
    );
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }
}

/** `Retry-After` in seconds or as an HTTP date; 0 when absent or unreadable. */
function parseRetryAfter(value: string | null): number {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 0;
}
