import { describe, expect, it } from "vitest";
import { BoundedChannel, ChannelClosedError } from "./channel.js";

describe("BoundedChannel drop-oldest", () => {
  it("never waits and keeps the newest items, reporting drops", async () => {
    const dropped: number[] = [];
    const ch = new BoundedChannel<number>({ capacity: 3, policy: "drop-oldest", onDrop: (n) => dropped.push(n) });
    for (let i = 1; i <= 5; i++) await ch.send(i);
    expect(ch.size).toBe(3);
    expect(dropped).toEqual([1, 2]);
    expect(ch.droppedCount).toBe(2);
    expect(ch.offer(6)).toBe(false);
    ch.close();
    const got: number[] = [];
    for await (const n of ch) got.push(n);
    expect(got).toEqual([4, 5, 6]);
  });

  it("hands an item straight to a waiting receiver", async () => {
    const ch = new BoundedChannel<string>({ capacity: 1, policy: "drop-oldest" });
    const pending = ch.next();
    expect(ch.offer("a")).toBe(true);
    expect(await pending).toEqual({ value: "a", done: false });
    expect(ch.size).toBe(0);
  });

  it("clear() drops what is queued", () => {
    const ch = new BoundedChannel<number>({ capacity: 4, policy: "drop-oldest" });
    ch.offer(1);
    ch.offer(2);
    expect(ch.clear()).toBe(2);
    expect(ch.size).toBe(0);
  });
});

describe("BoundedChannel block", () => {
  it("makes a sender wait for room and loses nothing, in order", async () => {
    const ch = new BoundedChannel<number>({ capacity: 2, policy: "block" });
    await ch.send(1);
    await ch.send(2);
    expect(ch.offer(3)).toBe(false);
    let thirdSent = false;
    const third = ch.send(3).then(() => (thirdSent = true));
    await Promise.resolve();
    expect(thirdSent).toBe(false);
    expect((await ch.next()).value).toBe(1);
    await third;
    expect(thirdSent).toBe(true);
    expect(ch.drain()).toEqual([2, 3]);
  });

  it("a producer faster than the consumer delivers every item", async () => {
    const ch = new BoundedChannel<number>({ capacity: 4, policy: "block" });
    const producer = (async () => {
      for (let i = 0; i < 100; i++) await ch.send(i);
      ch.close();
    })();
    const got: number[] = [];
    for await (const n of ch) {
      got.push(n);
      if (n % 7 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await producer;
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("rejects a waiting sender when aborted or closed, without adding its item", async () => {
    const ch = new BoundedChannel<number>({ capacity: 1, policy: "block" });
    await ch.send(1);
    const ac = new AbortController();
    const aborted = ch.send(2, ac.signal);
    ac.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    const closed = ch.send(3);
    ch.close();
    await expect(closed).rejects.toBeInstanceOf(ChannelClosedError);
    expect(ch.drain()).toEqual([1]);
    expect(() => ch.offer(4)).toThrow(ChannelClosedError);
  });

  it("ends waiting receivers on close and rejects them on abort", async () => {
    const ch = new BoundedChannel<number>({ capacity: 1, policy: "block" });
    const ac = new AbortController();
    const r1 = ch.next(ac.signal);
    ac.abort(new Error("gone"));
    await expect(r1).rejects.toThrow("gone");
    const r2 = ch.next();
    ch.close();
    expect(await r2).toEqual({ value: undefined, done: true });
  });

  it("rejects a bad capacity", () => {
    expect(() => new BoundedChannel({ capacity: 0, policy: "block" })).toThrow(RangeError);
  });
});
