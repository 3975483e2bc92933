/**
 * RealtimeConversation: the Conversation seam over a duplex speech model (OpenAI / Azure Realtime,
 * media-protocols.md §5.4). A playbook with a `realtime:` key runs here instead of the serial pipeline.
 *
 *  caller frames (leg.callerAudio) -> [mute] -> CallerAudioPump (resample to 24 kHz, or µ-law passthrough)
 *     -> input_audio_buffer.append; with `turnDetection: local` also our VAD -> commit + response.create
 *  server events -> agent audio items -> AgentAudioOut -> leg.write / endPlay (the leg's pacer paces them, so
 *     deltas that arrive faster than real time wait in the pacer, where a barge-in can drop them)
 *  speech_started (or our VAD) -> barge-in: leg.clear, response.cancel, conversation.item.truncate with what the
 *     leg's ledger says the caller heard of that item
 *  function calls -> RealtimeScenes (playbook tools, scene switches) -> function_call_output, then, after the
 *     response is done, response.create (a scene switch first sends session.update with the new instructions)
 *  DTMF -> key actions, or a DTMF collector (the scene runner's CollectorRun; prompts spoken by the model word for
 *     word), or a message to the model; caller silence after the agent spoke -> `followup` (§2.11)
 *  non-interruptible speech (greeting `interruptible: false`, collector prompts, `say`, goodbye) -> never cut by
 *     the caller: no barge-in, and the session runs protected (interrupt_response/create_response off) meanwhile
 *  transcripts -> asrDelta/asrFinal, llmDelta, addHistory, and the history the post-call hook reads. The model's
 *     transcript runs ahead of its audio, so an agent turn enters the history when its audio has played out (all
 *     of it) or was cut (the words heard), never when the text arrives.
 *
 * A dropped socket is reconnected once, with the history replayed as text items; a second drop (or a failed
 * reconnect) ends the call with an `error` event and hangup reason `error`.
 *
 * One agent utterance (playId) per assistant audio item, so `truncate`'s item and the leg's play are the same
 * thing. Failures never escape: every async path catches and turns into an `error` event.
 */
import type { AudioFrame } from "../../audio/index.js";
import { isAppError } from "../../errors.js";
import type { TimerHandle } from "../../media/clock.js";
import type { DtmfEvent, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import { CollectorRun, FollowupClock, type CollectorResult, type HistoryEntry } from "../../playbook/runner/index.js";
import type { RealtimeEvent, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import type { Conversation, ConversationCommand, ConversationEnd, ConversationSnapshot } from "../conversation.js";
import { CallerVad, ConversationCore, type CoreEvents } from "../core/index.js";
import { deadline } from "../../util/deadline.js";
import { heardText } from "../turn/heard-text.js";
import type { CreateRequest, Item, RealtimeConversationOptions, Response } from "./types.js";
import { AgentAudioOut, CallerAudioPump, chooseAudioFormat, sessionRateOf } from "./audio-bridge.js";
import { LegPlays } from "./leg-plays.js";
import { RealtimeScenes, type Terminal, type ToolOutcome } from "./scenes.js";

export type RealtimeConversationEvents = CoreEvents;
export type { RealtimeConversationOptions };

const DEFAULT_TRANSCRIPTION = { model: "gpt-4o-mini-transcribe" };
const SAY_EXACTLY = "Say exactly the following to the caller, word for word, and nothing else: ";

export class RealtimeConversation extends ConversationCore<RealtimeConversationEvents> implements Conversation {
  readonly scenes: RealtimeScenes;

  private readonly format;
  private readonly sessionRate: number;
  private readonly pump: CallerAudioPump;
  private readonly agentOut: AgentAudioOut;
  private readonly local: boolean;
  private readonly bargeInEnabled: boolean;
  private readonly fadeOutMs: number;

  private session: RealtimeSession | undefined;
  private reconnected = false;
  private readonly abort = new AbortController();

  private readonly items = new Map<string, Item>();
  private readonly byPlayId = new Map<string, Item>();
  private readonly responses = new Map<string, Response>();
  private activeResponse: Response | undefined;
  /** A response.create was sent and its response.created has not come yet. */
  private requested: CreateRequest | undefined;
  private readonly queuedCreates: CreateRequest[] = [];
  private ending = false;

  private vad: CallerVad | undefined;
  private speechStartMs: number | undefined;
  private speechStoppedAt: number | undefined;
  private asrIndex = 0;
  /** Caller turns whose transcript has not come yet, by input item id (a placeholder keeps the history in order). */
  private readonly pendingUser = new Map<string, HistoryEntry>();
  private turns = 0;
  private bargeIns = 0;

  /** Sounds playing (or loading) on the leg that are not model items, by playId. */
  private readonly plays: LegPlays;
  /** The DTMF collector running (§2.10), reusing the scene runner's CollectorRun. */
  private collector: CollectorRun | undefined;
  /** The session's turn detection is in "protected" mode (no server cut, no server response) for a non-interruptible response. */
  private protectedTurn = false;
  /** The protection each `session.update` not yet acknowledged carries, oldest first. */
  private readonly updateStates: boolean[] = [];
  /** The protection in force on the server as of the last `session.updated` received. */
  private serverProtected = false;
  /** The caller ended a turn while protected: we ask for its answer once the protected response is done. */
  private owedAnswer = false;
  private toolsRunning = 0;
  /** The follow-up countdown (§2.11), paused by `pause` with what is left of it. */
  private readonly followup = new FollowupClock<TimerHandle>(
    { now: () => this.clock.now(), set: (fn, ms) => this.clock.setTimer(fn, ms), clear: (h) => this.clock.clearTimer(h) },
    () => this.onFollowupTimer(),
  );

  constructor(private readonly options: RealtimeConversationOptions) {
    super(options);
    const rt = options.playbook.settings.realtime ?? {};
    this.format = chooseAudioFormat(rt.audioFormat, this.leg, options.wire);
    this.sessionRate = sessionRateOf(this.format);
    this.pump = new CallerAudioPump(this.leg.callerRate, this.sessionRate, options.appendMs ?? 40, (f) => this.session?.sendAudio(f));
    this.agentOut = new AgentAudioOut(this.sessionRate, this.leg.agentRate);
    this.local = rt.turnDetection?.type === "local";
    this.bargeInEnabled = options.interruption?.enabled ?? true;
    this.fadeOutMs = options.interruption?.fadeOutMs ?? 20;
    this.plays = new LegPlays({
      leg: this.leg,
      signal: this.abort.signal,
      soundsDir: options.soundsDir,
      cacheDir: options.cacheDir,
      nextSeq: () => ++this.seq,
      ended: () => this.end !== undefined,
      writeAgent: (playId, pcm) => this.writeAgent(playId, pcm),
      started: () => this.cancelFollowup(),
      failed: (err) => {
        if (!this.end) this.emitError("command", err);
        this.maybeArmFollowup();
      },
      autoHangup: () => this.finish({ reason: "autohangup", initiator: "client" }),
      replace: () => this.bargeIn("command"),
    });
    this.scenes = new RealtimeScenes({
      playbook: options.playbook,
      call: options.call,
      variables: options.variables,
      timeZone: options.timeZone,
      fetch: options.fetch,
      log: options.log,
      now: () => this.wall(),
      events: {
        sceneChange: (e) => this.emit({ event: "sceneChange", ...e }),
        error: (e) => this.emit({ event: "error", trackId: this.callId, sender: e.sender, code: e.code, error: e.error }),
      },
    });
  }

  /** The session format chosen for this leg (`pcm16` = 24 kHz, `pcmu`/`pcma` = 8 kHz passthrough). */
  get audioFormat(): string {
    return this.format;
  }

  /** What `session.update` carries now: the current scene's instructions and tools, and the audio set-up. */
  sessionConfig(): RealtimeSessionConfig {
    const rt = this.options.playbook.settings.realtime ?? {};
    const td = rt.turnDetection;
    return {
      instructions: this.scenes.instructions(),
      voice: rt.voice ?? "alloy",
      audioFormat: this.format,
      // Without barge-in the server must not cut its own response when the caller speaks either.
      turnDetection: { ...td, type: td?.type ?? "server_vad", ...(this.bargeInEnabled ? {} : { interruptResponse: false }) },
      inputTranscription: rt.inputTranscription === false ? false : (rt.inputTranscription ?? DEFAULT_TRANSCRIPTION),
      tools: this.scenes.tools,
      toolChoice: "auto",
    };
  }

  // ---------------------------------------------------------------------------------------------- public

  async start(): Promise<void> {
    if (this.started || this.end) return;
    this.started = true;
    this.hookLeg();
    try {
      if (this.local) await this.setupVad();
      const session = await this.options.provider.connect(this.sessionConfig(), { signal: this.abort.signal });
      if (this.end) {
        await session.close();
        return;
      }
      this.attach(session);
    } catch (err) {
      this.fail(`realtime session could not start: ${(err as Error).message}`, err);
      return;
    }
    this.startCallerAudio();
    this.greet();
  }

  snapshot(): ConversationSnapshot {
    return {
      runner: this.scenes.snapshot(),
      turns: { turns: this.turns, speculations: 0, hits: 0, misses: 0, dropped: 0 },
      interruptions: { bargeIns: this.bargeIns, falseInterruptions: 0 },
      end: this.end,
    };
  }

  // ---------------------------------------------------------------------------------------------- start-up

  private async setupVad(): Promise<void> {
    const silenceMs = this.options.playbook.settings.realtime?.turnDetection?.silenceDurationMs ?? 500;
    this.vad = await CallerVad.create({
      callerRate: this.leg.callerRate,
      engine: this.options.vad?.engine,
      type: this.options.vad?.type,
      detector: { ...this.options.vad?.detector, minSilenceMs: silenceMs },
    });
  }

  /** The initial scene's plays, then the greeting: a fixed text is spoken by the model word for word. */
  private greet(): void {
    for (const p of this.scenes.scene.plays) this.plays.playFile(p.file, { interruptible: p.interruptible });
    const g = this.options.playbook.greeting;
    if (g === false) return;
    if (g.play) this.plays.playFile(g.play, { interruptible: g.interruptible });
    if (g.text !== undefined) this.say(g.text, { interruptible: g.interruptible, playId: "greeting" });
    else if (g.generate) this.requestResponse({ interruptible: g.interruptible });
  }

  /**
   * A fixed text (template source) spoken by the model word for word, as its own response; queued behind what
   * is being said. Returns its playId (undefined when it renders empty).
   */
  private say(source: string, opts: { interruptible: boolean; playId?: string; prefix?: string }): string | undefined {
    const text = this.scenes.render(source).trim();
    if (text === "") return undefined;
    const playId = opts.playId ?? `${opts.prefix ?? "say"}-${++this.seq}`;
    this.requestResponse({ instructions: SAY_EXACTLY + JSON.stringify(text), playId, interruptible: opts.interruptible });
    return playId;
  }

  private attach(session: RealtimeSession): void {
    this.session = session;
    // The provider sent the full set-up on connect (never protected).
    this.updateStates.length = 0;
    this.updateStates.push(false);
    this.serverProtected = false;
    void this.eventLoop(session);
  }

  // ---------------------------------------------------------------------------------------------- server events

  private async eventLoop(session: RealtimeSession): Promise<void> {
    let closeInfo = "the connection closed";
    try {
      for await (const ev of session.events) {
        if (this.end || this.session !== session) return;
        if (ev.type === "closed") {
          closeInfo = `the connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`;
          break;
        }
        try {
          this.onServerEvent(ev);
        } catch (err) {
          this.emitError("realtime", err);
        }
      }
    } catch (err) {
      closeInfo = `the connection failed (${(err as Error).message})`;
    }
    if (this.end || this.session !== session) return;
    void this.onDrop(closeInfo);
  }

  private onServerEvent(ev: RealtimeEvent): void {
    switch (ev.type) {
      case "session_updated":
        this.serverProtected = this.updateStates.shift() ?? this.serverProtected;
        return;
      case "ready":
      case "closed":
        return;
      case "speech_started":
        return this.onCallerSpeech();
      case "speech_stopped":
        return this.onCallerTurnEnd(ev.itemId);
      case "input_transcript":
        return this.onInputTranscript(ev.itemId, ev.final, ev.final ? ev.text : (ev.delta ?? ""), ev.text);
      case "response_started":
        return this.onResponseStarted(ev.responseId);
      case "output_item":
        return;
      case "audio":
        return this.onAudio(ev.responseId, ev.itemId, ev.frame.pcm);
      case "audio_done":
        return this.onAudioDone(ev.itemId);
      case "transcript":
        return this.onTranscript(ev.responseId, ev.itemId, ev.final, ev.delta ?? "", ev.text);
      case "function_call":
        return this.onFunctionCall(ev.responseId, ev.callId, ev.name, ev.arguments);
      case "response_done":
        return this.onResponseDone(ev.responseId, ev.status);
      case "error":
        // §5.4 pitfalls: a cancel with nothing active, and a create racing the server's own response, change nothing.
        if (ev.code === "response_cancel_not_active" || ev.code === "conversation_already_has_active_response") {
          this.log?.debug({ code: ev.code }, "realtime request refused (harmless)");
          if (ev.code === "conversation_already_has_active_response" && this.requested) {
            this.queuedCreates.unshift(this.requested);
            this.requested = undefined;
          }
          return;
        }
        this.emit({ event: "error", trackId: this.callId, sender: "realtime", code: "PROVIDER_ERROR", error: ev.message });
        return;
    }
  }

  private onCallerSpeech(): void {
    this.speechStartMs = this.leg.nowMs;
    this.resetFollowup();
    this.emit({ event: "speaking", trackId: this.callId, startTime: this.speechStartMs });
    this.bargeIn("bargeIn");
  }

  private onCallerTurnEnd(itemId: string | undefined): void {
    const start = this.speechStartMs ?? this.leg.nowMs;
    this.speechStartMs = undefined;
    this.speechStoppedAt = this.clock.now();
    this.turns++;
    this.emit({ event: "silence", trackId: this.callId, startTime: start, duration: Math.max(0, this.leg.nowMs - start), reason: "vad" });
    this.emit({ event: "eou", trackId: this.callId, completed: true });
    if (itemId && !this.pendingUser.has(itemId)) this.pendingUser.set(itemId, this.scenes.add({ role: "user", content: "" }));
    // §2.10: caller speech cancels an interruptible collector and is a normal turn (a non-interruptible one never
    // hears it: the caller's audio reaches the model as silence while it runs).
    if (this.collector?.interruptible) {
      this.collector.cancel();
      this.collector = undefined;
    }
    // The turn ended while the server ran protected (create_response off for a non-interruptible response): the
    // server did not answer it, so we ask for the answer once that response is done, or at once when it already is.
    // Server events are ordered with its `session.updated`s, so `serverProtected` is the state this turn saw.
    if (this.serverProtected) {
      if (this.protectedTurn) this.owedAnswer = true;
      else if (!this.activeResponse && !this.requested && !this.ending) this.requestResponse({});
    }
  }

  private onInputTranscript(itemId: string, final: boolean, delta: string, text: string): void {
    const index = this.asrIndex;
    if (!final) {
      if (delta !== "") this.emit({ event: "asrDelta", trackId: this.callId, index, text });
      return;
    }
    const placeholder = this.pendingUser.get(itemId);
    this.pendingUser.delete(itemId);
    const t = text.trim();
    if (t === "") return; // the placeholder stays empty and is left out of the snapshot
    this.resetFollowup();
    this.asrIndex++;
    if (placeholder) placeholder.message = { role: "user", content: t };
    else this.scenes.add({ role: "user", content: t });
    this.emit({ event: "asrFinal", trackId: this.callId, index, text: t });
    this.emit({ event: "addHistory", speaker: "user", text: t });
  }

  private onResponseStarted(id: string): void {
    const req = this.requested ?? {};
    this.requested = undefined;
    const r: Response = {
      id,
      cancelled: false,
      done: false,
      pendingTools: 0,
      hadTools: false,
      sceneChanged: false,
      terminal: undefined,
      autoHangup: req.autoHangup === true,
      continued: false,
      playId: req.playId,
      items: 0,
      interruptible: req.interruptible !== false,
      collecting: false,
    };
    this.responses.set(id, r);
    this.activeResponse = r;
    this.cancelFollowup();
  }

  /** The item's record, created at its first audio or transcript. */
  private item(responseId: string, itemId: string): Item {
    let item = this.items.get(itemId);
    if (item) return item;
    const r = this.responses.get(responseId);
    let playId = r && r.items === 0 && r.playId !== undefined ? r.playId : `rt-${++this.seq}`;
    if (this.byPlayId.has(playId)) playId = `${playId}-${++this.seq}`;
    if (r) r.items++;
    item = {
      itemId,
      responseId,
      playId,
      receivedMs: 0,
      transcript: "",
      transcriptDone: false,
      written: false,
      audioDone: false,
      ended: false,
      playedOut: false,
      cut: false,
      recorded: false,
      interruptible: r?.interruptible ?? true,
    };
    this.items.set(itemId, item);
    this.byPlayId.set(playId, item);
    return item;
  }

  private onAudio(responseId: string, itemId: string, pcm: Int16Array): void {
    const r = this.responses.get(responseId);
    if (r?.cancelled) return;
    const item = this.item(responseId, itemId);
    if (item.cut || item.audioDone) return;
    if (!item.written && this.speechStoppedAt !== undefined) {
      this.emit({ event: "metrics", key: "realtime.response", duration: Math.round(this.clock.now() - this.speechStoppedAt), data: { responseId } });
      this.speechStoppedAt = undefined;
    }
    item.receivedMs += (pcm.length * 1000) / this.sessionRate;
    item.written = true;
    this.writeAgent(item.playId, this.agentOut.process(pcm));
  }

  private onAudioDone(itemId: string): void {
    const item = this.items.get(itemId);
    if (!item || item.cut || item.audioDone) return;
    this.endItemAudio(item);
  }

  /** No more audio for this item: the resampler's tail, then endPlay (trackEnd follows its playout). */
  private endItemAudio(item: Item): void {
    item.audioDone = true;
    this.writeAgent(item.playId, this.agentOut.end());
    if (item.written && !this.leg.closed) this.leg.endPlay(item.playId);
    else item.ended = true;
  }

  private onTranscript(responseId: string, itemId: string, final: boolean, delta: string, text: string): void {
    const item = this.item(responseId, itemId);
    if (item.cut) return;
    item.transcript = text;
    if (!final) {
      if (delta !== "" && !this.responses.get(responseId)?.cancelled) this.emit({ event: "llmDelta", playId: item.playId, text: delta });
      return;
    }
    item.transcriptDone = true;
    if (item.ended && item.playedOut) this.record(item, text);
  }

  /** The agent turn of an item enters the history: what was heard of it (all of it when it played out). */
  private record(item: Item, text: string, interrupted = false): void {
    if (item.recorded || !item.written) return;
    item.recorded = true;
    const t = text.trim();
    if (t === "") return;
    this.scenes.add({ role: "assistant", content: t }, interrupted ? { interrupted: true } : {});
    this.emit({ event: "addHistory", speaker: "assistant", text: t });
  }

  private onFunctionCall(responseId: string, callId: string, name: string, args: string): void {
    const r = this.responses.get(responseId);
    this.emit({ event: "functionCall", trackId: this.agentTrack, callId, name, arguments: args });
    this.scenes.add({ role: "assistant", content: null, toolCalls: [{ id: callId, name, arguments: args }] });
    if (r) {
      r.pendingTools++;
      r.hadTools = true;
    }
    this.toolsRunning++;
    const session = this.session;
    const started = this.wall();
    void this.scenes
      .runTool(name, args)
      .catch((err: unknown): ToolOutcome => ({ ok: false, content: JSON.stringify({ error: (err as Error).message }) }))
      .then((out) => {
        this.toolsRunning--;
        if (this.end) return;
        // The output goes to the session that asked (after a reconnect the new one has never heard of this call).
        if (session === this.session) session?.sendFunctionOutput(callId, out.content);
        this.scenes.add({ role: "tool", toolCallId: callId, content: out.content }, { name });
        this.emit({ event: "functionResult", callId, name, ok: out.ok, result: out.content.slice(0, 2000), durationMs: this.wall() - started });
        if (out.dtmf !== undefined) this.control({ command: "dtmf", digits: out.dtmf });
        if (out.play !== undefined) this.plays.playFile(out.play, { interruptible: false });
        if (out.collect && !this.ending) {
          if (r) r.collecting = true;
          this.startCollector(out.collect.collector, out.collect.var, out.collect.prompt);
        }
        if (r) {
          if (out.sceneChanged) r.sceneChanged = true;
          if (out.terminal && !r.terminal) r.terminal = out.terminal;
          r.pendingTools--;
          this.maybeContinue(r);
        } else if (out.sceneChanged) this.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
      });
  }

  private onResponseDone(id: string, status: string): void {
    const r = this.responses.get(id);
    if (this.activeResponse?.id === id) this.activeResponse = undefined;
    // A cancelled or failed response may end without `audio_done`: let the leg play what it has.
    for (const item of this.items.values()) if (item.responseId === id && !item.audioDone && !item.cut) this.endItemAudio(item);
    if (r) {
      r.done = true;
      if (status !== "completed") r.cancelled = true;
      // A fixed text the model did not speak at all: its utterance is over (a collector waits for its prompt's end).
      if (r.playId !== undefined && r.items === 0) this.collector?.onPlayEnded(r.playId);
      this.maybeContinue(r);
    }
    this.sendQueuedCreate();
    this.syncProtection();
    if (this.owedAnswer && !this.protectedTurn) {
      this.owedAnswer = false;
      if (!this.activeResponse && !this.requested && !this.ending) this.requestResponse({});
    }
    this.maybeArmFollowup();
  }

  /**
   * After a response with tool calls is done and every tool has answered (§5.4 "Function calls"): a scene switch
   * updates the session, a terminal tool runs after playout (no new response), otherwise the model goes on.
   */
  private maybeContinue(r: Response): void {
    if (!r.done || r.pendingTools > 0 || r.continued) return;
    r.continued = true;
    if (r.sceneChanged) {
      this.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
      for (const p of this.scenes.scene.plays) this.plays.playFile(p.file, { interruptible: p.interruptible });
    }
    if (r.terminal) {
      void this.terminalAfterPlayout(r.terminal, "tool");
      return;
    }
    if (r.autoHangup) {
      void this.terminalAfterPlayout({ kind: "hangup" }, "tool", { reason: "autohangup", initiator: "client" });
      return;
    }
    if (r.hadTools && !this.ending && !r.collecting) this.requestResponse({});
  }

  // ---------------------------------------------------------------------------------------------- responses

  /** `response.create`, or queued while a response is active (§5.4: a second one would be refused). */
  private requestResponse(req: CreateRequest): void {
    if (this.end) return;
    if (this.activeResponse || this.requested || !this.session) {
      this.queuedCreates.push(req);
      return;
    }
    this.requested = req;
    this.cancelFollowup();
    this.syncProtection();
    this.session.createResponse(req.instructions !== undefined ? { instructions: req.instructions } : {});
  }

  /**
   * A non-interruptible response (greeting with `interruptible: false`, collector prompts, `say`, goodbye) must
   * not be cut by the server either: while one is requested or active, the session's turn detection runs with
   * `interrupt_response: false` (the server does not cancel it on caller speech) and `create_response: false`
   * (the caller's words are still committed and transcribed, but answered only after it: see `owedAnswer`).
   * Sent before the `response.create` on the same socket, so the server applies it first. Local turn detection
   * needs nothing: the server never cuts or answers on its own there.
   */
  private syncProtection(): void {
    if (this.local || !this.session) return;
    const want = (this.activeResponse !== undefined && !this.activeResponse.interruptible) || this.requested?.interruptible === false;
    if (want === this.protectedTurn) return;
    this.protectedTurn = want;
    const td = this.sessionConfig().turnDetection as NonNullable<RealtimeSessionConfig["turnDetection"]>;
    this.updateSession({ turnDetection: want ? { ...td, interruptResponse: false, createResponse: false } : td });
  }

  /** `session.update`, remembering the protection it carries until the server acknowledges it. */
  private updateSession(config: RealtimeSessionConfig): void {
    if (!this.session) return;
    this.updateStates.push(this.protectedTurn);
    this.session.updateSession(config);
  }

  /**
   * Something caller speech may not cut is playing or being spoken. (A non-interruptible text only requested, not
   * started, does not count: a barge-in cuts what plays before it and leaves the request alone.)
   */
  private uninterruptible(): boolean {
    const a = this.activeResponse;
    if (a && !a.done && !a.cancelled && !a.interruptible) return true;
    for (const i of this.items.values()) if (i.written && !i.ended && !i.cut && !i.interruptible) return true;
    if (this.plays.uninterruptible()) return true;
    return false;
  }

  private sendQueuedCreate(): void {
    if (this.activeResponse || this.requested) return;
    const next = this.queuedCreates.shift();
    if (next) this.requestResponse(next);
  }

  // ---------------------------------------------------------------------------------------------- barge-in

  /**
   * §5.4 barge-in: clear the leg (fade, flush), cancel the active response, then truncate each assistant item
   * that was playing to what the caller heard of it, per the leg's ledger (`clear()`'s played ms, which counts
   * the audio already released ahead), never to what was received or sent.
   */
  private bargeIn(reason: "bargeIn" | "command"): void {
    // §2.7: what is not interruptible is never cut by the caller (explicit commands always can).
    if (reason === "bargeIn" && (!this.bargeInEnabled || this.uninterruptible())) return;
    const live = [...this.items.values()].filter((i) => i.written && !i.ended && !i.cut);
    const active = this.activeResponse;
    if (live.length === 0 && !active && !this.requested && this.plays.size === 0) return;
    // Taken before the clear: the leg reports their trackEnd from inside it.
    const legPlays = this.plays.cutAll();
    const result = this.leg.closed ? undefined : this.leg.clear({ fadeOutMs: reason === "bargeIn" ? this.fadeOutMs : 0 });
    if (active && !active.done) {
      active.cancelled = true;
      this.session?.cancelResponse();
    }
    if (reason === "bargeIn") {
      // What was queued to answer is dropped; fixed non-interruptible speech (a collector prompt, a goodbye) stays.
      const keep = this.queuedCreates.filter((q) => q.interruptible === false);
      this.queuedCreates.length = 0;
      this.queuedCreates.push(...keep);
    }
    for (const playId of legPlays) {
      const play = result?.plays.find((p) => p.playId === playId);
      if (!play) continue; // still loading: it is never written
      this.emitInterruption(playId, reason, { text: "", position: 0, totalMs: Math.round(play.totalMs), playedMs: Math.round(play.playedMs) });
    }
    for (const item of live) {
      const play = result?.plays.find((p) => p.playId === item.playId);
      const playedMs = Math.min(play?.playedMs ?? 0, item.receivedMs);
      if (!item.audioDone) this.agentOut.discard();
      item.cut = true;
      item.audioDone = true;
      this.session?.truncate(item.itemId, Math.floor(playedMs));
      const heard = heardText([{ text: item.transcript, durationMs: item.receivedMs }], playedMs);
      this.record(item, heard.text, true);
      this.emitInterruption(item.playId, reason, {
        text: heard.text,
        position: heard.position,
        totalMs: Math.round(play?.totalMs ?? item.receivedMs),
        playedMs: Math.round(playedMs),
      });
    }
    if (live.length > 0 && reason === "bargeIn") this.bargeIns++;
  }

  // ---------------------------------------------------------------------------------------------- leg events

  protected onTrackStart(e: TrackStartEvent): void {
    this.emit({ event: "trackStart", trackId: this.agentTrack, playId: e.playId });
  }

  protected onTrackEnd(e: TrackEndEvent): void {
    const item = this.byPlayId.get(e.playId);
    if (item) {
      item.ended = true;
      item.playedOut = e.reason === "finished";
      // Played out: the whole transcript was heard. Without a final transcript (the socket dropped, or the
      // response was cut short) the words that came are what was said; otherwise wait for the final one.
      if (e.reason === "finished" && !item.cut && (item.transcriptDone || this.responses.get(item.responseId)?.done !== false)) this.record(item, item.transcript);
    }
    this.plays.ended(e.playId);
    this.emitTrackEnd(e.playId, Math.round(e.playedMs), e.reason);
    this.collector?.onPlayEnded(e.playId);
    this.maybeArmFollowup();
  }

  protected onDtmf(e: DtmfEvent): void {
    if (this.end) return;
    const digit = e.digit;
    this.emit({ event: "dtmf", trackId: this.callId, digit, durationMs: e.durationMs, source: e.source });
    this.resetFollowup();
    // §2.10: while a collector runs every key goes to it (key actions are suspended).
    if (this.collector) {
      this.collector.onDigit(digit);
      return;
    }
    const action = this.scenes.keyAction(digit);
    if (this.ending) return;
    if (action) {
      // §2.9: a mapped key cuts interruptible playback at once; `say` is spoken (not interruptible) before the action.
      if (!this.uninterruptible()) this.bargeIn("command");
      if (action.say) this.say(action.say, { interruptible: false });
      switch (action.action) {
        case "goto":
          if (this.scenes.switchScene(action.scene, "dtmf")) {
            this.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
            for (const p of this.scenes.scene.plays) this.plays.playFile(p.file, { interruptible: p.interruptible });
            this.requestResponse({});
          }
          return;
        case "collect":
          this.startCollector(action.collector, action.var, undefined);
          return;
        case "hangup":
          void this.terminalAfterPlayout({ kind: "hangup" }, "dtmf");
          return;
        case "refer":
          void this.terminalAfterPlayout({ kind: "refer", target: action.target ?? "" }, "dtmf");
          return;
        case "transfer":
          void this.terminalAfterPlayout({ kind: "transfer", target: action.target ?? "", context: action.context }, "dtmf");
          return;
      }
    }
    // No key action: the model is told, as a message (§5.4), and answers.
    const text = `[the caller pressed ${digit}]`;
    this.session?.addMessage("user", text);
    this.scenes.add({ role: "user", content: text });
    this.requestResponse({});
  }

  // ---------------------------------------------------------------------------------------------- caller audio

  protected onCallerFrame(frame: AudioFrame): void {
    let pcm = frame.pcm;
    // A non-interruptible collector ignores caller speech (§2.10): the model hears silence meanwhile.
    if (this.collector !== undefined && !this.collector.interruptible) pcm = this.silence.of(pcm.length);
    if (this.vad) this.localVad(this.vad, pcm);
    if (this.session) this.pump.push(pcm);
  }

  /** `turnDetection: local`: our VAD decides speech (barge-in) and the end of the turn (commit + response). */
  private localVad(vad: CallerVad, pcm: Int16Array): void {
    for (const e of vad.push(pcm)) {
      if (e.type === "speaking") this.onCallerSpeech();
      else {
        this.onCallerTurnEnd(undefined);
        this.session?.commitAudio();
        this.requestResponse({});
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- commands

  protected command(c: ConversationCommand): void {
    switch (c.command) {
      case "tts": {
        if (c.base64) {
          this.plays.ttsAudio(c);
          return;
        }
        const text = c.text.trim();
        if (text === "") return;
        if (c.queue !== true) this.bargeIn("command");
        this.requestResponse({
          instructions: SAY_EXACTLY + JSON.stringify(text),
          playId: c.playId,
          autoHangup: c.autoHangup,
          interruptible: c.interruptible ?? c.autoHangup !== true,
        });
        return;
      }
      case "play":
        if (c.queue !== true) this.bargeIn("command");
        this.plays.playFile(c.url, { playId: c.playId, autoHangup: c.autoHangup, interruptible: c.interruptible });
        return;
      case "interrupt":
        this.bargeIn("command");
        return;
      case "pause":
        this.leg.pause();
        this.pauseFollowup();
        return;
      case "resume":
        this.leg.resume();
        this.resumeFollowup();
        return;
      case "mute":
      case "unmute":
        return this.setMute(c);
      case "hangup": {
        const end = this.hangupEnd(c);
        if (c.afterPlayout) void this.afterPlayout().then(() => this.finish(end));
        else this.finish(end);
        return;
      }
      case "history": {
        const speaker = this.historySpeaker(c);
        this.scenes.add(speaker === "assistant" ? { role: "assistant", content: c.text } : { role: speaker, content: c.text });
        this.session?.addMessage(speaker, c.text);
        this.emit({ event: "addHistory", speaker, text: c.text });
        return;
      }
    }
  }

  /** Resolves once what was written to the leg so far (and any response still streaming) has played out. */
  private async afterPlayout(): Promise<void> {
    while (!this.end && (this.activeResponse || this.requested)) {
      await new Promise<void>((resolve) => this.clock.setTimer(resolve, 20));
    }
    if (this.end || this.leg.closed) return;
    await this.leg.mark(`playout-${++this.seq}`).catch(() => undefined);
  }

  /** A terminal action (hangup, refer, transfer) once the agent's speech before it has been heard. */
  private async terminalAfterPlayout(t: Terminal, trigger: "tool" | "dtmf", hangup?: ConversationEnd): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    await this.afterPlayout();
    if (this.end) return;
    if (t.kind === "hangup") {
      this.finish(hangup ?? { reason: "agent", initiator: "agent", detail: t.detail });
      return;
    }
    this.scenes.recordTransfer(t, trigger);
    this.requestTransfer(t);
    this.ending = false;
  }

  // ---------------------------------------------------------------------------------------------- collectors (§2.10)

  /**
   * Starts a DTMF collector with the scene runner's CollectorRun (digits, finish key, lengths, timers, validation,
   * retries): its prompts and error messages are spoken by the model word for word, not interruptible.
   */
  private startCollector(name: string | undefined, varName: string | undefined, prompt: string | undefined): boolean {
    const def = name === undefined ? undefined : this.options.playbook.collectors[name];
    if (!def || !name) {
      const known = Object.keys(this.options.playbook.collectors).join(", ");
      this.emit({ event: "error", trackId: this.callId, sender: "playbook", code: "BAD_REQUEST", error: `unknown collector "${name ?? ""}"; collectors: ${known}` });
      return false;
    }
    if (!varName) {
      this.emit({ event: "error", trackId: this.callId, sender: "playbook", code: "BAD_REQUEST", error: `collector "${name}" needs a variable name` });
      return false;
    }
    this.cancelFollowup();
    this.collector?.cancel();
    const run: CollectorRun = new CollectorRun(name, def, varName, prompt ?? def.prompt, {
      say: (source) => this.say(source, { interruptible: false, prefix: "collect" }),
      setTimer: (fn, ms) =>
        this.clock.setTimer(() => {
          if (!this.end) fn();
        }, ms),
      clearTimer: (h) => this.clock.clearTimer(h as TimerHandle),
      done: (result) => this.onCollected(run, result),
    });
    this.collector = run;
    run.start();
    return true;
  }

  /** §2.10 steps 6–7: the variable, `collected`, the system note (history and model), then the model replies. */
  private onCollected(run: CollectorRun, r: CollectorResult): void {
    if (this.collector === run) this.collector = undefined;
    if (this.end) return;
    if (r.valid) this.scenes.setCollected(r.var, r.digits);
    this.emit({ event: "collected", collector: r.collector, var: r.var, digits: r.digits, valid: r.valid, attempt: r.attempt });
    const note = r.valid ? `[keypad input for ${r.var}: ${r.digits}]` : `[keypad input for ${r.var} failed after ${r.attempt} attempts]`;
    this.scenes.add({ role: "system", content: note });
    this.session?.addMessage("system", note);
    if (!this.ending) this.requestResponse({});
  }

  // ---------------------------------------------------------------------------------------------- follow-up (§2.11)

  /**
   * Arms the follow-up timer when the agent has finished: nothing requested, generated, running (tools) or playing,
   * the caller not mid-speech, no collector, not paused, not ending. Called at every `trackEnd` and `response.done`.
   */
  private maybeArmFollowup(): void {
    const f = this.scenes.scene.followup;
    if (!f || !this.started || this.end || this.ending || this.followup.paused || this.collector || this.followup.running) return;
    if (this.activeResponse || this.requested || this.queuedCreates.length > 0 || this.toolsRunning > 0) return;
    if (this.speechStartMs !== undefined || this.plays.size > 0) return;
    for (const i of this.items.values()) if (i.written && !i.ended) return;
    this.followup.arm(f.timeout);
  }

  private cancelFollowup(): void {
    this.followup.cancel();
  }

  /** Caller speech, a transcript or a key press: the timer stops and the count starts again. */
  private resetFollowup(): void {
    this.followup.reset();
  }

  /** `pause`: the timer keeps what is left of it. */
  private pauseFollowup(): void {
    this.followup.pause();
  }

  private resumeFollowup(): void {
    if (this.followup.resume(!this.ending && !this.collector && !this.end)) this.maybeArmFollowup();
  }

  /**
   * The caller stayed silent: a follow-up (its `text` spoken word for word, interruptible, or, without text, the
   * system note and a model reply), or after `max` in a row the `goodbye` (not interruptible) and hangup
   * `maxFollowUp` once it has played.
   */
  private onFollowupTimer(): void {
    const f = this.scenes.scene.followup;
    if (!f || this.end || this.ending) return;
    const next = this.followup.next(f);
    if (next.kind !== "goodbye") this.scenes.followUps++;
    if (next.kind === "say") {
      if (this.say(next.text, { interruptible: true, prefix: "followup" }) === undefined) this.maybeArmFollowup();
      return;
    }
    if (next.kind === "note") {
      this.scenes.add({ role: "system", content: next.text });
      this.session?.addMessage("system", next.text);
      this.requestResponse({});
      return;
    }
    if (next.text !== undefined) this.say(next.text, { interruptible: false, prefix: "goodbye" });
    void this.terminalAfterPlayout({ kind: "hangup" }, "tool", { reason: "maxFollowUp", initiator: "agent" });
  }

  // ---------------------------------------------------------------------------------------------- drop / end

  /**
   * The socket dropped (§5.4): reconnect once with the session set-up and the history replayed as text items;
   * a second drop, or a reconnect that fails, ends the call with `error`.
   */
  private async onDrop(why: string): Promise<void> {
    const old = this.session;
    this.session = undefined;
    this.pump.reset();
    // The response in progress is lost with the socket: the leg plays what it already has.
    for (const item of this.items.values()) if (!item.audioDone && !item.cut) this.endItemAudio(item);
    for (const r of this.responses.values()) r.done = true;
    // Fixed texts that will never be spoken now: a collector waiting for its prompt's end starts its timer.
    for (const req of [...(this.requested ? [this.requested] : []), ...this.queuedCreates]) if (req.playId !== undefined) this.collector?.onPlayEnded(req.playId);
    this.activeResponse = undefined;
    this.requested = undefined;
    this.queuedCreates.length = 0;
    this.protectedTurn = false; // the new session starts from the full set-up
    this.owedAnswer = false;
    void old?.close().catch(() => undefined);
    if (this.reconnected) {
      this.fail(`realtime ${why} again after a reconnect`);
      return;
    }
    this.reconnected = true;
    this.log?.warn({ why }, "realtime connection dropped; reconnecting");
    const delayMs = this.options.reconnectDelayMs ?? 250;
    await new Promise<void>((resolve) => this.clock.setTimer(resolve, delayMs));
    if (this.end) return;
    let session: RealtimeSession;
    const limit = deadline(this.options.reconnectTimeoutMs ?? 3000, this.abort.signal);
    try {
      session = await this.options.provider.connect(this.sessionConfig(), { signal: limit.signal });
    } catch (err) {
      this.fail(`realtime ${why} and the reconnect failed: ${(err as Error).message}`, err);
      return;
    } finally {
      limit.clear();
    }
    if (this.end) {
      await session.close();
      return;
    }
    for (const h of this.scenes.history) {
      const m = h.message;
      if (m.role === "tool" || typeof m.content !== "string" || m.content === "") continue;
      session.addMessage(m.role, m.content);
    }
    this.log?.info({ replayed: this.scenes.history.length }, "realtime reconnected");
    this.attach(session);
  }

  /** An unrecoverable failure: `error {sender: realtime}`, then hangup reason `error` (the post-call hook runs). */
  private fail(message: string, cause?: unknown): void {
    if (this.end) return;
    const code = isAppError(cause) ? cause.code : "PROVIDER_ERROR";
    this.emit({ event: "error", trackId: this.callId, sender: "realtime", code, error: message });
    this.finish({ reason: "error", initiator: "system", detail: message });
  }

  protected teardown(): void {
    this.cancelFollowup();
    this.collector?.cancel();
    this.collector = undefined;
    this.scenes.stop();
    this.abort.abort();
  }

  protected async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close().catch(() => undefined);
  }
}
