/**
 * The model's tool calls (playbook.md §4.3, §2.14), decided once for both pipelines: the scene runner (serial) and
 * RealtimeScenes (a Realtime model). Which built-in does what, argument checks, the results and error texts the
 * model gets, and the custom HTTP tools with their `setVars` live here; what an action means on a pipeline (a
 * command, an outcome for the session) is the host's.
 *
 * Built-ins act at once: their effects go through the host before `dispatchTool` returns, so they happen in the
 * order of the calls. Custom tools and `http_request` run over HTTP and return a promise.
 */
import { isBuiltinVariable } from "../variables.js";
import type { Playbook } from "../types.js";
import { runHttpRequest, runHttpTool, type HttpDeps, type HttpOutcome } from "./http-tool.js";

/** Tool arguments as parsed from the model; undefined when they were not a JSON object. */
export type ToolArgs = Record<string, unknown> | undefined;

export interface ToolResult {
  ok: boolean;
  /** What the model receives (a JSON string). */
  content: string;
  /** The model's turn ends with this call (hangup, transfer, a collector). */
  endTurn?: boolean;
}

/** A terminal action asked for by `hangup_call` / `transfer_call` (`refer_call`), mode as asked. */
export type ToolTerminal = { kind: "hangup"; detail?: string | undefined } | { kind: "refer"; target: string } | { kind: "transfer"; target: string };

export interface ToolHost {
  readonly playbook: Playbook;
  /** The built-ins offered to the model (`offeredBuiltins`). */
  readonly builtins: ReadonlySet<string>;
  readonly http: HttpDeps;
  render(source: string, local?: Record<string, unknown>): string;
  /** Sets a runtime variable (see `setRuntimeVariable`); returns the problem, if any. */
  setVariable(name: string | undefined, value: string, source: "set_var" | "tool"): string | undefined;
  error(sender: "playbook" | "tool", code: "BAD_REQUEST" | "TOOL_ERROR", message: string): void;
  // What the built-ins do, on this pipeline:
  terminal(t: ToolTerminal): void;
  /** A known scene of the playbook. */
  gotoScene(scene: string): void;
  /** One of the playbook's play files. */
  play(file: string): void;
  /** Digits already checked against `0-9 * # A-D w`. */
  sendDtmf(digits: string): void;
  /** Starts (or arranges) a DTMF collector; false when there is no such collector or no variable name. */
  collect(collector: string | undefined, varName: string | undefined, prompt: string | undefined): boolean;
  /** Speaks a custom tool's `filler` after `afterMs` unless the returned cancel runs first (optional). */
  filler?(source: string, afterMs: number): () => void;
}

/** Arguments text as the model sent it: an object, or undefined (not JSON, or not an object). Empty means `{}`. */
export function parseToolArguments(text: string): ToolArgs {
  try {
    const parsed: unknown = JSON.parse(text === "" ? "{}" : text);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets `name` in `runtime` unless the name is missing or built-in; returns that problem (a built-in name is also
 * reported through `report`, as a playbook error). Used for `set_var`, collectors and tool `setVars`.
 */
export function setRuntimeVariable(runtime: Record<string, string>, name: string | undefined, value: string, report: (message: string) => void): string | undefined {
  if (!name) return "a variable needs a name";
  if (isBuiltinVariable(name)) {
    const message = `"${name}" is a built-in variable and cannot be set`;
    report(message);
    return message;
  }
  runtime[name] = value;
  return undefined;
}

const failure = (message: string): ToolResult => ({ ok: false, content: JSON.stringify({ error: message }) });

/** One tool call: a custom tool of the playbook first, then `http_request`, then the other built-ins. */
export function dispatchTool(host: ToolHost, name: string, args: ToolArgs): ToolResult | Promise<ToolResult> {
  const custom = host.playbook.tools.find((t) => t.name === name);
  if (custom) return runCustomTool(host, custom, args);
  if (name === "http_request" && host.builtins.has("http_request")) return runHttpRequestTool(host, args);
  return runBuiltin(host, name, args);
}

async function runCustomTool(host: ToolHost, tool: Playbook["tools"][number], args: ToolArgs): Promise<ToolResult> {
  const fail = (message: string) => {
    host.error("tool", "TOOL_ERROR", `${tool.name}: ${message}`);
    return failure(message);
  };
  if (!args) return fail("invalid arguments: not a JSON object");
  const schema = host.playbook.toolArguments.get(tool.name);
  const parsed = schema ? schema.safeParse(args) : { success: true as const, data: args };
  if (!parsed.success) {
    return fail(`invalid arguments: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
  const checked = parsed.data as Record<string, unknown>;
  const stopFiller = tool.filler && host.filler ? host.filler(tool.filler, tool.fillerAfterMs ?? 1500) : undefined;
  let out: HttpOutcome;
  try {
    out = await runHttpTool(tool, checked, host.http);
  } finally {
    stopFiller?.();
  }
  if (out.error) return fail(out.error.message);
  if (out.ok) {
    for (const [k, source] of Object.entries(tool.setVars ?? {})) host.setVariable(k, host.render(source, { result: out.result, args: checked }), "tool");
  }
  return { ok: out.ok, content: out.content };
}

async function runHttpRequestTool(host: ToolHost, a: ToolArgs): Promise<ToolResult> {
  if (!a || typeof a.url !== "string") return failure("invalid arguments: url is required");
  const out = await runHttpRequest(
    { url: a.url, method: typeof a.method === "string" ? a.method : undefined, body: a.body },
    host.playbook.settings.httpAllow ?? [],
    host.http,
  );
  if (out.error) host.error("tool", "TOOL_ERROR", `http_request: ${out.error.message}`);
  return { ok: out.ok, content: out.content };
}

/** The built-in tools; unknown or not offered names are errors for the model. */
function runBuiltin(host: ToolHost, called: string, a: ToolArgs): ToolResult {
  const name = called === "refer_call" ? "transfer_call" : called;
  const ok: ToolResult = { ok: true, content: JSON.stringify({ ok: true }) };
  if (!host.builtins.has(name)) return failure(`unknown tool "${called}"`);
  if (!a) return failure("invalid arguments: not a JSON object");
  const str = (k: string) => (typeof a[k] === "string" ? (a[k] as string) : undefined);
  const pb = host.playbook;
  switch (name) {
    case "hangup_call":
      host.terminal({ kind: "hangup", detail: str("reason") });
      return { ...ok, endTurn: true };
    case "transfer_call": {
      const target = str("target");
      if (!target) return failure("target is required");
      host.terminal({ kind: str("mode") === "refer" ? "refer" : "transfer", target });
      return { ...ok, endTurn: true };
    }
    case "goto_scene": {
      const scene = str("scene") ?? "";
      if (!pb.scenes.has(scene)) return failure(`unknown scene; scenes: ${[...pb.scenes.keys()].join(", ")}`);
      host.gotoScene(scene);
      return ok;
    }
    case "play_audio": {
      const file = str("file");
      if (!file || !pb.playFiles.includes(file)) return failure(`unknown file; files: ${pb.playFiles.join(", ")}`);
      host.play(file);
      return ok;
    }
    case "set_variable": {
      const value = a.value;
      if (value === undefined || value === null) return failure("value is required");
      const problem = host.setVariable(str("name"), typeof value === "string" ? value : JSON.stringify(value), "set_var");
      return problem ? failure(problem) : ok;
    }
    case "collect_digits":
      if (!host.collect(str("collector"), str("var"), str("prompt"))) return failure("unknown collector or missing var");
      return { ...ok, endTurn: true };
    case "send_dtmf": {
      const digits = str("digits") ?? "";
      if (!/^[0-9*#A-Dw]+$/.test(digits)) return failure("digits must be 0-9, *, #, A-D or w");
      host.sendDtmf(digits);
      return ok;
    }
    default:
      // http_request is offered but handled above; anything else offered has a case.
      return failure(`unknown tool "${called}"`);
  }
}
