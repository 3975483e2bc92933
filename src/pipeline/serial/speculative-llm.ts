/**
 * Early EOU speculation for the serial pipeline (playbook.md §2.6): the TurnDetector's `speculate` starts the
 * LLM request the runner is about to make, before the caller's turn is over; the runner is told about the turn
 * only on `commit`, and its request then adopts the speculative stream (buffered events first, the rest as they
 * come) instead of starting a new one. `discard` aborts the speculative request; nothing of it was played or
 * entered the history, because the runner never saw it.
 *
 * The runner is given this object as its LLM; every request that does not match the speculation (another
 * text, tool rounds, a greeting) goes straight to the provider.
 */
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

export class SpeculativeLlm implements Chat {
  private current: Prefetch | undefined;
  readonly stats: SpeculationStats = { started: 0, adopted: 0, aborted: 0 };

  constructor(
    private readonly inner: Chat,
    private readonly now: () => number = () => Date.now(),
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
      return this.replay(p, request.signal);
    }
    return this.inner.chat(request);
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
