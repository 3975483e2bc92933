import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { readWav } from "../../audio/index.js";
import { configSchema } from "../../config/schema.js";
import { formatTime, runSimulateCommand } from "./cli.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const hasLocalTts = ["flite", "espeak-ng"].some((b) => spawnSync(b, ["--version"]).error === undefined);

async function run(argv: string[], cwd = ROOT): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runSimulateCommand(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    isTty: false,
    config: configSchema.parse({}),
    env: {},
    cwd,
  });
  return { code, out, err };
}

const LINE = /^\[(\d\d):(\d\d)\.(\d\d)\] (\S+)\s+(.*)$/;
const lines = (out: string) =>
  out
    .trimEnd()
    .split("\n")
    .map((l) => {
      const m = LINE.exec(l);
      if (!m) throw new Error(`not a transcript line: ${l}`);
      return { ms: (Number(m[1]) * 60 + Number(m[2])) * 1000 + Number(m[3]) * 10, kind: m[4] as string, text: m[5] as string };
    });

describe("formatTime", () => {
  it("is [mm:ss.cc]", () => {
    expect(formatTime(0)).toBe("[00:00.00]");
    expect(formatTime(65_432)).toBe("[01:05.43]");
  });
});

// CI installs flite and espeak-ng (.ci/install-system-deps): there a missing one is a broken install, not a skip.
if (process.env.CI === "true" && !hasLocalTts) throw new Error("CI must have flite or espeak-ng for the simulate tests");

describe.skipIf(!hasLocalTts)("active-call simulate", () => {
  it("prints the greeting, the caller's turns and the agent's replies in time order", async () => {
    const r = await run(["playbooks/hello.md", "--text", "hello there", "--text", "the weather is nice", "--offline"]);
    expect(r.code, r.err).toBe(0);
    const ls = lines(r.out);
    expect(ls.map((l) => l.kind)).toEqual(["agent", "caller", "agent", "caller", "agent", "hangup"]);
    expect(ls[0]?.text).toBe("Hello, this is active call. Say something and I will answer.");
    expect(ls[1]?.text).toBe("hello there");
    // "hello" matches the playbook's greeting rule; anything else is echoed by the scripted LLM's fallback.
    expect(ls[2]?.text).toMatch(/^Hello! I can hear you/);
    expect(ls[3]?.text).toBe("the weather is nice");
    expect(ls[4]?.text).toBe("You said: the weather is nice");
    for (let i = 1; i < ls.length; i++) expect(ls[i]?.ms).toBeGreaterThan(ls[i - 1]?.ms as number);
    // The caller waits for the greeting to end and the default 500 ms gap.
    expect(ls[1]?.ms).toBeGreaterThanOrEqual((ls[0]?.ms as number) + 500);
    expect(r.err).toContain("caller turn 1/2");
  });

  it("--json prints the call's events as JSON lines", async () => {
    const r = await run(["playbooks/hello.md", "--text", "good morning", "--offline", "--json"]);
    expect(r.code, r.err).toBe(0);
    const events = r.out.trimEnd().split("\n").map((l) => JSON.parse(l) as { event: string; text?: string });
    const names = events.map((e) => e.event);
    expect(names).toContain("trackStart");
    expect(names).toContain("trackEnd");
    expect(events.find((e) => e.event === "asrFinal")?.text).toBe("good morning");
    expect(names.at(-1)).toBe("hangup");
  });

  it("--input streams recorded caller speech through VAD and ASR, and the agent answers it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ac-sim-in-"));
    const input = join(dir, "caller.wav");
    // Real speech from flite (pocketsphinx understands its voices), with silence after it so the turn ends.
    const made = spawnSync("flite", ["-voice", "slt", "-t", "please transfer me to billing", "-o", input]);
    if (made.error) throw made.error;
    const r = await run(["playbooks/hello.md", "--input", input, "--offline", "--idle-ms", "1500"]);
    expect(r.code, r.err).toBe(0);
    const parsed = lines(r.out);
    const caller = parsed.filter((l) => l.kind === "caller");
    expect(caller.length).toBeGreaterThan(0);
    expect(caller[0]?.text).toMatch(/transfer|billing/);
    // The agent replies after the caller's turn (the greeting comes before it).
    const callerAt = caller[0]?.ms ?? 0;
    expect(parsed.some((l) => l.kind === "agent" && l.ms > callerAt)).toBe(true);
  });

  it("--output writes a stereo 16 kHz WAV with the agent on the right", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ac-sim-"));
    const out = join(dir, "call.wav");
    const r = await run(["playbooks/hello.md", "--text", "testing", "--offline", "--output", out, "--idle-ms", "500"]);
    expect(r.code, r.err).toBe(0);
    const wav = await readWav(out);
    expect(wav.sampleRate).toBe(16000);
    expect(wav.channels).toBe(2);
    let left = 0;
    let right = 0;
    for (let i = 0; i < wav.pcm.length; i += 2) {
      left = Math.max(left, Math.abs(wav.pcm[i] as number));
      right = Math.max(right, Math.abs(wav.pcm[i + 1] as number));
    }
    expect(right).toBeGreaterThan(1000);
    expect(left).toBe(0); // --text turns have no caller audio
  });

  it("--dtmf triggers the playbook's key action (--offline overrides its openai providers)", async () => {
    const r = await run(["playbooks/bank-ivr.md", "--dtmf", "1", "--offline"]);
    expect(r.code, r.err).toBe(0);
    const ls = lines(r.out);
    expect(ls[0]).toMatchObject({ kind: "scene", text: "menu" });
    expect(ls.map((l) => `${l.kind} ${l.text}`)).toContain("dtmf 1");
    expect(ls.map((l) => `${l.kind} ${l.text}`)).toContain("scene menu → balance (dtmf)");
  });

  it("--dtmf with @ms presses the keys at that offset", async () => {
    const r = await run(["playbooks/bank-ivr.md", "--dtmf", "2@3000", "--offline", "--idle-ms", "200"]);
    expect(r.code, r.err).toBe(0);
    const dtmf = lines(r.out).find((l) => l.kind === "dtmf");
    expect(dtmf?.ms).toBe(3000);
    expect(r.out).toContain("menu → card (dtmf)");
  });
});

describe("active-call simulate errors", () => {
  it.each([
    [["playbooks/hello.md", "--gap-ms", "soon"], "--gap-ms"],
    [["playbooks/hello.md", "--speed", "-1"], "--speed"],
    [["playbooks/hello.md", "--dtmf", "1@x"], "--dtmf"],
    [["playbooks/hello.md", "--var", "no-equals"], "--var"],
    [["playbooks/hello.md", "--colour"], "--colour"],
    [["playbooks/hello.md", "--text"], "--text"],
  ])("%j exits 2 with a one-line message naming %s", async (argv, flag) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err.trimEnd().split("\n")).toHaveLength(1);
    expect(r.err).toContain(flag);
    expect(r.out).toBe("");
  });

  it("exits 2 without a playbook", async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
  });

  it("an invalid playbook exits 1 with its diagnostics", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ac-sim-"));
    writeFileSync(join(dir, "bad.md"), "---\nllm: { provider: nonsense }\n---\nHi.\n");
    const r = await run(["bad.md", "--text", "hi"], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^bad\.md:2:\d+: error\[/m);
  });

  it("without --offline a playbook that needs a missing key is invalid (exit 1)", async () => {
    const r = await run(["playbooks/bank-ivr.md", "--dtmf", "1"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("needs an API key");
  });
});
