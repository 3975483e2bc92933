import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createLogger } from "../log.js";
import { buildHttpApp } from "./app.js";
import { DOCS_HTML } from "./docs-page.js";
import { describeWebSocket, webSocketRouteSchema } from "./openapi.js";

const quiet = () => createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });
const build = () => buildHttpApp({ log: quiet(), version: "1.0.0", token: "", bodyLimitBytes: 1024 * 1024, trustProxy: false });

const callQuery = z.object({
  id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/).optional().describe("The call id"),
  dump: z.enum(["true", "false", "1", "0"]).optional(),
  ping: z.coerce.number().int().min(0).optional(),
});

describe("OpenAPI document", () => {
  it("documents a WebSocket route declared with webSocketRouteSchema as GET with x-websocket, and validates its query", async () => {
    const app = await build();
    app.get("/call", { schema: webSocketRouteSchema({ summary: "A call over this WebSocket", querystring: callQuery }) }, async () => ({ upgraded: false }));
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    const op = doc.paths["/call"].get;
    expect(op).toMatchObject({ summary: "A call over this WebSocket", "x-websocket": true, tags: ["websocket"] });
    expect(op.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "id", in: "query", required: false }), expect.objectContaining({ name: "ping", in: "query" })]),
    );
    const bad = await app.inject({ url: "/call?ping=-1" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.fields).toEqual([{ path: "query.ping", message: expect.any(String) }]);
    await app.close();
  });

  it("adds endpoints described with describeWebSocket, replacing a plain GET of the same path", async () => {
    const app = await build();
    app.get("/media/twilio", async () => "no upgrade");
    describeWebSocket(app, "/media/twilio", "Twilio Media Streams compatible endpoint");
    describeWebSocket(app, "/call/pbx", "Control a PBX call", callQuery.extend({ id: z.string().describe("The call id") }));
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    expect(doc.paths["/media/twilio"]).toEqual({ get: expect.objectContaining({ summary: "Twilio Media Streams compatible endpoint", "x-websocket": true }) });
    const pbx = doc.paths["/call/pbx"].get;
    expect(pbx["x-websocket"]).toBe(true);
    expect(pbx.parameters).toEqual(expect.arrayContaining([{ name: "id", in: "query", required: true, schema: expect.objectContaining({ type: "string" }), description: "The call id" }]));
    expect(pbx.responses["101"]).toBeDefined();
    await app.close();
  });

  it("declares the bearer and query token security schemes", async () => {
    const app = await build();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    expect(doc.components.securitySchemes).toMatchObject({ bearer: { type: "http", scheme: "bearer" }, queryToken: { type: "apiKey", in: "query", name: "token" } });
    await app.close();
  });
});

describe("docs page", () => {
  it("is one HTML file whose script parses and which loads nothing from elsewhere", () => {
    expect(DOCS_HTML).toMatch(/^<!doctype html>/);
    const script = /<script>([\s\S]*)<\/script>/.exec(DOCS_HTML)?.[1] ?? "";
    expect(script).toContain("openapi.json");
    expect(() => new Function(script)).not.toThrow();
    expect(DOCS_HTML).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    expect(DOCS_HTML).not.toMatch(/https?:\/\//);
  });
});
