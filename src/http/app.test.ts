import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { buildHttpApp } from "./app.js";

const quiet = () => createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });

async function app(token = "") {
  let t = 1000;
  return buildHttpApp({ log: quiet(), version: "9.9.9", token, bodyLimitBytes: 1024 * 1024, trustProxy: false, now: () => (t += 250) });
}

describe("http app", () => {
  it("answers GET /health with status, version and uptime", async () => {
    const a = await app();
    const res = await a.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok", version: "9.9.9", uptimeMs: 250 });
    await a.close();
  });

  it("answers unknown routes with the NOT_FOUND error body", async () => {
    const a = await app();
    const res = await a.inject({ method: "GET", url: "/api/nothing?x=1" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: "NOT_FOUND", message: "no route GET /api/nothing", retryable: false, details: {} } });
    await a.close();
  });

  it("requires the token everywhere but /health and /ready, by header or query, in constant time", async () => {
    const a = await app("s3cret");
    expect((await a.inject({ url: "/health" })).statusCode).toBe(200);
    expect((await a.inject({ url: "/ready" })).statusCode).toBe(200);
    const denied = await a.inject({ url: "/api/calls" });
    expect(denied.statusCode).toBe(401);
    expect(denied.json().error.code).toBe("UNAUTHORIZED");
    expect((await a.inject({ url: "/api/calls", headers: { authorization: "Bearer wrong" } })).statusCode).toBe(401);
    // Authenticated: the route does not exist yet, so a 404 proves the token was accepted.
    expect((await a.inject({ url: "/api/calls", headers: { authorization: "Bearer s3cret" } })).statusCode).toBe(404);
    expect((await a.inject({ url: "/api/calls?token=s3cret" })).statusCode).toBe(404);
    await a.close();
  });

  it("turns errors thrown by routes into the error body without leaking internals", async () => {
    const a = await app();
    a.get("/boom", async () => {
      throw new Error("db exploded");
    });
    const res = await a.inject({ url: "/boom" });
    expect(res.statusCode).toBe(500);
    expect(res.json().error).toMatchObject({ code: "INTERNAL", retryable: true });
    await a.close();
  });
});
