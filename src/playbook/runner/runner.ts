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
 *
 * This file holds the call's state and the policy (inputs, scenes, turns, when a terminal action runs). The parts:
 * reply.ts (one LLM reply: text, tags, tool calls), tool-dispatch.ts (the tools, shared with the Realtime pipeline),
 * followup.ts (§2.11), collector.ts (§2.10), terminal.ts (the commands of hangup/refer/transfer), timers.ts.
 */
import { pino, type Logger } from "pino";
import type { DtmfAction, Playbook, Scene } from "../types.js";
import { isInternalVariable, templateContext, type CallFacts } from "../variables.js";
import { collectedNote, openCollector, type CollectorResult, type CollectorRun } from "./collector.js";
import { FollowupClock } from "./followup.js";
import { buildSystemPrompt, buildTools, DEFAULT_HISTORY_LIMIT, DEFAULT_MAX_TOOL_ROUNDS, offeredBuiltins, trimHistory, type BuiltinTool } from "./prompt.js";
import { closeSegment, Reply, runHttpTags, runToolCalls, streamReply, type Playout, type ReplyHost } from "./reply.js";
import { terminalCommand, type Terminal } from "./terminal.js";
import { RunnerTimers, type TimerRef } from "./timers.js";
import { setRuntimeVariable } from "./tool-dispatch.js";
import {
  systemScheduler,
  type ChatMessage,
  type HistoryEntry,
  type RunnerCommand,
  type RunnerEvent,
  type RunnerInput,
  type RunnerLlm,
  type RunnerOptions,
  type RunnerSink,
  type RunnerSnapshot,
  type Scheduler,
  type SceneTrigger,
  type ToolDefinition,
  type TransferRecord,
} from "./types.js";

/** Kept importable from here (the index and tests import it with the runner). */
export type { RunnerOptions };

const silentLog = pino({ level: "silent" });

export class PlaybookRunner {
  private readonly pb: Playbook;
  private readonly call: CallFacts;
  private readonly llm: RunnerLlm;
  private readonly sink: RunnerSink;
  private readonly clock: Scheduler;
  /** Epoch ms (templates, history and transfer times): not the scheduler, whose clock may be a media clock. */
  private readonly wall: () => number;
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
  private readonly stopCtrl = new AbortController();
  private readonly timers: RunnerTimers;
  /** The follow-up countdown (§2.11): on the runner's timers, so `stop` ends it with the rest. */
  private readonly followup: FollowupClock<TimerRef>;
  /** What a reply (its text, tags, tool calls) touches and does: reply.ts. */
  private readonly out: ReplyHost;

  /** See RunnerOptions.respond. */
  readonly respond: boolean;

  constructor(opts: RunnerOptions) {
    this.respond = opts.respond ?? true;
    this.pb = opts.playbook;
    this.call = opts.call;
    this.llm = opts.llm;
    this.sink = opts.sink;
    this.clock = opts.scheduler ?? systemScheduler;
    this.wall = opts.wallClock ?? (() => this.clock.now());
    this.timers = new RunnerTimers(this.clock);
    this.followup = new FollowupClock<TimerRef>(this.timers, () => this.onFollowupTimer());
    this.layers = opts.variables ?? [];
    this.timeZone = opts.timeZone;
    this.log = opts.log ?? silentLog;
    this.fetchFn = opts.fetch ?? fetch;
    this.toolDefs = buildTools(this.pb, this.call.callType);
    this.builtins = offeredBuiltins(this.pb, this.call.callType);
    this.current = this.pb.scenes.get(this.pb.initialScene) as Scene;
    this.out = {
      playbook: this.pb,
      builtins: this.builtins,
      playouts: this.playouts,
      replies: this.replies,
      ending: () => this.ending,
      stopped: () => this.stopped,
      now: () => this.clock.now(),
      http: () => ({ fetch: this.fetchFn, render: (s, local) => this.render(s, local), signal: this.stopCtrl.signal }),
      command: (c) => this.command(c),
      emit: (e) => this.emit(e),
      error: (sender, code, message) => this.error(sender, code, message),
      addHistory: (message, extra) => this.addHistory(message, extra),
      render: (source, local) => this.render(source, local),
      say: (source, interruptible) => void this.say(source, { interruptible }),
      setTimer: (fn, ms) => this.timers.set(fn, ms),
      clearTimer: (t) => this.timers.clear(t as TimerRef),
      cancelFollowup: () => this.followup.cancel(),
      switchScene: (to, trigger) => this.switchScene(to, trigger),
      playFile: (file, interruptible) => this.playFile(file, interruptible),
      setVariable: (name, value, source) => this.setVariable(name, value, source),
      startCollector: (name, varName, prompt) => this.startCollector(name, varName, prompt),
    };
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
        this.followup.reset();
        return;
      case "callerTurn":
        return this.onCallerTurn(input.text);
      case "dtmf":
        return this.onDtmf(input.digit);
      case "paused":
        return this.followup.pause();
      case "resumed":
        // Continue what was left of the countdown, unless a collector or a terminal action took over meanwhile.
        if (this.followup.resume(!this.ending && !this.collector)) this.maybeArmFollowup();
        return;
      case "transferFailed":
        // The call is the agent's again: it tells the caller (the reply hears why), then the call goes on.
        this.ending = false;
        this.addHistory({ role: "system", content: `[the transfer failed${input.reason ? `: ${input.reason}` : ""}]` });
        this.enqueue(() => this.llmTurn(true));
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
    this.timers.stop();
    this.followup.cancel();
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
      followUps: this.followup.total,
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

  private enqueue(task: () => Promise<void> | void): void {
    this.pendingTasks++;
    this.followup.cancel();
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
      now: new Date(this.wall()),
      ...(local ? { local } : {}),
    });
    return this.pb.templates.render(source, ctx, {
      onError: (err) => this.log.warn({ err }, "template failed to render"),
    });
  }

  private addHistory(message: ChatMessage, extra: Partial<HistoryEntry> = {}): HistoryEntry {
    const entry: HistoryEntry = { message, at: this.wall(), ...extra };
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
    const problem = setRuntimeVariable(this.runtime, name, value, (message) => this.error("playbook", "BAD_REQUEST", message));
    if (problem === undefined && name && !isInternalVariable(name)) this.emit({ event: "variableChanged", name, value, source });
    return problem;
  }

  // ---------------------------------------------------------------------------------------------- scenes

  private enterScene(scene: Scene): void {
    this.current = scene;
    this.visited.push(scene.id);
    this.systemPrompt = buildSystemPrompt(this.pb, scene, this.call.callType, (s) => this.render(s));
    this.followup.cancel();
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
      reply?.cut(playId, heard ?? "");
      // A barge-in also cancels a continuation or tool round being generated after the cut utterance.
      const running = this.generating;
      if (running && running !== reply && running.interruptible && reply) running.cancel();
    }
    this.checkTerminal();
    this.maybeArmFollowup();
  }

  private onCallerTurn(text: string): void {
    this.followup.reset();
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
    this.followup.reset();
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
    if (reply && reply.interruptible) reply.cancel();
    // Also when none of ours plays: a client's interruptible play is cut as well (the pipeline keeps the others).
    const playing = [...this.playouts.values()];
    if (playing.every((p) => p.interruptible)) this.command({ command: "interrupt", graceful: true });
  }

  // ---------------------------------------------------------------------------------------------- follow-up (§2.11)

  /** Arms the countdown once the agent is idle: nothing queued, generating, playing, collecting or ending. */
  private maybeArmFollowup(): void {
    const f = this.current.followup;
    if (!f || !this.started || this.stopped || this.ending || this.collector || this.generating) return;
    if (this.pendingTasks > 0 || this.playouts.size > 0) return;
    this.followup.arm(f.timeout);
  }

  private onFollowupTimer(): void {
    const f = this.current.followup;
    if (!f) return;
    const next = this.followup.next(f);
    switch (next.kind) {
      case "say":
        if (this.say(next.text, { interruptible: true, playId: this.nextId("followup") }) === undefined) this.maybeArmFollowup();
        return;
      case "note":
        this.addHistory({ role: "system", content: next.text });
        this.enqueue(() => this.llmTurn(true));
        return;
      case "goodbye":
        this.ending = true;
        if (next.text !== undefined) this.say(next.text, { interruptible: false });
        this.scheduleTerminal({ kind: "hangup", reason: "maxFollowUp" });
    }
  }

  // ---------------------------------------------------------------------------------------------- collectors (§2.10)

  private startCollector(name: string | undefined, varName: string | undefined, prompt: string | undefined): boolean {
    const run = openCollector(this.pb, { name, varName, prompt }, (self) => ({
      say: (source) => this.say(source, { interruptible: false }),
      setTimer: (fn, ms) => this.timers.set(fn, ms),
      clearTimer: (t) => this.timers.clear(t as TimerRef),
      done: (result) => this.onCollected(self(), result),
    }));
    if (typeof run === "string") {
      this.error("playbook", "BAD_REQUEST", run);
      return false;
    }
    this.followup.cancel();
    this.collector?.cancel();
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
    this.addHistory({ role: "system", content: collectedNote(r) });
    this.enqueue(() => this.llmTurn(true));
  }

  // ---------------------------------------------------------------------------------------------- terminal actions

  private scheduleTerminal(t: Terminal): void {
    if (this.pendingTerminal) {
      this.error("playbook", "BAD_REQUEST", `a second ${t.kind} was ignored`);
      return;
    }
    this.ending = true;
    this.followup.cancel();
    this.pendingTerminal = t;
    this.checkTerminal();
  }

  /** Runs the pending terminal action once everything issued before it has been played. */
  private checkTerminal(): void {
    const t = this.pendingTerminal;
    if (!t || this.stopped || this.playouts.size > 0 || this.generating) return;
    this.pendingTerminal = undefined;
    const headers: Record<string, string> = {};
    if (t.kind === "hangup") {
      for (const [k, v] of Object.entries(this.pb.settings.sip?.hangupHeaders ?? {})) headers[k] = this.render(v, { reason: t.reason });
    }
    const { command, transfer } = terminalCommand(t, this.wall(), headers);
    if (transfer) this.transfers.push(transfer);
    this.command(command);
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
      if (reply.toolCalls.length > 0) again = !(await runToolCalls(this.out, reply));
      if (reply.cancelled || this.stopped) return;
      if (reply.http.length > 0 && !reply.dropText && !reply.terminal) {
        await runHttpTags(this.out, reply);
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
    this.followup.cancel();
    const llm = this.pb.settings.llm;
    try {
      await streamReply(this.out, reply, () =>
        this.llm.chat({
          messages: this.messages(),
          tools: this.toolDefs.length > 0 ? this.toolDefs : undefined,
          signal: AbortSignal.any([reply.ctrl.signal, this.stopCtrl.signal]),
          temperature: llm?.temperature,
          maxTokens: llm?.maxTokens,
          timeoutMs: llm?.timeoutMs,
        }),
      );
    } finally {
      this.generating = undefined;
    }
    // Closed once the reply is no longer the one generating (a playout ending now may run a terminal action).
    closeSegment(this.out, reply);
    const message = reply.message();
    if (message) reply.entry = this.addHistory(message, reply.cancelled ? { interrupted: true } : {});
    return reply;
  }
}
