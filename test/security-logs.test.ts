/**
 * Logs of a whole call (issue: auth and confinement): the controller built from a config loaded the way main.ts
 * loads it (environment with an OpenAI key, an API token and a webhook secret), logging at trace level. A
 * WebSocket call with a caller number speaks, is transcribed (scripted ASR) and answered (scripted LLM). None
 * of the secrets, and neither the caller number nor the transcript text, may appear in any log line
 * (config.md §2.2: numbers as their last 4 digits; transcripts and LLM text not logged; secrets always redacted).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallClient } from "../src/client/index.js";
import { loadConfig } from "../src/config/load.js";
import { createLogger } from "../src/log.js";
import { buildServer, type Server } from "../src/http/server.js";
import { createServer, type Server as HttpServer } from "node:http";
import { fliteSpeech, freePort, silence } from "./e2e/harness.js";

const OPENAI_KEY = "sk-secret-0123456789abcdefOPENAI";
const TOKEN = "tok-secret-4242-api-token";
const WEBHOOK_SECRET = "whsec-9f8e7d6c5b4a-signing";
const CALLER = "+15557654321";
const CALLEE = "+15550009999";
const HEARD = "my account is zebra seven";
const REPLY_MARK = "quokka";

const PLAYBOOK = `---
asr:
  provider: scripted
  script: ["${HEARD}"]
tts:
  provider: scripted
llm:
  provider: scripted
  fallback: "Noted, ${REPLY_MARK}: {{ text }} <hangup/>"
greeting: "Hi there"
posthook:
  url: "\${HOOK_URL}"
  headers:
    Authorization: "Bearer \${ACTIVE_CALL_WEBHOOK_SECRET}"
---
Scripted call.
`;

let dir: string;
let receiver: HttpServer;
const hookBodies: string[] = [];
let server: Server;
let port: number;
const lines: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "active-call-seclog-"));
  port = await freePort();
  // The post-call hook's receiver fails the first delivery (a retry is logged), then takes it.
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      hookBodies.push(body);
      res.statusCode = hookBodies.length === 1 ? 500 : 200;
      res.end(hookBodies.length === 1 ? `rejected ${body}` : "ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  for (const d of ["playbooks", "sounds", "recordings", "dumps", "spool", "cache"]) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, "playbooks", "scripted.md"), PLAYBOOK);
  await mkdir(join(dir, "config"));
  await writeFile(
    join(dir, "config", "active-call.toml"),
    [
      "[http]",
      `addr = "127.0.0.1:${port}"`,
      "[log]",
      'level = "trace"',
      "[paths]",
      ...["playbooks", "sounds", "recordings", "dumps", "spool", "cache"].map((d) => `${d} = "${join(dir, d)}"`),
      "[posthook]",
      "backoff_initial_ms = 50",
      "backoff_max_ms = 100",
    ].join("\n"),
  );
  const loaded = await loadConfig({ env: { OPENAI_API_KEY: OPENAI_KEY, ACTIVE_CALL_TOKEN: TOKEN, ACTIVE_CALL_WEBHOOK_SECRET: WEBHOOK_SECRET, HOOK_URL: hookUrl }, cwd: dir });
  expect(loaded.config.http.token).toBe(TOKEN);
  const log = createLogger({
    level: "trace",
    format: "json",
    redactPersonal: loaded.config.log.redact_personal,
    secrets: loaded.secrets,
    tty: false,
    noColor: true,
    destination: { write: (line: string) => void lines.push(line) },
  });
  // What main.ts logs at start, with the config itself at trace (a careless line would carry the secrets).
  log.trace({ config: loaded.config }, "effective config");
  server = await buildServer({ config: loaded.config, env: loaded.env, log, version: "test" });
  await server.app.listen({ host: "127.0.0.1", port });
  await server.start();
}, 30_000);

afterAll(async () => {
  await server?.close();
  await new Promise((r) => receiver?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe("a full call's logs at trace level", () => {
  it("carry no secret, no full caller or callee number, no transcript or LLM text", async () => {
    const wsUrl = `ws://127.0.0.1:${port}`;
    // The token in the query too: the request line is logged at debug.
    const client = await CallClient.connect(wsUrl, { id: "sec-log-1", token: TOKEN, tokenInQuery: true });
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "scripted.md", caller: CALLER, callee: CALLEE });
    await client.waitFor("answer");
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    await client.streamPcm(new Int16Array([...silence(300), ...fliteSpeech("hello there how are you"), ...silence(1500)]), 16000, { realtime: true });
    const final = await client.waitFor("asrFinal", undefined, 20_000);
    expect(final.text).toBe(HEARD);
    await client.waitFor("hangup", undefined, 20_000);
    // REST with the token, and a wrong token.
    await fetch(`http://127.0.0.1:${port}/api/calls/sec-log-1?include=variables`, { headers: { authorization: `Bearer ${TOKEN}` } });
    await fetch(`http://127.0.0.1:${port}/api/calls?token=${TOKEN}`);
    if (process.env.SEC_DUMP) await writeFile(process.env.SEC_DUMP, lines.join(""));
    for (let i = 0; i < 100 && hookBodies.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(hookBodies.length).toBe(2);
    expect(hookBodies[1]).toContain(HEARD); // the hook carries the transcript; the log does not
    await new Promise((r) => setTimeout(r, 200));

    const text = lines.join("");
    if (process.env.SEC_DUMP) await writeFile(process.env.SEC_DUMP, text);
    expect(lines.length).toBeGreaterThan(5);
    expect(text).toContain("sec-log-1");
    for (const secret of [OPENAI_KEY, TOKEN, WEBHOOK_SECRET]) expect(text).not.toContain(secret);
    expect(text).not.toContain(CALLER);
    expect(text).not.toContain(CALLER.slice(1));
    expect(text).not.toContain(CALLEE);
    expect(text).not.toContain(HEARD);
    expect(text).not.toContain("zebra");
    expect(text).not.toContain(REPLY_MARK);
    expect(text).not.toContain("Hi there");
  }, 60_000);
});
