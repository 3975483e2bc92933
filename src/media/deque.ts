/** A growable ring-buffer FIFO: push/shift without allocating once it has grown to its working size. */
export class Deque<T> {
  private ring: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(initialCapacity = 16) {
    this.ring = new Array<T | undefined>(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) % this.ring.length] = item;
    this.count++;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.ring[this.head];
  }

  /** The item at position `i` from the front (0 = front). */
  at(i: number): T | undefined {
    return i < 0 || i >= this.count ? undefined : this.ring[(this.head + i) % this.ring.length];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    return item;
  }

  /** Removes the item at position `i` (O(n); for rare operations). */
  removeAt(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const n = this.ring.length;
    const item = this.ring[(this.head + i) % n];
    for (let k = i; k < this.count - 1; k++) this.ring[(this.head + k) % n] = this.ring[(this.head + k + 1) % n];
    this.ring[(this.head + this.count - 1) % n] = undefined;
    this.count--;
    return item;
  }

  clear(): void {
    while (this.count > 0) this.shift();
    this.head = 0;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.ring.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }
}
