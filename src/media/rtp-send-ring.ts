/**
 * SendRing: preallocated outgoing packet buffers for the Asterisk media legs (RTP, chan_websocket, AudioSocket).
 *
 * Sockets keep a reference to a written buffer until the write completes (dgram `send`, net `write`, ws `send`),
 * so a single reused buffer could be overwritten while still queued. The ring hands out fixed-size slots; a slot
 * is busy from `take()` until the write's completion callback (`slot.done`, preallocated, so no closure per
 * packet). When the next slot is still busy the socket is not draining: `take()` then returns a fresh one-off
 * slot (rare path, counted in `overflows`) rather than corrupting audio in flight.
 */

export interface SendSlot {
  readonly buf: Buffer;
  /** Pass as the socket write's completion callback: frees the slot. */
  readonly done: (err?: Error | null) => void;
}

export class SendRing {
  readonly slotBytes: number;
  /** Slots handed out while every ring slot was still in flight. */
  overflows = 0;
  private readonly slots: SendSlot[] = [];
  private readonly busy: Uint8Array;
  private next = 0;

  constructor(slotBytes: number, count = 16) {
    this.slotBytes = slotBytes;
    this.busy = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const index = i;
      this.slots.push({ buf: Buffer.alloc(slotBytes), done: () => void (this.busy[index] = 0) });
    }
  }

  /** Slots currently in flight. */
  get inFlight(): number {
    let n = 0;
    for (const b of this.busy) n += b;
    return n;
  }

  take(): SendSlot {
    const i = this.next;
    if (this.busy[i] === 1) {
      this.overflows++;
      return { buf: Buffer.alloc(this.slotBytes), done: () => {} };
    }
    this.busy[i] = 1;
    this.next = (i + 1) % this.slots.length;
    return this.slots[i] as SendSlot;
  }
}
