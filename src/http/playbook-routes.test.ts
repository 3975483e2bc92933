import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { PlaybookStore } from "../playbook/store.js";
import { buildHttpApp } from "./app.js";

const quiet = () => createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });

const GOOD = "---\nllm:\n  provider: scripted\n---\n# Scene: main\nHello.\n";
// line 3 has an unknown key
const BAD = "---\nllm:\n  provider: scripted\nlmm: 1\n---\n# Scene: main\nHello.\n";

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function setup(token = "") {
  const root = mkdtempSync(join(tmpdir(), "ac-pbroutes-"));
  const dir = join(root, "playbooks");
  const sounds = join(root, "sounds");
  mkdirSync(dir);
  mkdirSync(sounds);
  const store = new PlaybookStore({ dir, soundsDir: sounds, env: {} });
  const app = await buildHttpApp({ log: quiet(), version: "0.0.0", token, bodyLimitBytes: 1024 * 1024, trustProxy: false, playbooks: { store } });
  apps.push(app);
  return { root, dir, app };
}

const md = { "content-type": "text/markdown" };

describe("playbook routes", () => {
  it("lists playbooks with validity and counts", async () => {
    const { dir, app } = await setup();
    writeFileSync(join(dir, "good.md"), GOOD);
    writeFileSync(join(dir, "bad.md"), BAD);
    writeFileSync(join(dir, "notes.txt"), "x");
    const res = await app.inject({ url: "/api/playbooks" });
    expect(res.statusCode).toBe(200);
    const { playbooks } = res.json();
    expect(playbooks.map((p: { name: string }) => p.name)).toEqual(["bad.md", "good.md"]);
    expect(playbooks[1]).toEqual({ name: "good.md", updated: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/), size: GOOD.length, valid: true, errors: 0, warnings: 0 });
    expect(playbooks[0]).toMatchObject({ name: "bad.md", valid: false, errors: 1 });
  });

  it("reads a playbook as text/markdown, 404 PLAYBOOK_NOT_FOUND for a missing one", async () => {
    const { dir, app } = await setup();
    writeFileSync(join(dir, "good.md"), GOOD);
    const res = await app.inject({ url: "/api/playbooks/good.md" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/markdown; charset=utf-8");
    expect(res.body).toBe(GOOD);
    const missing = await app.inject({ url: "/api/playbooks/nope.md" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe("PLAYBOOK_NOT_FOUND");
  });

  it("writes a valid playbook atomically with PUT (text/markdown) and POST (text/plain)", async () => {
    const { dir, app } = await setup();
    const put = await app.inject({ method: "PUT", url: "/api/playbooks/new.md", headers: md, payload: GOOD });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({ name: "new.md", updated: expect.any(String), warnings: [], errors: [] });
    expect(readFileSync(join(dir, "new.md"), "utf8")).toBe(GOOD);
    const changed = GOOD.replace("Hello.", "Hi there.");
    const post = await app.inject({ method: "POST", url: "/api/playbooks/new.md", headers: { "content-type": "text/plain; charset=utf-8" }, payload: changed });
    expect(post.statusCode).toBe(200);
    expect(readFileSync(join(dir, "new.md"), "utf8")).toBe(changed);
    expect(readdirSync(dir)).toEqual(["new.md"]); // no temporary file left
    // The cache of the store sees the new text.
    expect((await app.inject({ url: "/api/playbooks/new.md" })).body).toBe(changed);
  });

  it("refuses an invalid playbook with 422 PLAYBOOK_INVALID and its diagnostics; ?force=true writes it anyway", async () => {
    const { dir, app } = await setup();
    const res = await app.inject({ method: "PUT", url: "/api/playbooks/bad.md", headers: md, payload: BAD });
    expect(res.statusCode).toBe(422);
    const body = res.json();
    expect(body.error.code).toBe("PLAYBOOK_INVALID");
    expect(body.error.details.errors).toEqual([
      { file: "bad.md", line: 4, column: 1, severity: "error", code: "unknown-key", message: expect.stringContaining("lmm") },
    ]);
    expect(existsSync(join(dir, "bad.md"))).toBe(false);
    const forced = await app.inject({ method: "PUT", url: "/api/playbooks/bad.md?force=true", headers: md, payload: BAD });
    expect(forced.statusCode).toBe(200);
    expect(forced.json().errors).toEqual([expect.objectContaining({ line: 4, code: "unknown-key" })]);
    expect(readFileSync(join(dir, "bad.md"), "utf8")).toBe(BAD);
  });

  it("lints a text with line numbers, naming it after ?name", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "POST", url: "/api/playbooks/lint?name=draft.md", headers: md, payload: BAD });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      valid: false,
      errors: [{ file: "draft.md", line: 4, column: 1, severity: "error", code: "unknown-key", message: expect.any(String) }],
      warnings: [],
    });
    const good = await app.inject({ method: "POST", url: "/api/playbooks/lint", headers: { "content-type": "text/plain" }, payload: GOOD });
    expect(good.json()).toEqual({ valid: true, errors: [], warnings: [] });
    const json = await app.inject({ method: "POST", url: "/api/playbooks/lint", payload: { content: GOOD } });
    expect(json.statusCode).toBe(400);
    expect(json.json().error.code).toBe("BAD_REQUEST");
  });

  it("deletes a playbook with 204, then 404", async () => {
    const { dir, app } = await setup();
    writeFileSync(join(dir, "old.md"), GOOD);
    const res = await app.inject({ method: "DELETE", url: "/api/playbooks/old.md" });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    expect(existsSync(join(dir, "old.md"))).toBe(false);
    expect((await app.inject({ method: "DELETE", url: "/api/playbooks/old.md" })).json().error.code).toBe("PLAYBOOK_NOT_FOUND");
  });

  it("answers 400 INVALID_NAME for names outside the rules, on every method", async () => {
    const { app } = await setup();
    // A raw "/../" is resolved by the client before it is sent (inject does the same), so ".." arrives encoded.
    const names = ["..%2Fx.md", "a%2Fb.md", "a/b.md", "x.txt", ".hidden.md", "a%5Cb.md", "..%5Cx.md"];
    for (const name of names) {
      for (const method of ["GET", "PUT", "POST", "DELETE"] as const) {
        const res = await app.inject({ method, url: `/api/playbooks/${name}`, headers: md, payload: method === "PUT" || method === "POST" ? GOOD : undefined });
        expect({ name, method, status: res.statusCode, code: res.json().error.code }).toEqual({ name, method, status: 400, code: "INVALID_NAME" });
      }
    }
  });

  it("answers 400 INVALID_NAME for a raw ../ that a client sends unresolved", async () => {
    const { app } = await setup();
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/api/playbooks/../x.md", method: "GET" }, (r) => {
        let body = "";
        r.on("data", (c: Buffer) => (body += c.toString()));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.code).toBe("INVALID_NAME");
  });

  it("refuses a symbolic link that leads out of the folder, for reading, writing and deleting", async () => {
    const { root, dir, app } = await setup();
    writeFileSync(join(root, "outside.md"), GOOD);
    symlinkSync(join(root, "outside.md"), join(dir, "link.md"));
    for (const method of ["GET", "PUT", "DELETE"] as const) {
      const res = await app.inject({ method, url: "/api/playbooks/link.md", headers: md, payload: method === "PUT" ? GOOD : undefined });
      expect({ method, status: res.statusCode, code: res.json().error.code }).toEqual({ method, status: 400, code: "INVALID_NAME" });
    }
    expect(readFileSync(join(root, "outside.md"), "utf8")).toBe(GOOD);
    expect((await app.inject({ url: "/api/playbooks" })).json().playbooks).toEqual([]);
  });

  it("requires the token on every playbook route", async () => {
    const { dir, app } = await setup("s3cret");
    writeFileSync(join(dir, "good.md"), GOOD);
    const calls = [
      { method: "GET" as const, url: "/api/playbooks" },
      { method: "GET" as const, url: "/api/playbooks/good.md" },
      { method: "PUT" as const, url: "/api/playbooks/good.md", payload: GOOD },
      { method: "POST" as const, url: "/api/playbooks/good.md", payload: GOOD },
      { method: "DELETE" as const, url: "/api/playbooks/good.md" },
      { method: "POST" as const, url: "/api/playbooks/lint", payload: GOOD },
    ];
    for (const c of calls) {
      const res = await app.inject({ ...c, headers: md });
      expect({ ...c, status: res.statusCode, code: res.json().error.code }).toEqual({ ...c, status: 401, code: "UNAUTHORIZED" });
    }
    const ok = await app.inject({ url: "/api/playbooks", headers: { authorization: "Bearer s3cret" } });
    expect(ok.statusCode).toBe(200);
  });

  it("appears in /openapi.json with its request schemas", async () => {
    const { app } = await setup();
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    const paths = doc.paths;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(["/api/playbooks", "/api/playbooks/{name}", "/api/playbooks/lint"]));
    expect(Object.keys(paths)).not.toContain("/api/playbooks/*");
    expect(Object.keys(paths["/api/playbooks/{name}"]).sort()).toEqual(["delete", "get", "post", "put"]);
    const put = paths["/api/playbooks/{name}"].put;
    expect(put.requestBody.content["text/markdown"].schema).toMatchObject({ type: "string" });
    expect(put.requestBody.content["text/plain"].schema).toMatchObject({ type: "string" });
    expect(put.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "name", in: "path", required: true }), expect.objectContaining({ name: "force", in: "query" })]),
    );
    expect(put.responses["200"].content["application/json"].schema.properties.warnings.items.properties).toHaveProperty("line");
    expect(put.responses["422"]).toBeDefined();
    expect(paths["/api/playbooks/lint"].post.requestBody.content["text/markdown"]).toBeDefined();
    expect(paths["/api/playbooks"].get.responses["200"].content["application/json"].schema.properties.playbooks.type).toBe("array");
  });
});
