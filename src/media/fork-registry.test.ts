import { describe, expect, it } from "vitest";
import { AppError } from "../errors.js";
import { ManualClock } from "./clock.js";
import { ForkRegistry, type ForkSocket } from "./fork-registry.js";

const socket = (): ForkSocket => ({ send: () => undefined, close: () => undefined, on: () => undefined });

describe("ForkRegistry", () => {
  it("binds a socket with the one-time token, once", async () => {
    const forks = new ForkRegistry({ clock: new ManualClock() });
    const { token, connected } = forks.expect("uuid-1");
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(forks.take("uuid-1", "wrong")).toBeUndefined();
    expect(forks.take("uuid-2", token)).toBeUndefined();
    expect(forks.take("uuid-1", undefined)).toBeUndefined();
    const bind = forks.take("uuid-1", token);
    expect(bind).toBeTypeOf("function");
    expect(forks.take("uuid-1", token)).toBeUndefined(); // single use
    const s = socket();
    bind?.(s);
    await expect(connected).resolves.toBe(s);
    expect(forks.size).toBe(0);
  });

  it("tokens differ per expectation; a new expect replaces the old one", async () => {
    const forks = new ForkRegistry({ clock: new ManualClock() });
    const a = forks.expect("u");
    const b = forks.expect("u");
    expect(a.token).not.toBe(b.token);
    await expect(a.connected).rejects.toMatchObject({ code: "INVALID_STATE" });
    expect(forks.take("u", a.token)).toBeUndefined();
    expect(forks.take("u", b.token)).toBeTypeOf("function");
  });

  it("rejects with TIMEOUT when nobody connects in time; the token is then dead", async () => {
    const clock = new ManualClock();
    const forks = new ForkRegistry({ clock });
    const { token, connected } = forks.expect("u", 5000);
    clock.advance(4999);
    expect(forks.size).toBe(1);
    clock.advance(1);
    const err = await connected.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("TIMEOUT");
    expect(forks.take("u", token)).toBeUndefined();
  });

  it("cancel rejects and forgets; nothing unhandled when nobody awaits", async () => {
    const clock = new ManualClock();
    const forks = new ForkRegistry({ clock });
    const { token, connected } = forks.expect("u");
    forks.expect("v"); // never awaited, cancelled below: must not raise an unhandled rejection
    forks.cancel("u");
    forks.cancelAll();
    await expect(connected).rejects.toMatchObject({ code: "INVALID_STATE" });
    expect(forks.take("u", token)).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });
});
