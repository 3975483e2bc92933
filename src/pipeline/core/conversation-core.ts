/**
 * ConversationCore: what every Conversation (DESIGN.md "The seams") does the same way, whichever pipeline makes
 * the agent's replies. The serial pipeline (ASR + LLM + TTS) and the realtime pipeline (one duplex model
 * session) extend it and supply only how a reply is produced and cut:
 *
 *  - lifecycle: `start` once, `stop`/`closed`, one `finish` that silences the events after `hangup`, stops the
 *    timers, unhooks the leg, lets the pipeline tear down (`teardown`) and release (`release`) its resources;
 *  - the leg's events: trackStart/trackEnd/dtmf go to the pipeline, `close` ends the call as the caller's hangup;
 *  - caller audio: one loop over `leg.callerAudio` with the inactivity watch and caller mute applied, frames
 *    handed to `onCallerFrame`;
 *  - the commands whose meaning does not depend on the pipeline: mute/unmute (track ids), hangup (who and why),
 *    history (the speaker), and what a transfer request looks like on the events and the `control` channel;
 *  - agent audio out with agent mute applied, and the `interruption`/`trackEnd` events built from what the leg
 *    says the caller heard (turn/heard-text.ts).
 */
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { MediaClock } from "../../media/clock.js";
import { realClock } from "../../media/clock.js";
import { TypedEmitter } from "../../media/emitter.js";
import { callerFrameLag } from "../../media/frame-lag.js";
import type { AudioFrame } from "../../audio/index.js";
import type { DtmfEvent, MediaLeg, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import type {
  Conversation,
  ConversationCommand,
  ConversationEnd,
  ConversationEvents,
  ConversationSnapshot,
  ControlRequest,
  ErrorSender,
} from "../conversation.js";
import type { Heard } from "../turn/heard-text.js";
import { InactivityWatch, SilenceBuffer } from "./caller-input.js";
import { EventSink, type EventBody } from "./event-sink.js";

export interface CoreOptions {
  leg: MediaLeg;
  /** The call id: `trackId` of caller-side events (default the leg's id). */
  callId?: string | undefined;
  /** `trackId` of agent-side events (default "server-side-track"). */
  agentTrackId?: string | undefined;
  /** No caller audio frame for this long ends the call (`inactivity`, hangup `inactivityTimeout`); 0 = off. */
  inactivityTimeoutMs?: number | undefined;
  clock?: MediaClock | undefined;
  /** Event timestamps (default Date.now). */
  wallClock?: (() => number) | undefined;
  log?: Logger | undefined;
}

export type CoreEvents = ConversationEvents & {
  /** Transfers and DTMF out: things only the call layer can do. */
  control: [ControlRequest];
};

/** A transfer the conversation asks the call layer for, once the agent's words before it were heard. */
export type TransferRequest = { kind: "refer"; target: string } | { kind: "transfer"; target: string; context?: string | undefined };

export type CutReason = "bargeIn" | "command" | "replaced" | "error";

export abstract class ConversationCore<E extends CoreEvents = CoreEvents> implements Conversation {
  readonly events: TypedEmitter<E>;
  readonly closed: Promise<ConversationEnd>;

  protected readonly leg: MediaLeg;
  protected readonly clock: MediaClock;
  protected readonly wall: () => number;
  protected readonly callId: string;
  protected readonly agentTrack: string;
  protected readonly log: Logger | undefined;
  protected end: ConversationEnd | undefined;
  protected started = false;
  protected callerMuted = false;
  protected agentMuted = false;
  protected readonly silence = new SilenceBuffer();
  private muted: AudioFrame | undefined;
  protected readonly offLeg: (() => void)[] = [];
  protected seq = 0;

  private readonly sink: EventSink;
  private readonly inactivity: InactivityWatch;
  private resolveClosed!: (end: ConversationEnd) => void;

  constructor(o: CoreOptions) {
    this.leg = o.leg;
    this.clock = o.clock ?? realClock;
    this.wall = o.wallClock ?? (() => Date.now());
    this.callId = o.callId ?? o.leg.id;
    this.agentTrack = o.agentTrackId ?? "server-side-track";
    this.log = o.log;
    this.events = new TypedEmitter<E>((err) => this.log?.error({ err }, "conversation listener failed"));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.sink = new EventSink((e) => (this.events as unknown as TypedEmitter<ConversationEvents>).emit("event", e), this.wall, this.callId, this.log);
    this.inactivity = new InactivityWatch(this.clock, o.inactivityTimeoutMs ?? 0, (ms) => {
      if (this.end) return;
      this.emit({ event: "inactivity", trackId: this.callId });
      this.finish({ reason: "inactivityTimeout", initiator: "system", detail: `no caller audio for ${ms} ms` });
    });
  }

  // ---------------------------------------------------------------------------------------------- the seam

  abstract start(): Promise<void>;
  abstract snapshot(): ConversationSnapshot;

  handleCommand(command: ConversationCommand): void {
    if (this.end) return;
    try {
      this.command(command);
    } catch (err) {
      this.emitError("command", err);
    }
  }

  transferFailed(reason: string): void {
    if (this.end || !this.started) return;
    this.onTransferFailed(reason);
  }

  async stop(end: ConversationEnd = { reason: "shutdown", initiator: "system" }): Promise<void> {
    this.finish(end);
    await this.closed;
  }

  // ---------------------------------------------------------------------------------------------- what a pipeline supplies

  /** A ws-call-api §3 command; throwing turns into `error {sender: "command"}`. */
  protected abstract command(c: ConversationCommand): void;
  protected abstract onTrackStart(e: TrackStartEvent): void;
  protected abstract onTrackEnd(e: TrackEndEvent): void;
  protected abstract onDtmf(e: DtmfEvent): void;
  /** Resolves once everything the agent has said so far has played out to the caller. */
  protected abstract playedOut(): Promise<void>;
  /** The playbook's transfer failed: the agent takes the call back. */
  protected abstract onTransferFailed(reason: string): void;
  /** A caller frame, caller mute already applied. */
  protected abstract onCallerFrame(frame: AudioFrame): void;
  /** Synchronous clean-up at the end (timers, aborts, the playbook's hangup), before the leg is cleared. */
  protected abstract teardown(end: ConversationEnd): void;
  /** What must finish before `closed` resolves (a recording written, a session closed). */
  protected abstract release(): Promise<void>;
  /**
   * The call ends with agent audio playing or queued: stop it and emit each stopped utterance's `trackEnd`
   * {reason interrupted, duration played}. Runs first in `finish`, while events still go out and the leg is
   * still hooked, so these come before the `hangup`.
   */
  protected stopAtHangup(): void {}

  // ---------------------------------------------------------------------------------------------- lifecycle

  /** Listens to the leg: its playback and DTMF events go to the pipeline; its close is the caller's hangup. */
  protected hookLeg(): void {
    this.offLeg.push(
      this.leg.events.on("trackStart", (e) => this.onTrackStart(e)),
      this.leg.events.on("trackEnd", (e) => this.onTrackEnd(e)),
      this.leg.events.on("dtmf", (e) => this.onDtmf(e)),
      this.leg.events.on("close", () => void this.stop({ reason: "caller", initiator: "caller" })),
    );
  }

  /** Starts the inactivity watch and the caller audio loop. */
  protected startCallerAudio(): void {
    this.inactivity.start();
    void this.callerLoop();
  }

  /** A muted caller frame: silence of the same length and time, in one frame object reused for the whole call. */
  private mutedFrame(frame: AudioFrame): AudioFrame {
    const m = (this.muted ??= { pcm: new Int16Array(0), sampleRate: frame.sampleRate, timestampMs: 0 });
    m.pcm = this.silence.of(frame.pcm.length);
    m.sampleRate = frame.sampleRate;
    m.timestampMs = frame.timestampMs;
    return m;
  }

  private async callerLoop(): Promise<void> {
    try {
      for await (const frame of this.leg.callerAudio) {
        if (this.end) break;
        this.inactivity.touch();
        this.onCallerFrame(this.callerMuted ? this.mutedFrame(frame) : frame);
        // onCallerFrame runs the VAD synchronously: now the frame's VAD decision is made.
        if (frame.receivedAtMs !== undefined) callerFrameLag.record(performance.now() - frame.receivedAtMs);
      }
    } catch (err) {
      this.emitError("media", err);
    }
  }

  /** Ends the conversation once: no event after its `hangup`, the pipeline tears down, `closed` resolves after release. */
  protected finish(end: ConversationEnd): void {
    if (this.end) return;
    this.end = end;
    this.stopAtHangup();
    this.sink.close();
    this.inactivity.stop();
    for (const off of this.offLeg) off();
    this.offLeg.length = 0;
    this.teardown(end);
    if (!this.leg.closed) this.leg.clear();
    this.emit({ event: "hangup", trackId: this.callId, reason: end.reason, initiator: end.initiator, detail: end.detail });
    void this.release()
      .catch((err: unknown) => this.log?.warn({ err }, "conversation release failed"))
      .finally(() => this.resolveClosed(end));
  }

  // ---------------------------------------------------------------------------------------------- events

  protected emit(e: EventBody): void {
    this.sink.emit(e);
  }

  protected emitError(sender: ErrorSender, err: unknown): void {
    this.sink.error(sender, err);
  }

  protected control(c: ControlRequest): void {
    (this.events as unknown as TypedEmitter<CoreEvents>).emit("control", c);
  }

  /** A refer or dialplan transfer: the `transfer {state: requested}` event, then the request to the call layer. */
  protected requestTransfer(t: TransferRequest): void {
    if (t.kind === "refer") {
      this.emit({ event: "transfer", trackId: this.callId, mode: "refer", target: t.target, state: "requested" });
      this.control({ command: "refer", callee: t.target });
    } else {
      this.emit({ event: "transfer", trackId: this.callId, mode: "dialplan", target: t.target, context: t.context, state: "requested" });
      this.control({ command: "transfer", target: t.target, mode: "dialplan", ...(t.context ? { context: t.context } : {}) });
    }
  }

  /** `interruption` for an utterance cut after the caller heard `heard` of it. */
  protected emitInterruption(playId: string, reason: Exclude<CutReason, "error">, heard: Pick<Heard, "text" | "position" | "totalMs" | "playedMs">): void {
    this.emit({
      event: "interruption",
      trackId: this.agentTrack,
      playId,
      reason,
      subtitle: heard.text,
      position: heard.position,
      totalDuration: heard.totalMs,
      current: heard.playedMs,
    });
  }

  protected emitTrackEnd(playId: string, durationMs: number, reason: "finished" | "interrupted" | "replaced" | "error"): void {
    this.emit({ event: "trackEnd", trackId: this.agentTrack, playId, duration: durationMs, ssrc: 0, reason });
  }

  // ---------------------------------------------------------------------------------------------- shared commands

  /** mute/unmute: no trackId = both; the call id = the caller's audio; the agent track = the agent's audio. */
  protected setMute(c: Extract<ConversationCommand, { command: "mute" | "unmute" }>): void {
    const on = c.command === "mute";
    const t = c.trackId;
    if (t !== undefined && t !== this.callId && t !== this.agentTrack) throw new AppError("BAD_REQUEST", `unknown trackId "${t}"`);
    if (t === undefined || t === this.callId) this.callerMuted = on;
    if (t === undefined || t === this.agentTrack) this.agentMuted = on;
  }

  /** The end a `hangup` command asks for (`callee` is the agent's side). */
  protected hangupEnd(c: Extract<ConversationCommand, { command: "hangup" }>): ConversationEnd {
    const initiator = (c.initiator as string | undefined) === "callee" ? "agent" : (c.initiator ?? "client");
    return { reason: "client", initiator, detail: c.reason, headers: c.headers };
  }

  /** `hangup` (§3.8): at once, or with `afterPlayout` once what the agent said so far has been heard. */
  protected hangupCommand(c: Extract<ConversationCommand, { command: "hangup" }>): void {
    const end = this.hangupEnd(c);
    if (c.afterPlayout) this.finishAfterPlayout(end);
    else this.finish(end);
  }

  /** Ends the call once everything the agent has said so far has been heard (a failed wait ends it anyway). */
  protected finishAfterPlayout(end: ConversationEnd): void {
    void this.playedOut()
      .catch((err: unknown) => this.emitError("media", err))
      .then(() => this.finish(end));
  }

  /** `history`: the speaker it is filed under (anything else is the user). */
  protected historySpeaker(c: Extract<ConversationCommand, { command: "history" }>): "user" | "assistant" | "system" {
    return c.speaker === "assistant" || c.speaker === "system" ? c.speaker : "user";
  }

  /** Agent audio to the leg; while the agent is muted its length in silence, so timing and marks stay right. */
  protected writeAgent(playId: string, pcm: Int16Array): void {
    if (pcm.length === 0 || this.leg.closed) return;
    this.leg.write(playId, this.agentMuted ? this.silence.of(pcm.length) : pcm);
  }
}
