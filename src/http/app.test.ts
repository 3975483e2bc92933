import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { CALL_METRIC_NAMES, CallMetrics } from "../call/metrics.js";
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

describe("http app: schemas, docs, CORS, rate limit, metrics", () => {
  const base = { log: quiet(), version: "1.2.3", token: "", bodyLimitBytes: 1024 * 1024, trustProxy: false };

  it("rejects a request that fails a zod route schema with 400 BAD_REQUEST and details.fields", async () => {
    const a = await buildHttpApp(base);
    a.withTypeProvider<ZodTypeProvider>().post(
      "/api/echo",
      { schema: { querystring: z.object({ limit: z.coerce.number().int().max(1000).optional() }), body: z.object({ to: z.string(), n: z.number() }) } },
      async (request) => ({ to: request.body.to }),
    );
    const ok = await a.inject({ method: "POST", url: "/api/echo", payload: { to: "sip:x", n: 1 } });
    expect(ok.statusCode).toBe(200);
    const bad = await a.inject({ method: "POST", url: "/api/echo", payload: { n: "one" } });
    expect(bad.statusCode).toBe(400);
    const body = bad.json();
    expect(body.error.code).toBe("BAD_REQUEST");
    expect(body.error.details.fields).toEqual([
      { path: "body.to", message: expect.any(String) },
      { path: "body.n", message: expect.any(String) },
    ]);
    const badQuery = await a.inject({ method: "POST", url: "/api/echo?limit=5000", payload: { to: "a", n: 1 } });
    expect(badQuery.statusCode).toBe(400);
    expect(badQuery.json().error.details.fields).toEqual([{ path: "query.limit", message: expect.any(String) }]);
    await a.close();
  });

  it("serves an OpenAPI 3.1 document generated from the route schemas, and a self-contained /docs page", async () => {
    const a = await buildHttpApp(base);
    a.withTypeProvider<ZodTypeProvider>().post(
      "/api/echo",
      { schema: { summary: "Echo", body: z.object({ to: z.string().describe("callee") }), response: { 200: z.object({ to: z.string() }) } } },
      async (request) => ({ to: request.body.to }),
    );
    const res = await a.inject({ url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.version).toBe("1.2.3");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/health", "/ready", "/openapi.json", "/docs", "/api/echo"]));
    expect(doc.paths["/api/echo"].post.summary).toBe("Echo");
    expect(doc.paths["/api/echo"].post.requestBody.content["application/json"].schema).toMatchObject({
      type: "object",
      properties: { to: { type: "string", description: "callee" } },
      required: ["to"],
    });
    const docs = await a.inject({ url: "/docs" });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers["content-type"]).toMatch(/^text\/html/);
    expect(docs.body).toContain("openapi.json");
    expect(docs.body).not.toMatch(/(src|href)="https?:/); // no external assets
    await a.close();
  });

  it("sends CORS headers only for the configured origins", async () => {
    const none = await buildHttpApp(base);
    expect((await none.inject({ url: "/health", headers: { origin: "https://a.example" } })).headers["access-control-allow-origin"]).toBeUndefined();
    await none.close();

    const a = await buildHttpApp({ ...base, token: "t", corsOrigins: ["https://a.example"] });
    const allowed = await a.inject({ url: "/health", headers: { origin: "https://a.example" } });
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://a.example");
    const other = await a.inject({ url: "/health", headers: { origin: "https://evil.example" } });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    const preflight = await a.inject({
      method: "OPTIONS",
      url: "/api/playbooks",
      headers: { origin: "https://a.example", "access-control-request-method": "PUT" },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://a.example");
    // A 401 is readable by the allowed page.
    const denied = await a.inject({ url: "/openapi.json", headers: { origin: "https://a.example" } });
    expect(denied.statusCode).toBe(401);
    expect(denied.headers["access-control-allow-origin"]).toBe("https://a.example");
    await a.close();

    const star = await buildHttpApp({ ...base, corsOrigins: ["*"] });
    expect((await star.inject({ url: "/health", headers: { origin: "https://any.example" } })).headers["access-control-allow-origin"]).toBe("*");
    await star.close();
  });

  it("answers 429 RATE_LIMITED with Retry-After after N requests a minute, never on /health and /ready", async () => {
    const a = await buildHttpApp({ ...base, rateLimitPerMin: 3 });
    for (let i = 0; i < 3; i++) expect((await a.inject({ url: "/openapi.json" })).statusCode).toBe(200);
    const limited = await a.inject({ url: "/openapi.json" });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.json()).toEqual({
      error: { code: "RATE_LIMITED", message: expect.any(String), retryable: true, details: expect.objectContaining({ limitPerMin: 3 }) },
    });
    for (let i = 0; i < 5; i++) {
      expect((await a.inject({ url: "/health" })).statusCode).toBe(200);
      expect((await a.inject({ url: "/ready" })).statusCode).toBe(200);
    }
    await a.close();
  });

  it("serves GET /metrics in the Prometheus text format when metrics are given, behind the token", async () => {
    const metrics = new CallMetrics();
    metrics.callStarted("websocket");
    const a = await buildHttpApp({ ...base, token: "t", metrics });
    expect((await a.inject({ url: "/metrics" })).statusCode).toBe(401);
    const res = await a.inject({ url: "/metrics?token=t" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of CALL_METRIC_NAMES) expect(res.body).toContain(name);
    expect(res.body).toContain('active_call_calls_active{type="websocket"} 1');
    await a.close();
    metrics.close();
    const without = await buildHttpApp(base);
    expect((await without.inject({ url: "/metrics" })).statusCode).toBe(404);
    await without.close();
  });

  it("does not register / (the console belongs to the call routes)", async () => {
    const a = await buildHttpApp({ ...base, console: true });
    expect((await a.inject({ url: "/" })).statusCode).toBe(404);
    await a.close();
  });
});
