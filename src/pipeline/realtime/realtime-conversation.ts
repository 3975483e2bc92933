/**
 * RealtimeConversation: the Conversation seam over a duplex speech model (OpenAI / Azure Realtime,
 * media-protocols.md §5.4), a ConversationCore (../core/) whose replies the model makes and speaks itself.
 * A playbook with a `realtime:` key runs here instead of the serial pipeline. This file wires the parts and
 * decides between them (the barge-in, what a `response.done` leads to, the follow-up, the drop):
 *
 *  caller frames (core: mute, inactivity) -> CallerAudioPump (audio-bridge.ts: resample to 24 kHz, or µ-law
 *     passthrough) -> input_audio_buffer.append; with `turnDetection: local` also our VAD (CallerTurns) ->
 *     commit + response.create
 *  server events -> CallerTurns (caller-turns.ts: speech, turn ends, transcripts), Responses (responses.ts:
 *     response.create one at a time, the rest queued; a record per response), AgentItems (agent-items.ts: audio
 *     items -> AgentAudioOut -> leg.write / endPlay, paced by the leg; the history entry once heard)
 *  speech_started (or our VAD) -> barge-in: leg.clear, response.cancel, conversation.item.truncate with what the
 *     leg's ledger says the caller heard of each item
 *  function calls -> ToolCalls (tool-calls.ts) -> RealtimeScenes (scenes.ts: playbook tools, scene switches) ->
 *     function_call_output, then, after the response is done, response.create (a scene switch first sends
 *     session.update)
 *  DTMF -> Keypad (keypad.ts): key actions, a DTMF collector, or a message to the model
 *  `play`, scene `<play>`s, `tts base64` -> LegPlays (leg-plays.ts): through the leg, not the model
 *  hangup / refer / transfer -> Terminals (terminal.ts): once the agent's speech before it was heard
 *  caller silence after the agent spoke -> `followup` (§2.11, the runner's FollowupClock)
 *  non-interruptible speech (greeting `interruptible: false`, collector prompts, `say`, goodbye) -> never cut by
 *     the caller: no barge-in, and the session runs protected (Responses: interrupt_response/create_response off)
 *
 * The session set-up and the reconnect live in session.ts: a dropped socket is reconnected once, with the history
 * replayed as text items; a second drop (or a failed reconnect) ends the call with an `error` event and hangup
 * reason `error`. Failures never escape: every async path catches and turns into an `error` event.
 */
import type { AudioFrame } from "../../audio/index.js";
import { AppError, isAppError } from "../../errors.js";
import type { TimerHandle } from "../../media/clock.js";
import type { DtmfEvent, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import { FollowupClock } from "../../playbook/runner/index.js";
import type { RealtimeEvent, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import type { Conversation, ConversationCommand, ConversationSnapshot } from "../conversation.js";
import { validateCommand } from "../core/commands.js";
import { ConversationCore, WaitInputTimer, type CoreEvents } from "../core/index.js";
import { isPbxUrl } from "../core/sound-source.js";
import { AgentItems } from "./agent-items.js";
import { BargeIn } from "./barge-in.js";
import { CallerAudioPump, chooseAudioFormat, sessionRateOf } from "./audio-bridge.js";
import { CallerTurns } from "./caller-turns.js";
import { Keypad } from "./keypad.js";
import { LegPlays } from "./leg-plays.js";
import { Responses } from "./responses.js";
import { RealtimeScenes } from "./scenes.js";
import { reconnect, sessionConfigOf, type ReconnectHost } from "./session.js";
import { Terminals } from "./terminal.js";
import { ToolCalls } from "./tool-calls.js";
import type { RealtimeConversationOptions } from "./types.js";

export type RealtimeConversationEvents = CoreEvents;
export type { RealtimeConversationOptions };

const SAY_EXACTLY = "Say exactly the following to the caller, word for word, and nothing else: ";

export class RealtimeConversation extends ConversationCore<RealtimeConversationEvents> implements Conversation {
  readonly scenes: RealtimeScenes;

  private readonly format;
  private readonly sessionRate: number;
  private readonly pump: CallerAudioPump;
  private readonly local: boolean;

  private session: RealtimeSession | undefined;
  private readonly redial: ReconnectHost;
  private reconnected = false;
  private readonly abort = new AbortController();

  /** What the model was asked for and is generating, and the session protection. */
  private readonly responses: Responses;
  /** The model's audio items on the leg. */
  private readonly items: AgentItems;
  /** Sounds playing (or loading) on the leg that are not model items. */
  private readonly plays: LegPlays;
  private readonly caller: CallerTurns;
  /** Key actions and the DTMF collector (§2.9, §2.10). */
  private readonly keypad: Keypad;
  private readonly tools: ToolCalls;
  /** Hangup, refer or transfer after the playout; `ending` meanwhile. */
  private readonly terminals: Terminals;
  /** The barge-in policy and the cut. */
  private readonly cuts: BargeIn;
  /** `waitInputTimeout` of the sounds played through the leg. */
  private readonly waitInput: WaitInputTimer;
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
    this.local = rt.turnDetection?.type === "local";
    const interruption = { ...options.interruption, ...(options.interruption?.enabled === false ? { strategy: "none" as const } : {}) };
    this.waitInput = new WaitInputTimer(this.clock, this.wall, (startTime, duration) =>
      this.emit({ event: "silence", trackId: this.callId, startTime, duration, reason: "waitInputTimeout" }),
    );
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
    // What every part may ask of the conversation (each part's host interface takes what it needs).
    const base = {
      leg: this.leg,
      clock: this.clock,
      callId: this.callId,
      agentTrack: this.agentTrack,
      scenes: this.scenes,
      session: (): RealtimeSession | undefined => this.session,
      ended: (): boolean => this.end !== undefined,
      ending: (): boolean => this.terminals.ending,
      nextSeq: (): number => ++this.seq,
      emit: this.emit.bind(this),
      writeAgent: this.writeAgent.bind(this),
      resetFollowup: () => this.followup.reset(),
      cancelFollowup: () => this.followup.cancel(),
      sceneChanged: (plays: boolean) => this.sceneChanged(plays),
    };
    this.responses = new Responses({
      ...base,
      local: this.local,
      turnDetection: () => this.sessionConfig().turnDetection as NonNullable<RealtimeSessionConfig["turnDetection"]>,
      busy: base.cancelFollowup,
    });
    this.terminals = new Terminals({
      ...base,
      responses: this.responses,
      finish: (end) => this.finish(end),
      requestTransfer: (t) => this.requestTransfer(t),
    });
    this.items = new AgentItems({
      ...base,
      sessionRate: this.sessionRate,
      responses: this.responses,
      firstAudio: (responseId) => this.caller.answered(responseId),
      interruption: (playId, reason, heard) => this.emitInterruption(playId, reason, heard),
    });
    this.plays = new LegPlays({
      ...base,
      signal: this.abort.signal,
      soundsDir: options.soundsDir,
      cacheDir: options.cacheDir,
      started: base.cancelFollowup,
      failed: (playId, err) => {
        // As on the serial pipeline (§3.5): error {sender media}, then trackEnd {reason error}; the queue goes on.
        this.emitError("media", err);
        this.emitTrackEnd(playId, 0, "error");
        this.keypad.playEnded(playId);
        this.maybeArmFollowup();
      },
      autoHangup: () => this.finish({ reason: "autohangup", initiator: "client" }),
      replace: () => this.cuts.cut("replaced"),
      pbxPlayer: options.pbxPlayer,
      trackStarted: (e) => this.onTrackStart(e),
      trackEnded: (e) => this.onTrackEnd(e),
    });
    this.cuts = new BargeIn(
      {
        leg: this.leg,
        responses: this.responses,
        items: this.items,
        plays: this.plays,
        interruption: (playId, reason, heard) => this.emitInterruption(playId, reason, heard),
        trackEnded: (e, reason) => this.trackEnded(e, reason),
      },
      interruption,
      this.local,
    );
    this.caller = new CallerTurns({
      ...base,
      speaking: (startMs) => {
        this.waitInput.cancel();
        this.cuts.speaking(startMs);
      },
      silence: () => this.cuts.silence(),
      transcript: (final, text) => {
        if (text.trim() !== "") this.waitInput.cancel();
        this.cuts.transcript(final, text);
      },
      turnEnded: () => {
        this.keypad.callerTurnEnded();
        this.responses.turnEnded();
      },
      localTurnEnd: () => {
        this.session?.commitAudio();
        this.responses.request({});
      },
    });
    this.keypad = new Keypad({
      ...base,
      playbook: options.playbook,
      say: (source, opts) => this.say(source, opts),
      uninterruptible: () => this.cuts.uninterruptible(),
      cutPlayback: () => this.cuts.cut("command"),
      answer: () => this.responses.request({}),
      terminal: (t) => void this.terminals.run(t, "dtmf"),
    });
    this.tools = new ToolCalls({
      ...base,
      responses: this.responses,
      wall: () => this.wall(),
      control: (c) => this.control(c),
      play: (file) => this.plays.playFile({ url: file, interruptible: false }),
      collect: (c) => this.keypad.startCollector(c.collector, c.var, c.prompt),
      terminal: (t, hangup) => void this.terminals.run(t, "tool", hangup),
    });
    this.redial = {
      ...base,
      provider: options.provider,
      signal: this.abort.signal,
      delayMs: options.reconnectDelayMs ?? 250,
      timeoutMs: options.reconnectTimeoutMs ?? 3000,
      log: this.log,
      config: () => this.sessionConfig(),
      history: () => this.scenes.history,
      fail: (message, cause) => this.fail(message, cause),
    };
  }

  /** The session format chosen for this leg (`pcm16` = 24 kHz, `pcmu`/`pcma` = 8 kHz passthrough). */
  get audioFormat(): string {
    return this.format;
  }

  /** What `session.update` carries now: the current scene's instructions and tools, and the audio set-up. */
  sessionConfig(): RealtimeSessionConfig {
    return sessionConfigOf(this.options.playbook.settings.realtime ?? {}, this.scenes, this.format, this.cuts.enabled);
  }

  // ---------------------------------------------------------------------------------------------- public

  async start(): Promise<void> {
    if (this.started || this.end) return;
    this.started = true;
    this.hookLeg();
    try {
      if (this.local) await this.caller.setupVad(this.options.playbook.settings.realtime?.turnDetection?.silenceDurationMs ?? 500, this.options.vad);
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
      runner: this.scenes.snapshot(this.followup.total),
      turns: { turns: this.caller.turns, speculations: 0, hits: 0, misses: 0, dropped: 0 },
      interruptions: this.cuts.stats,
      end: this.end,
    };
  }

  // ---------------------------------------------------------------------------------------------- start-up

  /** The initial scene's plays, then the greeting: a fixed text is spoken by the model word for word. */
  private greet(): void {
    this.scenePlays();
    const g = this.options.playbook.greeting;
    if (g === false) return;
    if (g.play) this.plays.playFile({ url: g.play, interruptible: g.interruptible });
    if (g.text !== undefined) this.say(g.text, { interruptible: g.interruptible, playId: "greeting" });
    else if (g.generate) this.responses.request({ interruptible: g.interruptible });
  }

  /**
   * A fixed text (template source) spoken by the model word for word, as its own response; queued behind what
   * is being said. Returns its playId (undefined when it renders empty).
   */
  private say(source: string, opts: { interruptible: boolean; playId?: string; prefix?: string }): string | undefined {
    const text = this.scenes.render(source).trim();
    if (text === "") return undefined;
    const playId = opts.playId ?? `${opts.prefix ?? "say"}-${++this.seq}`;
    this.responses.request({ instructions: SAY_EXACTLY + JSON.stringify(text), playId, interruptible: opts.interruptible });
    return playId;
  }

  /** The current scene's `<play>`s, through the leg. */
  private scenePlays(): void {
    for (const p of this.scenes.scene.plays) this.plays.playFile({ url: p.file, interruptible: p.interruptible });
  }

  /** The scene changed: the session gets its instructions and tools (and, with `plays`, its sounds start). */
  private sceneChanged(plays: boolean): void {
    this.responses.updateSession({ instructions: this.scenes.instructions(), tools: this.scenes.tools });
    if (plays) this.scenePlays();
  }

  private attach(session: RealtimeSession): void {
    this.session = session;
    this.responses.attached();
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
        return this.responses.acknowledged();
      case "ready":
      case "closed":
      case "output_item":
        return;
      case "speech_started":
        return this.caller.speech();
      case "speech_stopped":
        return this.caller.turnEnd(ev.itemId);
      case "input_transcript":
        return this.caller.transcript(ev.itemId, ev.final, ev.final ? ev.text : (ev.delta ?? ""), ev.text);
      case "response_started":
        return this.responses.started(ev.responseId);
      case "audio":
        return this.items.audio(ev.responseId, ev.itemId, ev.frame.pcm);
      case "audio_done":
        return this.items.audioDone(ev.itemId);
      case "transcript":
        return this.items.transcript(ev.responseId, ev.itemId, ev.final, ev.delta ?? "", ev.text);
      case "function_call":
        return this.tools.call(ev.responseId, ev.callId, ev.name, ev.arguments);
      case "response_done":
        return this.onResponseDone(ev.responseId, ev.status);
      case "error":
        // §5.4 pitfalls: a cancel with nothing active, and a create racing the server's own response, change nothing.
        if (ev.code === "response_cancel_not_active" || ev.code === "conversation_already_has_active_response") {
          this.log?.debug({ code: ev.code }, "realtime request refused (harmless)");
          if (ev.code === "conversation_already_has_active_response") this.responses.refused();
          return;
        }
        this.emit({ event: "error", trackId: this.callId, sender: "realtime", code: "PROVIDER_ERROR", error: ev.message });
        return;
    }
  }

  private onResponseDone(id: string, status: string): void {
    const r = this.responses.finished(id);
    this.items.endAudioOf(id);
    if (r) {
      r.done = true;
      if (status !== "completed") r.cancelled = true;
      // A fixed text the model did not speak at all: its utterance is over (a collector waits for its prompt's end).
      if (r.playId !== undefined && r.items === 0) this.keypad.playEnded(r.playId);
      this.tools.maybeContinue(r);
    }
    this.responses.settle();
    this.maybeArmFollowup();
  }

  // ---------------------------------------------------------------------------------------------- leg events

  protected onTrackStart(e: TrackStartEvent): void {
    this.waitInput.cancel();
    this.emit({ event: "trackStart", trackId: this.agentTrack, playId: e.playId });
    this.cuts.trackStart(e);
  }

  protected onTrackEnd(e: TrackEndEvent): void {
    this.cuts.trackEnd(e);
  }

  /** A trackEnd, after what a cut had to say (BargeIn holds the ones the leg reports from inside its clear). */
  private trackEnded(e: TrackEndEvent, reason: TrackEndEvent["reason"] | "replaced"): void {
    this.items.trackEnded(e);
    const play = this.plays.ended(e.playId);
    this.emitTrackEnd(e.playId, Math.round(e.playedMs), reason);
    const wait = play?.file?.waitInputTimeout ?? 0;
    if (e.reason === "finished" && wait > 0 && !this.end) this.waitInput.start(wait, this.leg.paused);
    this.keypad.playEnded(e.playId);
    this.maybeArmFollowup();
  }

  /** The model hears why and tells the caller; key actions, follow-ups and answers start again. */
  protected onTransferFailed(reason: string): void {
    if (!this.terminals.transferFailed()) return;
    const note = `[the transfer failed${reason ? `: ${reason}` : ""}]`;
    this.scenes.add({ role: "system", content: note });
    this.session?.addMessage("system", note);
    this.responses.request({});
  }

  protected onDtmf(e: DtmfEvent): void {
    this.keypad.digit(e);
  }

  protected onCallerFrame(frame: AudioFrame): void {
    let pcm = frame.pcm;
    // A non-interruptible collector ignores caller speech (§2.10): the model hears silence meanwhile.
    if (this.keypad.silencesCaller) pcm = this.silence.of(pcm.length);
    this.caller.frame(pcm);
    this.cuts.tick();
    if (this.session) this.pump.push(pcm);
  }

  // ---------------------------------------------------------------------------------------------- commands

  protected command(c: ConversationCommand): void {
    validateCommand(c);
    switch (c.command) {
      case "tts": {
        if (c.base64) {
          this.plays.ttsAudio(c);
          return;
        }
        const text = c.text.trim();
        if (text === "") return;
        if (c.queue !== true) this.cuts.cut("replaced");
        this.responses.request({
          instructions: SAY_EXACTLY + JSON.stringify(text),
          playId: c.playId,
          autoHangup: c.autoHangup,
          interruptible: c.interruptible ?? c.autoHangup !== true,
        });
        return;
      }
      case "play":
        // The model's audio and files go through our leg; a `pbx:` sound needs the PBX to play it.
        if (isPbxUrl(c.url) && !this.options.pbxPlayer) throw new AppError("UNSUPPORTED", `play ${c.url}: pbx: urls are played by the PBX, and this call has no PBX playback`);
        this.waitInput.cancel();
        if (c.queue !== true) this.cuts.cut("replaced");
        this.plays.playFile(c);
        return;
      case "interrupt":
        // §3.6, as on the serial pipeline: fadeOutMs, else 150 ms when graceful, else at once.
        this.cuts.cut("command", c.fadeOutMs ?? (c.graceful ? 150 : 0));
        return;
      case "pause":
        this.leg.pause();
        this.plays.pause(true);
        this.followup.pause();
        this.waitInput.pause();
        return;
      case "resume":
        this.leg.resume();
        this.plays.pause(false);
        this.waitInput.resume();
        if (this.followup.resume(!this.terminals.ending && !this.keypad.collector && !this.end)) this.maybeArmFollowup();
        return;
      case "mute":
      case "unmute":
        return this.setMute(c);
      case "hangup":
        return this.hangupCommand(c);
      case "history": {
        const speaker = this.historySpeaker(c);
        this.scenes.add(speaker === "assistant" ? { role: "assistant", content: c.text } : { role: speaker, content: c.text });
        this.session?.addMessage(speaker, c.text);
        this.emit({ event: "addHistory", speaker, text: c.text });
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- follow-up (§2.11)

  /**
   * Arms the follow-up timer when the agent has finished: nothing requested, generated, running (tools) or playing,
   * the caller not mid-speech, no collector, not paused, not ending. Called at every `trackEnd` and `response.done`.
   */
  private maybeArmFollowup(): void {
    const f = this.scenes.scene.followup;
    if (!f || !this.started || this.end || this.terminals.ending || this.followup.paused || this.keypad.collector || this.followup.running) return;
    if (this.responses.pending || this.tools.running > 0) return;
    if (this.caller.speaking || this.plays.size > 0 || this.items.playing()) return;
    this.followup.arm(f.timeout);
  }

  /**
   * The caller stayed silent: a follow-up (its `text` spoken word for word, interruptible, or, without text, the
   * system note and a model reply), or after `max` in a row the `goodbye` (not interruptible) and hangup
   * `maxFollowUp` once it has played.
   */
  private onFollowupTimer(): void {
    const f = this.scenes.scene.followup;
    if (!f || this.end || this.terminals.ending) return;
    const next = this.followup.next(f);
    if (next.kind === "say") {
      if (this.say(next.text, { interruptible: true, prefix: "followup" }) === undefined) this.maybeArmFollowup();
      return;
    }
    if (next.kind === "note") {
      this.scenes.add({ role: "system", content: next.text });
      this.session?.addMessage("system", next.text);
      this.responses.request({});
      return;
    }
    if (next.text !== undefined) this.say(next.text, { interruptible: false, prefix: "goodbye" });
    void this.terminals.run({ kind: "hangup" }, "tool", { reason: "maxFollowUp", initiator: "agent" });
  }

  // ---------------------------------------------------------------------------------------------- drop / end

  /**
   * The socket dropped (§5.4): what was in flight on it is lost; reconnect once (session.ts); a second drop, or
   * a reconnect that fails, ends the call with `error`.
   */
  private async onDrop(why: string): Promise<void> {
    const old = this.session;
    this.session = undefined;
    this.pump.reset();
    // The response in progress is lost with the socket: the leg plays what it already has.
    this.items.endAudioOf(undefined);
    // Fixed texts that will never be spoken now: a collector waiting for its prompt's end starts its timer.
    this.responses.dropped((playId) => this.keypad.playEnded(playId));
    void old?.close().catch(() => undefined);
    if (this.reconnected) {
      this.fail(`realtime ${why} again after a reconnect`);
      return;
    }
    this.reconnected = true;
    const session = await reconnect(this.redial, why);
    if (session) this.attach(session);
  }

  /** An unrecoverable failure: `error {sender: realtime}`, then hangup reason `error` (the post-call hook runs). */
  private fail(message: string, cause?: unknown): void {
    if (this.end) return;
    const code = isAppError(cause) ? cause.code : "PROVIDER_ERROR";
    this.emit({ event: "error", trackId: this.callId, sender: "realtime", code, error: message });
    this.finish({ reason: "error", initiator: "system", detail: message });
  }

  protected playedOut(): Promise<void> {
    return this.terminals.afterPlayout();
  }

  protected teardown(): void {
    this.followup.cancel();
    this.waitInput.cancel();
    this.caller.stop();
    this.keypad.cancel();
    this.scenes.stop();
    this.abort.abort();
  }

  protected override stopAtHangup(): void {
    this.cuts.cut("hangup");
  }

  protected async release(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close().catch(() => undefined);
  }
}
