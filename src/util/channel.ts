/**
 * A bounded single-process channel with a declared overflow policy (DESIGN.md, conventions):
 * - `drop-oldest` for live audio: a producer never waits; when full, the oldest item is dropped (and reported),
 *   so a slow consumer hears the most recent audio instead of an ever-growing delay.
 * - `block` for text and commands: nothing is lost; `send` waits until there is room (backpressure).
 * Items live in a fixed ring buffer, so a steady stream does not grow memory.
 */

export type OverflowPolicy = "drop-oldest" | "block";

export interface ChannelOptions<T> {
  capacity: number;
  policy: OverflowPolicy;
  /** Called with each item dropped by `drop-oldest` (e.g. to count dropped frames). */
  onDrop?: (item: T) => void;
}

export class ChannelClosedError extends Error {
  constructor() {
    super("channel closed");
    this.name = "ChannelClosedError";
  }
}

interface Waiter<V> {
  resolve: (value: V) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

export class BoundedChannel<T> implements AsyncIterable<T> {
  readonly capacity: number;
  readonly policy: OverflowPolicy;
  private readonly ring: (T | undefined)[];
  private head = 0;
  private count = 0;
  private isClosed = false;
  private dropped = 0;
  private readonly onDrop: ((item: T) => void) | undefined;
  private readonly receivers: Waiter<IteratorResult<T>>[] = [];
  private readonly senders: (Waiter<void> & { item: T })[] = [];

  constructor(options: ChannelOptions<T>) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) throw new RangeError("capacity must be a positive integer");
    this.capacity = options.capacity;
    this.policy = options.policy;
    this.onDrop = options.onDrop;
    this.ring = new Array<T | undefined>(options.capacity);
  }

  get size(): number {
    return this.count;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  /** Items dropped so far by the `drop-oldest` policy. */
  get droppedCount(): number {
    return this.dropped;
  }

  /**
   * Adds an item without waiting. `drop-oldest`: always accepted (the oldest goes when full); returns false if
   * something was dropped. `block`: returns false, and does not add the item, when full.
   * Throws ChannelClosedError after `close()`.
   */
  offer(item: T): boolean {
    if (this.isClosed) throw new ChannelClosedError();
    if (this.handToReceiver(item)) return true;
    if (this.count < this.capacity) {
      this.push(item);
      return true;
    }
    if (this.policy === "block") return false;
    const oldest = this.shift();
    this.dropped++;
    this.push(item);
    this.onDrop?.(oldest);
    return false;
  }

  /** Adds an item; with `block`, waits for room. Rejects on close or abort (the item is then not added). */
  send(item: T, signal?: AbortSignal): Promise<void> {
    if (this.isClosed) return Promise.reject(new ChannelClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.policy === "drop-oldest" || this.count < this.capacity || this.receivers.length > 0) {
      this.offer(item);
      return Promise.resolve();
    }
    return park(this.senders, signal, (resolve, reject) => ({ item, resolve, reject, cleanup: () => {} }));
  }

  /** The next item; `done` once the channel is closed and drained. Rejects on abort. */
  next(signal?: AbortSignal): Promise<IteratorResult<T>> {
    if (this.count > 0) {
      const item = this.shift();
      this.admitSender();
      return Promise.resolve({ value: item, done: false });
    }
    if (this.isClosed) return Promise.resolve({ value: undefined, done: true });
    if (signal?.aborted) return Promise.reject(signal.reason);
    return park(this.receivers, signal, (resolve, reject) => ({ resolve, reject, cleanup: () => {} }));
  }

  /** Takes what is queued without waiting (e.g. to flush). */
  drain(): T[] {
    const out: T[] = [];
    while (this.count > 0) {
      out.push(this.shift());
      this.admitSender();
    }
    return out;
  }

  /** Drops everything queued (barge-in). Returns how many items were dropped. */
  clear(): number {
    const n = this.count;
    while (this.count > 0) this.shift();
    while (this.admitSender());
    return n;
  }

  /** No more items: waiting receivers finish after the queue drains; waiting senders are rejected. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of this.senders.splice(0)) {
      s.cleanup();
      s.reject(new ChannelClosedError());
    }
    for (const r of this.receivers.splice(0)) {
      r.cleanup();
      r.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private handToReceiver(item: T): boolean {
    const r = this.receivers.shift();
    if (!r) return false;
    r.cleanup();
    r.resolve({ value: item, done: false });
    return true;
  }

  private admitSender(): boolean {
    if (this.count >= this.capacity) return false;
    const s = this.senders.shift();
    if (!s) return false;
    s.cleanup();
    this.push(s.item);
    s.resolve();
    return true;
  }

  private push(item: T): void {
    this.ring[(this.head + this.count) % this.capacity] = item;
    this.count++;
  }

  private shift(): T {
    const item = this.ring[this.head] as T;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return item;
  }
}

/** Queues a waiter until it is served, or removes it and rejects when `signal` aborts first. */
function park<V, W extends Waiter<V>>(
  list: W[],
  signal: AbortSignal | undefined,
  make: (resolve: (value: V) => void, reject: (err: unknown) => void) => W,
): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    const waiter = make(resolve, reject);
    if (signal) {
      const onAbort = () => {
        remove(list, waiter);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    list.push(waiter);
  });
}

function remove<V>(list: V[], item: V): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
