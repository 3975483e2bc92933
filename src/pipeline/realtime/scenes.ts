/**
 * The playbook side of a Realtime call: which scene is current, what the model is told (instructions and tools),
 * what it may do (the built-in tools of playbook.md §4.3 and the playbook's HTTP tools), and what happened (the
 * history, scenes visited, variables, transfers) for the post-call hook.
 *
 * The serial pipeline's PlaybookRunner drives an LLM it calls itself; a Realtime model speaks on its own, so this
 * keeps the runner's playbook semantics without its LLM loop, reusing the same parts: the scene prompt and tool
 * definitions (runner/prompt.ts), the tool dispatcher with the HTTP tools (runner/tool-dispatch.ts), the template
 * context and the history and snapshot shapes the post-call hook reads. Tags are not parsed from speech: the prompt
 * asks for native tools only.
 */
import type { Logger } from "../../log.js";
import type { DtmfAction, Playbook, Scene } from "../../playbook/types.js";
import { templateContext, isInternalVariable, type CallFacts } from "../../playbook/variables.js";
import { buildSystemPrompt, buildTools, dispatchTool, isReferTarget, offeredBuiltins, parseToolArguments, resolveCollector, setRuntimeVariable } from "../../playbook/runner/index.js";
import type { ChatMessage, HistoryEntry, RunnerSnapshot, SceneTrigger, ToolDefinition, ToolHost, ToolResult, TransferRecord } from "../../playbook/runner/index.js";
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

  /**
   * Runs one function call of the model with the runner's dispatcher (the same checks, results and error texts);
   * what a built-in does here is collected into the outcome for RealtimeConversation, except the scene switch, which
   * happens at once. Never throws: failures are `{ok: false}` outputs for the model.
   */
  async runTool(name: string, argsText: string): Promise<ToolOutcome> {
    const effects: Omit<ToolOutcome, "ok" | "content"> = {};
    const host: ToolHost = {
      playbook: this.pb,
      builtins: this.builtins,
      http: this.httpDeps(),
      render: (source, local) => this.render(source, local),
      setVariable: (k, value) => this.setVariable(k, value),
      error: (sender, code, error) => this.o.events.error({ sender, code, error }),
      // A SIP/tel URI is a REFER; anything else a dialplan transfer (as the runner decides when it runs one).
      terminal: (t) => {
        effects.terminal = t.kind === "transfer" && isReferTarget(t.target) ? { kind: "refer", target: t.target } : t;
      },
      gotoScene: (scene) => {
        this.switchScene(scene, "tool");
        effects.sceneChanged = true;
      },
      play: (file) => {
        effects.play = file;
      },
      sendDtmf: (digits) => {
        effects.dtmf = digits;
      },
      // Only checked here: RealtimeConversation starts the collector once the output is sent.
      collect: (collector, varName, prompt) => {
        const found = resolveCollector(this.pb, collector, varName);
        if (typeof found === "string") return false;
        effects.collect = { collector: found.name, var: found.varName, prompt };
        return true;
      },
    };
    const outcome = (r: ToolResult): ToolOutcome => ({ ok: r.ok, content: r.content, ...effects });
    const r = dispatchTool(host, name, parseToolArguments(argsText));
    // A built-in has acted already: its outcome resolves as soon as before (no extra tick behind an await).
    return r instanceof Promise ? r.then(outcome) : outcome(r);
  }

  /** A valid collector result (§2.10): the variable is set and the value kept for the post-call hook. */
  setCollected(name: string, digits: string): void {
    if (this.setVariable(name, digits) === undefined) this.collected[name] = digits;
  }

  private setVariable(name: string | undefined, value: string): string | undefined {
    return setRuntimeVariable(this.runtime, name, value, (error) => this.o.events.error({ sender: "playbook", code: "BAD_REQUEST", error }));
  }

  private httpDeps(): HttpDeps {
    return { fetch: this.o.fetch ?? fetch, render: (s, local) => this.render(s, local), signal: this.stopCtrl.signal };
  }

  /** Aborts HTTP tools still running. */
  stop(): void {
    this.stopCtrl.abort();
  }

  /** The runner-shaped snapshot the post-call hook reads (history without empty placeholders); `followUps` is the conversation's count. */
  snapshot(followUps = 0): RunnerSnapshot {
    return {
      scenes: [...this.visited],
      lastScene: this.current.id,
      variables: Object.fromEntries(Object.entries(this.runtime).filter(([k]) => !isInternalVariable(k))),
      collected: { ...this.collected },
      transfers: [...this.transfers],
      history: this.history.filter((h) => !(h.message.role === "user" && h.message.content === "")).map((h) => ({ ...h })),
      followUps,
    };
  }
}
