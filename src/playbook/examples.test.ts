/**
 * The example playbooks of playbook.md §9/§10 (playbooks/*.md) pass lint with no errors, and parse into what
 * the scene runner needs.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSoundsDir } from "../../test/fixtures/playbooks/sounds.js";
import { lintFiles } from "./lint.js";
import { parsePlaybook } from "./parse.js";
import type { Playbook } from "./types.js";
import { templateContext, type CallFacts } from "./variables.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let sounds: ReturnType<typeof makeSoundsDir>;
beforeAll(() => {
  sounds = makeSoundsDir();
});
afterAll(() => sounds.remove());

const load = (name: string, env: Record<string, string> = { OPENAI_API_KEY: "sk-test" }): Playbook => {
  const r = parsePlaybook(readFileSync(`${ROOT}/playbooks/${name}`), { file: `playbooks/${name}`, env, soundsDir: sounds.dir });
  expect(r.diagnostics).toEqual([]);
  if (!r.playbook) throw new Error("no playbook");
  return r.playbook;
};

const call: CallFacts = {
  callId: "c1",
  callType: "freeswitch",
  direction: "inbound",
  caller: "+15551230000",
  callee: "200",
  startTime: new Date("2026-11-23T10:00:00Z"),
  playbook: "support.md",
  sipHeaders: { "X-Customer-Name": "Ada", "X-Customer-Id": "42" },
};

describe("example playbooks", () => {
  it("lint without keys or NORTHWIND_API_TOKEN: no errors; only the missing OpenAI key is warned about", async () => {
    const r = await lintFiles(["playbooks"], { cwd: ROOT, env: {}, config: { paths: { sounds: sounds.dir } } });
    expect(r.exitCode).toBe(0);
    const lines = r.output.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("3 files, 0 errors, 6 warnings");
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^playbooks\/(support|bank-ivr)\.md:\d+:13: warning\[provider\]: (asr|tts|llm)\.provider "openai" needs an API key/);
    expect(r.output).not.toContain("hello.md");
  });

  it("with a key, --strict passes too", async () => {
    const r = await lintFiles(["playbooks"], { cwd: ROOT, env: { OPENAI_API_KEY: "sk" }, strict: true, config: { paths: { sounds: sounds.dir } } });
    expect(r.output).toBe("3 files, 0 errors, 0 warnings\n");
    expect(r.exitCode).toBe(0);
  });

  it("support.md: one scene, greeting from a SIP header, tool, posthook, hangup headers", () => {
    const p = load("support.md");
    expect(p.pipeline).toBe("serial");
    expect([...p.scenes.keys()]).toEqual(["default"]);
    expect(p.initialScene).toBe("default");
    expect(p.preamble).toBe("");
    const scene = p.scenes.get("default");
    expect(scene?.prompt.startsWith("You are Ava, a friendly support agent for {{ company }}")).toBe(true);
    expect(scene?.prompt).not.toContain("<!--");
    expect(scene?.followup).toEqual({ timeout: 9000, max: 2, goodbye: "I haven't heard from you, so I'll hang up now. Goodbye!" });
    expect(p.tools[0]?.http.headers).toEqual({ Authorization: "Bearer " }); // ${NORTHWIND_API_TOKEN:-} expanded to ""
    expect(p.settings.posthook?.summary).toBe("json");
    const args = p.toolArguments.get("lookup_order");
    expect(args?.safeParse({ order_number: "1234" }).success).toBe(true);
    expect(args?.safeParse({ order_number: "12ab" }).success).toBe(false);
    expect(args?.safeParse({}).success).toBe(false);
    expect(p.variables).toEqual({ company: "Northwind" });

    const greeting = p.greeting === false ? "" : (p.greeting.text ?? "");
    const vars = templateContext(call, [p.variables]);
    expect(p.templates.render(greeting, vars)).toBe("Hi Ada, thanks for calling Northwind support. How can I help?");
    expect(p.templates.render(greeting, templateContext({ ...call, sipHeaders: {} }, [p.variables]))).toBe(
      "Hi there, thanks for calling Northwind support. How can I help?",
    );
    const disposition = p.settings.sip?.hangupHeaders?.["X-Disposition"] ?? "";
    expect(p.templates.render(disposition, vars)).toBe("unresolved");
    expect(p.templates.render(disposition, templateContext(call, [p.variables, { disposition: "resolved" }]))).toBe("resolved");
    const url = p.tools[0]?.http.url ?? "";
    expect(p.templates.render(url, templateContext(call, [], { local: { args: { order_number: "1234" } } }))).toBe(
      "https://api.northwind.example/orders/1234",
    );
    expect(p.templates.has(scene?.prompt ?? "")).toBe(true);
  });

  it("bank-ivr.md: scenes, keys per scene, collectors, plays, follow-up per scene", () => {
    const p = load("bank-ivr.md");
    expect([...p.scenes.keys()]).toEqual(["menu", "balance", "card", "closing"]);
    expect(p.initialScene).toBe("menu");
    expect(p.greeting).toBe(false);
    expect(p.preamble).toBe(
      "You are the voice menu of Harbor Bank. Speak briefly and clearly. Never read out a full account number.\nThe caller can press 0 at any time for an operator.",
    );
    const menu = p.scenes.get("menu");
    expect(menu?.plays).toEqual([{ file: "bank/welcome.wav", interruptible: false }]);
    expect(Object.keys(menu?.dtmf ?? {}).sort()).toEqual(["0", "1", "2"]);
    expect(menu?.dtmf["1"]).toEqual({ action: "goto", scene: "balance" });
    expect(menu?.prompt).not.toMatch(/<dtmf|<play/);
    expect(menu?.prompt.startsWith("Welcome the caller")).toBe(true);
    expect(p.scenes.get("balance")?.dtmf["9"]).toEqual({ action: "goto", scene: "menu" });
    expect(p.scenes.get("balance")?.dtmf["0"]?.action).toBe("transfer");
    expect(p.scenes.get("card")?.followup).toEqual({ timeout: 6000, max: 1, text: "Do you want to block your card? Please say yes or no." });
    expect(p.scenes.get("closing")?.followup?.timeout).toBe(8000);
    expect(Object.keys(p.collectors)).toEqual(["account", "pin"]);
    expect(p.collectors.account?.validation?.pattern).toBe("^[0-9]{8}$");
    expect(p.playFiles).toEqual(["bank/welcome.wav"]);

    const card = p.scenes.get("card")?.prompt ?? "";
    expect(p.templates.render(card, templateContext(call, []))).toContain("The call comes from +15551230000;");
    expect(p.templates.render(card, templateContext({ ...call, caller: "" }, []))).not.toContain("The call comes from");
  });

  it("hello.md: auto providers, works without keys, echoes through the scripted fallback", () => {
    const p = load("hello.md", {});
    expect(p.settings.llm?.provider).toBe("auto");
    expect(p.settings.llm?.fallback).toBe("You said: {{ text }}");
    expect(p.templates.render(p.settings.llm?.fallback ?? "", templateContext(call, [], { local: { text: "hi there" } }))).toBe("You said: hi there");
    expect(new RegExp(p.settings.llm?.rules?.[0]?.match ?? "", "i").test("OK, goodbye")).toBe(true);
    expect(p.scenes.get("default")?.prompt).not.toContain("<!--");
    expect(p.greeting).toEqual({ text: "Hello, this is active call. Say something and I will answer.", interruptible: true, generate: false });
  });
});
