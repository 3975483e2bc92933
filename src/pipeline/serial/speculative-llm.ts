/**
 * Early EOU speculation for the serial pipeline (playbook.md §2.6): the TurnDetector's `speculate` starts the
 * LLM request the runner is about to make, before the caller's turn is over; the runner is told about the turn
 * only on `commit`, and its request then adopts the speculative stream (buffered events first, the rest as they
 * come) instead of starting a new one. `discard` aborts the speculative request; nothing of it was played or
 * entered the history, because the runner never saw it.
 *
 * The runner is given this object as its LLM; every request that does not match the speculation (another
 * text, tool rounds, a greeting) goes straight to the provider.
 *
 * Stalls: with `stall` options every stream it returns (adopted or direct) fails with a TIMEOUT AppError when
 * the first event does not come within the request's `timeoutMs` (playbook `llm.timeoutMs`, else the default),
 * or a later one does not come within the same time after the previous one; the provider request is aborted.
 * An abort of the request's signal ends a pending wait at once, even when the provider ignores the signal.
 */
import { AppError } from "../../errors.js";
import type { MediaClock } from "../../media/clock.js";
import type { ChatMessage, ChatRequest, LlmEvent, LlmProvider } from "../../providers/types.js";
import { normalizeForCompare } from "../turn/index.js";

type Chat = Pick<LlmProvider, "chat">;

class Prefetch {
  readonly ctrl = new AbortController();
  readonly events: LlmEvent[] = [];
  done = false;
  error: unknown;
  adopted = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly text: string,
    readonly historyLength: number,
    readonly startedAt: number,
  ) {}

  run(inner: Chat, request: ChatRequest): void {
    const task = async (): Promise<void> => {
      try {
        for await (const ev of inner.chat({ ...request, signal: this.ctrl.signal })) {
          this.events.push(ev);
          this.notify();
        }
      } catch (err) {
        this.error = err;
      } finally {
        this.done = true;
        this.notify();
      }
    };
    void task();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  next(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }
}

export interface SpeculationStats {
  started: number;
  adopted: number;
  aborted: number;
}

export interface StallOptions {
  clock: Pick<MediaClock, "setTimer" | "clearTimer">;
  /** Default time to the first event and between events (a request's `timeoutMs` overrides it). */
  timeoutMs: number;
  /** Provider name for messages. */
  name?: string;
}

/**
 * Iterates `source`, but gives up as soon as `signal` aborts (rejecting with its reason), even while the source
 * is stuck in `next()`; the source is then asked to return (not awaited).
 */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  let done = false;
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (!done) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

export class SpeculativeLlm implements Chat {
  private current: Prefetch | undefined;
  readonly stats: SpeculationStats = { started: 0, adopted: 0, aborted: 0 };

  constructor(
    private readonly inner: Chat,
    private readonly now: () => number = () => Date.now(),
    private readonly stall?: StallOptions,
  ) {}

  /** Whether a speculative request is running or buffered. */
  get active(): boolean {
    return this.current !== undefined;
  }

  /**
   * Starts the request the runner would make for the caller's `text`: `base` is the runner's next request
   * without the caller's message (system prompt + history, tools, sampling settings).
   */
  speculate(text: string, base: Omit<ChatRequest, "signal">): void {
    this.discard();
    const messages: ChatMessage[] = [...base.messages, { role: "user", content: text }];
    const p = new Prefetch(text, base.messages.length, this.now());
    this.current = p;
    this.stats.started++;
    p.run(this.inner, { ...base, messages });
  }

  /** Aborts the speculative request unplayed. */
  discard(): void {
    const p = this.current;
    if (!p) return;
    this.current = undefined;
    if (!p.adopted) {
      this.stats.aborted++;
      p.ctrl.abort();
    }
  }

  chat(request: ChatRequest): AsyncIterable<LlmEvent> {
    const p = this.current;
    if (p && this.matches(p, request)) {
      this.current = undefined;
      p.adopted = true;
      this.stats.adopted++;
      return this.guard(request, (signal) => this.replay(p, signal));
    }
    return this.guard(request, (signal) => this.inner.chat({ ...request, signal }));
  }

  private async *guard(request: ChatRequest, open: (signal: AbortSignal) => AsyncIterable<LlmEvent>): AsyncGenerator<LlmEvent> {
    const stall = this.stall;
    const ctrl = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, ctrl.signal]) : ctrl.signal;
    const timeoutMs = request.timeoutMs ?? stall?.timeoutMs ?? 0;
    let timer: ReturnType<MediaClock["setTimer"]> | undefined;
    const arm = (first: boolean): void => {
      if (!stall || !(timeoutMs > 0)) return;
      if (timer !== undefined) stall.clock.clearTimer(timer);
      const what = first ? "no first token" : "the stream stalled";
      timer = stall.clock.setTimer(
        () => ctrl.abort(new AppError("TIMEOUT", `${stall.name ?? "llm"}: ${what} within ${timeoutMs} ms`, { details: { timeoutMs } })),
        timeoutMs,
      );
    };
    arm(true);
    try {
      for await (const ev of abortable(open(signal), signal)) {
        arm(false);
        yield ev;
      }
    } catch (err) {
      if (ctrl.signal.aborted) throw ctrl.signal.reason as Error;
      throw err;
    } finally {
      if (timer !== undefined) stall?.clock.clearTimer(timer);
      ctrl.abort();
    }
  }

  private matches(p: Prefetch, request: ChatRequest): boolean {
    const last = request.messages.at(-1);
    return (
      last?.role === "user" &&
      request.messages.length === p.historyLength + 1 &&
      normalizeForCompare(last.content) === normalizeForCompare(p.text)
    );
  }

  private async *replay(p: Prefetch, signal: AbortSignal | undefined): AsyncGenerator<LlmEvent> {
    const onAbort = (): void => p.ctrl.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (let i = 0; ; ) {
        signal?.throwIfAborted();
        if (i < p.events.length) {
          yield p.events[i++] as LlmEvent;
          continue;
        }
        if (p.done) {
          if (p.error !== undefined) throw p.error;
          return;
        }
        await p.next();
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!p.done) p.ctrl.abort();
    }
  }
}
