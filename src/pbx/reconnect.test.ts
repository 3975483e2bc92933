import { describe, expect, it } from "vitest";
import { AppError } from "../errors.js";
import { isUnreachable, ReconnectPolicy } from "./reconnect.js";

const refused = () => new AppError("PBX_UNAVAILABLE", "ESL 127.0.0.1:8021: connect ECONNREFUSED", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
const authFailed = () => new AppError("PBX_ERROR", "ESL authentication failed: -ERR invalid");

function policy(random = () => 0.5, now = () => 1_000_000) {
  return new ReconnectPolicy({ minMs: 250, maxMs: 5000, fastMs: 250, random, now });
}

describe("ReconnectPolicy", () => {
  it("retries on the fast lane, jittered ±25 %, for as long as the PBX refuses connections: an outage of any length costs at most one step", () => {
    const p = policy();
    const delays = Array.from({ length: 40 }, () => p.failed(refused()));
    expect(new Set(delays)).toEqual(new Set([250]));
    expect(policy(() => 0).failed(refused())).toBe(188);
    expect(policy(() => 0.999).failed(refused())).toBe(312);
  });

  it("backs off exponentially up to maxMs (50–100 % jitter) after a failure that reached the PBX, e.g. a wrong password", () => {
    const p = policy(() => 0.999);
    const delays = Array.from({ length: 8 }, () => p.failed(authFailed()));
    expect(delays).toEqual([250, 500, 1000, 1999, 3998, 4998, 4998, 4998]);
    expect(policy(() => 0).failed(authFailed())).toBe(250);
  });

  it("a lost link is retried at once on the fast lane, and up() starts the backoff again from the bottom", () => {
    const p = policy(() => 0.999);
    p.failed(authFailed());
    p.failed(authFailed());
    p.up();
    expect(p.failed(undefined)).toBe(312); // lost: the PBX is probably restarting
    p.up();
    p.connecting(); // the next attempt after a drop, not the drop itself
    expect(p.failed(authFailed())).toBe(250);
  });

  it("reports the state, since when, failed attempts, comebacks and the last error (the socket's code)", () => {
    let t = Date.parse("2026-12-07T10:00:00.000Z");
    const p = policy(() => 0.5, () => t);
    expect(p.status()).toMatchObject({ state: "connecting", connected: false, attempts: 0, reconnects: 0 });
    t += 1000;
    p.up();
    expect(p.status()).toEqual({ state: "connected", connected: true, since: "2026-12-07T10:00:01.000Z", attempts: 0, reconnects: 0 });
    t += 1000;
    p.failed(undefined);
    t += 250;
    p.connecting();
    p.failed(refused());
    t += 250;
    p.connecting();
    p.failed(refused());
    const down = p.status();
    // The outage began when the link dropped; the attempts since then failed.
    expect(down).toMatchObject({ state: "down", connected: false, since: "2026-12-07T10:00:02.000Z", attempts: 2, reconnects: 0 });
    expect(down.lastError).toEqual({ message: "ESL 127.0.0.1:8021: connect ECONNREFUSED", code: "ECONNREFUSED", at: "2026-12-07T10:00:02.500Z" });
    t += 100;
    p.up();
    expect(p.status()).toMatchObject({ state: "connected", since: "2026-12-07T10:00:02.600Z", attempts: 0, reconnects: 1 });
    p.stopped();
    expect(p.status().state).toBe("stopped");
  });

  it("isUnreachable looks through causes for a socket code", () => {
    expect(isUnreachable(refused())).toBe(true);
    expect(isUnreachable(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(true);
    expect(isUnreachable(authFailed())).toBe(false);
    expect(isUnreachable(new AppError("TIMEOUT", "no auth within 5000 ms"))).toBe(false);
    expect(isUnreachable(undefined)).toBe(false);
  });
});
