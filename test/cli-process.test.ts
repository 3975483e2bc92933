/**
 * The built `active-call` command as a user runs it: a real process, real sockets, real signals.
 * Needs `npm run build` first (npm test does it).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../bin/active-call.js", import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
const cleanEnv = () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ACTIVE_CALL_") && !k.startsWith("OPENAI_")) env[k] = v;
  return env;
};
const tmp = () => mkdtempSync(join(tmpdir(), "ac-cli-"));
const runSync = (args: string[], cwd = tmp(), env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...cleanEnv(), ...env }, encoding: "utf8", timeout: 15_000 });

/** Starts the built binary on a free loopback port; resolves once it logs "http listening". */
async function startBinary(cwd: string, extraArgs: string[] = []): Promise<{ child: ChildProcess; exited: Promise<number | null>; addr: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, "--http", "127.0.0.1:0", "--log-format", "json", ...extraArgs], { cwd, env: cleanEnv() });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "http listening" line; output:\n${out}`)), 10_000);
    child.stdout?.on("data", () => {
      const line = out.split("\n").find((l) => l.includes('"http listening"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { addr: string }).addr);
      }
    });
  });
  return { child, exited, addr, output: () => out };
}

describe("active-call command", () => {
  it("--help lists every flag", () => {
    const r = runSync(["--help"]);
    expect(r.status).toBe(0);
    for (const flag of ["--conf", "--http", "--handler", "--esl", "--esl-listen", "--ari", "--ari-app", "--ari-media", "--playbooks", "--token", "--log-level", "--log-format", "--print-config", "--version", "--help"]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it("--version prints the package version", () => {
    const r = runSync(["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`active-call ${VERSION}\n`);
  });

  it("exits 1 naming the key and line for a bad config (unknown key, wrong type)", () => {
    const dir = tmp();
    writeFileSync(join(dir, "bad.toml"), '[http]\naddr = "127.0.0.1:0"\n\n[freeswitch]\nesl_pasword = "x"\nesl_port = "eighty"\n');
    const r = runSync(["--conf", "bad.toml"], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('bad.toml:5:1: unknown key "esl_pasword" in [freeswitch]; did you mean "esl_password"?');
    expect(r.stderr).toContain('bad.toml:6:12: "esl_port" in [freeswitch] must be a number, got "eighty"');
  });

  it("exits 2 with a one-line message for an unknown flag or bad value", () => {
    const r = runSync(["--colour"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("active-call: unknown flag --colour (see --help)\n");
    const v = runSync(["--ari-media", "carrier-pigeon"]);
    expect(v.status).toBe(2);
    expect(v.stderr).toMatch(/^active-call: --ari-media: "media" in \[asterisk\] must be one of "rtp", "websocket", "audiosocket"/);
  });

  it("simulate runs a playbook offline on a virtual call and prints the transcript (exit 0)", () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const r = runSync(["simulate", "playbooks/hello.md", "--text", "the weather is nice", "--offline"], root);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[00:00\.\d\d\] agent {4}Hello, this is active call\./m);
    expect(r.stdout).toMatch(/^\[\d\d:\d\d\.\d\d\] caller {3}the weather is nice$/m);
    expect(r.stdout).toMatch(/^\[\d\d:\d\d\.\d\d\] agent {4}You said: the weather is nice$/m);
    expect(r.stderr).toContain("call ended"); // progress: stdout is a pipe here
    const bad = runSync(["simulate", "playbooks/hello.md", "--speed", "fast"], root);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('active-call simulate: --speed must be a number ≥ 0, got "fast" (see --help)\n');
  });

  it("lint checks the example playbooks (exit 0) and names file:line:column for a broken one (exit 1)", () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const ok = runSync(["lint", "playbooks"], root);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^3 files, 0 errors, \d+ warnings$/m);
    const dir = tmp();
    writeFileSync(join(dir, "bad.md"), "---\nllm:\n  temprature: 0.3\n---\n# Scene: main\nHello.\n");
    const bad = runSync(["lint", "bad.md"], dir);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('bad.md:3:3: error[unknown-key]: unknown key "temprature" in llm; did you mean "temperature"?');
    expect(runSync(["lint", "missing.md"], dir).status).toBe(2);
  });

  it("--print-config shows the effective config with secrets masked", () => {
    const r = runSync(["--print-config", "--http", "9000"], tmp(), { ACTIVE_CALL_TOKEN: "tok-very-secret", OPENAI_API_KEY: "sk-abcdef" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('addr = "0.0.0.0:9000"');
    expect(r.stdout).toContain('token = "***"');
    expect(r.stdout).toContain('api_key = "***"');
    expect(r.stdout).not.toContain("tok-very-secret");
    expect(r.stdout).not.toContain("sk-abcdef");
  });

  it("starts with no config, answers GET /health, and exits 0 on SIGTERM", async () => {
    const dir = tmp();
    const { child, exited, addr, output } = await startBinary(dir);
    const res = await fetch(`http://${addr}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", version: VERSION });

    child.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 5 s"), 5000))]);
    expect(code).toBe(0);
    expect(output()).toContain('"shutting down"');
  });

  it("the run command serves the embedded default: the console page and a call with hello.md that greets; SIGTERM ends it", async () => {
    const { cpSync } = await import("node:fs");
    const { CallClient } = await import("../src/client/index.js");
    const dir = tmp();
    cpSync(fileURLToPath(new URL("../playbooks", import.meta.url)), join(dir, "playbooks"), { recursive: true });
    // A live call may run on for shutdown_grace_ms after SIGTERM (test/process-lifecycle.test.ts); keep it short.
    writeFileSync(join(dir, "grace.toml"), "[calls]\nshutdown_grace_ms = 300\n");
    const { child, exited, addr } = await startBinary(dir, ["--conf", "grace.toml"]);
    const page = await fetch(`http://${addr}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain("<script type=\"module\">");

    const client = await CallClient.connect(`ws://${addr}`);
    let audioBytes = 0;
    client.on("audio", (b: Buffer) => (audioBytes += b.length));
    client.invite({ playbook: "hello.md" });
    await client.waitFor("trackStart", (e) => e.playId === "greeting", 15_000);
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 15_000);
    expect(audioBytes).toBeGreaterThan(32_000); // more than a second of 16 kHz speech

    child.kill("SIGTERM");
    expect(await client.waitFor("hangup")).toMatchObject({ reason: "shutdown", initiator: "system" });
    expect((await client.closed).code).toBe(1000);
    expect(await exited).toBe(0);
  }, 40_000);

  it("delivers, at start, a post-call hook that a previous run left in the spool", async () => {
    const { mkdirSync } = await import("node:fs");
    const { startHttpReceiver } = await import("./sim/http-receiver.js");
    const receiver = await startHttpReceiver();
    const got = receiver.received;
    const dir = tmp();
    mkdirSync(join(dir, "data/spool/posthook"), { recursive: true });
    const entry = {
      deliveryId: "left-by-crash",
      url: `${receiver.origin}/hook`,
      method: "POST",
      headers: {},
      timeoutMs: 5000,
      payload: { event: "call.ended", callId: "c-9", summary: null },
      attempts: 1,
      createdAt: "2026-11-23T10:00:00.000Z",
    };
    writeFileSync(join(dir, "data/spool/posthook/left-by-crash.json"), JSON.stringify(entry));
    const child = spawn(process.execPath, [BIN, "--http", "127.0.0.1:0", "--log-format", "json"], { cwd: dir, env: { ...cleanEnv(), ACTIVE_CALL_WEBHOOK_SECRET: "s3" } });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await receiver.close();
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0]?.body ?? "{}")).toMatchObject({ callId: "c-9" });
    expect(got[0]?.headers["x-active-call-delivery"]).toBe("left-by-crash");
    expect(got[0]?.headers["x-active-call-attempt"]).toBe("2");
    expect(got[0]?.headers["x-signature"]).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it("refuses to start when the port is taken, with exit code 1", async () => {
    const { createServer } = await import("node:net");
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const r = runSync(["--http", `127.0.0.1:${port}`, "--log-format", "json"]);
    server.close();
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('"code":"EADDRINUSE"');
  });
});
