/**
 * SerialConversation: the serial pipeline (VAD -> ASR -> LLM -> TTS), a ConversationCore (../core/) that
 * produces the agent's replies with its own providers. It wires these parts and decides between them:
 *
 *  caller frames (core: mute, inactivity) -> AudioStages (recorder, denoise) -> CallerTurns: ASR + VAD ->
 *     TurnDetector (turns) and InterruptionPolicy (barge-in), on the leg's media time
 *  decided turns -> PlaybookRunner (its LLM is a SpeculativeLlm: an early end of turn prefetches the request)
 *  runner commands + client commands -> utterances (UtteranceQueue, one playId each) -> SerialVoice: TTS per
 *     sentence, base64 PCM, files, pbx: plays -> leg.write / endPlay
 *
 * Interruption (DESIGN.md): one AbortController per utterance. A barge-in cuts the interruptible utterances
 * (UtteranceQueue.cut: abort, clear with a fade, what was heard), and the runner hears `agentSpeechEnded
 * {interrupted, heard}` once the cleared mark resolved (HeldNotices). A VAD barge-in holds the utterances
 * until the policy's verdict: a false interruption re-speaks the cut sentence under the same playId.
 *
 * Failures never escape: provider failures become `error` events, then `onProviderError` decides (`continue`:
 * the turn is dropped; `hangup`: the call ends with reason `error`). Stalls (TTS: ttsTimeoutMs; LLM:
 * llm.timeoutMs) fail the turn with TIMEOUT even if the provider ignores its signal.
 */
import type { AudioFrame } from "../../audio/index.js";
import { AppError, isAppError } from "../../errors.js";
import type { TimerHandle } from "../../media/clock.js";
import type { DtmfEvent, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import { PlaybookRunner } from "../../playbook/runner/index.js";
import type { RunnerCommand, RunnerEvent, RunnerSink, Scheduler } from "../../playbook/runner/index.js";
import { createVadEngine } from "../../vad/index.js";
import type { Conversation, ConversationCommand, ConversationSnapshot, ControlRequest } from "../conversation.js";
import { CallerVad, ConversationCore, WaitInputTimer, type CoreEvents } from "../core/index.js";
import type { InterruptionOutput, InterruptionPolicy, TurnDetector } from "../turn/index.js";
import { AudioStages, recordingName, type RecordingInfo } from "./audio-stages.js";
import { CallerTurns, type TurnDecision } from "./caller-turns.js";
import { validateCommand } from "../core/commands.js";
import type { CallerProcessor, SerialConversationOptions } from "./options.js";
import { isPbxUrl } from "../core/sound-source.js";
import { SpeculativeLlm } from "./speculative-llm.js";
import { appendToUtterance, newUtterance, updateOpenUtterance, type Utterance } from "./utterance.js";
import { UtteranceQueue } from "./utterance-queue.js";
import { TurnMetric } from "./turn-metric.js";
import { HeldNotices } from "./held-notices.js";
import { SerialVoice } from "./voice.js";

// Re-exported for the call layer and the tests: the options, the recording (§7 call `recording`), control requests.
export type { CallerProcessor, ControlRequest, RecordingInfo, SerialConversationOptions };
export { recordingName };

export type SerialConversationEvents = CoreEvents & {
  /** The recording was closed (after `hangup`, before `closed` resolves). */
  recording: [RecordingInfo];
};

export class SerialConversation extends ConversationCore<SerialConversationEvents> implements Conversation {
  readonly runner: PlaybookRunner;
  readonly speculation: SpeculativeLlm;

  private readonly onProviderError: "continue" | "hangup";
  private readonly ttsTimeoutMs: number;
  private readonly tickMs: number;

  private readonly caller: CallerTurns;
  private readonly asrCtrl = new AbortController();

  private readonly queue: UtteranceQueue;
  private readonly voice: SerialVoice;
  private paused = false;

  private readonly stages: AudioStages;
  /** Runner notifications waiting for the cleared mark of a barge-in (run at once if the call ends first). */
  private readonly held = new HeldNotices();

  private readonly turnMetric = new TurnMetric();

  private readonly waitInput: WaitInputTimer;
  /** `asrFinal` index of the next injectCallerText turn. */
  private injectedTurns = 0;

  constructor(private readonly options: SerialConversationOptions) {
    super(options);
    this.onProviderError = options.onProviderError ?? "continue";
    this.ttsTimeoutMs = options.ttsTimeoutMs ?? 10_000;
    this.tickMs = options.tickMs ?? 20;
    this.waitInput = new WaitInputTimer(this.clock, this.wall, (startTime, duration) =>
      this.emit({ event: "silence", trackId: this.callId, startTime, duration, reason: "waitInputTimeout" }),
    );
    const vadMinSilenceMs = options.vad?.detector?.minSilenceMs ?? 100;
    this.caller = new CallerTurns(
      {
        leg: this.leg,
        clock: this.clock,
        callId: this.callId,
        log: this.log,
        tickMs: this.tickMs,
        silenceTimeoutMs: options.vad?.silenceTimeoutMs ?? options.runner.playbook.settings.vad?.silenceTimeoutMs ?? 0,
        ended: () => this.end !== undefined,
        paused: () => this.paused,
        emit: (e) => this.emit(e),
        error: (sender, err) => this.emitError(sender, err),
        callerInput: () => this.cancelWaitInput(),
        speechStarted: () => this.runner.handle({ type: "callerSpeechStarted" }),
        interruption: (outputs) => this.onInterruption(outputs),
        decision: (d) => this.onTurnDecision(d),
        asrFailed: () => this.providerFailed(),
      },
      { vadMinSilenceMs, ...options.eou },
      options.interruption,
    );
    this.speculation = new SpeculativeLlm(options.llm, () => this.clock.now(), {
      clock: this.clock,
      timeoutMs: options.runner.playbook.settings.llm?.timeoutMs ?? options.llmTimeoutMs ?? 15_000,
      name: options.llm.name ?? "llm",
    });
    const scheduler: Scheduler = {
      now: () => this.clock.now(),
      setTimeout: (fn, ms) => this.clock.setTimer(fn, ms),
      clearTimeout: (h) => this.clock.clearTimer(h as TimerHandle),
    };
    const sink: RunnerSink = {
      command: (c) => this.onRunnerCommand(c),
      event: (e) => this.onRunnerEvent(e),
    };
    this.runner = new PlaybookRunner({ ...options.runner, llm: this.speculation, sink, scheduler, wallClock: this.wall });
    this.queue = new UtteranceQueue({
      leg: this.leg,
      clock: this.clock,
      log: this.log,
      ended: () => this.end !== undefined,
      pbxPlayer: options.pbxPlayer,
      nextSeq: () => ++this.seq,
      interruption: (playId, reason, heard) => this.emitInterruption(playId, reason, heard),
      trackEnd: (playId, durationMs, reason) => {
        this.emitTrackEnd(playId, durationMs, reason);
        this.caller.playback({ type: "trackEnd", atMs: this.now, playId }, false);
      },
      stoppedByCommand: (u) => this.startWaitInput(u),
      speechEnded: (u, heard, after) => this.speechEnded(u, true, heard, after),
      wake: () => this.voice.wake(),
    });
    this.voice = new SerialVoice({
      leg: this.leg,
      clock: this.clock,
      tts: options.tts,
      ttsTimeoutMs: this.ttsTimeoutMs,
      tickMs: this.tickMs,
      soundsDir: options.soundsDir,
      cacheDir: options.cacheDir,
      loadSound: options.loadSound,
      pbxPlayer: options.pbxPlayer,
      ended: () => this.end !== undefined,
      queue: () => this.queue.items,
      turnMetric: this.turnMetric,
      writeAgent: (playId, pcm) => this.writeAgent(playId, pcm),
      finishWriting: (u) => this.finishWriting(u),
      utteranceFailed: (u, err) => this.utteranceFailed(u, err),
      trackStarted: (e) => this.onTrackStart(e),
      trackEnded: (e) => this.onTrackEnd(e),
    });
    this.stages = new AudioStages({
      leg: this.leg,
      callId: this.callId,
      playbook: options.runner.playbook,
      playbookName: options.runner.call.playbook,
      soundsDir: options.soundsDir,
      recorder: options.recorder,
      recordingsDir: options.recordingsDir,
      processorRegistry: options.processorRegistry,
      wall: this.wall,
      log: this.log,
      ended: () => this.end !== undefined,
      error: (sender, err) => this.emitError(sender, err),
      recorded: (info) => this.events.emit("recording", info),
    });
  }

  // ---------------------------------------------------------------------------------------------- public

  async start(): Promise<void> {
    if (this.started || this.end) return;
    this.started = true;
    const [engine] = await Promise.all([
      this.options.vad?.engine ?? createVadEngine(this.options.vad?.type ?? "tinysilero"),
      this.stages.start(),
    ]);
    if (this.end) {
      await this.stages.close();
      return;
    }

    this.hookLeg();
    const untap = this.stages.tapAgent();
    if (untap) this.offLeg.push(untap);
    this.caller.start(CallerVad.over(engine, this.leg.callerRate, this.options.vad?.detector), this.options.asr.session({ signal: this.asrCtrl.signal }));
    this.startCallerAudio();
    void this.voice.run();
    this.runner.start();
  }

  protected command(command: ConversationCommand): void {
    this.run(command, false);
  }

  protected onTransferFailed(reason: string): void {
    this.runner.handle({ type: "transferFailed", reason });
  }

  protected onDtmf(e: DtmfEvent): void {
    this.cancelWaitInput();
    this.emit({ event: "dtmf", trackId: this.callId, digit: e.digit, durationMs: e.durationMs, source: e.source });
    this.runner.handle({ type: "dtmf", digit: e.digit });
  }

  /**
   * A caller turn given as text (`active-call simulate --text`): emitted as `asrFinal` and handed to the runner as
   * the turn's final transcript, with VAD, ASR and end-of-turn detection skipped.
   */
  injectCallerText(text: string): void {
    if (this.end || !this.started) return;
    this.cancelWaitInput();
    this.emit({ event: "asrFinal", trackId: this.callId, index: this.injectedTurns++, text });
    this.runner.handle({ type: "callerTurn", text });
  }

  /** What an agent utterance says (its sentences so far) or plays, while the conversation still tracks it. */
  utterance(playId: string): { kind: "tts" | "play"; text: string; url: string | undefined } | undefined {
    const u = this.queue.get(playId);
    if (!u) return undefined;
    return { kind: u.kind, text: u.sentences.map((s) => s.text).join(" "), url: u.url };
  }

  /** The finished recording (set once it is closed, after hangup). */
  get recording(): RecordingInfo | undefined {
    return this.stages.recording;
  }

  snapshot(): ConversationSnapshot {
    return {
      runner: this.runner.snapshot(),
      turns: { ...this.turns.stats },
      interruptions: { ...this.interruptions.stats },
      end: this.end,
    };
  }

  /** The caller's turn detector (its stats are the snapshot's `turns`). */
  get turns(): TurnDetector {
    return this.caller.turns;
  }

  get interruptions(): InterruptionPolicy {
    return this.caller.interruptions;
  }

  private get now(): number {
    return this.leg.nowMs;
  }

  // ---------------------------------------------------------------------------------------------- caller side

  protected onCallerFrame(input: AudioFrame): void {
    let frame = input;
    // Recorded as heard on the wire (after mute, before denoise), then denoised.
    frame = this.stages.process(frame);
    if (this.options.processors) frame = this.options.processors.process(frame);
    this.caller.push(frame);
  }

  /** A caller turn decided (or guessed early): the runner answers it, or the speculative request starts or stops. */
  private onTurnDecision(o: TurnDecision): void {
    switch (o.type) {
      case "speculate":
        // An application-driven call never asks the LLM, so there is nothing to start early.
        if (this.runner.respond) this.speculation.speculate(o.text, this.nextRequest());
        return;
      case "discard":
        this.speculation.discard();
        return;
      case "commit":
      case "reply":
        if (o.type === "reply") this.speculation.discard();
        this.turnMetric.decided(o.timing, o.type === "commit");
        this.runner.handle({ type: "callerTurn", text: o.text });
        return;
    }
  }

  /** The request the runner will make for the next caller turn, without the caller's message. */
  private nextRequest(): Parameters<SpeculativeLlm["speculate"]>[1] {
    const llm = this.options.runner.playbook.settings.llm;
    const tools = this.runner.tools;
    return {
      messages: this.runner.messages(),
      tools: tools.length > 0 ? tools : undefined,
      temperature: llm?.temperature,
      maxTokens: llm?.maxTokens,
      timeoutMs: llm?.timeoutMs,
    };
  }

  // ---------------------------------------------------------------------------------------------- barge-in

  private onInterruption(outputs: readonly InterruptionOutput[]): void {
    for (const o of outputs) {
      if (this.end) return;
      if (o.type === "bargeIn") {
        if (this.paused) continue;
        if (o.trigger === "vad") this.queue.holdAll(o.fadeOutMs);
        else this.queue.stopAll("bargeIn", o.fadeOutMs, true);
      } else if (o.type === "falseInterruption") {
        if (o.resume) this.queue.resumeHeld();
        else this.queue.releaseHeld();
      } else {
        this.queue.releaseHeld();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- agent side

  private onRunnerCommand(c: RunnerCommand): void {
    if (this.end) return;
    try {
      switch (c.command) {
        case "tts":
          this.turnMetric.llmResponded(this.now);
          return this.run(c, true);
        case "play":
          return this.run(c, true);
        case "interrupt":
          // The runner's cut (a mapped key, §2.9) stops interruptible playback only, a client's included.
          this.queue.releaseHeld();
          this.queue.stopAll("command", c.graceful ? 150 : 0, true);
          return;
        case "hangup":
          this.finishAfterPlayout({ reason: c.reason, initiator: "agent", detail: c.detail, headers: c.headers });
          return;
        case "refer":
          return this.requestTransfer({ kind: "refer", target: c.callee });
        case "transfer":
          return this.requestTransfer({ kind: "transfer", target: c.target, context: c.context });
        case "dtmf":
          return this.control(c);
      }
    } catch (err) {
      this.emitError("playbook", err);
    }
  }

  private onRunnerEvent(e: RunnerEvent): void {
    if (e.event === "variableChanged") return;
    if (e.event === "llmDelta") this.turnMetric.llmResponded(this.now);
    if (e.event === "error") {
      this.emit({ event: "error", trackId: this.callId, sender: e.sender, code: e.code, error: e.error });
      if (e.sender === "llm") this.providerFailed();
      return;
    }
    if (e.event === "functionCall") {
      this.emit({ ...e, trackId: this.callId });
      return;
    }
    this.emit(e);
  }

  private run(c: ConversationCommand, fromRunner: boolean): void {
    validateCommand(c);
    switch (c.command) {
      case "tts":
        return this.tts(c, fromRunner);
      case "play": {
        if (isPbxUrl(c.url) && !this.options.pbxPlayer) throw new AppError("UNSUPPORTED", `play ${c.url}: pbx: urls are played by the PBX, and this call has no PBX playback`);
        if (!c.queue) this.replaceAll();
        const u = this.addUtterance(c.playId ?? c.url, "play", fromRunner, c.interruptible, c.autoHangup === true, c.url);
        u.waitInputTimeout = c.waitInputTimeout ?? 0;
        u.loop = c.loop ?? 1;
        return;
      }
      case "interrupt": {
        const fade = c.fadeOutMs ?? (c.graceful ? 150 : 0);
        this.queue.releaseHeld();
        this.queue.stopAll("command", fade);
        return;
      }
      case "pause":
        if (this.paused) return;
        this.paused = true;
        this.leg.pause();
        if (this.queue.items[0]?.pbx) void this.options.pbxPlayer?.pausePlayback(true).catch(() => undefined);
        this.waitInput.pause();
        this.runner.handle({ type: "paused" });
        return;
      case "resume":
        if (!this.paused) return;
        this.paused = false;
        this.leg.resume();
        if (this.queue.items[0]?.pbx) void this.options.pbxPlayer?.pausePlayback(false).catch(() => undefined);
        this.waitInput.resume();
        this.runner.handle({ type: "resumed" });
        return;
      case "mute":
      case "unmute":
        return this.setMute(c);
      case "hangup":
        return this.hangupCommand(c);
      case "history": {
        const speaker = this.historySpeaker(c);
        this.runner.addMessage(speaker, c.text);
        this.emit({ event: "addHistory", speaker, text: c.text });
        return;
      }
    }
  }

  /**
   * §3.4 playId rules: a `tts` naming an open utterance appends to it (its autoHangup/waitInputTimeout/
   * interruptible: last value wins); any other starts a new utterance, replacing what plays unless `queue`.
   */
  private tts(c: Extract<ConversationCommand, { command: "tts" }>, fromRunner: boolean): void {
    const pcm = c.base64 === true;
    const open = c.playId !== undefined ? this.queue.open.get(c.playId) : undefined;
    let u: Utterance;
    if (open) {
      u = open;
      updateOpenUtterance(u, c);
      if (u.stopped || u.ended) {
        // Stopped (interrupt, replace, barge-in) while the client still streams it: the rest is dropped.
        if (c.endOfStream || c.streaming !== true) this.queue.close(u);
        else if (c.text !== "") this.queue.armIdleClose(u);
        return;
      }
    } else if (fromRunner && c.playId !== undefined && this.held.has(c.playId)) {
      return; // the runner's reply was barged in; it has not been told yet (cleared mark pending)
    } else {
      if (!c.queue) this.replaceAll();
      u = this.addUtterance(c.playId ?? `tts-${++this.seq}`, "tts", fromRunner, c.interruptible, c.autoHangup === true, undefined);
      u.waitInputTimeout = c.waitInputTimeout ?? 0;
      u.voice = c.speaker ?? c.option?.voice;
      if (pcm) {
        u.pcm = [];
        u.pcmRate = c.option?.sampleRate ?? 16000;
      }
      if (c.streaming === true && c.endOfStream !== true) {
        u.open = true;
        this.queue.open.set(u.playId, u);
      }
    }
    appendToUtterance(u, c.text, this.queue.pcmCarry);
    if (c.endOfStream || c.streaming !== true) this.queue.close(u);
    else if (c.text !== "") this.queue.armIdleClose(u);
    this.voice.wake();
  }

  /** A new utterance without `queue`: what plays, is queued or is held after a barge-in stops (`replaced`). */
  private replaceAll(): void {
    this.queue.releaseHeld();
    this.queue.stopAll("replaced", 0);
  }

  // ---------------------------------------------------------------------------------------------- input timers

  /** `waitInputTimeout` of an utterance that just ended: starts at its trackEnd (now). */
  private startWaitInput(u: Utterance): void {
    if (!(u.waitInputTimeout > 0) || this.end) return;
    // The next utterance already started (the pacer sends it while this one's last frame is in the lead).
    if (this.queue.otherStarted(u)) return;
    this.waitInput.start(u.waitInputTimeout, this.paused);
  }

  private cancelWaitInput(): void {
    this.waitInput.cancel();
  }

  private addUtterance(playId: string, kind: "tts" | "play", fromRunner: boolean, interruptible: boolean | undefined, autoHangup: boolean, url: string | undefined): Utterance {
    this.cancelWaitInput(); // a new utterance starts
    const u = newUtterance(playId, kind, fromRunner, interruptible, autoHangup, url);
    this.queue.add(u);
    this.voice.wake();
    return u;
  }

  private finishWriting(u: Utterance): void {
    u.synthDone = true;
    if (u.writtenSamples > 0) {
      this.leg.endPlay(u.playId);
      return;
    }
    // Nothing to play (empty text): the pacer never heard of it, so end it here.
    u.ended = true;
    this.queue.remove(u);
    this.emit({ event: "trackEnd", trackId: this.agentTrack, playId: u.playId, duration: 0, ssrc: 0, reason: "finished" });
    this.speechEnded(u, false, undefined);
    if (u.autoHangup) this.finish({ reason: "autohangup", initiator: u.fromRunner ? "agent" : "client" });
    else this.startWaitInput(u);
  }

  private utteranceFailed(u: Utterance, err: unknown): void {
    if (u.kind === "play") {
      const code = isAppError(err) ? err.code : "INTERNAL";
      this.emitError(code === "PLAYBACK_ERROR" ? "media" : u.fromRunner ? "playbook" : "command", err);
      u.stopped = true;
      if (u.writtenSamples === 0) {
        // Nothing of it reached the leg: report it without clearing what plays before it; the queue goes on.
        this.queue.remove(u);
        this.emit({ event: "trackEnd", trackId: this.agentTrack, playId: u.playId, duration: 0, ssrc: 0, reason: "error" });
        this.speechEnded(u, true, "");
        this.voice.wake();
        return;
      }
      const heard = this.queue.cut([u], "error", 0);
      this.speechEnded(u, true, heard.get(u));
      return;
    }
    this.emitError("tts", err);
    this.providerFailed();
  }

  /**
   * A provider failed mid-turn (the `error` event is out): `continue` drops the turn (what is playing or
   * queued stops, the runner cancels its reply) and waits for the caller; `hangup` ends the call.
   */
  private providerFailed(): void {
    if (this.end) return;
    this.speculation.discard();
    this.queue.releaseHeld();
    this.queue.stopAll("error", 0);
    if (this.onProviderError === "hangup") this.finish({ reason: "error", initiator: "system" });
  }

  protected onTrackStart(e: TrackStartEvent): void {
    const u = this.queue.find(e.playId);
    if (!u || u.stopped) return;
    u.started = true;
    this.cancelWaitInput();
    this.emit({ event: "trackStart", trackId: this.agentTrack, playId: e.playId });
    this.caller.playback({ type: "trackStart", atMs: e.atMs, playId: e.playId, interruptible: u.interruptible });
    const metric = u.fromRunner ? this.turnMetric.firstAudio(e.atMs) : undefined;
    if (metric) this.emit(metric);
  }

  protected onTrackEnd(e: TrackEndEvent): void {
    const u = this.queue.find(e.playId);
    if (!u || u.stopped || u.suspended || u.ended) return;
    if (e.reason !== "finished") return; // clears are reported by cut()
    u.ended = true;
    this.queue.remove(u);
    this.emit({ event: "trackEnd", trackId: this.agentTrack, playId: u.playId, duration: e.playedMs, ssrc: 0, reason: "finished" });
    this.caller.playback({ type: "trackEnd", atMs: e.atMs, playId: u.playId });
    this.speechEnded(u, false, undefined);
    if (u.autoHangup) this.finish({ reason: "autohangup", initiator: u.fromRunner ? "agent" : "client" });
    else this.startWaitInput(u);
  }

  /**
   * The utterance is over: it leaves the queue at once; the runner is told (which cuts its history to `heard`)
   * once `after` (a barge-in's cleared mark) has resolved, or at hangup, whichever comes first. Meanwhile the
   * runner's late text for that playId is dropped.
   */
  private speechEnded(u: Utterance, interrupted: boolean, heard: string | undefined, after?: Promise<unknown>): void {
    this.queue.remove(u);
    if (!u.fromRunner) return;
    const notify = (): void => {
      try {
        this.runner.handle(interrupted ? { type: "agentSpeechEnded", playId: u.playId, interrupted: true, heard: heard ?? "" } : { type: "agentSpeechEnded", playId: u.playId });
      } catch (err) {
        this.emitError("playbook", err);
      }
    };
    if (!after || this.end) {
      notify();
      return;
    }
    this.held.hold(u.playId, after, notify);
  }

  /** Waits until everything queued has been synthesised and played out, then ends the call. */
  protected async playedOut(): Promise<void> {
    while (!this.end && this.queue.writing()) {
      await new Promise<void>((resolve) => this.clock.setTimer(resolve, this.tickMs));
    }
    if (!this.end) await this.leg.mark(`hangup-${++this.seq}`);
  }

  protected override stopAtHangup(): void {
    this.queue.endAll();
  }

  protected teardown(): void {
    this.caller.stop();
    this.speculation.discard();
    this.queue.clear(this.clock);
    this.cancelWaitInput();
    this.held.flush();
    this.runner.handle({ type: "hangup" });
    this.asrCtrl.abort();
    this.voice.wake();
  }

  protected release(): Promise<void> {
    return this.stages.close();
  }
}
