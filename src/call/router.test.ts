import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { PlaybookStore } from "../playbook/store.js";
import { verifySignature } from "../util/hmac.js";
import { InboundRouter, type IncomingCall } from "./router.js";

const quiet = createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });
const PLAYBOOK = (greeting: string) => `---\nllm:\n  provider: scripted\ngreeting: "${greeting}"\n---\n# Scene: main\nHelp the caller.\n`;

function playbookDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ac-router-"));
  writeFileSync(join(dir, "sales.md"), PLAYBOOK("Sales here"));
  writeFileSync(join(dir, "support.md"), PLAYBOOK("Support here"));
  writeFileSync(join(dir, "uk.md"), PLAYBOOK("UK desk"));
  writeFileSync(join(dir, "broken.md"), "---\nllm:\n  temprature: 1\n---\n# Scene: main\nx\n");
  return dir;
}

async function router(handlerToml: string, extra: { twilioPlaybook?: string } = {}) {
  const cwd = mkdtempSync(join(tmpdir(), "ac-router-cfg-"));
  writeFileSync(join(cwd, "c.toml"), handlerToml);
  const { config, env } = await loadConfig({ confPath: "c.toml", env: {}, cwd });
  const dir = playbookDir();
  const store = new PlaybookStore({ dir, soundsDir: cwd, env, config });
  return { router: new InboundRouter({ handler: config.handler, playbooks: store, log: quiet, userAgent: "active-call/test", ...extra }), dir };
}

const call = (over: Partial<IncomingCall> = {}): IncomingCall => ({
  callId: "3f0a-1",
  callType: "freeswitch",
  direction: "inbound",
  caller: "+15551230000",
  callee: "200",
  createdAt: "2026-11-23T10:00:00.000Z",
  headers: { "X-Customer-Id": "42" },
  variables: { queue: "sales" },
  attachUrl: "ws://127.0.0.1:8080/call/pbx?id=3f0a-1",
  ...over,
});

const RULES = `
[handler]
default = "support.md"

[[handler.rules]]
callee = "^100$"
playbook = "sales.md"
variables = { team = "a" }

[[handler.rules]]
caller = "^\\\\+44"
call_type = "asterisk"
playbook = "uk.md"

[[handler.rules]]
callee = "^666$"
playbook = "broken.md"

[[handler.rules]]
callee = "^777$"
playbook = "missing.md"
`;

describe("playbook rules", () => {
  it("tries rules in order, first match wins, merging rule and call variables", async () => {
    const { router: r } = await router(RULES);
    const d = await r.route(call({ callee: "100" }));
    expect(d).toMatchObject({ action: "playbook", source: "rule", variables: { team: "a", queue: "sales" } });
    expect(d.action === "playbook" && d.playbook.name).toBe("sales.md");
  });

  it("restricts a rule to its call type and falls back to the default", async () => {
    const { router: r } = await router(RULES);
    const uk = await r.route(call({ caller: "+442071234567", callType: "asterisk" }));
    expect(uk.action === "playbook" && uk.playbook.name).toBe("uk.md");
    const fs = await r.route(call({ caller: "+442071234567", callType: "freeswitch" }));
    expect(fs).toMatchObject({ action: "playbook", source: "default" });
    expect(fs.action === "playbook" && fs.playbook.name).toBe("support.md");
  });

  it("lets the PBX-named playbook win over every rule", async () => {
    const { router: r } = await router(RULES);
    const d = await r.route(call({ callee: "100", pbxPlaybook: "uk.md" }));
    expect(d).toMatchObject({ action: "playbook", source: "pbx" });
    expect(d.action === "playbook" && d.playbook.name).toBe("uk.md");
  });

  it("rejects with 503 before answering when the playbook is missing, invalid or badly named", async () => {
    const { router: r } = await router(RULES);
    expect(await r.route(call({ callee: "777" }))).toMatchObject({ action: "reject", code: 503, detail: expect.stringMatching(/^PLAYBOOK_NOT_FOUND/) });
    expect(await r.route(call({ callee: "666" }))).toMatchObject({ action: "reject", code: 503, detail: expect.stringMatching(/^PLAYBOOK_INVALID: .*broken\.md:3:3/) });
    expect(await r.route(call({ pbxPlaybook: "../etc/passwd.md" }))).toMatchObject({ action: "reject", code: 503, detail: expect.stringMatching(/^INVALID_NAME/) });
  });

  it("refuses a playbook that is a symbolic link out of the folder", async () => {
    const { router: r, dir } = await router(RULES);
    const outside = join(mkdtempSync(join(tmpdir(), "ac-outside-")), "evil.md");
    writeFileSync(outside, PLAYBOOK("evil"));
    symlinkSync(outside, join(dir, "evil.md"));
    expect(await r.route(call({ pbxPlaybook: "evil.md" }))).toMatchObject({ action: "reject", detail: expect.stringMatching(/^INVALID_NAME: .*outside/) });
  });

  it("warns at start about each named playbook that is missing or invalid", async () => {
    const { router: r } = await router(RULES);
    const warnings = await r.startupWarnings();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^PLAYBOOK_INVALID: playbook broken\.md is invalid/);
    expect(warnings[1]).toMatch(/^PLAYBOOK_NOT_FOUND: no playbook missing\.md/);
  });

  it("rejects when nothing matches and there is no default", async () => {
    const { router: r } = await router('[[handler.rules]]\ncallee = "^1$"\nplaybook = "sales.md"\n');
    expect(await r.route(call())).toMatchObject({ action: "reject", code: 503 });
  });

  it("uses [twilio] playbook for Twilio streams before the rules", async () => {
    const { router: r } = await router(RULES, { twilioPlaybook: "uk.md" });
    const d = await r.route(call({ callType: "twilio", callee: "100" }));
    expect(d.action === "playbook" && d.playbook.name).toBe("uk.md");
  });
});

describe("webhook handler", () => {
  const servers: Server[] = [];
  afterEach(() => servers.splice(0).forEach((s) => s.close()));

  async function webhook(reply: (req: IncomingMessage, body: string) => { status?: number; body?: string; delayMs?: number }) {
    const seen: { headers: IncomingMessage["headers"]; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push({ headers: req.headers, body });
        const r = reply(req, body);
        setTimeout(() => res.writeHead(r.status ?? 200, { "content-type": "application/json" }).end(r.body ?? ""), r.delayMs ?? 0);
      });
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/incoming`;
    return { url, seen };
  }
  const cfg = (url: string, more = "") => `[handler]\ntype = "webhook"\nurl = "${url}"\nsecret = "whsec"\ntimeout_ms = 300\nmax_reply_bytes = 2048\nheaders = { "X-App" = "1" }\n${more}`;

  it("posts the call signed and runs the playbook it names, with its variables", async () => {
    const w = await webhook(() => ({ body: JSON.stringify({ action: "playbook", playbook: "sales.md", variables: { tier: "gold" } }) }));
    const { router: r } = await router(cfg(w.url));
    const d = await r.route(call());
    expect(d).toMatchObject({ action: "playbook", source: "webhook", variables: { queue: "sales", tier: "gold" } });
    const sent = w.seen[0];
    expect(sent?.headers["x-active-call-event"]).toBe("incoming");
    expect(sent?.headers["x-app"]).toBe("1");
    expect(verifySignature("whsec", sent?.body ?? "", sent?.headers["x-signature"] as string)).toBe(true);
    expect(JSON.parse(sent?.body ?? "{}")).toEqual({
      event: "incoming", callId: "3f0a-1", dialogId: "3f0a-1", createdAt: "2026-11-23T10:00:00.000Z", callType: "freeswitch",
      direction: "inbound", caller: "+15551230000", callerName: null, callee: "200", headers: { "X-Customer-Id": "42" },
      variables: { queue: "sales" }, pbxPlaybook: null, attachUrl: "ws://127.0.0.1:8080/call/pbx?id=3f0a-1",
    });
  });

  it("runs an inline playbook, and rejects an invalid one", async () => {
    let content = PLAYBOOK("Inline!");
    const w = await webhook(() => ({ body: JSON.stringify({ action: "playbook", content }) }));
    const { router: r } = await router(cfg(w.url));
    const ok = await r.route(call());
    expect(ok.action === "playbook" && ok.playbook.greeting !== false && ok.playbook.greeting.text).toBe("Inline!");
    content = "no front matter";
    expect(await r.route(call())).toMatchObject({ action: "reject", code: 503, detail: expect.stringMatching(/^PLAYBOOK_INVALID/) });
  });

  it("parks the call for an application on an empty body, {} or attach", async () => {
    for (const body of ["", "{}", '{"action":"attach","variables":{"a":1}}']) {
      const w = await webhook(() => ({ body }));
      const { router: r } = await router(cfg(w.url));
      expect(await r.route(call())).toMatchObject({ action: "attach" });
    }
  });

  it("passes a rejection's code and reason on", async () => {
    const w = await webhook(() => ({ body: '{"action":"reject","code":486,"reason":"Busy Here"}' }));
    const { router: r } = await router(cfg(w.url));
    expect(await r.route(call())).toMatchObject({ action: "reject", code: 486, reason: "Busy Here" });
  });

  it.each([
    ["a non-2xx status", { status: 500, body: "{}" }, /HTTP 500/],
    ["a body that is not JSON", { body: "<html>" }, /not JSON/],
    ["an unknown action", { body: '{"action":"dance"}' }, /unknown action "dance"/],
    ["a reply over max_reply_bytes", { body: JSON.stringify({ action: "attach", pad: "x".repeat(5000) }) }, /exceeds 2048 bytes/],
    ["a timeout", { body: "{}", delayMs: 1000 }, /did not answer within 300 ms/],
  ])("rejects with 503 WEBHOOK_FAILED on %s", async (_name, reply, detail) => {
    const w = await webhook(() => reply);
    const { router: r } = await router(cfg(w.url));
    const d = await r.route(call());
    expect(d).toMatchObject({ action: "reject", code: 503 });
    expect(d.action === "reject" && d.detail).toMatch(/^WEBHOOK_FAILED: /);
    expect(d.action === "reject" && d.detail).toMatch(detail);
  });

  it("rejects at once when the webhook is unreachable", async () => {
    const { router: r } = await router(cfg("http://127.0.0.1:9/none"));
    expect(await r.route(call())).toMatchObject({ action: "reject", code: 503, detail: expect.stringMatching(/^WEBHOOK_FAILED: webhook request failed/) });
  });
});
