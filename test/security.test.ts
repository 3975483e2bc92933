/**
 * Auth, confinement and size limits (ws-call-api.md §1.2, §1.3, §7.1; config.md §2.1, §2.3), each over the real
 * controller (buildServer on a loopback port, as main.ts composes it): every REST route and WebSocket endpoint
 * with and without the token; every entry point that names a playbook, a sound file or a recording with each
 * kind of escaping name; every input limit one byte over and exactly at the limit.
 */
import { request as httpRequest } from "node:http";
import { mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { CallClient } from "../src/client/index.js";
import { startServer, type TestServer } from "./e2e/harness.js";

const TOKEN = "sekret-token-4711";

/** A raw HTTP request (no URL normalisation by the client): status and parsed JSON body when there is one. */
function raw(server: TestServer, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; json: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown>; text: string }> {
  const url = new URL(server.baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers: { ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json = {};
        try {
          json = JSON.parse(text) as object;
        } catch {
          json = {};
        }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Whether a message names `name` (as is, or JSON-escaped as messages quote it). */
const names = (message: string | undefined, name: string): boolean => (message ?? "").includes(name) || (message ?? "").includes(JSON.stringify(name).slice(1, -1));

type Upgrade = { opened: true; ws: WebSocket } | { opened: false; status: number };

/** Tries a WebSocket upgrade: the open socket, or the HTTP status of the refusal. */
function upgrade(server: TestServer, path: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}${path}`, { headers });
    ws.once("open", () => resolve({ opened: true, ws }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ opened: false, status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once("error", (err) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(err);
    });
  });
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

// ----------------------------------------------------------------------------------------------------- token

describe("API token on every REST route and WebSocket endpoint", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ http: { token: TOKEN, rate_limit_per_min: 0 }, twilio: { enabled: true } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  // Every route of the app (the OpenAPI list below checks that none is missing from this table).
  const rest: Array<[method: string, path: string, body?: string, type?: string]> = [
    ["GET", "/api/calls"],
    ["GET", "/api/calls/x1"],
    ["POST", "/api/calls", JSON.stringify({ to: "1000" }), "application/json"],
    ["POST", "/api/calls/x1/hangup", "{}", "application/json"],
    ["DELETE", "/api/calls/x1"],
    ["POST", "/api/calls/x1/transfer", JSON.stringify({ target: "1001" }), "application/json"],
    ["POST", "/api/calls/x1/tts", JSON.stringify({ text: "hi" }), "application/json"],
    ["POST", "/api/calls/x1/play", JSON.stringify({ url: "a.wav" }), "application/json"],
    ["POST", "/api/calls/x1/commands", JSON.stringify({ command: "interrupt" }), "application/json"],
    ["GET", "/api/calls/x1/recording"],
    ["GET", "/api/calls/x1/events"],
    ["GET", "/api/playbooks"],
    ["GET", "/api/playbooks/hello.md"],
    ["PUT", "/api/playbooks/new.md", "---\ngreeting: hi\n---\nx\n", "text/markdown"],
    ["POST", "/api/playbooks/new.md", "---\ngreeting: hi\n---\nx\n", "text/markdown"],
    ["DELETE", "/api/playbooks/none.md"],
    ["POST", "/api/playbooks/lint", "---\ngreeting: hi\n---\nx\n", "text/markdown"],
    ["POST", "/api/playbook/run", JSON.stringify({ playbook: "hello.md" }), "application/json"],
    ["GET", "/metrics"],
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
    ["GET", "/list"],
    ["GET", "/kill/x1"],
    ["GET", "/"],
    ["GET", "/phone"],
    ["GET", "/call/webrtc"],
    ["GET", "/no/such/route"],
  ];

  it("the table covers every route in /openapi.json", async () => {
    const doc = await raw(server, "GET", "/openapi.json", { authorization: `Bearer ${TOKEN}` });
    const documented = Object.entries(doc.json.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{[^}]+\}/g, "x1")}`),
    );
    const tabled = new Set(rest.map(([m, p]) => `${m} ${p.replace(/\/(hello|new|none)\.md$/, "/x1").replace(/\/x1\b/g, "/x1")}`));
    const ws = ["GET /call", "GET /call/pbx", "GET /call/sip", "GET /media/twilio", "GET /health", "GET /ready"];
    const missing = documented.filter((d) => !tabled.has(d) && !ws.includes(d));
    expect(missing).toEqual([]);
  });

  it.each(rest)("%s %s: 401 UNAUTHORIZED without, with a wrong or a partial token; accepted as Bearer and as ?token=", async (method, path, body, type) => {
    const h = (extra: Record<string, string>) => ({ ...(type ? { "content-type": type } : {}), ...extra });
    const sep = path.includes("?") ? "&" : "?";
    for (const [label, headers, p] of [
      ["none", {}, path],
      ["wrong bearer", { authorization: "Bearer wrong" }, path],
      ["prefix of the token", { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, path],
      ["token plus a byte", { authorization: `Bearer ${TOKEN}x` }, path],
      ["other scheme", { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}` }, path],
      ["wrong query", {}, `${path}${sep}token=nope`],
      ["empty query", {}, `${path}${sep}token=`],
    ] as const) {
      const res = await raw(server, method, p, h(headers), body);
      expect(res.status, `${label}: ${method} ${p}`).toBe(401);
      expect(res.json.error?.code, label).toBe("UNAUTHORIZED");
    }
    for (const [label, headers, p] of [
      ["bearer", { authorization: `Bearer ${TOKEN}` }, path],
      ["bearer, any case", { authorization: `bearer ${TOKEN}` }, path],
      ["query", {}, `${path}${sep}token=${encodeURIComponent(TOKEN)}`],
    ] as const) {
      const res = await raw(server, method, p, h(headers), body);
      expect(res.status, `${label}: ${method} ${p} ${res.text.slice(0, 200)}`).not.toBe(401);
    }
  });

  it("/health and /ready need no token", async () => {
    expect((await raw(server, "GET", "/health")).status).toBe(200);
    expect((await raw(server, "GET", "/ready")).status).toBe(200);
  });

  it.each([
    "/health/../api/calls",
    "/ready/../api/calls",
    "/media/fork/../../api/calls",
    "/media/fork/x/../../../api/calls",
    "/media/twilio/../../api/calls",
    "/media/fork/%2e%2e/%2e%2e/api/calls",
    "//api/calls",
    "/api/calls?x=/health",
    "/api/calls#/health",
  ])("an open-path look-alike %s never reaches a protected route without the token", async (path) => {
    const res = await raw(server, "GET", path);
    expect([401, 404]).toContain(res.status);
    expect(res.json).not.toHaveProperty("calls");
  });

  const sockets: Array<[path: string]> = [["/call"], ["/call?id=ws-auth-1"], ["/call/pbx?id=ws-auth-2"], ["/call/sip?id=ws-auth-3"]];

  it.each(sockets)("WebSocket %s: upgrade refused with HTTP 401 without or with a wrong token; opens with the token as Bearer or ?token=", async (path) => {
    const sep = path.includes("?") ? "&" : "?";
    for (const [label, p, headers] of [
      ["none", path, {}],
      ["wrong bearer", path, { authorization: "Bearer nope" }],
      ["wrong query", `${path}${sep}token=nope`, {}],
      ["prefix", `${path}${sep}token=${TOKEN.slice(0, 4)}`, {}],
    ] as const) {
      const r = await upgrade(server, p, headers);
      expect(r.opened, label).toBe(false);
      if (!r.opened) expect(r.status, label).toBe(401);
    }
    for (const [label, p, headers] of [
      ["bearer", path, { authorization: `Bearer ${TOKEN}` }],
      ["query", `${path}${sep}token=${TOKEN}`, {}],
    ] as const) {
      const r = await upgrade(server, p, headers);
      expect(r.opened, label).toBe(true);
      if (r.opened) {
        const closed = closeOf(r.ws);
        r.ws.close(1000);
        await closed;
      }
    }
  });

  it("a call opened with ?token= works end to end (answer)", async () => {
    const client = await CallClient.connect(server.wsUrl, { id: "ws-auth-call", token: TOKEN, tokenInQuery: true, headers: {} });
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "hello.md" });
    await client.waitFor("answer", undefined, 20_000);
    client.hangup();
    await client.waitFor("hangup");
  }, 30_000);

  const twilioStart = (ws: WebSocket, token: string | undefined) => {
    const sid = `MZ${Math.random().toString(16).slice(2).padEnd(32, "0")}`;
    ws.send(JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }));
    ws.send(
      JSON.stringify({
        event: "start",
        sequenceNumber: "1",
        streamSid: sid,
        start: { streamSid: sid, accountSid: "AC0", callSid: "CA0", tracks: ["inbound"], mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 }, customParameters: { playbook: "hello.md", ...(token !== undefined ? { token } : {}) } },
      }),
    );
  };

  it.each([
    ["no token anywhere", "", undefined, 1008],
    ["a wrong query token, none in start", "?token=nope", undefined, 1008],
    ["a wrong customParameters.token", "", "nope", 1008],
    ["a wrong query token and a right customParameters.token", "?token=nope", TOKEN, 0],
    ["the query token", `?token=${TOKEN}`, undefined, 0],
    ["customParameters.token", "", TOKEN, 0],
  ] as const)("/media/twilio, %s: the upgrade is accepted and start decides (close %i, 0 = the call runs)", async (_label, query, token, code) => {
    const r = await upgrade(server, `/media/twilio${query}`);
    expect(r.opened).toBe(true);
    if (!r.opened) return;
    const closed = closeOf(r.ws);
    const media = new Promise<"media">((resolve) => r.ws.on("message", (d) => (JSON.parse(d.toString()) as { event?: string }).event === "media" && resolve("media")));
    twilioStart(r.ws, token);
    const first = await Promise.race([closed, media]);
    if (code === 0) {
      expect(first).toBe("media");
      r.ws.send(JSON.stringify({ event: "stop", sequenceNumber: "9", streamSid: "x", stop: {} }));
      r.ws.close(1000);
    } else expect(first).toMatchObject({ code });
    await closed;
  }, 30_000);

  it("/media/fork/<id> takes only the one-time fork token: the API token does not open it (HTTP 401)", async () => {
    for (const p of ["/media/fork/abc", `/media/fork/abc?token=${TOKEN}`]) {
      const r = await upgrade(server, p, { authorization: `Bearer ${TOKEN}` });
      expect(r.opened, p).toBe(false);
      if (!r.opened) expect(r.status, p).toBe(401);
    }
  });
});

// ----------------------------------------------------------------------------------------------- confinement

/** Names that try to leave a folder, each kind once; `{ext}` is the extension the entry point expects. */
const escapes = (ext: string): Array<[kind: string, name: string]> => [
  ["dot-dot", `../outside/secret${ext}`],
  ["dot-dot deep", `a/../../outside/secret${ext}`],
  ["encoded slash", `..%2foutside%2fsecret${ext}`],
  ["encoded dots", `%2e%2e/outside/secret${ext}`],
  ["encoded all", `%2E%2E%2Foutside%2Fsecret${ext}`],
  ["absolute", `/etc/secret${ext}`],
  ["NUL", `ok${ext}\u0000.txt`],
  ["backslash", `..\\outside\\secret${ext}`],
  ["drive", `C:\\outside\\secret${ext}`],
];

describe("path confinement: playbooks, sound files and recordings", () => {
  let server: TestServer;
  let outside: string;
  const secretPlaybook = "---\ngreeting: the secret playbook\n---\nSecret.\n";
  const okPlaybook = (extra: string) => `---\ntts:\n  provider: scripted\nasr:\n  provider: scripted\nllm:\n  provider: scripted\n${extra}---\nHello.\n`;

  beforeAll(async () => {
    server = await startServer({ http: { rate_limit_per_min: 0 } });
    outside = join(server.dir, "outside");
    await mkdir(outside);
    const { encodeWav } = await import("../src/audio/wav.js");
    const wav = encodeWav(new Int16Array(1600).fill(1000), 16000);
    await writeFile(join(outside, "secret.md"), secretPlaybook);
    await writeFile(join(outside, "secret.wav"), wav);
    await writeFile(join(outside, "victim.wav"), "do not overwrite");
    await writeFile(join(server.config.paths.sounds, "ok.wav"), wav);
    await symlink(join(outside, "secret.md"), join(server.config.paths.playbooks, "evil.md"));
    await symlink(join(outside, "secret.wav"), join(server.config.paths.sounds, "evil.wav"));
    await symlink(outside, join(server.config.paths.sounds, "evildir"));
    await symlink(outside, join(server.config.paths.recordings, "out"));
    await symlink(join(outside, "victim.wav"), join(server.config.paths.recordings, "link.wav"));
  });
  afterAll(async () => {
    await server?.stop();
  });

  const json = { "content-type": "application/json" };
  const md = { "content-type": "text/markdown" };

  // ---- playbook names

  const badPlaybookNames: Array<[string, string]> = [...escapes(".md"), ["symlink out of the folder", "evil.md"], ["slash", "sub/x.md"]];

  it.each(badPlaybookNames)("REST /api/playbooks/{name}, %s (%j): 400 INVALID_NAME for GET, PUT and DELETE", async (_kind, name) => {
    for (const [method, body] of [["GET", undefined], ["PUT", okPlaybook("")], ["POST", okPlaybook("")], ["DELETE", undefined]] as const) {
      const res = await raw(server, method, `/api/playbooks/${encodeURIComponent(name)}`, body ? md : {}, body);
      expect(res.status, `${method} ${name}`).toBe(400);
      expect(res.json.error?.code, `${method} ${name}`).toBe("INVALID_NAME");
    }
    // Unencoded in the path too (the router sees the raw segments).
    if (!name.includes("\u0000") && !name.includes("\\")) {
      const res = await raw(server, "GET", `/api/playbooks/${name}`);
      expect(res.status, name).toBe(400);
      expect(res.json.error?.code).toBe("INVALID_NAME");
    }
    expect((await raw(server, "GET", `/api/playbooks/evil.md`)).text).not.toContain("secret playbook");
  });

  it("the symlinked playbook is neither listed, read, overwritten nor deleted", async () => {
    const list = await raw(server, "GET", "/api/playbooks");
    expect((list.json.playbooks as { name: string }[]).map((p) => p.name)).not.toContain("evil.md");
    const res = await raw(server, "GET", "/api/playbooks/evil.md");
    expect(res.json.error?.message).toContain("evil.md");
    const { readFile } = await import("node:fs/promises");
    expect(await readFile(join(outside, "secret.md"), "utf8")).toBe(secretPlaybook);
  });

  it.each(badPlaybookNames)("POST /api/playbook/run and POST /api/calls name a playbook, %s (%j): 400 INVALID_NAME naming it", async (_kind, name) => {
    const run = await raw(server, "POST", "/api/playbook/run", json, JSON.stringify({ playbook: name }));
    expect(run.status).toBe(400);
    expect(run.json.error?.code).toBe("INVALID_NAME");
    expect(names(run.json.error?.message, name), run.json.error?.message).toBe(true);
    // Without a PBX the name rule is still checked first; a name that follows it (the symlink) is then 503.
    const originate = await raw(server, "POST", "/api/calls", json, JSON.stringify({ to: "1000", playbook: name }));
    if (name === "evil.md") expect(originate.json.error?.code).toBe("PBX_UNAVAILABLE");
    else {
      expect(originate.status).toBe(400);
      expect(originate.json.error?.code).toBe("INVALID_NAME");
      expect(names(originate.json.error?.message, name)).toBe(true);
    }
  });

  it.each(badPlaybookNames)("/call invite option.playbook, %s (%j): error INVALID_NAME, the call is not answered with it", async (_kind, name) => {
    const client = await CallClient.connect(server.wsUrl);
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: name });
    const err = await client.waitFor("error", undefined, 10_000);
    expect(err).toMatchObject({ code: "INVALID_NAME" });
    expect(names(err.error, name), err.error).toBe(true);
    expect(client.events.map((e) => e.event)).not.toContain("answer");
    client.close();
  });

  // ---- sound files

  const badSounds: Array<[string, string]> = [...escapes(".wav"), ["file:// scheme", "file:///etc/passwd"]];

  it.each(badSounds)("the play command on /call and REST play, %s (%j): BAD_REQUEST naming the url", async (_kind, url) => {
    const id = `play-${Math.random().toString(36).slice(2, 10)}`;
    const client = await CallClient.connect(server.wsUrl, { id });
    client.invite({ codec: "pcm", sampleRate: 16000 });
    await client.waitFor("answer", undefined, 10_000);
    client.send({ command: "play", url, playId: "p1" });
    const err = await client.waitFor("error", undefined, 10_000);
    expect(err).toMatchObject({ code: "BAD_REQUEST" });
    expect(names(err.error, url), err.error).toBe(true);
    const rest = await raw(server, "POST", `/api/calls/${id}/play`, json, JSON.stringify({ url }));
    expect(rest.status).toBe(400);
    expect(rest.json.error?.code).toBe("BAD_REQUEST");
    expect(names(rest.json.error?.message, url)).toBe(true);
    client.hangup();
    await client.waitFor("hangup");
  }, 20_000);

  it.each([
    ["a symlinked file", "evil.wav"],
    ["a file below a symlinked folder", "evildir/secret.wav"],
  ])("play of %s (%s) leading out of the sounds folder: BAD_REQUEST, nothing played; a real sound plays", async (_kind, url) => {
    const id = `play-${Math.random().toString(36).slice(2, 10)}`;
    const client = await CallClient.connect(server.wsUrl, { id });
    client.invite({ codec: "pcm", sampleRate: 16000 });
    await client.waitFor("answer", undefined, 10_000);
    client.send({ command: "play", url, playId: "bad" });
    const err = await client.waitFor("error", undefined, 10_000);
    expect(err).toMatchObject({ code: "BAD_REQUEST" });
    expect(err.error).toContain(url);
    expect(err.error).toMatch(/outside/);
    const rest = await raw(server, "POST", `/api/calls/${id}/play`, json, JSON.stringify({ url, playId: "bad-rest" }));
    // The file system is consulted when the sound loads: accepted, then refused with an error event.
    expect([202, 400]).toContain(rest.status);
    await new Promise((r) => setTimeout(r, 300));
    const errors = client.events.filter((e) => e.event === "error");
    expect(errors.length).toBeGreaterThanOrEqual(2);
    client.send({ command: "play", url: "ok.wav", playId: "good" });
    const end = await client.waitFor("trackEnd", (e) => e.playId === "good", 10_000);
    expect(end.reason).toBe("finished");
    client.hangup();
    await client.waitFor("hangup");
  }, 20_000);

  const tagEntries = (file: string): Array<[string, string]> => [
    ["<play file> tag", okPlaybook("") + `<play file=${JSON.stringify(file)}/>\n`],
    ["greeting.play", okPlaybook(`greeting:\n  play: ${JSON.stringify(file)}\n`)],
    ["ambiance.path", okPlaybook(`ambiance:\n  path: ${JSON.stringify(file)}\n`)],
  ];

  it.each([...escapes(".wav").filter(([k]) => k !== "NUL"), ["symlink", "evil.wav"], ["below a symlinked folder", "evildir/secret.wav"]] as Array<[string, string]>)(
    "a playbook naming a sound, %s (%j), in <play>, greeting.play and ambiance.path: diagnostic `file` naming it; PUT refused 422",
    async (_kind, file) => {
      for (const [where, text] of tagEntries(file)) {
        const lint = await raw(server, "POST", "/api/playbooks/lint", md, text);
        expect(lint.status, where).toBe(200);
        const errors = lint.json.errors as { code: string; message: string }[];
        expect(errors.map((e) => e.code), `${where}: ${JSON.stringify(errors)}`).toContain("file");
        expect(names(errors.find((e) => e.code === "file")?.message, file), where).toBe(true);
        const put = await raw(server, "PUT", "/api/playbooks/sound-test.md", md, text);
        expect(put.status, where).toBe(422);
        expect(put.json.error?.code).toBe("PLAYBOOK_INVALID");
      }
    },
  );

  // ---- recordings

  it.each(escapes(".wav").filter(([k]) => k !== "NUL"))("a playbook recorderFile, %s (%j): refused when the playbook is checked", async (_kind, file) => {
    const lint = await raw(server, "POST", "/api/playbooks/lint", md, okPlaybook(`recorder:\n  recorderFile: ${JSON.stringify(file)}\n`));
    expect(lint.json.valid).toBe(false);
    const errors = lint.json.errors as { code: string; message: string }[];
    expect(errors.some((e) => names(e.message, file)), JSON.stringify(errors)).toBe(true);
  });

  it.each([
    ["a folder that is a symlink out", "out/rec-{id}.wav", "rec-"],
    ["an existing file that is a symlink out", "link.wav", "victim"],
  ])("a recording into %s (%s): error BAD_REQUEST at call start, nothing written outside", async (_kind, file) => {
    const name = `rec-${Math.random().toString(36).slice(2, 8)}.md`;
    const put = await raw(server, "PUT", `/api/playbooks/${name}`, md, okPlaybook(`recorder:\n  recorderFile: ${JSON.stringify(file)}\n`));
    expect(put.status, put.text).toBe(200);
    const client = await CallClient.connect(server.wsUrl);
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: name });
    const err = await client.waitFor("error", undefined, 10_000);
    expect(err).toMatchObject({ code: "BAD_REQUEST" });
    expect(err.error).toContain(file.split("{")[0]);
    client.hangup();
    await client.waitFor("hangup");
    const { readFile } = await import("node:fs/promises");
    expect((await readdir(outside)).sort()).toEqual(["secret.md", "secret.wav", "victim.wav"]);
    expect(await readFile(join(outside, "victim.wav"), "utf8")).toBe("do not overwrite");
  }, 20_000);

  it("a recording in a sub-folder of the recordings folder is written there", async () => {
    const put = await raw(server, "PUT", "/api/playbooks/rec-ok.md", md, okPlaybook('recorder:\n  recorderFile: "day/{id}.wav"\n'));
    expect(put.status, put.text).toBe(200);
    const client = await CallClient.connect(server.wsUrl, { id: "rec-ok-1" });
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "rec-ok.md" });
    await client.waitFor("answer", undefined, 10_000);
    client.hangup();
    await client.waitFor("hangup");
    expect(client.events.filter((e) => e.event === "error")).toEqual([]);
    expect(await readdir(join(server.config.paths.recordings, "day"))).toContain("rec-ok-1.wav");
  }, 20_000);
});

// ----------------------------------------------------------------------------------------------------- limits

describe("size limits on every input", () => {
  const BODY_LIMIT = 4096;
  const BINARY_LIMIT = 4000; // below the 64 KiB text limit: ws alone would let 1001..65536 bytes through
  let server: TestServer;
  let big: TestServer;
  beforeAll(async () => {
    server = await startServer({ http: { body_limit_bytes: BODY_LIMIT, max_ws_message_bytes: BINARY_LIMIT, rate_limit_per_min: 0 } });
    big = await startServer({ http: { body_limit_bytes: 3 * 1024 * 1024, rate_limit_per_min: 0 } });
  });
  afterAll(async () => {
    await server?.stop();
    await big?.stop();
  });

  /** A JSON body of exactly `bytes` bytes: `{"text":"xxx…"}`. */
  const jsonOf = (bytes: number): string => {
    const shell = JSON.stringify({ playbook: "hello.md", variables: { pad: "" } });
    return JSON.stringify({ playbook: "hello.md", variables: { pad: "x".repeat(bytes - shell.length) } });
  };

  it("REST JSON body: exactly body_limit_bytes is accepted; one byte more is 400 BAD_REQUEST naming the limit", async () => {
    const at = jsonOf(BODY_LIMIT);
    expect(Buffer.byteLength(at)).toBe(BODY_LIMIT);
    const ok = await raw(server, "POST", "/api/playbook/run", { "content-type": "application/json" }, at);
    expect(ok.status, ok.text).toBe(201);
    const over = await raw(server, "POST", "/api/playbook/run", { "content-type": "application/json" }, jsonOf(BODY_LIMIT + 1));
    expect(over.status).toBe(400);
    expect(over.json.error).toMatchObject({ code: "BAD_REQUEST", details: { limitBytes: BODY_LIMIT, fields: [{ path: "body" }] } });
    expect(over.json.error?.message).toContain(String(BODY_LIMIT));
  });

  it("REST text body (playbook upload and lint): the same limit", async () => {
    const playbook = (bytes: number) => {
      const head = "---\ngreeting: hi\n---\n";
      return head + "x".repeat(bytes - head.length - 1) + "\n";
    };
    for (const path of ["/api/playbooks/limit.md", "/api/playbooks/lint"]) {
      const method = path.endsWith("lint") ? "POST" : "PUT";
      const ok = await raw(server, method, path, { "content-type": "text/markdown" }, playbook(BODY_LIMIT));
      expect(ok.status, `${path} ${ok.text.slice(0, 200)}`).toBe(200);
      const over = await raw(server, method, path, { "content-type": "text/markdown" }, playbook(BODY_LIMIT + 1));
      expect(over.status, path).toBe(400);
      expect(over.json.error?.code).toBe("BAD_REQUEST");
    }
  });

  it("a playbook of exactly 1 MiB is stored; one byte more is 422 PLAYBOOK_INVALID (front-matter, 1:1), even under a larger body limit", async () => {
    const head = "---\ngreeting: hi\n---\n";
    const text = (bytes: number) => head + "x".repeat(bytes - head.length - 1) + "\n";
    const ok = await raw(big, "PUT", "/api/playbooks/mib.md", { "content-type": "text/markdown" }, text(1024 * 1024));
    expect(ok.status, ok.text.slice(0, 300)).toBe(200);
    const over = await raw(big, "PUT", "/api/playbooks/mib.md", { "content-type": "text/markdown" }, text(1024 * 1024 + 1));
    expect(over.status).toBe(422);
    expect(over.json.error?.code).toBe("PLAYBOOK_INVALID");
    expect((over.json.error?.details?.errors as { code: string; line: number }[])[0]).toMatchObject({ code: "front-matter", line: 1 });
    // The same rule for inline playbooks (POST /api/playbook/run content).
    const inline = await raw(big, "POST", "/api/playbook/run", { "content-type": "application/json" }, JSON.stringify({ content: text(1024 * 1024 + 1) }));
    expect([400, 422]).toContain(inline.status);
  });

  /** Opens /call (answered when `answer`), returns the socket and its close. */
  async function openCall(s: TestServer, path = "/call", answer = true): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }>; events: string[] }> {
    const r = await upgrade(s, path);
    if (!r.opened) throw new Error(`upgrade refused ${r.status}`);
    const events: string[] = [];
    r.ws.on("message", (d, isBinary) => {
      if (!isBinary) events.push((JSON.parse(d.toString()) as { event: string }).event);
    });
    const closed = closeOf(r.ws);
    if (answer) {
      r.ws.send(JSON.stringify({ command: "invite", option: { codec: "pcm", sampleRate: 16000 } }));
      for (let i = 0; i < 200 && !events.includes("answer"); i++) await new Promise((res) => setTimeout(res, 25));
      expect(events).toContain("answer");
    }
    return { ws: r.ws, closed, events };
  }

  const stillOpen = async (ws: WebSocket) => {
    // A ping round trip after the frame: the server has handled the frame by the time the pong arrives.
    await new Promise<void>((resolve) => {
      ws.once("pong", () => resolve());
      ws.once("close", () => resolve());
      if (ws.readyState === WebSocket.OPEN) ws.ping();
      else resolve();
    });
    return ws.readyState === WebSocket.OPEN;
  };

  const textOf = (bytes: number) => {
    const shell = JSON.stringify({ command: "nothing", pad: "" });
    return JSON.stringify({ command: "nothing", pad: "x".repeat(bytes - shell.length) });
  };

  it("/call text message: exactly 64 KiB is handled (not closed); 64 KiB + 1 closes 1009", async () => {
    const a = await openCall(server);
    a.ws.send(textOf(64 * 1024));
    expect(await stillOpen(a.ws)).toBe(true);
    a.ws.send(textOf(64 * 1024 + 1));
    expect((await a.closed).code).toBe(1009);
  });

  it("/call/pbx first message (no such call yet): exactly 64 KiB is read (4404 no such call); one byte more closes 1009; binary over the limit too", async () => {
    const at = await openCall(server, "/call/pbx?id=limit-pbx-1", false);
    at.ws.send(textOf(64 * 1024));
    expect((await at.closed).code).toBe(4404);
    const over = await openCall(server, "/call/pbx?id=limit-pbx-2", false);
    over.ws.send(textOf(64 * 1024 + 1));
    expect((await over.closed).code).toBe(1009);
    const bin = await openCall(server, "/call/pbx?id=limit-pbx-3", false);
    bin.ws.send(Buffer.alloc(BINARY_LIMIT + 1));
    expect((await bin.closed).code).toBe(1009);
  });

  it("/call binary message: exactly max_ws_message_bytes is taken as audio; one byte more closes 1009 (limit below 64 KiB)", async () => {
    const a = await openCall(server);
    a.ws.send(Buffer.alloc(BINARY_LIMIT));
    expect(await stillOpen(a.ws)).toBe(true);
    a.ws.send(Buffer.alloc(BINARY_LIMIT + 1));
    expect((await a.closed).code).toBe(1009);
  });

  it("/call binary message with the default limit (256 KiB): at the limit open, one byte over 1009", async () => {
    const a = await openCall(big);
    a.ws.send(Buffer.alloc(262144));
    expect(await stillOpen(a.ws)).toBe(true);
    a.ws.send(Buffer.alloc(262145));
    expect((await a.closed).code).toBe(1009);
  });

  it("/media/twilio binary over max_ws_message_bytes closes 1009", async () => {
    const tw = await openCall(server, "/media/twilio", false);
    tw.ws.send(Buffer.alloc(BINARY_LIMIT));
    expect(await stillOpen(tw.ws)).toBe(true);
    tw.ws.send(Buffer.alloc(BINARY_LIMIT + 1));
    expect((await tw.closed).code).toBe(1009);
  });

  it("/media/twilio text: exactly 64 KiB is handled; one byte more closes 1009", async () => {
    const tw = await openCall(big, "/media/twilio", false);
    const msg = (bytes: number) => {
      const shell = JSON.stringify({ event: "connected", pad: "" });
      return JSON.stringify({ event: "connected", pad: "x".repeat(bytes - shell.length) });
    };
    tw.ws.send(msg(64 * 1024));
    expect(await stillOpen(tw.ws)).toBe(true);
    tw.ws.send(msg(64 * 1024 + 1));
    expect((await tw.closed).code).toBe(1009);
  });

  it("query strings and headers: an id longer than the id rule closes 4400; REST ids over 128 characters are 400", async () => {
    const a = await upgrade(server, `/call?id=${"a".repeat(129)}`);
    expect(a.opened).toBe(true);
    if (a.opened) expect((await closeOf(a.ws)).code).toBe(4400);
    const ok = await raw(server, "GET", `/api/calls/${"a".repeat(128)}`);
    expect(ok.json.error?.code, ok.text).toBe("CALL_NOT_FOUND");
    const over = await raw(server, "GET", `/api/calls/${"a".repeat(129)}`);
    expect(over.status).toBe(400);
    expect(over.json.error?.code).toBe("BAD_REQUEST");
    // Beyond the router's parameter limit, and malformed URLs: still the §7.3 error body.
    for (const [path, code] of [
      [`/api/calls/${"a".repeat(257)}`, "BAD_REQUEST"],
      [`/api/playbooks/${"a".repeat(300)}.md`, "INVALID_NAME"],
      ["/api/calls/%zz", "BAD_REQUEST"],
      ["/api/playbooks/%E0%A4%A.md", "BAD_REQUEST"],
    ] as const) {
      const res = await raw(server, "GET", path);
      expect(res.status, path).toBe(400);
      expect(res.json.error?.code, `${path} ${res.text}`).toBe(code);
    }
    // A 131-character playbook name (the longest the rule allows) reaches the store.
    const longest = `${"a".repeat(128)}.md`;
    expect((await raw(server, "GET", `/api/playbooks/${longest}`)).json.error?.code).toBe("PLAYBOOK_NOT_FOUND");
  });
});

describe("size limits where the PBX wire parsers live", () => {
  it("ESL: a body of exactly maxBodyBytes is parsed; Content-Length one over is a protocol error, never buffered", async () => {
    const { EslParser, serializeMessage } = await import("../src/pbx/freeswitch/esl/parser.js");
    const cap = 1000;
    const at = new EslParser({ maxBodyBytes: cap });
    const got = at.push(serializeMessage([["Content-Type", "api/response"]], Buffer.alloc(cap, 0x61)));
    expect(got.map((m) => m.body?.length)).toEqual([cap]);
    expect(at.errors).toBe(0);
    const over = new EslParser({ maxBodyBytes: cap });
    expect(over.push(serializeMessage([["Content-Type", "api/response"]], Buffer.alloc(cap + 1, 0x61)))).toEqual([]);
    expect(over.errors).toBe(1);
    expect(over.lastError).toMatch(/above the 1000-byte cap/);
  });

  it("ESL: a header block of exactly maxHeaderBytes waits for its end; one byte more without a blank line is dropped", async () => {
    const { EslParser } = await import("../src/pbx/freeswitch/esl/parser.js");
    const cap = 256;
    const line = (n: number) => Buffer.from(`Content-Type: text/x${"y".repeat(n - "Content-Type: text/x".length - 1)}\n`);
    const at = new EslParser({ maxHeaderBytes: cap });
    expect(at.push(line(cap))).toEqual([]);
    expect(at.errors).toBe(0);
    expect(at.push(Buffer.from("\n")).length).toBe(1);
    const over = new EslParser({ maxHeaderBytes: cap });
    over.push(line(cap + 1));
    expect(over.errors).toBe(1);
    expect(over.buffered).toBe(0);
  });
});

describe("the play_audio tool (an LLM names the file)", () => {
  it.each([...escapes(".wav"), ["symlink", "evil.wav"], ["a real file the playbook does not name", "ok.wav"]] as Array<[string, string]>)(
    "%s (%j): refused as an unknown file, nothing played; only the playbook's own (checked) files play",
    async (_kind, file) => {
      const { loadPlaybook } = await import("../src/playbook/runner/testutil.js");
      const { dispatchTool, setRuntimeVariable } = await import("../src/playbook/runner/tool-dispatch.js");
      const { offeredBuiltins } = await import("../src/playbook/runner/prompt.js");
      const pb = loadPlaybook("bank-ivr.md");
      const played: string[] = [];
      const runtime: Record<string, string> = {};
      const host = {
        playbook: pb,
        builtins: offeredBuiltins(pb, "freeswitch"),
        http: { fetch: () => Promise.reject(new Error("no network")), render: (s: string) => s, signal: new AbortController().signal },
        render: (s: string) => s,
        setVariable: (name: string | undefined, value: string) => setRuntimeVariable(runtime, name, value, () => undefined),
        error: () => undefined,
        terminal: () => undefined,
        gotoScene: () => undefined,
        play: (f: string) => void played.push(f),
        sendDtmf: () => undefined,
        collect: () => true,
      };
      const result = (await dispatchTool(host, "play_audio", { file })) as { ok: boolean; content: string };
      expect(result.ok).toBe(false);
      expect(result.content).toContain("unknown file");
      expect(played).toEqual([]);
      expect(((await dispatchTool(host, "play_audio", { file: pb.playFiles[0] })) as { ok: boolean }).ok).toBe(true);
      expect(played).toEqual([pb.playFiles[0]]);
    },
  );
});
