import { describe, expect, it } from "vitest";
import { offeredBuiltins } from "./prompt.js";
import { loadPlaybook } from "./testutil.js";
import { dispatchTool, parseToolArguments, setRuntimeVariable, type ToolHost, type ToolResult } from "./tool-dispatch.js";

/** A host that records what the built-ins ask for (as both pipelines see it). */
function recordingHost(collectOk = true) {
  const pb = loadPlaybook("bank-ivr.md");
  const did: unknown[] = [];
  const runtime: Record<string, string> = {};
  const host: ToolHost = {
    playbook: pb,
    builtins: offeredBuiltins(pb, "freeswitch"),
    http: { fetch: () => Promise.reject(new Error("no network")), render: (s) => s, signal: new AbortController().signal },
    render: (s) => s,
    setVariable: (name, value) => setRuntimeVariable(runtime, name, value, (m) => did.push({ error: m })),
    error: (sender, code, message) => did.push({ sender, code, message }),
    terminal: (t) => did.push({ terminal: t }),
    gotoScene: (scene) => did.push({ goto: scene }),
    play: (file) => did.push({ play: file }),
    sendDtmf: (digits) => did.push({ dtmf: digits }),
    collect: (collector, varName, prompt) => {
      did.push({ collect: [collector, varName, prompt] });
      return collectOk;
    },
  };
  const run = (name: string, args: Record<string, unknown> | undefined) => dispatchTool(host, name, args) as ToolResult;
  return { run, did, runtime };
}

const ok = { ok: true, content: '{"ok":true}' };
const err = (message: string) => ({ ok: false, content: JSON.stringify({ error: message }) });

describe("dispatchTool built-ins", () => {
  it("terminal tools end the turn; transfer_call keeps the asked mode and needs a target", () => {
    const { run, did } = recordingHost();
    expect(run("hangup_call", { reason: "done" })).toEqual({ ...ok, endTurn: true });
    expect(run("refer_call", { target: "sip:a@b", mode: "refer" })).toEqual({ ...ok, endTurn: true });
    expect(run("transfer_call", { target: "sip:a@b" })).toEqual({ ...ok, endTurn: true });
    expect(run("transfer_call", { mode: "refer" })).toEqual(err("target is required"));
    expect(did).toEqual([
      { terminal: { kind: "hangup", detail: "done" } },
      { terminal: { kind: "refer", target: "sip:a@b" } },
      { terminal: { kind: "transfer", target: "sip:a@b" } },
    ]);
  });

  it("scenes, files and digits are checked before the host acts", () => {
    const { run, did } = recordingHost();
    expect(run("goto_scene", { scene: "nowhere" })).toEqual(err("unknown scene; scenes: menu, balance, card, closing"));
    expect(run("goto_scene", { scene: "card" })).toEqual(ok);
    expect(run("play_audio", { file: "nope.wav" })).toEqual(err("unknown file; files: bank/welcome.wav"));
    expect(run("play_audio", { file: "bank/welcome.wav" })).toEqual(ok);
    expect(run("send_dtmf", { digits: "12x" })).toEqual(err("digits must be 0-9, *, #, A-D or w"));
    expect(run("send_dtmf", { digits: "1w#" })).toEqual(ok);
    expect(did).toEqual([{ goto: "card" }, { play: "bank/welcome.wav" }, { dtmf: "1w#" }]);
  });

  it("set_variable: a value is required, non-strings are JSON, built-in names are refused and reported", () => {
    const { run, did, runtime } = recordingHost();
    expect(run("set_variable", { name: "tier" })).toEqual(err("value is required"));
    expect(run("set_variable", { name: "n", value: { a: 1 } })).toEqual(ok);
    expect(run("set_variable", { value: "x" })).toEqual(err("a variable needs a name"));
    expect(run("set_variable", { name: "scene", value: "x" })).toEqual(err('"scene" is a built-in variable and cannot be set'));
    expect(runtime).toEqual({ n: '{"a":1}' });
    expect(did).toEqual([{ error: '"scene" is a built-in variable and cannot be set' }]);
  });

  it("collect_digits ends the turn when the host starts the collector, else tells the model", () => {
    expect(recordingHost(true).run("collect_digits", { collector: "pin", var: "pin" })).toEqual({ ...ok, endTurn: true });
    const refused = recordingHost(false);
    expect(refused.run("collect_digits", { collector: "nope", var: "v", prompt: "p" })).toEqual(err("unknown collector or missing var"));
    expect(refused.did).toEqual([{ collect: ["nope", "v", "p"] }]);
  });

  it("unknown and not offered tools, then arguments that are not an object", () => {
    const { run, did } = recordingHost();
    expect(run("http_request", { url: "https://x" })).toEqual(err('unknown tool "http_request"'));
    expect(run("frobnicate", {})).toEqual(err('unknown tool "frobnicate"'));
    expect(run("hangup_call", undefined)).toEqual(err("invalid arguments: not a JSON object"));
    expect(did).toEqual([]);
  });
});

describe("parseToolArguments", () => {
  it("an object, or undefined for anything else; empty text is no arguments", () => {
    expect(parseToolArguments('{"a":1}')).toEqual({ a: 1 });
    expect(parseToolArguments("")).toEqual({});
    expect(parseToolArguments("[1]")).toBeUndefined();
    expect(parseToolArguments("null")).toBeUndefined();
    expect(parseToolArguments("{oops")).toBeUndefined();
  });
});
