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
import { resample } from "../../audio/index.js";
import { AlignedResampler } from "../../audio/index.js";
import { AppError, isAppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import { realClock } from "../../media/clock.js";
import { TypedEmitter } from "../../media/emitter.js";
import type { MediaLeg, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import type { HistoryEntry } from "../../playbook/runner/index.js";
import type { Playbook } from "../../playbook/types.js";
import type { CallFacts } from "../../playbook/variables.js";
import type { RealtimeEvent, RealtimeProvider, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import { SpeechDetector, createVadEngine, type SpeechDetectorOptions, type VadEngine, type VadEvent } from "../../vad/index.js";
import type {
  Conversation,
  ConversationCommand,
  ConversationEnd,
  ConversationEvent,
  ConversationEvents,
  ConversationSnapshot,
  ErrorSender,
} from "../conversation.js";
import type { ControlRequest } from "../serial/serial-conversation.js";
import { loadSoundSource } from "../serial/sound-source.js";
import { heardText } from "../turn/heard-text.js";
import { AgentAudioOut, CallerAudioPump, chooseAudioFormat, sessionRateOf, type LegCodec } from "./audio-bridge.js";
import { RealtimeScenes, type Terminal, type ToolOutcome } from "./scenes.js";

export interface RealtimeConversationOptions {
  leg: MediaLeg;
  provider: RealtimeProvider;
  /** The playbook after option overrides; `settings.realtime` already laid over `[defaults.realtime]`. */
  playbook: Playbook;
  call: CallFacts;
  variables?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** `trackId` of caller-side events (default the call id). */
  callId?: string;
  /** `trackId` of agent-side events (default "server-side-track"). */
  agentTrackId?: string;
  /** The leg's wire codec, for `audioFormat: auto`. */
  wire?: LegCodec;
  /** No caller audio for this long ends the call (`inactivity`); 0 = off. */
  inactivityTimeoutMs?: number;
  /** `interruption.strategy: none` turns barge-in off; `fadeOutMs` fades the cut (default 20). */
  interruption?: { enabled?: boolean; fadeOutMs?: number };
  /** Our own VAD, for `turnDetection.type: local`. */
  vad?: { engine?: VadEngine; type?: string; detector?: SpeechDetectorOptions };
  clock?: MediaClock;
  wallClock?: () => number;
  soundsDir?: string;
  cacheDir?: string;
  timeZone?: string;
  fetch?: typeof fetch;
  log?: Logger;
  /** Pause before the one reconnect after a drop (default 250 ms; §5.4 allows up to 3 s in all). */
  reconnectDelayMs?: number;
  /** Time allowed for the reconnect itself (default 3000 ms). */
  reconnectTimeoutMs?: number;
  /** Caller audio per `input_audio_buffer.append` (default 40 ms). */
  appendMs?: number;
}

export type RealtimeConversationEvents = ConversationEvents & {
  /** Transfers and DTMF out: things only the call layer can do (same shape as the serial pipeline's). */
  control: [ControlRequest];
};

/** One assistant audio item = one agent utterance on the leg. */
interface Item {
  itemId: string;
  responseId: string;
  playId: string;
  /** Session audio received for it (ms): `truncate` never goes beyond it. */
  receivedMs: number;
  transcript: string;
  /** The final transcript came. */
  transcriptDone: boolean;
  written: boolean;
  audioDone: boolean;
  /** Its trackEnd came (played out or stopped). */
  ended: boolean;
  /** Its trackEnd said it played to its end. */
  playedOut: boolean;
  /** Cut by a barge-in: later audio of it is dropped. */
  cut: boolean;
  /** Its assistant history entry was written (after playout, or at the cut). */
  recorded: boolean;
}

interface Response {
  id: string;
  cancelled: boolean;
  done: boolean;
  pendingTools: number;
  hadTools: boolean;
  sceneChanged: boolean;
  terminal: (Terminal & { trigger?: "tool" }) | undefined;
  /** `tts autoHangup`: hang up once it has played. */
  autoHangup: boolean;
  continued: boolean;
  /** playId for its first audio item (a `tts` command's). */
  playId: string | undefined;
  items: number;
}

interface CreateRequest {
  instructions?: string | undefined;
  playId?: string | undefined;
  autoHangup?: boolean | undefined;
}

const DEFAULT_TRANSCRIPTION = { model: "gpt-4o-mini-transcribe" };
const SAY_EXACTLY = "Say exactly the following to the caller, word for word, and nothing else: ";

export class RealtimeConversation implements Conversation {
  readonly events = new TypedEmitter<RealtimeConversationEvents>((err) => this.log?.error({ err }, "conversation listener failed"));
  readonly closed: Promise<ConversationEnd>;
  readonly scenes: RealtimeScenes;

  private readonly leg: MediaLeg;
  private readonly clock: MediaClock;
  private readonly wall: () => number;
  private readonly callId: string;
  private readonly agentTrack: string;
  private readonly log: Logger | undefined;
  private readonly format;
  private readonly sessionRate: number;
  private readonly pump: CallerAudioPump;
  private readonly agentOut: AgentAudioOut;
  private readonly local: boolean;
  private readonly bargeInEnabled: boolean;
  private readonly fadeOutMs: number;
  private resolveClosed!: (end: ConversationEnd) => void;

  private session: RealtimeSession | undefined;
  private started = false;
  private end: ConversationEnd | undefined;
  private reconnected = false;
  private readonly offLeg: (() => void)[] = [];
  private readonly abort = new AbortController();

  private readonly items = new Map<string, Item>();
  private readonly byPlayId = new Map<string, Item>();
  private readonly responses = new Map<string, Response>();
  private activeResponse: Response | undefined;
  /** A response.create was sent and its response.created has not come yet. */
  private requested: CreateRequest | undefined;
  private readonly queuedCreates: CreateRequest[] = [];
  private ending = false;
  private seq = 0;

  private callerMuted = false;
  private agentMuted = false;
  private silence = new Int16Array(0);
  private detector: SpeechDetector | undefined;
  private vadResampler: AlignedResampler | undefined;
  private speechStartMs: number | undefined;
  private speechStoppedAt: number | undefined;
  private asrIndex = 0;
  /** Caller turns whose transcript has not come yet, by input item id (a placeholder keeps the history in order). */
  private readonly pendingUser = new Map<string, HistoryEntry>();
  private turns = 0;
  private bargeIns = 0;
  private lastCallerFrameAt = 0;
  private inactivityTimer: TimerHandle | undefined;

  constructor(private readonly options: RealtimeConversationOptions) {
    this.leg = options.leg;
    this.clock = options.clock ?? realClock;
    this.wall = options.wallClock ?? (() => Date.now());
    this.callId = options.callId ?? options.leg.id;
    this.agentTrack = options.agentTrackId ?? "server-side-track";
    this.log = options.log;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const rt = options.playbook.settings.realtime ?? {};
    this.format = chooseAudioFormat(rt.audioFormat, this.leg, options.wire);
    this.sessionRate = sessionRateOf(this.format);
    this.pump = new CallerAudioPump(this.leg.callerRate, this.sessionRate, options.appendMs ?? 40, (f) => this.session?.sendAudio(f));
    this.agentOut = new AgentAudioOut(this.sessionRate, this.leg.agentRate);
    this.local = rt.turnDetection?.type === "local";
    this.bargeInEnabled = options.interruption?.enabled ?? true;
    this.fadeOutMs = options.interruption?.fadeOutMs ?? 20;
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
    this.offLeg.push(
      this.leg.events.on("trackStart", (e) => this.onTrackStart(e)),
      this.leg.events.on("trackEnd", (e) => this.onTrackEnd(e)),
      this.leg.events.on("dtmf", (e) => this.onDtmf(e.digit, e.durationMs, e.source)),
      this.leg.events.on("close", () => void this.stop({ reason: "caller", initiator: "caller" })),
    );
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
    this.lastCallerFrameAt = this.clock.now();
    this.armInactivity();
    void this.callerLoop();
    this.greet();
  }

  handleCommand(command: ConversationCommand): void {
    if (this.end) return;
    try {
      this.command(command);
    } catch (err) {
      this.emitError("command", err);
    }
  }

  async stop(end: ConversationEnd = { reason: "shutdown", initiator: "system" }): Promise<void> {
    this.finish(end);
    await this.closed;
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
    const engine = this.options.vad?.engine ?? (await createVadEngine(this.options.vad?.type ?? "tinysilero"));
    const rate = engine.sampleRates.includes(this.leg.callerRate) ? this.leg.callerRate : (engine.sampleRates[0] ?? 16000);
    if (rate !== this.leg.callerRate) this.vadResampler = new AlignedResampler(this.leg.callerRate, rate);
    const silenceMs = this.options.playbook.settings.realtime?.turnDetection?.silenceDurationMs ?? 500;
    this.detector = new SpeechDetector(engine.createStream(rate), { ...this.options.vad?.detector, minSilenceMs: silenceMs });
  }

  /** The initial scene's plays, then the greeting: a fixed text is spoken by the model word for word. */
  private greet(): void {
    for (const p of this.scenes.scene.plays) this.playFile(p.file);
    const g = this.options.playbook.greeting;
    if (g === false) return;
    if (g.play) this.playFile(g.play);
    if (g.text !== undefined) {
      const text = this.scenes.render(g.text).trim();
      if (text !== "") this.requestResponse({ instructions: SAY_EXACTLY + JSON.stringify(text), playId: "greeting" });
    } else if (g.generate) this.requestResponse({});
  }

  private attach(session: RealtimeSession): void {
    this.session = session;
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
      case "ready":
      case "session_updated":
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
    };
    this.responses.set(id, r);
    this.activeResponse = r;
  }

  /** The item's record, created at its first audio or transcript. */
  private item(responseId: string, itemId: string): Item {
    let item = this.items.get(itemId);
    if (item) return item;
    const r = this.responses.get(responseId);
    let playId = r && r.items === 0 && r.playId !== undefined ? r.playId : `rt-${++this.seq}`;
    if (this.byPlayId.has(playId)) playId = `${playId}-${++this.seq}`;
    if (r) r.items++;
    item = { itemId, responseId, playId, receivedMs: 0, transcript: "", transcriptDone: false, written: false, audioDone: false, ended: false, playedOut: false, cut: false, recorded: false };
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

  private writeAgent(playId: string, pcm: Int16Array): void {
    if (pcm.length === 0 || this.leg.closed) return;
    if (this.agentMuted) {
      if (this.silence.length < pcm.length) this.silence = new Int16Array(pcm.length);
      this.leg.write(playId, this.silence.subarray(0, pcm.length));
    } else this.leg.write(playId, pcm);
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
    const session = this.session;
    const started = this.wall();
    void this.scenes
      .runTool(name, args)
      .catch((err: unknown): ToolOutcome => ({ ok: false, content: JSON.stringify({ error: (err as Error).message }) }))
      .then((out) => {
        if (this.end) return;
        // The output goes to the session that asked (after a reconnect the new one has never heard of this call).
        if (session === this.session) session?.sendFunctionOutput(callId, out.content);
        this.scenes.add({ role: "tool", toolCallId: callId, content: out.content }, { name });
        this.emit({ event: "functionResult", callId, name, ok: out.ok, result: out.content.slice(0, 2000), durationMs: this.wall() - started });
        if (out.dtmf !== undefined) this.events.emit("control", { command: "dtmf", digits: out.dtmf });
        if (out.play !== undefined) this.playFile(out.play);
        if (r) {
          if (out.sceneChanged) r.sceneChanged = true;
          if (out.terminal && !r.terminal) r.terminal = out.terminal;
          r.pendingTools--;
          this.maybeContinue(r);
        } else if (out.sceneChanged) this.session?.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
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
      this.maybeContinue(r);
    }
    this.sendQueuedCreate();
  }

  /**
   * After a response with tool calls is done and every tool has answered (§5.4 "Function calls"): a scene switch
   * updates the session, a terminal tool runs after playout (no new response), otherwise the model goes on.
   */
  private maybeContinue(r: Response): void {
    if (!r.done || r.pendingTools > 0 || r.continued) return;
    r.continued = true;
    if (r.sceneChanged) {
      this.session?.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
      for (const p of this.scenes.scene.plays) this.playFile(p.file);
    }
    if (r.terminal) {
      void this.terminalAfterPlayout(r.terminal, "tool");
      return;
    }
    if (r.autoHangup) {
      void this.terminalAfterPlayout({ kind: "hangup" }, "tool", { reason: "autohangup", initiator: "client" });
      return;
    }
    if (r.hadTools && !this.ending) this.requestResponse({});
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
    this.session.createResponse(req.instructions !== undefined ? { instructions: req.instructions } : {});
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
    if (reason === "bargeIn" && !this.bargeInEnabled) return;
    const live = [...this.items.values()].filter((i) => i.written && !i.ended && !i.cut);
    const active = this.activeResponse;
    if (live.length === 0 && !active && !this.requested) return;
    const result = this.leg.closed ? undefined : this.leg.clear({ fadeOutMs: reason === "bargeIn" ? this.fadeOutMs : 0 });
    if (active && !active.done) {
      active.cancelled = true;
      this.session?.cancelResponse();
    }
    if (reason === "bargeIn") this.queuedCreates.length = 0;
    for (const item of live) {
      const play = result?.plays.find((p) => p.playId === item.playId);
      const playedMs = Math.min(play?.playedMs ?? 0, item.receivedMs);
      if (!item.audioDone) this.agentOut.discard();
      item.cut = true;
      item.audioDone = true;
      this.session?.truncate(item.itemId, Math.floor(playedMs));
      const heard = heardText([{ text: item.transcript, durationMs: item.receivedMs }], playedMs);
      this.record(item, heard.text, true);
      this.emit({
        event: "interruption",
        trackId: this.agentTrack,
        playId: item.playId,
        reason,
        subtitle: heard.text,
        position: heard.position,
        totalDuration: Math.round(play?.totalMs ?? item.receivedMs),
        current: Math.round(playedMs),
      });
    }
    if (live.length > 0 && reason === "bargeIn") this.bargeIns++;
  }

  // ---------------------------------------------------------------------------------------------- leg events

  private onTrackStart(e: TrackStartEvent): void {
    this.emit({ event: "trackStart", trackId: this.agentTrack, playId: e.playId });
  }

  private onTrackEnd(e: TrackEndEvent): void {
    const item = this.byPlayId.get(e.playId);
    if (item) {
      item.ended = true;
      item.playedOut = e.reason === "finished";
      // Played out: the whole transcript was heard. Without a final transcript (the socket dropped, or the
      // response was cut short) the words that came are what was said; otherwise wait for the final one.
      if (e.reason === "finished" && !item.cut && (item.transcriptDone || this.responses.get(item.responseId)?.done !== false)) this.record(item, item.transcript);
    }
    this.emit({ event: "trackEnd", trackId: this.agentTrack, playId: e.playId, duration: Math.round(e.playedMs), ssrc: 0, reason: e.reason });
  }

  private onDtmf(digit: string, durationMs: number | undefined, source: string | undefined): void {
    if (this.end) return;
    this.emit({ event: "dtmf", trackId: this.callId, digit, durationMs, source });
    const action = this.scenes.keyAction(digit);
    if (this.ending) return;
    if (action && action.action !== "collect") {
      this.bargeIn("command");
      if (action.say) this.requestResponse({ instructions: SAY_EXACTLY + JSON.stringify(this.scenes.render(action.say).trim()) });
      switch (action.action) {
        case "goto":
          if (this.scenes.switchScene(action.scene, "dtmf")) {
            this.session?.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
            for (const p of this.scenes.scene.plays) this.playFile(p.file);
            this.requestResponse({});
          }
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

  private async callerLoop(): Promise<void> {
    try {
      for await (const frame of this.leg.callerAudio) {
        if (this.end) break;
        this.lastCallerFrameAt = this.clock.now();
        let pcm = frame.pcm;
        if (this.callerMuted) {
          if (this.silence.length < pcm.length) this.silence = new Int16Array(pcm.length);
          pcm = this.silence.subarray(0, pcm.length);
        }
        if (this.detector) this.localVad(pcm);
        if (this.session) this.pump.push(pcm);
      }
    } catch (err) {
      this.emitError("media", err);
    }
  }

  /** `turnDetection: local`: our VAD decides speech (barge-in) and the end of the turn (commit + response). */
  private localVad(pcm: Int16Array): void {
    const detector = this.detector as SpeechDetector;
    const events: readonly VadEvent[] = detector.push(this.vadResampler ? this.vadResampler.process(pcm) : pcm);
    for (const e of events) {
      if (e.type === "speaking") this.onCallerSpeech();
      else {
        this.onCallerTurnEnd(undefined);
        this.session?.commitAudio();
        this.requestResponse({});
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- commands

  private command(c: ConversationCommand): void {
    switch (c.command) {
      case "tts": {
        const text = c.text.trim();
        if (c.base64) throw new AppError("UNSUPPORTED", "tts with base64 audio is not available on a realtime call; use play");
        if (text === "") return;
        if (c.queue !== true) this.bargeIn("command");
        this.requestResponse({ instructions: SAY_EXACTLY + JSON.stringify(text), playId: c.playId, autoHangup: c.autoHangup });
        return;
      }
      case "play":
        if (c.queue !== true) this.bargeIn("command");
        this.playFile(c.url, c.playId, c.autoHangup);
        return;
      case "interrupt":
        this.bargeIn("command");
        return;
      case "pause":
        this.leg.pause();
        return;
      case "resume":
        this.leg.resume();
        return;
      case "mute":
      case "unmute": {
        const on = c.command === "mute";
        const t = c.trackId;
        if (t !== undefined && t !== this.callId && t !== this.agentTrack) throw new AppError("BAD_REQUEST", `unknown trackId "${t}"`);
        if (t === undefined || t === this.callId) this.callerMuted = on;
        if (t === undefined || t === this.agentTrack) this.agentMuted = on;
        return;
      }
      case "hangup": {
        const initiator = (c.initiator as string | undefined) === "callee" ? "agent" : (c.initiator ?? "client");
        const end: ConversationEnd = { reason: "client", initiator, detail: c.reason, headers: c.headers };
        if (c.afterPlayout) void this.afterPlayout().then(() => this.finish(end));
        else this.finish(end);
        return;
      }
      case "history": {
        const speaker = c.speaker === "assistant" || c.speaker === "system" ? c.speaker : "user";
        this.scenes.add(speaker === "assistant" ? { role: "assistant", content: c.text } : { role: speaker, content: c.text });
        this.session?.addMessage(speaker, c.text);
        this.emit({ event: "addHistory", speaker, text: c.text });
        return;
      }
    }
  }

  /** A sound file (or http(s) URL) played through the leg as its own utterance. */
  private playFile(url: string, playId = `play-${++this.seq}`, autoHangup = false): void {
    void (async () => {
      try {
        const sound = await loadSoundSource(url, this.abort.signal, { soundsDir: this.options.soundsDir, cacheDir: this.options.cacheDir });
        if (this.end || this.leg.closed) return;
        const pcm = sound.sampleRate === this.leg.agentRate ? sound.pcm : resample(sound.pcm, sound.sampleRate, this.leg.agentRate);
        this.leg.write(playId, pcm);
        this.leg.endPlay(playId);
        if (autoHangup) {
          await this.leg.mark(`play-end-${++this.seq}`, playId);
          this.finish({ reason: "autohangup", initiator: "client" });
        }
      } catch (err) {
        if (!this.end) this.emitError("command", err);
      }
    })();
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
    if (t.kind === "refer") {
      this.emit({ event: "transfer", trackId: this.callId, mode: "refer", target: t.target, state: "requested" });
      this.events.emit("control", { command: "refer", callee: t.target });
    } else {
      this.emit({ event: "transfer", trackId: this.callId, mode: "dialplan", target: t.target, context: t.context, state: "requested" });
      this.events.emit("control", { command: "transfer", target: t.target, mode: "dialplan", ...(t.context ? { context: t.context } : {}) });
    }
    this.ending = false;
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
    this.activeResponse = undefined;
    this.requested = undefined;
    this.queuedCreates.length = 0;
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
    const timeout = AbortSignal.timeout(this.options.reconnectTimeoutMs ?? 3000);
    try {
      session = await this.options.provider.connect(this.sessionConfig(), { signal: AbortSignal.any([this.abort.signal, timeout]) });
    } catch (err) {
      this.fail(`realtime ${why} and the reconnect failed: ${(err as Error).message}`, err);
      return;
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

  private armInactivity(): void {
    const ms = this.options.inactivityTimeoutMs ?? 0;
    if (ms <= 0 || this.end) return;
    const check = (): void => {
      this.inactivityTimer = undefined;
      if (this.end) return;
      const idle = this.clock.now() - this.lastCallerFrameAt;
      if (idle >= ms) {
        this.emit({ event: "inactivity", trackId: this.callId });
        this.finish({ reason: "inactivityTimeout", initiator: "system" });
        return;
      }
      this.inactivityTimer = this.clock.setTimer(check, Math.min(1000, ms - idle));
    };
    this.inactivityTimer = this.clock.setTimer(check, Math.min(1000, ms));
  }

  private finish(end: ConversationEnd): void {
    if (this.end) return;
    this.end = end;
    if (this.inactivityTimer !== undefined) this.clock.clearTimer(this.inactivityTimer);
    for (const off of this.offLeg) off();
    this.scenes.stop();
    this.abort.abort();
    if (!this.leg.closed) this.leg.clear();
    this.emit({ event: "hangup", trackId: this.callId, reason: end.reason, initiator: end.initiator, detail: end.detail });
    const session = this.session;
    this.session = undefined;
    void (session ? session.close().catch(() => undefined) : Promise.resolve()).finally(() => this.resolveClosed(end));
  }

  // ---------------------------------------------------------------------------------------------- events

  private emit(e: DistributiveOmit<ConversationEvent, "timestamp">): void {
    this.events.emit("event", { ...e, timestamp: this.wall() } as ConversationEvent);
  }

  private emitError(sender: ErrorSender, err: unknown): void {
    const code = isAppError(err) ? err.code : "INTERNAL";
    const message = (err as Error)?.message ?? String(err);
    this.log?.warn({ sender, code, err }, "realtime conversation error");
    this.emit({ event: "error", trackId: this.callId, sender, code, error: message });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
