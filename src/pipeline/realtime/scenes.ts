/**
 * The playbook side of a Realtime call: which scene is current, what the model is told (instructions and tools),
 * what it may do (the built-in tools of playbook.md §4.3 and the playbook's HTTP tools), and what happened (the
 * history, scenes visited, variables, transfers) for the post-call hook.
 *
 * The serial pipeline's PlaybookRunner drives an LLM it calls itself; a Realtime model speaks on its own, so this
 * keeps the runner's playbook semantics without its LLM loop, reusing the same parts: the scene prompt and tool
 * definitions (runner/prompt.ts), the HTTP tools (runner/http-tool.ts), the template context and the history and
 * snapshot shapes the post-call hook reads. Tags are not parsed from speech: the prompt asks for native tools only.
 */
import type { Logger } from "../../log.js";
import type { DtmfAction, Playbook, Scene } from "../../playbook/types.js";
import { templateContext, isBuiltinVariable, isInternalVariable, type CallFacts } from "../../playbook/variables.js";
import { buildSystemPrompt, buildTools, offeredBuiltins, isAllowedUrl, runHttpRequest, runHttpTool } from "../../playbook/runner/index.js";
import type { ChatMessage, HistoryEntry, RunnerSnapshot, SceneTrigger, ToolDefinition, TransferRecord } from "../../playbook/runner/index.js";
import type { HttpDeps } from "../../playbook/runner/http-tool.js";

/** What ends the call once the agent's speech before it has played out. */
export type Terminal =
  | { kind: "hangup"; detail?: string | undefined }
  | { kind: "refer"; target: string }
  | { kind: "transfer"; target: string; context?: string | undefined };

export interface ToolOutcome {
  ok: boolean;
  /** The `function_call_output` (a JSON string). */
  content: string;
  terminal?: Terminal | undefined;
  /** The scene changed: the session needs the new instructions and tools. */
  sceneChanged?: boolean | undefined;
  /** DTMF to send on the call (`send_dtmf`). */
  dtmf?: string | undefined;
  /** A sound file to play (`play_audio`). */
  play?: string | undefined;
  /** `collect_digits`: start that DTMF collector (the model's turn ends; the collector's result brings the next). */
  collect?: { collector: string; var: string; prompt?: string | undefined } | undefined;
}

export interface SceneEvents {
  sceneChange(e: { from: string; to: string; trigger: SceneTrigger }): void;
  error(e: { sender: "playbook" | "tool"; code: "BAD_REQUEST" | "TOOL_ERROR"; error: string }): void;
}

export interface RealtimeScenesOptions {
  playbook: Playbook;
  call: CallFacts;
  variables?: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>;
  timeZone?: string | undefined;
  now?: () => number;
  fetch?: typeof fetch;
  log?: Logger | undefined;
  events: SceneEvents;
}

export class RealtimeScenes {
  readonly history: HistoryEntry[] = [];
  private readonly pb: Playbook;
  /** The playbook as the model sees it: native tools only (a speech model's words are never parsed for tags). */
  private readonly nativePb: Playbook;
  private current: Scene;
  private readonly visited: string[] = [];
  private readonly runtime: Record<string, string> = {};
  private readonly collected: Record<string, string> = {};
  /** Follow-ups made so far (the conversation counts them; the post-call hook reads them). */
  followUps = 0;
  private readonly transfers: TransferRecord[] = [];
  private readonly builtins: Set<string>;
  private readonly toolDefs: ToolDefinition[];
  private readonly stopCtrl = new AbortController();
  private readonly now: () => number;

  constructor(private readonly o: RealtimeScenesOptions) {
    this.pb = o.playbook;
    this.nativePb = { ...o.playbook, settings: { ...o.playbook.settings, llm: { ...o.playbook.settings.llm, toolMode: "native" } } };
    this.now = o.now ?? (() => Date.now());
    this.builtins = offeredBuiltins(this.pb, o.call.callType);
    // Every built-in, `collect_digits` included (RealtimeConversation runs the collector).
    this.toolDefs = buildTools(this.nativePb, o.call.callType);
    this.current = this.pb.scenes.get(this.pb.initialScene) as Scene;
    this.visited.push(this.current.id);
  }

  get scene(): Scene {
    return this.current;
  }

  get tools(): readonly ToolDefinition[] {
    return this.toolDefs;
  }

  /** The current scene's prompt, then `realtime.instructions` (both rendered with the call's variables). */
  instructions(): string {
    const base = buildSystemPrompt(this.nativePb, this.current, this.o.call.callType, (s) => this.render(s));
    const extra = this.pb.settings.realtime?.instructions;
    const rendered = extra ? this.render(extra).trim() : "";
    return [base, rendered].filter((p) => p !== "").join("\n\n");
  }

  render(source: string, local?: Record<string, unknown>): string {
    const ctx = templateContext({ ...this.o.call, scene: this.current.id }, [this.pb.variables, ...(this.o.variables ?? []), this.runtime], {
      ...(this.o.timeZone !== undefined ? { timeZone: this.o.timeZone } : {}),
      now: new Date(this.now()),
      ...(local ? { local } : {}),
    });
    return this.pb.templates.render(source, ctx, { onError: (err) => this.o.log?.warn({ err }, "template failed to render") });
  }

  add(message: ChatMessage, extra: Partial<HistoryEntry> = {}): HistoryEntry {
    const entry: HistoryEntry = { message, at: this.now(), ...extra };
    this.history.push(entry);
    return entry;
  }

  /** A history entry placed before `before` (a caller turn whose transcript came after the agent's reply began). */
  insertBefore(before: HistoryEntry | undefined, message: ChatMessage): HistoryEntry {
    const entry: HistoryEntry = { message, at: this.now() };
    const i = before ? this.history.indexOf(before) : -1;
    if (i < 0) this.history.push(entry);
    else this.history.splice(i, 0, entry);
    return entry;
  }

  /** Switches scene (§3.3). False, with an `error`, for an unknown scene. */
  switchScene(to: string | undefined, trigger: SceneTrigger): boolean {
    const scene = to === undefined ? undefined : this.pb.scenes.get(to);
    if (!scene) {
      this.o.events.error({ sender: "playbook", code: "BAD_REQUEST", error: `unknown scene "${to ?? ""}"; scenes: ${[...this.pb.scenes.keys()].join(", ")}` });
      return false;
    }
    const from = this.current.id;
    this.current = scene;
    this.visited.push(scene.id);
    this.o.events.sceneChange({ from, to: scene.id, trigger });
    this.add({ role: "system", content: `[scene changed to ${scene.id}]` });
    return true;
  }

  /** The key action of `digit` in the current scene, if any. */
  keyAction(digit: string): DtmfAction | undefined {
    return this.current.dtmf[digit];
  }

  recordTransfer(t: Extract<Terminal, { kind: "refer" | "transfer" }>, trigger: TransferRecord["trigger"]): void {
    const at = this.now();
    if (t.kind === "refer") this.transfers.push({ mode: "refer", target: t.target, trigger, at });
    else this.transfers.push({ mode: "dialplan", target: t.target, ...(t.context ? { context: t.context } : {}), trigger, at });
  }

  /** Runs one function call of the model. Never throws: failures are `{ok: false}` outputs for the model. */
  async runTool(name: string, argsText: string): Promise<ToolOutcome> {
    let args: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(argsText === "" ? "{}" : argsText);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) args = parsed as Record<string, unknown>;
    } catch {
      args = undefined;
    }
    const fail = (message: string, report = false): ToolOutcome => {
      if (report) this.o.events.error({ sender: "tool", code: "TOOL_ERROR", error: `${name}: ${message}` });
      return { ok: false, content: JSON.stringify({ error: message }) };
    };
    const custom = this.pb.tools.find((t) => t.name === name);
    if (custom) {
      if (!args) return fail("invalid arguments: not a JSON object", true);
      const schema = this.pb.toolArguments.get(custom.name);
      const checked = schema ? schema.safeParse(args) : { success: true as const, data: args };
      if (!checked.success) return fail(`invalid arguments: ${checked.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`, true);
      const a = checked.data as Record<string, unknown>;
      const out = await runHttpTool(custom, a, this.httpDeps());
      if (out.error) return fail(out.error.message, true);
      if (out.ok) for (const [k, source] of Object.entries(custom.setVars ?? {})) this.setVariable(k, this.render(source, { result: out.result, args: a }));
      return { ok: out.ok, content: out.content };
    }
    const builtin = name === "refer_call" ? "transfer_call" : name;
    if (!this.builtins.has(builtin)) return fail(`unknown tool "${name}"`);
    if (!args) return fail("invalid arguments: not a JSON object");
    const s = (k: string): string | undefined => (typeof args[k] === "string" ? (args[k] as string) : undefined);
    const ok: ToolOutcome = { ok: true, content: JSON.stringify({ ok: true }) };
    switch (builtin) {
      case "hangup_call":
        return { ...ok, terminal: { kind: "hangup", detail: s("reason") } };
      case "transfer_call": {
        const target = s("target");
        if (!target) return fail("target is required");
        // A SIP/tel URI is a REFER; anything else a dialplan transfer (as the runner decides).
        const refer = s("mode") === "refer" || /^(sips?|tel):/i.test(target);
        return { ...ok, terminal: refer ? { kind: "refer", target } : { kind: "transfer", target } };
      }
      case "goto_scene":
        if (!this.pb.scenes.has(s("scene") ?? "")) return fail(`unknown scene; scenes: ${[...this.pb.scenes.keys()].join(", ")}`);
        this.switchScene(s("scene"), "tool");
        return { ...ok, sceneChanged: true };
      case "play_audio": {
        const file = s("file");
        if (!file || !this.pb.playFiles.includes(file)) return fail(`unknown file; files: ${this.pb.playFiles.join(", ")}`);
        return { ...ok, play: file };
      }
      case "set_variable": {
        const value = args.value;
        if (value === undefined || value === null) return fail("value is required");
        const problem = this.setVariable(s("name"), typeof value === "string" ? value : JSON.stringify(value));
        return problem ? fail(problem) : ok;
      }
      case "collect_digits": {
        const collector = s("collector");
        const varName = s("var");
        if (!collector || !this.pb.collectors[collector] || !varName) return fail("unknown collector or missing var");
        return { ...ok, collect: { collector, var: varName, prompt: s("prompt") } };
      }
      case "send_dtmf": {
        const digits = s("digits") ?? "";
        if (!/^[0-9*#A-Dw]+$/.test(digits)) return fail("digits must be 0-9, *, #, A-D or w");
        return { ...ok, dtmf: digits };
      }
      case "http_request": {
        const url = s("url");
        if (!url) return fail("invalid arguments: url is required");
        if (!isAllowedUrl(url, this.pb.settings.httpAllow ?? [])) return fail("the URL is not allowed by httpAllow", true);
        const out = await runHttpRequest({ url, method: s("method"), body: args.body }, this.pb.settings.httpAllow ?? [], this.httpDeps());
        if (out.error) this.o.events.error({ sender: "tool", code: "TOOL_ERROR", error: `http_request: ${out.error.message}` });
        return { ok: out.ok, content: out.content };
      }
      default:
        return fail(`unknown tool "${name}"`);
    }
  }

  /** A valid collector result (§2.10): the variable is set and the value kept for the post-call hook. */
  setCollected(name: string, digits: string): void {
    if (this.setVariable(name, digits) === undefined) this.collected[name] = digits;
  }

  private setVariable(name: string | undefined, value: string): string | undefined {
    if (!name) return "a variable needs a name";
    if (isBuiltinVariable(name)) {
      const message = `"${name}" is a built-in variable and cannot be set`;
      this.o.events.error({ sender: "playbook", code: "BAD_REQUEST", error: message });
      return message;
    }
    this.runtime[name] = value;
    return undefined;
  }

  private httpDeps(): HttpDeps {
    return { fetch: this.o.fetch ?? fetch, render: (s, local) => this.render(s, local), signal: this.stopCtrl.signal };
  }

  /** Aborts HTTP tools still running. */
  stop(): void {
    this.stopCtrl.abort();
  }

  /** The runner-shaped snapshot the post-call hook reads (history without empty placeholders). */
  snapshot(): RunnerSnapshot {
    return {
      scenes: [...this.visited],
      lastScene: this.current.id,
      variables: Object.fromEntries(Object.entries(this.runtime).filter(([k]) => !isInternalVariable(k))),
      collected: { ...this.collected },
      transfers: [...this.transfers],
      history: this.history.filter((h) => !(h.message.role === "user" && h.message.content === "")).map((h) => ({ ...h })),
      followUps: this.followUps,
    };
  }
}
