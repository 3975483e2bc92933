/**
 * A tiny typed event emitter for lifecycle events of media legs and pacers (DESIGN.md: EventEmitter only for
 * lifecycle events; audio goes through async iterables). A listener that throws does not stop the others; the
 * error is handed to `onListenerError` (default: rethrown asynchronously, so it is not swallowed).
 */

export type EventMap = Record<string, unknown[]>;
type Listener<A extends unknown[]> = (...args: A) => void;

export class TypedEmitter<E extends EventMap> {
  private readonly listeners: { [K in keyof E]?: Listener<E[K]>[] } = {};

  constructor(private readonly onListenerError: (err: unknown) => void = (err) => queueMicrotask(() => {
    throw err;
  })) {}

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    (this.listeners[event] ??= []).push(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    const wrapped: Listener<E[K]> = (...args) => {
      this.off(event, wrapped);
      listener(...args);
    };
    return this.on(event, wrapped);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    const list = this.listeners[event];
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.listeners[event];
    if (!list || list.length === 0) return;
    for (const l of list.slice()) {
      try {
        l(...args);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  listenerCount(event: keyof E): number {
    return this.listeners[event]?.length ?? 0;
  }

  removeAllListeners(): void {
    for (const k of Object.keys(this.listeners)) delete this.listeners[k as keyof E];
  }
}
