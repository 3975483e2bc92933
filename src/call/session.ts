/**
 * CallSession: one call, whoever drives it (ws-call-api.md §1.3-§1.4). It owns the call's state machine, its
 * media leg and Conversation, runs the commands of §3 in arrival order, fans the events of §4 out to the
 * controlling client, the live subscribers (SSE) and the JSONL dump, and at the end emits the one `hangup`
 * event (after the post-call hook is spooled durably) and closes the client with 1000.
 *
 * A per-call failure ends this call (error event, then hangup reason `error`); nothing here throws into the
 * transport that feeds it.
 */
import { randomUUID } from "node:crypto";
import { AppError, isAppError, toAppError } from "../errors.js";
import type { Logger } from "../log.js";
import { dtmfTones } from "../audio/index.js";
import type { MediaLeg } from "../media/leg.js";
import type { CallControlEvents, TransferRequest } from "../pbx/call-control.js";
import type { Conversation, ConversationCommand, ConversationEnd, ConversationEvent, HangupInitiator } from "../pipeline/conversation.js";
import { validateCommand } from "../pipeline/core/commands.js";
import type { ControlRequest } from "../pipeline/serial/serial-conversation.js";
import type { TypedEmitter } from "../media/emitter.js";
import { buildHook } from "../playbook/posthook/summary.js";
import type { Playbook } from "../playbook/types.js";
import { COMMANDS, dtmfCommand, mergeSettings, parseCallOption, parseFields, referCommand, rejectCommand, transferCommand } from "./call-option.js";
import { EventDump } from "./event-dump.js";
import { callDetail, callOutcome, callSummary, hangupEvent, hookTarget, wireMedia } from "./session-view.js";

import type { CallType, CallState, Direction, WireEvent, CallClientPort, LegSetup, NegotiatedMedia, CallDeps, CallSessionOptions, HangupInfo, Variables } from "./session-types.js";

export type { CallType, CallState, Direction, LegKind, WireEvent, CallClientPort, LegSetup, NegotiatedMedia, CallMetricsSink, PosthookSink, PlaybookLoader, CallDeps, AttachedPlan, CallSessionOptions, HangupInfo, CallView } from "./session-types.js";

/** How long a PBX call whose media leg closed waits for the PBX's hangup event before it counts as lost media. */
const MEDIA_LOSS_GRACE_MS = 1000;

export class CallSession {
  readonly id: string;
  readonly callType: CallType;
  readonly direction: Direction;
  readonly createdAt: number;
  readonly agentTrackId: string;
  caller: string;
  callee: string;
  state: CallState = "pending";
  answeredAt: number | undefined;
  ringingAt: number | undefined;
  firstAudioAt: number | undefined;
  endedAt: number | undefined;
  playbook: Playbook | undefined;
  scene: string | undefined;
  media: NegotiatedMedia | undefined;
  turns = 0;
  lastTurn: Record<string, unknown> | undefined;
  readonly speaking: { agent: boolean; caller: boolean; playId?: string | undefined } = { agent: false, caller: false };
  hangupInfo: HangupInfo | undefined;
  recording: { path: string; bytes: number } | undefined;
  variables: Variables = {};
  leg: MediaLeg | undefined;
  conversation: Conversation | undefined;
  /** Resolves once the call is `ended` (hangup event sent, hook submitted). */
  readonly ended: Promise<void>;

  private readonly deps: CallDeps;
  private readonly log: Logger;
  private readonly now: () => number;
  private client: CallClientPort | undefined;
  private readonly subscribers = new Set<(e: WireEvent) => void>();
  private readonly dump: EventDump | undefined;
  private queue: Promise<void> = Promise.resolve();
  private markEnded!: () => void;
  private finishing = false;
  private dtmfSeq = 0;
  /** The PBX channel is already gone: nothing to hang up there. */
  private pbxGone = false;
  /** The media leg closed by itself (not by our hangup). */
  private mediaClosed = false;
  /** `sip.hangupHeaders` of the invite option: SIP headers on the BYE when the controller hangs up. */
  private hangupHeaders: Record<string, string> | undefined;
  private commandRequestId: string | undefined;
  /** The command being run, and the first `error` event it caused (returned by `command`). */
  private running: { error: WireEvent | undefined } | undefined;

  constructor(private readonly options: CallSessionOptions) {
    this.id = options.id;
    this.callType = options.callType;
    this.direction = options.direction;
    this.caller = options.caller ?? "";
    this.callee = options.callee ?? "";
    this.deps = options.deps;
    this.now = options.deps.now ?? Date.now;
    this.createdAt = this.now();
    this.agentTrackId = options.agentTrackId ?? "server-side-track";
    this.log = options.deps.log.child({ callId: this.id, callType: this.callType });
    this.variables = { ...options.plan?.variables };
    this.playbook = options.plan?.playbook;
    this.dump = options.dump ? new EventDump(options.deps.config.paths.dumps, this.id, this.log) : undefined;
    this.ended = new Promise((r) => (this.markEnded = r));
    // A live call counts from creation (pending calls too) until it has ended.
    this.deps.metrics?.callStarted(this.callType);
    if (options.direction === "outbound") this.state = "dialing";
    const control = options.control;
    if (control) {
      control.events.on("progress", (e) => {
        if (this.state !== "dialing" && this.state !== "ringing") return;
        this.state = "ringing";
        this.ringingAt ??= this.now();
        this.emit({ event: "ringing", trackId: this.id, earlyMedia: e.earlyMedia });
      });
      // The far end answered an originated call: media and the playbook start as for an accepted call.
      control.events.on("answered", () => void this.command({ command: "accept" }, "rest"));
      control.events.on("failed", (e) => this.originateFailed(e.cause, e.sipCode));
      control.events.on("hangup", (e) => {
        // An outbound attempt that ends before the answer failed: `reject` with the SIP code, not a hangup.
        if (this.direction === "outbound" && this.answeredAt === undefined) return this.originateFailed(e.cause, e.sipCode);
        this.hangup({ reason: e.initiator === "caller" ? "caller" : "pbxLost", initiator: e.initiator, detail: e.cause, pbxGone: true });
      });
      control.events.on("hold", (e) => this.emit({ event: "hold", trackId: this.id, onHold: e.onHold }));
      control.events.on("other", (e) => this.emit({ event: "other", trackId: this.id, ...e }));
    }
  }

  get attached(): boolean {
    return this.client !== undefined;
  }

  get live(): boolean {
    return this.state !== "ending" && this.state !== "ended";
  }

  /** The path of the JSONL dump, when this call is dumped. */
  get dumpPath(): string | undefined {
    return this.dump?.path;
  }

  // ------------------------------------------------------------------------------------------- clients

  /** Makes `client` the controlling client (ALREADY_ATTACHED when another is). */
  attach(client: CallClientPort): void {
    if (this.client) throw new AppError("ALREADY_ATTACHED", `call ${this.id} already has a controlling client`);
    this.client = client;
  }

  /**
   * The controlling client went away. `/call` (and `/call/pbx` with hangupOnClose) ends the call with reason
   * `caller`/`client`; otherwise the call continues without it.
   */
  detach(client: CallClientPort, endCall: { reason: string; initiator: HangupInitiator } | undefined): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (endCall && this.live) this.hangup(endCall);
  }

  /** Live events (SSE); returns the remover. */
  subscribe(listener: (e: WireEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  // ------------------------------------------------------------------------------------------- commands

  /**
   * One command object (already JSON-parsed) from the WebSocket client or REST. Commands run in arrival order;
   * a bad one produces an `error` event (with its `requestId`) and the call goes on.
   */
  command(raw: unknown, origin: "client" | "rest" = "client"): Promise<WireEvent | undefined> {
    let failure: WireEvent | undefined;
    const run = async (): Promise<void> => {
      this.dump?.write("command", raw, this.now());
      const requestId = typeof (raw as { requestId?: unknown })?.requestId === "string" ? (raw as { requestId: string }).requestId : undefined;
      this.commandRequestId = requestId;
      this.running = { error: undefined };
      try {
        await this.execute(raw, origin);
      } catch (err) {
        this.emitError("command", err, requestId);
      } finally {
        failure = this.running.error;
        this.running = undefined;
        this.commandRequestId = undefined;
      }
    };
    this.queue = this.queue.then(run, run);
    // REST answers a refused command with its error code instead of an event nobody there would see.
    return this.queue.then(() => failure);
  }

  /** Runs one command; anything wrong with it throws (an `error` event with the command's requestId). */
  private async execute(raw: unknown, origin: "client" | "rest"): Promise<void> {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new AppError("BAD_COMMAND", "a command must be a JSON object");
    const c = raw as Record<string, unknown>;
    if (typeof c.command !== "string") throw new AppError("BAD_COMMAND", 'a command needs a "command" field');
    if (!COMMANDS.has(c.command)) throw new AppError("UNKNOWN_COMMAND", `unknown command ${JSON.stringify(c.command).slice(0, 80)}`);
    if (!this.live) throw new AppError("INVALID_STATE", `call ${this.id} is ${this.state}`);
    switch (c.command) {
      case "invite":
      case "accept":
        return this.accept(c.option);
      case "reject": {
        const f = parseFields(rejectCommand, c);
        if (this.state !== "pending" && this.state !== "ringing") throw new AppError("INVALID_STATE", `reject is valid before the call is answered; call ${this.id} is ${this.state}`);
        await this.options.control?.reject(f.code ?? 486, f.reason ?? "Busy Here");
        this.emit({ event: "reject", trackId: this.id, reason: f.reason ?? "rejected", code: f.code ?? 486 });
        return this.finish({ reason: "rejected", initiator: "client", ...(f.reason !== undefined ? { detail: f.reason } : {}) });
      }
      case "ringing": {
        const control = this.options.control;
        if (!control) return; // a no-op on websocket calls (§3 table)
        if (this.state !== "pending" && this.state !== "ringing") throw new AppError("INVALID_STATE", `ringing is valid for a pending call; call ${this.id} is ${this.state}`);
        const earlyMedia = c.earlyMedia === true;
        await control.ringing(earlyMedia);
        this.state = "ringing";
        this.ringingAt ??= this.now();
        this.emit({ event: "ringing", trackId: this.id, earlyMedia });
        return;
      }
      case "refer": {
        const f = parseFields(referCommand, c);
        const target = f.callee ?? f.target;
        if (target === undefined) throw new AppError("BAD_REQUEST", "refer needs callee", { details: { fields: [{ path: "callee", message: "required" }] } });
        const timeoutMs = f.options?.timeoutMs ?? (f.options?.timeout !== undefined ? f.options.timeout * 1000 : undefined);
        return this.transferRequested({ mode: "refer", target, headers: f.options?.headers, timeoutMs });
      }
      case "transfer": {
        const f = parseFields(transferCommand, c);
        const mode = f.mode ?? (/^(sips?|tel):/i.test(f.target) ? "refer" : "dialplan");
        return this.transferRequested({ mode, target: f.target, context: f.context, headers: f.headers });
      }
      case "dtmf": {
        const f = parseFields(dtmfCommand, c);
        return this.sendDtmf(f.digits, f.durationMs ?? 100, f.gapMs ?? 100);
      }
      case "hangup": {
        const cmd = c as unknown as ConversationCommand;
        validateCommand(cmd);
        const h = cmd as Extract<ConversationCommand, { command: "hangup" }>;
        const initiator: HangupInitiator = (c.initiator as string) === "callee" ? "agent" : (h.initiator ?? "client");
        if (!this.conversation) return this.finish({ reason: "client", initiator, ...(h.reason !== undefined ? { detail: h.reason } : {}) });
        this.conversation.handleCommand({ ...h, initiator });
        return;
      }
      default: {
        const cmd = c as unknown as ConversationCommand;
        validateCommand(cmd);
        if (!this.conversation) throw new AppError("INVALID_STATE", `${c.command} needs an answered call; send invite first`);
        if (origin === "rest" && (cmd.command === "tts" || cmd.command === "play") && cmd.playId === undefined) {
          (cmd as { playId?: string }).playId = randomUUID();
        }
        this.conversation.handleCommand(cmd);
      }
    }
  }

  /** `invite`/`accept`: options merged over what is attached, media set up, `answer`, then the playbook starts. */
  private async accept(rawOption: unknown): Promise<void> {
    if (this.state === "active") throw new AppError("INVALID_STATE", `call ${this.id} is already answered`);
    const option = parseCallOption(rawOption);
    if (option.subscribe) throw new AppError("UNSUPPORTED", "option.subscribe (call audio on /call/pbx) is not built; answer without it");
    if (option.caller !== undefined) this.caller = option.caller;
    if (option.callee !== undefined) this.callee = option.callee;
    let playbook = this.playbook;
    if (option.playbook !== undefined) playbook = await this.deps.playbooks.load(option.playbook);
    const respond = playbook !== undefined || option.settings.llm !== undefined;
    playbook ??= await this.appDrivenPlaybook();
    if (Object.keys(option.settings).length > 0) playbook = { ...playbook, settings: mergeSettings(playbook.settings, option.settings) };
    this.variables = { ...this.variables, ...option.variables };
    if (option.sip?.hangupHeaders) this.hangupHeaders = option.sip.hangupHeaders;

    let leg = this.leg;
    if (!leg) {
      if (!this.options.legFactory) throw new AppError("INTERNAL", `call ${this.id} has no media leg`);
      // A PBX channel is answered before its media starts (mod_audio_fork needs an answered channel).
      if (this.options.control && this.direction === "inbound" && (this.state === "pending" || this.state === "ringing")) await this.options.control.answer();
      let made: LegSetup;
      try {
        made = await this.options.legFactory(option);
      } catch (err) {
        // Fail loud: an answered PBX call without media would leave the caller in silence. End it and say why.
        if (!this.options.control) throw err;
        const e = toAppError(err);
        this.log.error({ err: e, step: "media" }, "media did not start; ending the call");
        this.emitError("media", e);
        await this.finish({ reason: "error", initiator: "system", detail: `media did not start: ${e.message}` });
        return;
      }
      leg = made.leg;
      this.media = made.media;
    }
    this.leg = leg;
    this.playbook = respond ? playbook : undefined;
    await this.startConversation(leg, playbook, respond, option.inactivityTimeoutMs ?? this.options.inactivityTimeoutMs);
  }

  /**
   * Answers and starts the pipeline on an existing leg (Twilio streams, accepted PBX calls): `answer`, then the
   * conversation. A conversation that cannot be built (provider missing) ends the call with `error`.
   */
  async startWith(leg: MediaLeg, media: NegotiatedMedia, playbook: Playbook | undefined, inactivityTimeoutMs = this.options.inactivityTimeoutMs): Promise<void> {
    this.leg = leg;
    this.media = media;
    const run = async (): Promise<void> => {
      try {
        const pb = playbook ?? (await this.appDrivenPlaybook());
        this.playbook = playbook;
        await this.startConversation(leg, pb, playbook !== undefined, inactivityTimeoutMs);
      } catch (err) {
        this.emitError("playbook", err);
        await this.finish({ reason: "error", initiator: "system", detail: (err as Error).message });
      }
    };
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  private async startConversation(leg: MediaLeg, playbook: Playbook, respond: boolean, inactivityTimeoutMs: number): Promise<void> {
    leg.events.on("close", (e) => {
      if (!this.live) return;
      this.mediaClosed = true;
      this.hangup({ reason: e.reason === "caller" ? "caller" : "error", initiator: e.reason === "caller" ? "caller" : "system", detail: e.detail });
    });
    this.state = "active";
    this.answeredAt = this.now();
    this.emit({ event: "answer", trackId: this.id, sdp: "", ...(this.media && this.callType === "websocket" ? { media: wireMedia(this.media) } : {}) });
    let conversation: Conversation;
    try {
      conversation = await this.deps.conversations({
        leg,
        playbook,
        call: {
          callId: this.id,
          callType: this.callType,
          direction: this.direction,
          startTime: new Date(this.createdAt),
          playbook: respond ? playbook.name : "",
          ...(this.caller !== "" ? { caller: this.caller } : {}),
          ...(this.callee !== "" ? { callee: this.callee } : {}),
          ...(this.options.headers ? { sipHeaders: this.options.headers } : {}),
        },
        variables: [this.variables],
        respond,
        inactivityTimeoutMs,
        log: this.log,
        pbxPlayer: this.options.control?.player,
        codec: this.media?.codec,
        outputCodec: this.media?.outputCodec,
      });
    } catch (err) {
      const e = toAppError(err);
      this.emitError(e.code === "PROVIDER_ERROR" ? "llm" : "playbook", e);
      await this.finish({ reason: "error", initiator: "system", detail: e.message });
      return;
    }
    if (!this.live) {
      await conversation.stop({ reason: "caller", initiator: "caller" });
      return;
    }
    this.conversation = conversation;
    conversation.events.on("event", (e) => this.onConversationEvent(e));
    // What the playbook asks of the call itself: transfers (already announced as `transfer requested`) and DTMF.
    (conversation.events as unknown as TypedEmitter<{ control: [ControlRequest] }>).on("control", (c) => {
      if (c.command === "dtmf") return void this.sendDtmf(c.digits, 100, 100).catch((err: unknown) => this.emitError("command", err));
      const request: TransferRequest = c.command === "refer" ? { mode: "refer", target: c.callee } : { mode: "dialplan", target: c.target, context: c.context };
      // A transfer that could not even be asked for hands the call back to the agent too.
      void this.transferRequested(request, true).catch((err: unknown) => {
        this.emitError("pbx", err);
        conversation.transferFailed(toAppError(err).message);
      });
    });
    void conversation.closed.then((end) => this.finish(end));
    await conversation.start();
  }

  private appDrivenPlaybook(): Promise<Playbook> {
    // No playbook: say nothing, answer nothing; the application speaks with tts/play.
    return this.deps.playbooks.parseContent("---\ngreeting: false\n---\n", "(no playbook)");
  }

  /**
   * `refer`/`transfer` (and the playbook's transfers): on a PBX call the PBX does it and reports the outcome; on a
   * websocket call only `transfer {state:"requested"}` is emitted and the application decides (§3.9). `fromPlaybook`:
   * the conversation already announced it, and hears if it fails.
   */
  private async transferRequested(request: TransferRequest, fromPlaybook = false): Promise<void> {
    if (this.callType === "twilio") throw new AppError("UNSUPPORTED", "transfer is not possible through a Twilio media stream");
    if (this.state !== "active") throw new AppError("INVALID_STATE", `transfer needs an answered call; call ${this.id} is ${this.state}`);
    const base = { trackId: this.id, mode: request.mode, target: request.target, ...(request.context !== undefined ? { context: request.context } : {}) };
    if (!fromPlaybook) this.emit({ event: "transfer", ...base, state: "requested" });
    const control = this.options.control;
    if (!control) return;
    const outcome = await control.transfer(request);
    if (outcome.state === "failed") {
      this.emit({ event: "transfer", ...base, state: "failed", reason: outcome.reason, ...(outcome.code !== undefined ? { code: outcome.code } : {}) });
      // The playbook's agent stopped taking turns for it: the call is its again (never leave the caller in silence).
      if (fromPlaybook) this.conversation?.transferFailed(outcome.reason);
      return;
    }
    this.emit({ event: "transfer", ...base, state: "accepted" });
    this.hangup({ reason: request.mode === "refer" ? "refer" : "transferred", initiator: request.mode === "refer" ? "caller" : "agent", pbxGone: true });
  }

  /** In-band tones mixed into the agent audio, queued after what is playing (websocket and Twilio calls). */
  private async sendDtmf(digits: string, durationMs: number, gapMs: number): Promise<void> {
    if (!this.conversation || !this.leg) throw new AppError("INVALID_STATE", "dtmf needs an answered call; send invite first");
    if (this.options.control) {
      await this.options.control.sendDtmf(digits, durationMs);
      return;
    }
    const rate = 16000;
    const pcm = dtmfTones(digits, rate, durationMs, gapMs);
    const text = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString("base64");
    this.conversation.handleCommand({ command: "tts", text, base64: true, queue: true, interruptible: false, playId: `dtmf-${++this.dtmfSeq}`, option: { sampleRate: rate } });
  }

  // ------------------------------------------------------------------------------------------- ending

  /** An originated call that never answered (busy, no answer, unreachable): `reject`, then `hangup`. */
  private originateFailed(cause: string, sipCode: number | undefined): void {
    this.pbxGone = true;
    if (!this.live) return;
    this.emit({ event: "reject", trackId: this.id, reason: cause, ...(sipCode !== undefined ? { code: sipCode } : {}) });
    const unanswered = ["NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL", "ALLOTTED_TIMEOUT"].includes(cause);
    void this.finish({ reason: unanswered ? "noAnswer" : "rejected", initiator: "system", detail: cause });
  }

  /** Ends the call (REST hangup, socket closed, shutdown). Idempotent. */
  hangup(end: { reason: string; initiator: HangupInitiator; detail?: string | undefined; afterPlayout?: boolean; pbxGone?: boolean }): void {
    if (end.pbxGone) this.pbxGone = true;
    if (!this.live) return;
    if (this.conversation) {
      if (end.afterPlayout) {
        this.conversation.handleCommand({ command: "hangup", initiator: end.initiator, afterPlayout: true, ...(end.detail !== undefined ? { reason: end.detail } : {}) });
        return;
      }
      void this.conversation.stop(end as ConversationEnd);
      return;
    }
    void this.finish(end);
  }

  private async finish(end: { reason: string; initiator: HangupInitiator; detail?: string | undefined; headers?: Record<string, string> | undefined }): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    const wasAnswered = this.answeredAt !== undefined;
    this.state = "ending";
    const control = this.options.control;
    // On a PBX call the media leg closes when the channel hangs up (FS closes the fork), racing the PBX's own
    // hangup event, which says why: wait a moment for it before calling it lost media and killing the channel.
    if (control && !this.pbxGone && this.mediaClosed) {
      const pbx = await new Promise<CallControlEvents["hangup"][0] | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), MEDIA_LOSS_GRACE_MS);
        timer.unref();
        control.events.once("hangup", (e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
      if (pbx) end = { ...end, reason: pbx.initiator === "caller" ? "caller" : "pbxLost", initiator: pbx.initiator, detail: pbx.cause };
    }
    this.hangupInfo = { reason: end.reason, initiator: end.initiator, ...(end.detail !== undefined ? { detail: end.detail } : {}) };
    if (this.conversation) await this.conversation.stop(end as ConversationEnd).catch(() => undefined);
    const rec = (this.conversation as { recording?: { path: string; bytes: number } } | undefined)?.recording;
    if (rec) this.recording = { path: rec.path, bytes: rec.bytes };
    await this.leg?.close("call ended").catch(() => undefined);
    // The PBX channel goes too, unless it is already gone (caller hung up, transferred away) or was rejected.
    if (control && !this.pbxGone && end.reason !== "rejected") {
      const headers = end.headers ?? this.hangupHeaders;
      // A call ended by a failure tells the PBX so (Q.850 41), not a normal clearing.
      const cause = end.reason === "error" ? "NORMAL_TEMPORARY_FAILURE" : wasAnswered ? "NORMAL_CLEARING" : "NO_ANSWER";
      await control.hangup({ cause, headers }).catch((err: unknown) => this.log.warn({ err }, "pbx hangup failed"));
    }
    this.endedAt = this.now();
    const durationMs = this.answeredAt === undefined ? 0 : Math.max(0, this.endedAt - this.answeredAt);
    // The hook is durable (spooled and fsynced) before anyone is told the call ended (the hangup event, the REST
    // state, `ended`): a crash after a client saw the call end loses no hook.
    await this.submitHook().catch((err: unknown) => this.log.error({ err }, "post-call hook could not be spooled"));
    this.emit(hangupEvent(this, end, durationMs));
    this.state = "ended";
    const m = this.deps.metrics;
    if (m) {
      m.callEnded({ type: this.callType, direction: this.direction, reason: end.reason, ...(this.answeredAt !== undefined ? { durationMs } : {}) });
      const snap = this.conversation?.snapshot();
      for (let i = 0; i < (snap?.interruptions.falseInterruptions ?? 0); i++) m.falseInterruption();
      for (let i = 0; i < (snap?.turns.hits ?? 0); i++) m.eouSpeculation("hit");
      for (let i = 0; i < (snap?.turns.misses ?? 0); i++) m.eouSpeculation("miss");
    }
    const client = this.client;
    this.client = undefined;
    client?.close(1000, "call ended");
    await this.dump?.close();
    this.subscribers.clear();
    this.log.info({ reason: end.reason, initiator: end.initiator, durationMs }, "call ended");
    this.markEnded();
  }

  private async submitHook(): Promise<void> {
    const target = hookTarget(this.playbook, this.deps.config.posthook);
    if (!this.deps.posthooks || !target) return;
    await this.deps.posthooks.submit(buildHook(callOutcome(this), target, new Date(this.now())));
  }

  // ------------------------------------------------------------------------------------------- events

  private onConversationEvent(e: ConversationEvent): void {
    switch (e.event) {
      case "hangup":
        return; // the call sends its own, complete `hangup` when the conversation has closed
      case "speaking":
        this.speaking.caller = true;
        break;
      case "silence":
        if (e.reason === "vad") this.speaking.caller = false;
        break;
      case "trackStart":
        this.speaking.agent = true;
        this.speaking.playId = e.playId;
        this.firstAudioAt ??= this.now();
        break;
      case "trackEnd":
        if (this.speaking.playId === e.playId) {
          this.speaking.agent = false;
          this.speaking.playId = undefined;
        }
        break;
      case "sceneChange":
        this.scene = e.to;
        break;

      case "interruption":
        if (e.reason === "bargeIn") this.deps.metrics?.bargeIn(this.playbook?.settings.interruption?.strategy ?? this.deps.config.defaults.interruption.strategy ?? "both");
        break;
      case "metrics":
        if (e.key === "turn") {
          this.turns++;
          this.lastTurn = { ...e.data };
          const m = this.deps.metrics;
          if (m) {
            const d = e.data as Record<string, unknown>;
            const stage = (name: "eou" | "asr" | "llm_ttft" | "tts_ttfb", key: string): void => {
              if (typeof d[key] === "number") m.turnLatency(name, d[key]);
            };
            stage("eou", "eouMs");
            stage("asr", "asrMs");
            stage("llm_ttft", "llmTtftMs");
            stage("tts_ttfb", "ttsTtfbMs");
            m.turnLatency("first_audio", e.duration);
          }
        }
        break;
      default:
        break;
    }
    const agentSide = e.event === "trackStart" || e.event === "trackEnd" || e.event === "interruption";
    const trackId = e.trackId ?? (agentSide ? this.agentTrackId : this.id);
    this.emit({ ...(e as unknown as WireEvent), trackId });
  }

  private emitError(sender: string, err: unknown, requestId = this.commandRequestId): void {
    const e = isAppError(err) ? err : toAppError(err);
    if (e.code === "INTERNAL") this.log.error({ err }, "call command failed");
    this.emit({
      event: "error",
      trackId: this.id,
      sender,
      error: e.message,
      code: e.code,
      ...(requestId !== undefined ? { requestId } : {}),
      ...(e.details && Object.keys(e.details).length > 0 ? { details: e.details } : {}),
    });
  }

  /** Sends an event to the client, the subscribers and the dump (timestamp added when missing). */
  emit(event: Omit<WireEvent, "timestamp"> & { timestamp?: number }): void {
    const e = { ...event, timestamp: event.timestamp ?? this.now() } as WireEvent;
    if (e.event === "error" && this.running && !this.running.error) this.running.error = e;
    this.dump?.write("event", e, e.timestamp);
    try {
      this.client?.send(e);
    } catch (err) {
      this.log.warn({ err }, "event could not be sent to the client");
    }
    for (const s of this.subscribers) s(e);
  }

  /** A non-command error the transport wants reported (undecodable audio, audio before answer). */
  reportError(code: "AUDIO_FORMAT" | "INVALID_STATE" | "UNSUPPORTED" | "BAD_COMMAND", message: string, sender = "media"): void {
    this.emitError(sender, new AppError(code, message));
  }

  /** A failure found outside a command (e.g. the Twilio stream's playbook cannot be loaded), with its own code. */
  reportFailure(sender: string, err: unknown): void {
    this.emitError(sender, err);
  }

  // ------------------------------------------------------------------------------------------- views

  summary(): Record<string, unknown> {
    return callSummary(this, this.now());
  }

  detail(includeVariables: boolean): Record<string, unknown> {
    return callDetail(this, this.now(), includeVariables);
  }
}
