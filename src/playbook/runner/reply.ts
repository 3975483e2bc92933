/**
 * One LLM reply of the scene runner (playbook.md §4.2–§4.3) and what it does: its stream is parsed, text becomes
 * streamed `tts` segments, tags act (scene switch, play, set_var, collect, http, terminal actions), its tool calls
 * run through the shared dispatcher (tool-dispatch.ts) and its `<http>` tags are fetched; a barge-in cuts it to
 * what the caller heard. The runner owns the state all this touches and lends it through ReplyHost; the turn
 * policy (rounds, continuations, when a terminal action runs) stays in the runner.
 */
import { isAppError } from "../../errors.js";
import type { Playbook } from "../types.js";
import { isAllowedUrl, runHttpRequest, type HttpDeps } from "./http-tool.js";
import type { ReplyItem } from "./tag-stream.js";
import { ReplyParser } from "./tag-stream.js";
import type { Terminal } from "./terminal.js";
import { dispatchTool, type ToolHost, type ToolResult } from "./tool-dispatch.js";
import type { ChatMessage, HistoryEntry, LlmStreamEvent, RunnerCommand, RunnerEvent, SceneTrigger } from "./types.js";

export type ToolCall = Extract<LlmStreamEvent, { type: "tool_call" }>;

/** An utterance issued and not yet ended (`agentSpeechEnded`). */
export interface Playout {
  interruptible: boolean;
}

export class Reply {
  readonly ctrl = new AbortController();
  readonly parser = new ReplyParser();
  /** Speech segments: a `<play>` in the middle of a reply closes one and the text after it opens another. */
  readonly segments: { playId: string; text: string }[] = [];
  open: string | undefined;
  readonly toolCalls: ToolCall[] = [];
  readonly http: { url: string; method?: string | undefined; body?: string | undefined }[] = [];
  terminal: Terminal | undefined;
  sceneChanged = false;
  /** A `<collect>` ended the reply: further text is dropped. */
  dropText = false;
  /** Interrupted (barge-in or key action): no tool round, no continuation. */
  cancelled = false;
  entry: HistoryEntry | undefined;
  /** Text heard when cut before the history entry existed. */
  heard: string | undefined;

  constructor(
    readonly n: number,
    public interruptible: boolean,
  ) {}

  get spoken(): string {
    return this.segments.map((s) => s.text).join("");
  }

  /** What the caller heard when `playId` was cut after `heard`. */
  heardUntil(playId: string, heard: string): string {
    const i = this.segments.findIndex((s) => s.playId === playId);
    if (i < 0) return this.spoken;
    return this.segments.slice(0, i).map((s) => s.text).join("") + heard;
  }

  /** Stops generating: no tool round and no continuation follow. */
  cancel(): void {
    this.cancelled = true;
    this.ctrl.abort();
  }

  /** A barge-in cut `playId` after `heard`: the reply (or its history entry) keeps what was heard. */
  cut(playId: string, heard: string): void {
    const content = this.heardUntil(playId, heard);
    this.cancel();
    if (this.entry) {
      const m = this.entry.message as Extract<ChatMessage, { role: "assistant" }>;
      m.content = content === "" && m.toolCalls ? null : content;
      this.entry.interrupted = true;
    } else this.heard = content;
  }

  /** The assistant message for the history once generated (undefined when it said and called nothing). */
  message(): Extract<ChatMessage, { role: "assistant" }> | undefined {
    const content = this.cancelled ? (this.heard ?? this.spoken) : this.spoken;
    const toolCalls = this.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.argumentsText ?? JSON.stringify(c.arguments ?? {}) }));
    if (content === "" && toolCalls.length === 0) return undefined;
    return { role: "assistant", content: content === "" ? null : content, ...(toolCalls.length ? { toolCalls } : {}) };
  }
}

type RunnerError = Extract<RunnerEvent, { event: "error" }>;

/** The runner's state and actions a reply uses. */
export interface ReplyHost {
  readonly playbook: Playbook;
  /** The built-in tools offered to the model. */
  readonly builtins: ReadonlySet<string>;
  readonly playouts: Map<string, Playout>;
  /** Reply by the playId of each of its segments (for barge-in cuts). */
  readonly replies: Map<string, Reply>;
  /** A terminal action is pending or running. */
  ending(): boolean;
  /** `stop()` ran: nothing more is done or emitted. */
  stopped(): boolean;
  now(): number;
  http(): HttpDeps;
  command(c: RunnerCommand): void;
  emit(e: RunnerEvent): void;
  error(sender: RunnerError["sender"], code: RunnerError["code"], message: string): void;
  addHistory(message: ChatMessage, extra?: Partial<HistoryEntry>): HistoryEntry;
  render(source: string, local?: Record<string, unknown>): string;
  /** Speaks a template source as one queued utterance (a custom tool's filler). */
  say(source: string, interruptible: boolean): void;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  cancelFollowup(): void;
  switchScene(to: string | undefined, trigger: SceneTrigger): boolean;
  playFile(file: string, interruptible: boolean): void;
  setVariable(name: string | undefined, value: string, source: "set_var" | "tool"): string | undefined;
  startCollector(name: string | undefined, varName: string | undefined, prompt: string | undefined): boolean;
}

/**
 * Streams the model's reply into `reply` until it ends, is cut (its `ctrl` aborted), or a `<collect>` drops the
 * rest. `open` starts the request (inside the error handling: a provider may throw at once). A model failure is
 * an `error` event unless the reply was cut or dropped anyway.
 */
export async function streamReply(host: ReplyHost, reply: Reply, open: () => AsyncIterable<LlmStreamEvent>): Promise<void> {
  try {
    for await (const ev of open()) {
      if (reply.ctrl.signal.aborted || host.stopped()) break;
      if (ev.type === "text") {
        for (const item of reply.parser.push(ev.delta)) applyItem(host, reply, item);
      } else if (ev.type === "tool_call") {
        if (!reply.dropText) reply.toolCalls.push(ev);
      } else break;
      if (reply.dropText) {
        reply.ctrl.abort();
        break;
      }
    }
    if (!reply.cancelled && !host.stopped()) for (const item of reply.parser.end()) applyItem(host, reply, item);
  } catch (err) {
    if (!reply.cancelled && !host.stopped() && !reply.dropText) {
      const code = isAppError(err) && (err.code === "TIMEOUT" || err.code === "PROVIDER_ERROR") ? err.code : "PROVIDER_ERROR";
      host.error("llm", code, (err as Error).message ?? String(err));
    }
  }
}

/** One parsed item of the reply's text. */
function applyItem(host: ReplyHost, reply: Reply, item: ReplyItem): void {
  if (item.type === "error") {
    host.error("playbook", "BAD_REQUEST", `ignored a malformed tag ${item.raw}: ${item.message}`);
    return;
  }
  if (reply.dropText) return;
  if (item.type === "text") speak(host, reply, item.text);
  else applyTag(host, reply, item.name, item.attrs);
}

/** Streams text into the open segment, opening one (`r-N`, then `r-N.2`, …) when needed. */
function speak(host: ReplyHost, reply: Reply, text: string): void {
  if (text === "") return;
  let playId = reply.open;
  if (!playId) {
    playId = reply.segments.length === 0 ? `r-${reply.n}` : `r-${reply.n}.${reply.segments.length + 1}`;
    reply.open = playId;
    reply.segments.push({ playId, text: "" });
    host.replies.set(playId, reply);
    host.playouts.set(playId, { interruptible: reply.interruptible });
  }
  (reply.segments.at(-1) as { text: string }).text += text;
  host.command({ command: "tts", text, playId, streaming: true, interruptible: reply.interruptible, queue: true });
  host.emit({ event: "llmDelta", playId, text });
}

/** Ends the open speech segment (`endOfStream`). */
export function closeSegment(host: ReplyHost, reply: Reply): void {
  if (!reply.open) return;
  host.command({ command: "tts", text: "", playId: reply.open, endOfStream: true, interruptible: reply.interruptible, queue: true });
  reply.open = undefined;
}

/** A terminal action from the reply: the first wins; from here on the reply cannot be interrupted. */
function replyTerminal(host: ReplyHost, reply: Reply, t: Terminal): void {
  if (reply.terminal || host.ending()) {
    host.error("playbook", "BAD_REQUEST", `a second terminal action (${t.kind}) in one reply was ignored`);
    return;
  }
  reply.terminal = t;
  reply.interruptible = false;
  if (reply.open) {
    const p = host.playouts.get(reply.open);
    if (p) p.interruptible = false;
  }
  host.cancelFollowup();
}

function applyTag(host: ReplyHost, reply: Reply, name: string, a: Record<string, string>): void {
  switch (name) {
    case "hangup":
      return replyTerminal(host, reply, { kind: "hangup", reason: "agent", detail: a.reason });
    case "refer":
      if (!a.to) return host.error("playbook", "BAD_REQUEST", "<refer> needs to");
      return replyTerminal(host, reply, { kind: "refer", target: a.to, trigger: "llm" });
    case "transfer":
      if (!a.to) return host.error("playbook", "BAD_REQUEST", "<transfer> needs to");
      return replyTerminal(host, reply, { kind: "transfer", target: a.to, context: a.context, trigger: "llm" });
    case "goto":
      if (host.switchScene(a.scene, "llm")) reply.sceneChanged = true;
      return;
    case "play":
      if (!a.file) return host.error("playbook", "BAD_REQUEST", "<play> needs file");
      closeSegment(host, reply);
      return host.playFile(a.file, a.interruptible === "true");
    case "set_var":
      if (a.value === undefined) return host.error("playbook", "BAD_REQUEST", "<set_var> needs value");
      host.setVariable(a.key ?? a.name, a.value, "set_var");
      return;
    case "collect":
      closeSegment(host, reply);
      if (host.startCollector(a.type, a.var, a.prompt)) reply.dropText = true;
      return;
    case "http":
      if (!a.url || !isAllowedUrl(a.url, host.playbook.settings.httpAllow ?? [])) {
        return host.error("playbook", "BAD_REQUEST", `<http url="${a.url ?? ""}"> ignored: the URL is not allowed by httpAllow`);
      }
      reply.http.push({ url: a.url, method: a.method, body: a.body });
      return;
  }
}

// ------------------------------------------------------------------------------------------------ tool calls

/** Runs the reply's tool calls (custom HTTP tools in parallel, the rest in order). True when the turn ends here. */
export async function runToolCalls(host: ReplyHost, reply: Reply): Promise<boolean> {
  const results: Promise<ToolResult>[] = [];
  let endTurn = false;
  const started = host.now();
  const tools = toolHost(host, reply);
  for (const call of reply.toolCalls) {
    host.emit({ event: "functionCall", callId: call.id, name: call.name, arguments: call.argumentsText ?? JSON.stringify(call.arguments ?? {}) });
    const r = dispatchTool(tools, call.name, call.error ? undefined : call.arguments);
    // Built-ins have acted already; their result tells whether the turn ends.
    if (!(r instanceof Promise) && r.endTurn) endTurn = true;
    results.push(Promise.resolve(r));
  }
  const settled = await Promise.all(results);
  if (host.stopped()) return true;
  reply.toolCalls.forEach((call, i) => {
    const r = settled[i] as ToolResult;
    host.addHistory({ role: "tool", toolCallId: call.id, content: r.content }, { name: call.name });
    host.emit({ event: "functionResult", callId: call.id, name: call.name, ok: r.ok, result: r.content.slice(0, 2000), durationMs: host.now() - started });
  });
  return endTurn || reply.dropText;
}

/** What the built-ins do on the serial pipeline: commands, the reply's terminal action, scene switches, collectors. */
function toolHost(host: ReplyHost, reply: Reply): ToolHost {
  return {
    playbook: host.playbook,
    builtins: host.builtins,
    http: host.http(),
    render: (source, local) => host.render(source, local),
    setVariable: (name, value, source) => host.setVariable(name, value, source),
    error: (sender, code, message) => host.error(sender, code, message),
    terminal: (t) => replyTerminal(host, reply, t.kind === "hangup" ? { kind: "hangup", reason: "agent", detail: t.detail } : { ...t, trigger: "tool" }),
    gotoScene: (scene) => void host.switchScene(scene, "tool"),
    play: (file) => host.playFile(file, false),
    sendDtmf: (digits) => host.command({ command: "dtmf", digits }),
    collect: (collector, varName, prompt) => {
      if (!host.startCollector(collector, varName, prompt)) return false;
      reply.dropText = true;
      return true;
    },
    filler: (source, afterMs) => {
      const t = host.setTimer(() => host.say(source, true), afterMs);
      return () => host.clearTimer(t);
    },
  };
}

/** `<http>` results as tool-style system messages. */
export async function runHttpTags(host: ReplyHost, reply: Reply): Promise<void> {
  for (const h of reply.http) {
    const method = (h.method ?? "GET").toUpperCase();
    const out = await runHttpRequest({ url: h.url, method, body: h.body }, host.playbook.settings.httpAllow ?? [], host.http());
    if (host.stopped()) return;
    if (!out.ok && out.error) host.error("tool", "TOOL_ERROR", out.error.message);
    host.addHistory({ role: "system", content: `[http ${method} ${h.url} result: ${out.content}]` }, { name: "http" });
  }
}
