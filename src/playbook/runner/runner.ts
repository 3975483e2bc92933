/**
 * The scene runner (playbook.md §2.8–§2.11, §3, §4): one per call, independent of audio and of the PBX.
 *
 * It consumes call events (`handle(input)`), drives an LLM it is given, and issues the commands of
 * ws-call-api.md §3 through a sink, with the playbook events of §4. Every timer goes through the injected
 * scheduler; after `stop()` nothing runs and nothing is emitted.
 *
 * Playout: each `tts`/`play` the runner issues is pending until its `agentSpeechEnded`; terminal actions
 * (hangup, refer, transfer) wait until nothing is pending, so everything said before them is heard.
 * LLM work (replies, tool rounds, continuations) runs one task at a time, in order.
 */
import { pino, type Logger } from "pino";
import { isAppError } from "../../errors.js";
import type { DtmfAction, Playbook, Scene } from "../types.js";
import { isBuiltinVariable, isInternalVariable, templateContext, type CallFacts } from "../variables.js";
import { PausableTimer } from "../../util/pausable-timer.js";
import { CollectorRun, type CollectorResult } from "./collector.js";
import { isAllowedUrl, runHttpRequest, runHttpTool, type HttpDeps, type HttpOutcome } from "./http-tool.js";
import { buildSystemPrompt, buildTools, DEFAULT_HISTORY_LIMIT, DEFAULT_MAX_TOOL_ROUNDS, offeredBuiltins, trimHistory, type BuiltinTool } from "./prompt.js";
import { ReplyParser, type ReplyItem } from "./tag-stream.js";
import {
  systemScheduler,
  type ChatMessage,
  type HistoryEntry,
  type LlmStreamEvent,
  type RunnerCommand,
  type RunnerEvent,
  type RunnerInput,
  type RunnerLlm,
  type RunnerSink,
  type RunnerSnapshot,
  type Scheduler,
  type SceneTrigger,
  type ToolDefinition,
  type TransferRecord,
} from "./types.js";

export interface RunnerOptions {
  playbook: Playbook;
  /** The call's facts (built-in variables); `scene` is kept up to date by the runner. */
  call: CallFacts;
  llm: RunnerLlm;
  sink: RunnerSink;
  scheduler?: Scheduler;
  /** Variable layers between front matter `variables` and the runtime ones: handler rule, then the call's own. */
  variables?: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>;
  /** `[log] timezone` for `date`, `time`, `weekday`. */
  timeZone?: string;
  log?: Logger;
  /** For HTTP tools (tests may pass their own). */
  fetch?: typeof fetch;
  /**
   * false: an application drives the call (a `/call` without a playbook or `llm` option). Caller turns are kept
   * in the history (for a later `history`/LLM) but never answered. Default true.
   */
  respond?: boolean;
}

type Terminal =
  | { kind: "hangup"; reason: "agent" | "maxFollowUp"; detail?: string | undefined }
  | { kind: "refer"; target: string; trigger: TransferRecord["trigger"] }
  | { kind: "transfer"; target: string; context?: string | undefined; trigger: TransferRecord["trigger"] };

type ToolCall = Extract<LlmStreamEvent, { type: "tool_call" }>;

interface Playout {
  interruptible: boolean;
}

/** One streamed LLM reply. */
class Reply {
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
}

const silentLog = pino({ level: "silent" });

export class PlaybookRunner {
  private readonly pb: Playbook;
  private readonly call: CallFacts;
  private readonly llm: RunnerLlm;
  private readonly sink: RunnerSink;
  private readonly clock: Scheduler;
  private readonly layers: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>;
  private readonly timeZone: string | undefined;
  private readonly log: Logger;
  private readonly fetchFn: typeof fetch;
  private readonly toolDefs: ToolDefinition[];
  private readonly builtins: Set<BuiltinTool>;

  private current!: Scene;
  private systemPrompt = "";
  private readonly history: HistoryEntry[] = [];
  private readonly runtime: Record<string, string> = {};
  private readonly collected: Record<string, string> = {};
  private readonly visited: string[] = [];
  private readonly transfers: TransferRecord[] = [];

  private readonly playouts = new Map<string, Playout>();
  private readonly replies = new Map<string, Reply>();
  private generating: Reply | undefined;
  private seq = 0;
  private work: Promise<void> = Promise.resolve();
  private pendingTasks = 0;

  private collector: CollectorRun | undefined;
  private pendingTerminal: Terminal | undefined;
  private ending = false;
  private started = false;
  private stopped = false;
  private paused = false;
  private readonly stopCtrl = new AbortController();
  private readonly timers = new Set<{ handle: unknown }>();

  /** The follow-up countdown (§2.11): on the runner's timers, so `stop` ends it with the rest. */
  private readonly followupTimer = new PausableTimer<{ handle: unknown }>(
    { now: () => this.clock.now(), set: (fn, ms) => this.setTimer(fn, ms), clear: (t) => this.clearTimer(t) },
    () => this.onFollowupTimer(),
  );
  private followupCount = 0;
  private followupTotal = 0;

  /** See RunnerOptions.respond. */
  readonly respond: boolean;

  constructor(opts: RunnerOptions) {
    this.respond = opts.respond ?? true;
    this.pb = opts.playbook;
    this.call = opts.call;
    this.llm = opts.llm;
    this.sink = opts.sink;
    this.clock = opts.scheduler ?? systemScheduler;
    this.layers = opts.variables ?? [];
    this.timeZone = opts.timeZone;
    this.log = opts.log ?? silentLog;
    this.fetchFn = opts.fetch ?? fetch;
    this.toolDefs = buildTools(this.pb, this.call.callType);
    this.builtins = offeredBuiltins(this.pb, this.call.callType);
    this.current = this.pb.scenes.get(this.pb.initialScene) as Scene;
  }

  // ---------------------------------------------------------------------------------------------- public

  get scene(): string {
    return this.current.id;
  }

  /** The system prompt of the current scene, as last rendered. */
  get prompt(): string {
    return this.systemPrompt;
  }

  get tools(): readonly ToolDefinition[] {
    return this.toolDefs;
  }

  /** What the next LLM request sends: the system prompt, then the history cut to `llm.historyLimit`. */
  messages(): ChatMessage[] {
    const limit = this.pb.settings.llm?.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    return [{ role: "system", content: this.systemPrompt }, ...trimHistory(this.history.map((h) => h.message), limit)];
  }

  /** The call is up: the initial scene's plays, then the greeting (§2.8). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.enterScene(this.current);
    const g = this.pb.greeting;
    if (g === false) return;
    if (g.play) this.playFile(g.play, g.interruptible);
    if (g.text !== undefined) this.say(g.text, { interruptible: g.interruptible, playId: "greeting" });
    if (g.generate) this.enqueue(() => this.llmTurn(g.interruptible));
  }

  handle(input: RunnerInput): void {
    if (this.stopped) return;
    switch (input.type) {
      case "agentSpeechEnded":
        return this.onSpeechEnded(input.playId, input.interrupted === true, input.heard);
      case "callerSpeechStarted":
        this.resetFollowup();
        return;
      case "callerTurn":
        return this.onCallerTurn(input.text);
      case "dtmf":
        return this.onDtmf(input.digit);
      case "paused":
        return this.pause();
      case "resumed":
        return this.resume();
      case "transferFailed":
        this.ending = false;
        this.addHistory({ role: "system", content: `[the transfer failed${input.reason ? `: ${input.reason}` : ""}]` });
        this.maybeArmFollowup();
        return;
      case "hangup":
        return this.stop();
    }
  }

  /** A message from the `history` command (ws-call-api.md §3.13). */
  addMessage(speaker: "user" | "assistant" | "system", text: string): void {
    if (this.stopped) return;
    this.addHistory(speaker === "assistant" ? { role: "assistant", content: text } : { role: speaker, content: text });
  }

  /** Ends everything: timers, the reply being generated, HTTP requests. Nothing is emitted afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimeout(t.handle);
    this.timers.clear();
    this.followupTimer.cancel();
    this.collector?.cancel();
    this.collector = undefined;
    this.generating?.ctrl.abort();
    this.stopCtrl.abort();
  }

  /** Resolves when no LLM work is queued or running (tests, and the call before the post-call hook). */
  async idle(): Promise<void> {
    let w: Promise<void>;
    do {
      w = this.work;
      await w;
    } while (w !== this.work);
  }

  snapshot(): RunnerSnapshot {
    const variables = Object.fromEntries(Object.entries(this.runtime).filter(([k]) => !isInternalVariable(k)));
    return {
      scenes: [...this.visited],
      lastScene: this.current.id,
      variables,
      collected: { ...this.collected },
      transfers: [...this.transfers],
      history: this.history.map((h) => ({ ...h })),
      followUps: this.followupTotal,
    };
  }

  // ---------------------------------------------------------------------------------------------- plumbing

  private command(c: RunnerCommand): void {
    if (!this.stopped) this.sink.command(c);
  }

  private emit(e: RunnerEvent): void {
    if (!this.stopped) this.sink.event(e);
  }

  private error(sender: "playbook" | "tool" | "llm", code: Extract<RunnerEvent, { event: "error" }>["code"], message: string): void {
    this.log.warn({ sender, code, error: message }, "playbook runner error");
    this.emit({ event: "error", sender, code, error: message });
  }

  private setTimer(fn: () => void, ms: number): { handle: unknown } {
    const t: { handle: unknown } = { handle: undefined };
    t.handle = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: { handle: unknown } | undefined): void {
    if (!t) return;
    this.clock.clearTimeout(t.handle);
    this.timers.delete(t);
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.pendingTasks++;
    this.cancelFollowupTimer();
    this.work = this.work
      .then(async () => {
        if (!this.stopped) await task();
      })
      .catch((err: unknown) => {
        this.log.error({ err }, "playbook runner task failed");
        this.error("playbook", "INTERNAL", (err as Error).message ?? String(err));
      })
      .finally(() => {
        this.pendingTasks--;
        this.checkTerminal();
        this.maybeArmFollowup();
      });
  }

  private render(source: string, local?: Record<string, unknown>): string {
    const ctx = templateContext({ ...this.call, scene: this.current.id }, [this.pb.variables, ...this.layers, this.runtime], {
      ...(this.timeZone !== undefined ? { timeZone: this.timeZone } : {}),
      now: new Date(this.clock.now()),
      ...(local ? { local } : {}),
    });
    return this.pb.templates.render(source, ctx, {
      onError: (err) => this.log.warn({ err }, "template failed to render"),
    });
  }

  private addHistory(message: ChatMessage, extra: Partial<HistoryEntry> = {}): HistoryEntry {
    const entry: HistoryEntry = { message, at: this.clock.now(), ...extra };
    this.history.push(entry);
    return entry;
  }

  private nextId(prefix: string): string {
    return `${prefix}-${++this.seq}`;
  }

  /** Speaks a template source as one complete, queued utterance; returns its playId. */
  private say(source: string, opts: { interruptible: boolean; playId?: string }): string | undefined {
    const text = this.render(source).trim();
    if (text === "") return undefined;
    const playId = opts.playId ?? this.nextId("say");
    this.playouts.set(playId, { interruptible: opts.interruptible });
    this.command({ command: "tts", text, playId, interruptible: opts.interruptible, queue: true });
    this.addHistory({ role: "assistant", content: text });
    return playId;
  }

  private playFile(file: string, interruptible: boolean): void {
    const playId = this.nextId("play");
    this.playouts.set(playId, { interruptible });
    this.command({ command: "play", url: file, playId, interruptible, queue: true });
  }

  private setVariable(name: string | undefined, value: string, source: "set_var" | "collector" | "tool"): string | undefined {
    if (!name) return "a variable needs a name";
    if (isBuiltinVariable(name)) {
      const message = `"${name}" is a built-in variable and cannot be set`;
      this.error("playbook", "BAD_REQUEST", message);
      return message;
    }
    this.runtime[name] = value;
    if (!isInternalVariable(name)) this.emit({ event: "variableChanged", name, value, source });
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------- scenes

  private enterScene(scene: Scene): void {
    this.current = scene;
    this.visited.push(scene.id);
    this.systemPrompt = buildSystemPrompt(this.pb, scene, this.call.callType, (s) => this.render(s));
    this.cancelFollowupTimer();
    for (const p of scene.plays) this.playFile(p.file, p.interruptible);
  }

  /** §3.3. Returns false (with an `error` event) for an unknown scene. */
  private switchScene(to: string | undefined, trigger: SceneTrigger): boolean {
    const scene = to === undefined ? undefined : this.pb.scenes.get(to);
    if (!scene) {
      this.error("playbook", "BAD_REQUEST", `unknown scene "${to ?? ""}"; scenes: ${[...this.pb.scenes.keys()].join(", ")}`);
      return false;
    }
    const from = this.current.id;
    this.current = scene;
    this.emit({ event: "sceneChange", from, to: scene.id, trigger });
    this.addHistory({ role: "system", content: `[scene changed to ${scene.id}]` });
    this.enterScene(scene);
    return true;
  }

  // ---------------------------------------------------------------------------------------------- inputs

  private onSpeechEnded(playId: string, interrupted: boolean, heard: string | undefined): void {
    this.playouts.delete(playId);
    this.collector?.onPlayEnded(playId);
    if (interrupted) {
      const reply = this.replies.get(playId);
      if (reply) {
        const content = reply.heardUntil(playId, heard ?? "");
        reply.cancelled = true;
        reply.ctrl.abort();
        if (reply.entry) {
          const m = reply.entry.message as Extract<ChatMessage, { role: "assistant" }>;
          m.content = content === "" && m.toolCalls ? null : content;
          reply.entry.interrupted = true;
        } else reply.heard = content;
      }
      // A barge-in also cancels a continuation or tool round being generated after the cut utterance.
      const running = this.generating;
      if (running && running !== reply && running.interruptible && reply) {
        running.cancelled = true;
        running.ctrl.abort();
      }
    }
    this.checkTerminal();
    this.maybeArmFollowup();
  }

  private onCallerTurn(text: string): void {
    this.resetFollowup();
    if (this.ending || text.trim() === "") return;
    if (this.collector) {
      if (!this.collector.interruptible) return;
      this.collector.cancel();
      this.collector = undefined;
    }
    if (!this.respond) {
      this.addHistory({ role: "user", content: text });
      return;
    }
    this.enqueue(() => {
      if (this.ending) return;
      this.addHistory({ role: "user", content: text });
      return this.llmTurn(true);
    });
  }

  private onDtmf(digit: string): void {
    this.resetFollowup();
    if (this.collector) {
      this.collector.onDigit(digit);
      return;
    }
    if (this.ending || !this.started) return;
    const action = this.current.dtmf[digit];
    if (action) this.keyAction(action);
  }

  /** §2.9: a mapped key cuts interruptible playback, speaks `say`, then acts. */
  private keyAction(action: DtmfAction): void {
    this.interruptPlayback();
    if (action.say) this.say(action.say, { interruptible: false });
    switch (action.action) {
      case "goto":
        if (this.switchScene(action.scene, "dtmf")) this.enqueue(() => this.llmTurn(true));
        return;
      case "refer":
        return this.scheduleTerminal({ kind: "refer", target: action.target ?? "", trigger: "dtmf" });
      case "transfer":
        return this.scheduleTerminal({ kind: "transfer", target: action.target ?? "", context: action.context, trigger: "dtmf" });
      case "hangup":
        return this.scheduleTerminal({ kind: "hangup", reason: "agent" });
      case "collect":
        this.startCollector(action.collector, action.var, undefined);
        return;
    }
  }

  /** Cancels the reply being generated and, when all that is playing may be cut, gracefully interrupts playback. */
  private interruptPlayback(): void {
    const reply = this.generating;
    if (reply && reply.interruptible) {
      reply.cancelled = true;
      reply.ctrl.abort();
    }
    const playing = [...this.playouts.values()];
    if (playing.length > 0 && playing.every((p) => p.interruptible)) this.command({ command: "interrupt", graceful: true });
  }

  // ---------------------------------------------------------------------------------------------- follow-up (§2.11)

  private cancelFollowupTimer(): void {
    this.followupTimer.cancel();
  }

  private resetFollowup(): void {
    this.cancelFollowupTimer();
    this.followupCount = 0;
  }

  private maybeArmFollowup(): void {
    const f = this.current.followup;
    if (!f || !this.started || this.stopped || this.ending || this.paused || this.collector || this.generating) return;
    if (this.pendingTasks > 0 || this.playouts.size > 0 || this.followupTimer.running) return;
    this.followupTimer.start(f.timeout);
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.followupTimer.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.ending && !this.collector && this.followupTimer.resume()) return;
    this.followupTimer.cancel();
    this.maybeArmFollowup();
  }

  private onFollowupTimer(): void {
    const f = this.current.followup;
    if (!f) return;
    if (this.followupCount < f.max) {
      this.followupCount++;
      this.followupTotal++;
      if (f.text !== undefined) {
        if (this.say(f.text, { interruptible: true, playId: this.nextId("followup") }) === undefined) this.maybeArmFollowup();
      } else {
        this.addHistory({ role: "system", content: `[the caller has been silent for ${Math.round(f.timeout / 1000)} seconds]` });
        this.enqueue(() => this.llmTurn(true));
      }
      return;
    }
    this.ending = true;
    if (f.goodbye !== undefined) this.say(f.goodbye, { interruptible: false });
    this.scheduleTerminal({ kind: "hangup", reason: "maxFollowUp" });
  }

  // ---------------------------------------------------------------------------------------------- collectors (§2.10)

  private startCollector(name: string | undefined, varName: string | undefined, prompt: string | undefined): boolean {
    const def = name === undefined ? undefined : this.pb.collectors[name];
    if (!def || !name) {
      this.error("playbook", "BAD_REQUEST", `unknown collector "${name ?? ""}"; collectors: ${Object.keys(this.pb.collectors).join(", ")}`);
      return false;
    }
    if (!varName) {
      this.error("playbook", "BAD_REQUEST", `collector "${name}" needs a variable name`);
      return false;
    }
    this.cancelFollowupTimer();
    this.collector?.cancel();
    const run = new CollectorRun(name, def, varName, prompt ?? def.prompt, {
      say: (source) => this.say(source, { interruptible: false }),
      setTimer: (fn, ms) => this.setTimer(fn, ms),
      clearTimer: (t) => this.clearTimer(t as { handle: unknown }),
      done: (result) => this.onCollected(run, result),
    });
    this.collector = run;
    run.start();
    return true;
  }

  private onCollected(run: CollectorRun, r: CollectorResult): void {
    if (this.collector === run) this.collector = undefined;
    if (r.valid) {
      this.setVariable(r.var, r.digits, "collector");
      this.collected[r.var] = r.digits;
    }
    this.emit({ event: "collected", collector: r.collector, var: r.var, digits: r.digits, valid: r.valid, attempt: r.attempt });
    this.addHistory({
      role: "system",
      content: r.valid ? `[keypad input for ${r.var}: ${r.digits}]` : `[keypad input for ${r.var} failed after ${r.attempt} attempts]`,
    });
    this.enqueue(() => this.llmTurn(true));
  }

  // ---------------------------------------------------------------------------------------------- terminal actions

  private scheduleTerminal(t: Terminal): void {
    if (this.pendingTerminal) {
      this.error("playbook", "BAD_REQUEST", `a second ${t.kind} was ignored`);
      return;
    }
    this.ending = true;
    this.cancelFollowupTimer();
    this.pendingTerminal = t;
    this.checkTerminal();
  }

  /** Runs the pending terminal action once everything issued before it has been played. */
  private checkTerminal(): void {
    const t = this.pendingTerminal;
    if (!t || this.stopped || this.playouts.size > 0 || this.generating) return;
    this.pendingTerminal = undefined;
    if (t.kind === "hangup") {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(this.pb.settings.sip?.hangupHeaders ?? {})) headers[k] = this.render(v, { reason: t.reason });
      this.command({
        command: "hangup",
        reason: t.reason,
        initiator: "agent",
        ...(t.detail ? { detail: t.detail } : {}),
        ...(Object.keys(headers).length ? { headers } : {}),
      });
      return;
    }
    const at = this.clock.now();
    if (t.kind === "refer" || /^(sips?|tel):/i.test(t.target)) {
      this.transfers.push({ mode: "refer", target: t.target, trigger: t.trigger, at });
      this.command({ command: "refer", callee: t.target });
    } else {
      this.transfers.push({ mode: "dialplan", target: t.target, ...(t.context ? { context: t.context } : {}), trigger: t.trigger, at });
      this.command({ command: "transfer", target: t.target, ...(t.context ? { context: t.context } : {}), mode: "dialplan" });
    }
  }

  // ---------------------------------------------------------------------------------------------- LLM turns (§4)

  /** One model turn: a reply, then tool rounds, `<http>` rounds and a scene continuation, up to `maxToolRounds`. */
  private async llmTurn(interruptible: boolean): Promise<void> {
    const maxRounds = this.pb.settings.llm?.maxToolRounds ?? DEFAULT_MAX_TOOL_ROUNDS;
    for (let rounds = 0; ; rounds++) {
      if (this.stopped || this.ending || this.collector) return;
      const reply = await this.generate(interruptible);
      if (reply.cancelled || this.stopped) return;
      let again = false;
      if (reply.toolCalls.length > 0) again = !(await this.runTools(reply));
      if (reply.cancelled || this.stopped) return;
      if (reply.http.length > 0 && !reply.dropText && !reply.terminal) {
        await this.runHttpTags(reply);
        again = true;
      }
      if (reply.terminal) {
        this.scheduleTerminal(reply.terminal);
        return;
      }
      if (reply.dropText || this.ending || this.collector) return;
      if (!again && !reply.sceneChanged) return;
      if (rounds >= maxRounds) return;
    }
  }

  private async generate(interruptible: boolean): Promise<Reply> {
    const reply = new Reply(++this.seq, interruptible);
    this.generating = reply;
    this.cancelFollowupTimer();
    const llm = this.pb.settings.llm;
    try {
      const stream = this.llm.chat({
        messages: this.messages(),
        tools: this.toolDefs.length > 0 ? this.toolDefs : undefined,
        signal: AbortSignal.any([reply.ctrl.signal, this.stopCtrl.signal]),
        temperature: llm?.temperature,
        maxTokens: llm?.maxTokens,
        timeoutMs: llm?.timeoutMs,
      });
      for await (const ev of stream) {
        if (reply.ctrl.signal.aborted || this.stopped) break;
        if (ev.type === "text") {
          for (const item of reply.parser.push(ev.delta)) this.onItem(reply, item);
        } else if (ev.type === "tool_call") {
          if (!reply.dropText) reply.toolCalls.push(ev);
        } else break;
        if (reply.dropText) {
          reply.ctrl.abort();
          break;
        }
      }
      if (!reply.cancelled && !this.stopped) for (const item of reply.parser.end()) this.onItem(reply, item);
    } catch (err) {
      if (!reply.cancelled && !this.stopped && !reply.dropText) {
        const code = isAppError(err) && (err.code === "TIMEOUT" || err.code === "PROVIDER_ERROR") ? err.code : "PROVIDER_ERROR";
        this.error("llm", code, (err as Error).message ?? String(err));
      }
    } finally {
      this.generating = undefined;
    }
    this.closeSegment(reply);
    const content = reply.cancelled ? (reply.heard ?? reply.spoken) : reply.spoken;
    const toolCalls = reply.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.argumentsText ?? JSON.stringify(c.arguments ?? {}) }));
    if (content !== "" || toolCalls.length > 0) {
      reply.entry = this.addHistory(
        { role: "assistant", content: content === "" ? null : content, ...(toolCalls.length ? { toolCalls } : {}) },
        reply.cancelled ? { interrupted: true } : {},
      );
    }
    return reply;
  }

  private onItem(reply: Reply, item: ReplyItem): void {
    if (item.type === "error") {
      this.error("playbook", "BAD_REQUEST", `ignored a malformed tag ${item.raw}: ${item.message}`);
      return;
    }
    if (reply.dropText) return;
    if (item.type === "text") this.speak(reply, item.text);
    else this.applyTag(reply, item.name, item.attrs);
  }

  private speak(reply: Reply, text: string): void {
    if (text === "") return;
    let playId = reply.open;
    if (!playId) {
      playId = reply.segments.length === 0 ? `r-${reply.n}` : `r-${reply.n}.${reply.segments.length + 1}`;
      reply.open = playId;
      reply.segments.push({ playId, text: "" });
      this.replies.set(playId, reply);
      this.playouts.set(playId, { interruptible: reply.interruptible });
    }
    (reply.segments.at(-1) as { text: string }).text += text;
    this.command({ command: "tts", text, playId, streaming: true, interruptible: reply.interruptible, queue: true });
    this.emit({ event: "llmDelta", playId, text });
  }

  private closeSegment(reply: Reply): void {
    if (!reply.open) return;
    this.command({ command: "tts", text: "", playId: reply.open, endOfStream: true, interruptible: reply.interruptible, queue: true });
    reply.open = undefined;
  }

  /** A terminal action from the reply: the first wins; from here on the reply cannot be interrupted. */
  private replyTerminal(reply: Reply, t: Terminal): void {
    if (reply.terminal || this.ending) {
      this.error("playbook", "BAD_REQUEST", `a second terminal action (${t.kind}) in one reply was ignored`);
      return;
    }
    reply.terminal = t;
    reply.interruptible = false;
    if (reply.open) {
      const p = this.playouts.get(reply.open);
      if (p) p.interruptible = false;
    }
    this.cancelFollowupTimer();
  }

  private applyTag(reply: Reply, name: string, a: Record<string, string>): void {
    switch (name) {
      case "hangup":
        return this.replyTerminal(reply, { kind: "hangup", reason: "agent", detail: a.reason });
      case "refer":
        if (!a.to) return this.error("playbook", "BAD_REQUEST", "<refer> needs to");
        return this.replyTerminal(reply, { kind: "refer", target: a.to, trigger: "llm" });
      case "transfer":
        if (!a.to) return this.error("playbook", "BAD_REQUEST", "<transfer> needs to");
        return this.replyTerminal(reply, { kind: "transfer", target: a.to, context: a.context, trigger: "llm" });
      case "goto":
        if (this.switchScene(a.scene, "llm")) reply.sceneChanged = true;
        return;
      case "play":
        if (!a.file) return this.error("playbook", "BAD_REQUEST", "<play> needs file");
        this.closeSegment(reply);
        return this.playFile(a.file, a.interruptible === "true");
      case "set_var":
        if (a.value === undefined) return this.error("playbook", "BAD_REQUEST", "<set_var> needs value");
        this.setVariable(a.key ?? a.name, a.value, "set_var");
        return;
      case "collect":
        this.closeSegment(reply);
        if (this.startCollector(a.type, a.var, a.prompt)) reply.dropText = true;
        return;
      case "http":
        if (!a.url || !isAllowedUrl(a.url, this.pb.settings.httpAllow ?? [])) {
          return this.error("playbook", "BAD_REQUEST", `<http url="${a.url ?? ""}"> ignored: the URL is not allowed by httpAllow`);
        }
        reply.http.push({ url: a.url, method: a.method, body: a.body });
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------- tools (§4.3, §2.14)

  private httpDeps(): HttpDeps {
    return { fetch: this.fetchFn, render: (s, local) => this.render(s, local), signal: this.stopCtrl.signal };
  }

  /** `<http>` results as tool-style system messages. */
  private async runHttpTags(reply: Reply): Promise<void> {
    for (const h of reply.http) {
      const method = (h.method ?? "GET").toUpperCase();
      const out = await runHttpRequest({ url: h.url, method, body: h.body }, this.pb.settings.httpAllow ?? [], this.httpDeps());
      if (this.stopped) return;
      if (!out.ok && out.error) this.error("tool", "TOOL_ERROR", out.error.message);
      this.addHistory({ role: "system", content: `[http ${method} ${h.url} result: ${out.content}]` }, { name: "http" });
    }
  }

  /** Runs the reply's tool calls (custom HTTP tools in parallel, the rest in order). True when the turn ends here. */
  private async runTools(reply: Reply): Promise<boolean> {
    const results: Promise<{ ok: boolean; content: string }>[] = [];
    let endTurn = false;
    const started = this.clock.now();
    for (const call of reply.toolCalls) {
      this.emit({ event: "functionCall", callId: call.id, name: call.name, arguments: call.argumentsText ?? JSON.stringify(call.arguments ?? {}) });
      const custom = this.pb.tools.find((t) => t.name === call.name);
      if (custom) {
        results.push(this.runCustomTool(custom, call));
        continue;
      }
      if (call.name === "http_request" && this.builtins.has("http_request")) {
        results.push(this.runHttpRequestTool(call));
        continue;
      }
      const r = this.runBuiltin(call, reply);
      if (r.endTurn) endTurn = true;
      results.push(Promise.resolve(r));
    }
    const settled = await Promise.all(results);
    if (this.stopped) return true;
    reply.toolCalls.forEach((call, i) => {
      const r = settled[i] as { ok: boolean; content: string };
      this.addHistory({ role: "tool", toolCallId: call.id, content: r.content }, { name: call.name });
      this.emit({ event: "functionResult", callId: call.id, name: call.name, ok: r.ok, result: r.content.slice(0, 2000), durationMs: this.clock.now() - started });
    });
    return endTurn || reply.dropText;
  }

  private async runCustomTool(tool: Playbook["tools"][number], call: ToolCall): Promise<{ ok: boolean; content: string }> {
    const fail = (message: string) => {
      this.error("tool", "TOOL_ERROR", `${tool.name}: ${message}`);
      return { ok: false, content: JSON.stringify({ error: message }) };
    };
    if (call.error || !call.arguments) return fail("invalid arguments: not a JSON object");
    const schema = this.pb.toolArguments.get(tool.name);
    const parsed = schema ? schema.safeParse(call.arguments) : { success: true as const, data: call.arguments };
    if (!parsed.success) {
      return fail(`invalid arguments: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
    }
    const args = parsed.data as Record<string, unknown>;
    let filler: { handle: unknown } | undefined;
    if (tool.filler) {
      const source = tool.filler;
      filler = this.setTimer(() => this.say(source, { interruptible: true }), tool.fillerAfterMs ?? 1500);
    }
    let out: HttpOutcome;
    try {
      out = await runHttpTool(tool, args, this.httpDeps());
    } finally {
      this.clearTimer(filler);
    }
    if (out.error) return fail(out.error.message);
    if (out.ok) {
      for (const [name, source] of Object.entries(tool.setVars ?? {})) this.setVariable(name, this.render(source, { result: out.result, args }), "tool");
    }
    return { ok: out.ok, content: out.content };
  }

  private async runHttpRequestTool(call: ToolCall): Promise<{ ok: boolean; content: string }> {
    const a = call.arguments;
    if (call.error || !a || typeof a.url !== "string") return { ok: false, content: JSON.stringify({ error: "invalid arguments: url is required" }) };
    const out = await runHttpRequest(
      { url: a.url, method: typeof a.method === "string" ? a.method : undefined, body: a.body },
      this.pb.settings.httpAllow ?? [],
      this.httpDeps(),
    );
    if (out.error) this.error("tool", "TOOL_ERROR", `http_request: ${out.error.message}`);
    return { ok: out.ok, content: out.content };
  }

  /** The built-in tools; unknown or not offered names are errors for the model. */
  private runBuiltin(call: ToolCall, reply: Reply): { ok: boolean; content: string; endTurn?: boolean } {
    const name = (call.name === "refer_call" ? "transfer_call" : call.name) as BuiltinTool;
    const ok = { ok: true, content: JSON.stringify({ ok: true }) };
    const fail = (message: string) => ({ ok: false, content: JSON.stringify({ error: message }) });
    if (!this.builtins.has(name)) return fail(`unknown tool "${call.name}"`);
    if (call.error || !call.arguments) return fail("invalid arguments: not a JSON object");
    const a = call.arguments;
    const str = (k: string) => (typeof a[k] === "string" ? (a[k] as string) : undefined);
    switch (name) {
      case "hangup_call":
        this.replyTerminal(reply, { kind: "hangup", reason: "agent", detail: str("reason") });
        return { ...ok, endTurn: true };
      case "transfer_call": {
        const target = str("target");
        if (!target) return fail("target is required");
        const mode = str("mode");
        this.replyTerminal(reply, mode === "refer" ? { kind: "refer", target, trigger: "tool" } : { kind: "transfer", target, trigger: "tool" });
        return { ...ok, endTurn: true };
      }
      case "goto_scene":
        if (!this.pb.scenes.has(str("scene") ?? "")) return fail(`unknown scene; scenes: ${[...this.pb.scenes.keys()].join(", ")}`);
        this.switchScene(str("scene"), "tool");
        return ok;
      case "play_audio": {
        const file = str("file");
        if (!file || !this.pb.playFiles.includes(file)) return fail(`unknown file; files: ${this.pb.playFiles.join(", ")}`);
        this.playFile(file, false);
        return ok;
      }
      case "set_variable": {
        const value = a.value;
        if (value === undefined || value === null) return fail("value is required");
        const problem = this.setVariable(str("name"), typeof value === "string" ? value : JSON.stringify(value), "set_var");
        return problem ? fail(problem) : ok;
      }
      case "collect_digits":
        if (!this.startCollector(str("collector"), str("var"), str("prompt"))) return fail("unknown collector or missing var");
        reply.dropText = true;
        return { ...ok, endTurn: true };
      case "send_dtmf": {
        const digits = str("digits") ?? "";
        if (!/^[0-9*#A-Dw]+$/.test(digits)) return fail("digits must be 0-9, *, #, A-D or w");
        this.command({ command: "dtmf", digits });
        return ok;
      }
      case "http_request":
        return fail("internal: http_request is asynchronous");
    }
  }
}
