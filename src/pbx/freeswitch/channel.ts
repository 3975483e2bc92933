/**
 * One FreeSWITCH channel the controller owns: its CallControl over ESL (media-protocols.md §1.4), the start of its
 * mod_audio_fork media leg (§2.2), and the routing of its events (§1.5). The connection is whichever one owns the
 * channel: the inbound control connection, or the channel's own outbound socket (`async full`, so `api` works).
 */
import type { Config } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { AudioForkLeg } from "../../media/audio-fork-leg.js";
import { TypedEmitter } from "../../media/emitter.js";
import type { ForkRegistry, ForkSocket } from "../../media/fork-registry.js";
import type { CallControl, CallControlEvents, PbxPlayer, TransferOutcome, TransferRequest } from "../call-control.js";
import { respondArgument, sipCodeOf } from "./causes.js";
import type { EslConnection, EslEvent } from "./esl/index.js";

type FsConfig = Config["freeswitch"];

/** The fork must connect this soon after `start` (§1.6 step 3.2). */
export const FORK_CONNECT_TIMEOUT_MS = 5000;
const FORK_RETRY_DELAY_MS = 500;
/**
 * FreeSWITCH closes the fork's WebSocket a few ms before CHANNEL_HANGUP reaches ESL (live fact 8): a fork that
 * closes is given this long for the hangup to arrive before it counts as dropped and is restarted.
 */
export const FORK_CLOSE_GRACE_MS = 1000;
/** What the dialplan must do so that streamed agent audio is heard (see `checkSilenceWhenIdle`). */
export const SILENCE_WHEN_IDLE_FIX =
  'set send_silence_when_idle=-1 before park/socket in the dialplan (<action application="set" data="send_silence_when_idle=-1"/>), or among the {} variables of an originate';
const DTMF_SOURCES: Readonly<Record<string, "rfc2833" | "info" | "inband" | "pbx">> = { RTP: "rfc2833", INBAND_AUDIO: "inband", ENDPOINT: "info" };
/** A header name for `sip_bye_h_<Name>` / `sip_h_<Name>`: a SIP token. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

export interface FsChannelOptions {
  uuid: string;
  /** The connection that owns the channel (replaced after an inbound reconnect). */
  connection: EslConnection;
  config: FsConfig;
  forks: ForkRegistry;
  log: Logger;
  /** The channel arrived on its own outbound socket (sendmsg then omits the uuid). */
  outbound: boolean;
  /** We placed this call (originate): progress and answer are reported as control events. */
  originated?: boolean;
}

export interface FsMedia {
  leg: AudioForkLeg;
  media: { leg: "audioFork"; codec: "L16"; sampleRate: number; outputSampleRate: number };
}

export class FsChannel implements CallControl, PbxPlayer {
  readonly pbx = "freeswitch" as const;
  readonly events = new TypedEmitter<CallControlEvents>();
  readonly uuid: string;
  leg: AudioForkLeg | undefined;
  private gone = false;
  private readonly o: FsChannelOptions;
  private pendingRefer: ((sipfrag: string) => void) | undefined;
  private forkSocket: ForkSocket | undefined;
  private playSeq = 0;
  /** `pbx:` playbacks under way, by target: PLAYBACK_START resolves `started`, PLAYBACK_STOP gives the status. */
  private readonly pbxPlays = new Map<string, { started: () => void; status: "done" | "break" }>();
  private forkRestarts = 0;
  /** A `pbx:` playback was paused with `uuid_fileman` (a toggle). */
  private pbxPaused = false;
  /** send_silence_when_idle was verified (once per call, before answer or before the fork). */
  private silenceChecked = false;
  /** A closed fork waiting for CHANNEL_HANGUP before it counts as dropped. */
  private forkGrace: NodeJS.Timeout | undefined;
  private answeredSeen = false;
  /** File mode (§2.6): utterances sent as playAudio, in order, waiting for their `::play_audio` file. */
  private readonly awaitingFiles: string[] = [];
  /** Files ready to play (one at a time), and the file playing now, with their utterances. */
  private readonly fileQueue: { file: string; playId: string }[] = [];
  private playingFile: { file: string; playId: string } | undefined;

  constructor(options: FsChannelOptions) {
    this.o = options;
    this.uuid = options.uuid;
  }

  get ended(): boolean {
    return this.gone;
  }

  get outbound(): boolean {
    return this.o.outbound;
  }

  /** After an inbound reconnect, a surviving channel is driven through the new connection. */
  useConnection(connection: EslConnection): void {
    this.o.connection = connection;
  }

  // ---------------------------------------------------------------------------------------------- CallControl

  async answer(): Promise<void> {
    // Before the answer: a parked channel's park loop reads the variable when the channel gets media.
    await this.checkSilenceWhenIdle();
    await this.api(`uuid_answer ${this.uuid}`);
  }

  /**
   * Streamed agent audio is mixed into the frames FreeSWITCH writes, and a parked channel (park, `socket … async`,
   * originate's `&park()`) writes frames only if `send_silence_when_idle` was set when its park loop first saw
   * media: switch_ivr_park reads it once, at the first pass after answer or pre-answer. Set after the answer it
   * races that pass and is ignored for the whole call (live facts 3-5: no RTP to the caller at all). So the
   * dialplan sets it before park, originate among its `{}` variables; this verifies it (`uuid_getvar`). When it is
   * missing, an error names the fix and it is set here, which still works while the channel has no media yet.
   */
  private async checkSilenceWhenIdle(): Promise<void> {
    if (this.o.config.playback !== "stream" || this.silenceChecked) return;
    this.silenceChecked = true;
    const value = (await this.api(`uuid_getvar ${this.uuid} send_silence_when_idle`, true)).trim();
    if (/^-?\d+$/.test(value) && Number(value) !== 0) return;
    this.o.log.error({ callId: this.uuid, step: "send_silence_when_idle", value, fix: SILENCE_WHEN_IDLE_FIX }, "send_silence_when_idle is not set on the channel: the caller may hear no agent audio");
    await this.api(`uuid_setvar ${this.uuid} send_silence_when_idle -1`);
  }

  async ringing(earlyMedia: boolean): Promise<void> {
    await this.api(`${earlyMedia ? "uuid_pre_answer" : "uuid_ring_ready"} ${this.uuid}`);
  }

  async reject(code: number, reason: string): Promise<void> {
    // `respond` gives the caller exactly this status (uuid_kill could only pick a cause).
    await this.o.connection.execute("respond", respondArgument(code, reason), this.o.outbound ? {} : { uuid: this.uuid });
  }

  async hangup(options: { cause?: string; headers?: Record<string, string> | undefined }): Promise<void> {
    if (this.gone) return;
    // One uuid_setvar per header: uuid_setvar_multi would split values on ';'.
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (!HEADER_NAME.test(name) || /[\r\n]/.test(value)) continue;
      await this.api(`uuid_setvar ${this.uuid} sip_bye_h_${name} ${value}`, true);
    }
    await this.api(`uuid_kill ${this.uuid} ${options.cause ?? "NORMAL_CLEARING"}`, true);
  }

  async transfer(request: TransferRequest): Promise<TransferOutcome> {
    if (request.mode === "dialplan") {
      const command = `uuid_transfer ${this.uuid} ${safeArg(request.target)} XML ${safeArg(request.context ?? this.o.config.transfer_context)}`;
      // The fork is a media bug on the channel: it would go along and keep streaming the caller to us (live fact 7).
      await this.stopFork();
      const reply = await this.o.connection.bgapi(command);
      if (reply.startsWith("+OK")) return { state: "accepted" };
      await this.resumeFork();
      return { state: "failed", reason: reply.trim() };
    }
    const target = /^sips?:/i.test(request.target) ? request.target : await this.userUri(request.target);
    await this.api(`uuid_setvar ${this.uuid} sip_refer_continue_after_reply true`);
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (HEADER_NAME.test(name) && !/[\r\n]/.test(value)) await this.api(`uuid_setvar ${this.uuid} sip_h_${name} ${value}`);
    }
    const outcome = new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), request.timeoutMs ?? 10_000);
      timer.unref();
      this.pendingRefer = (sipfrag) => {
        clearTimeout(timer);
        resolve(sipfrag);
      };
    });
    const reply = await this.o.connection.bgapi(`uuid_deflect ${this.uuid} ${safeArg(target)}`);
    if (!reply.startsWith("+OK")) {
      this.pendingRefer = undefined;
      return { state: "failed", reason: reply.trim() };
    }
    const sipfrag = await outcome;
    this.pendingRefer = undefined;
    const code = Number(/SIP\/2\.0 (\d{3})/.exec(sipfrag ?? "")?.[1]);
    if (code >= 200 && code < 300) {
      await this.stopFork();
      await this.api(`uuid_kill ${this.uuid} BLIND_TRANSFER`, true);
      return { state: "accepted" };
    }
    return sipfrag === undefined ? { state: "failed", reason: "no answer to the REFER in time" } : { state: "failed", code, reason: sipfrag.trim() };
  }

  /** A bare user or extension becomes `sip:<user>@<the profile's SIP address>` (§1.6 REFER step 2). */
  private async userUri(user: string): Promise<string> {
    if (user.includes("@")) return `sip:${user}`;
    const host = (await this.api(`uuid_getvar ${this.uuid} sip_local_network_addr`, true).catch(() => "")).trim();
    return host !== "" && host !== "_undef_" && !host.startsWith("-ERR") ? `sip:${user}@${host}` : `sip:${user}`;
  }

  async sendDtmf(digits: string, durationMs: number): Promise<void> {
    await this.api(`uuid_send_dtmf ${this.uuid} ${digits}@${durationMs}`);
  }

  get player(): PbxPlayer {
    return this;
  }

  /** `pbx:` playback: `sendmsg execute playback` with event-lock, ended by its CHANNEL_EXECUTE_COMPLETE (§1.4). */
  play(target: string, playId: string): { started: Promise<void>; ended: Promise<{ status: "done" | "break" }> } {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const entry = { started: markStarted, status: "done" as "done" | "break" };
    this.pbxPlays.set(target, entry);
    const ended = this.o.connection
      .execute("playback", target, { ...(this.o.outbound ? {} : { uuid: this.uuid }), eventLock: true, eventUuid: `${playId}:${++this.playSeq}` })
      .then(
        () => entry.status,
        (err: unknown) => {
          this.o.log.warn({ callId: this.uuid, err, target }, "pbx playback failed");
          return "break" as const;
        },
      )
      .then((status) => {
        markStarted();
        if (this.pbxPlays.get(target) === entry) this.pbxPlays.delete(target);
        return { status };
      });
    return { started, ended };
  }

  /** `uuid_fileman pause` toggles, so it is sent only when the state changes (§3.7 of ws-call-api). */
  async pausePlayback(paused: boolean): Promise<void> {
    if (paused === this.pbxPaused || this.pbxPlays.size === 0) return;
    this.pbxPaused = paused;
    await this.api(`uuid_fileman ${this.uuid} pause`, true);
  }

  async stopPlayback(): Promise<void> {
    this.pbxPaused = false;
    // File mode: what was waiting to play is dropped with the current file (barge-in).
    this.fileQueue.length = 0;
    this.awaitingFiles.length = 0;
    await this.api(`uuid_break ${this.uuid} all`, true);
  }

  // ---------------------------------------------------------------------------------------------- media

  /** Starts mod_audio_fork (10-argument form) and waits for its WebSocket; one retry when it fails to connect. */
  async startMedia(): Promise<FsMedia> {
    const c = this.o.config;
    // Streamed audio is mixed into what FS writes: an idle channel writes nothing without this (§2.4). Inbound
    // calls were checked before their answer; an originated call carries it from its `{}` variables.
    await this.checkSilenceWhenIdle();
    const socket = await this.connectFork();
    const leg = new AudioForkLeg({
      id: this.uuid,
      forkRate: c.fork_sample_rate,
      playbackRate: c.playback_sample_rate,
      mode: c.playback,
      useMarks: c.use_marks,
      // Through whichever fork socket is current: a restarted fork keeps the same leg (and conversation).
      send: (data) => this.forkSocket?.send(data),
      onFlush: () => void this.stopPlayback().catch(() => undefined),
      log: this.o.log,
    });
    if (c.playback === "file") leg.forkEvents.on("playAudio", (p) => this.awaitingFiles.push(p.playId));
    // Fail loud: a call whose agent audio never plays is ended, not left in silence.
    leg.forkEvents.on("noPlayout", (e) => {
      const detail = `media: FreeSWITCH played none of the agent audio within ${e.waitedMs} ms (no mark answered)`;
      this.o.log.error({ callId: this.uuid, step: "playout", waitedMs: e.waitedMs, fix: `${SILENCE_WHEN_IDLE_FIX}; with mod_audio_fork older than 1.2.29 set [freeswitch] use_marks = false` }, "no agent audio reached the caller; ending the call");
      leg.hangup("error", detail);
    });
    this.leg = leg;
    this.bindFork(socket, leg);
    return { leg, media: { leg: "audioFork", codec: "L16", sampleRate: c.fork_sample_rate, outputSampleRate: c.playback_sample_rate } };
  }

  /** `uuid_audio_fork … start` (10-argument form) and its WebSocket; one retry when it fails to connect (§1.6). */
  private async connectFork(): Promise<ForkSocket> {
    const c = this.o.config;
    const stream = c.playback === "stream";
    for (let attempt = 1; ; attempt++) {
      const expectation = this.o.forks.expect(this.uuid, FORK_CONNECT_TIMEOUT_MS);
      const url = `${c.audio_fork_url.replace(/\/+$/, "")}/${this.uuid}?token=${expectation.token}`;
      const args = ["^^", this.uuid, "start", url, "mono", c.fork_sample_rate === 8000 ? "8k" : "16k", "audio_fork", `{"callId":"${this.uuid}"}`, "true", stream ? "true" : "false", stream ? String(c.playback_sample_rate) : "0"];
      const reply = await this.api(`uuid_audio_fork ${args.join("|")}`);
      if (!reply.startsWith("+OK")) {
        this.o.forks.cancel(this.uuid);
        throw new AppError("PBX_ERROR", `uuid_audio_fork failed: ${reply.trim()}`, { details: { pbxReply: reply.trim() } });
      }
      try {
        const socket = await expectation.connected;
        this.forkSocket = socket;
        return socket;
      } catch (err) {
        if (attempt > 1 || this.gone) throw err instanceof AppError ? err : new AppError("PBX_ERROR", `audio fork did not connect: ${(err as Error).message}`);
        this.o.log.warn({ callId: this.uuid, err }, "audio fork did not connect; retrying once");
        await new Promise((r) => setTimeout(r, FORK_RETRY_DELAY_MS));
      }
    }
  }

  /** Frames of `socket` go to the leg; its close is a loss only when the channel outlives it (`forkLost`). */
  private bindFork(socket: ForkSocket, leg: AudioForkLeg): void {
    socket.on("message", (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      leg.handleMessage(buf, isBinary);
    });
    socket.on("close", (code) => {
      // Stopped on purpose (transfer) or replaced by a restart: not a loss.
      if (this.forkSocket !== socket) return;
      this.forkSocket = undefined;
      if (this.gone || leg.closed) return leg.hangup("transport", `fork socket closed (${code})`);
      clearTimeout(this.forkGrace);
      this.forkGrace = setTimeout(() => void this.forkLost(leg, code), FORK_CLOSE_GRACE_MS);
      this.forkGrace.unref();
    });
  }

  /**
   * The fork closed and no CHANNEL_HANGUP came within the grace: a channel that is gone anyway ends quietly; a live
   * one gets its fork restarted once (`stop`, then `start`) on the same leg (FS never reconnects by itself); a
   * second loss ends the leg.
   */
  private async forkLost(leg: AudioForkLeg, code: number): Promise<void> {
    this.forkGrace = undefined;
    if (this.gone || leg.closed) return;
    const exists = (await this.api(`uuid_exists ${this.uuid}`, true).catch(() => "false")).trim();
    if (this.gone || leg.closed) return;
    if (exists !== "true") return this.markGone("NORMAL_CLEARING", undefined, "system");
    if (this.forkRestarts++ >= 1) return leg.hangup("transport", `fork lost again (${code})`);
    this.o.log.warn({ callId: this.uuid, code }, "audio fork dropped while the call lives; restarting it");
    try {
      await this.api(`uuid_audio_fork ${this.uuid} stop`, true).catch(() => undefined);
      const next = await this.connectFork();
      if (leg.closed) return next.close(1000, "call ended");
      this.bindFork(next, leg);
    } catch (err) {
      if (this.gone || leg.closed) return;
      this.o.log.error({ callId: this.uuid, err, step: "fork restart" }, "audio fork restart failed; ending the call");
      leg.hangup("error", "media: the audio fork dropped and could not be restarted");
    }
  }

  /** Takes the fork off the channel (`uuid_audio_fork <uuid> stop`) before the channel leaves us (transfer). */
  private async stopFork(): Promise<void> {
    const socket = this.forkSocket;
    if (!socket || this.gone) return;
    this.forkSocket = undefined;
    await this.api(`uuid_audio_fork ${this.uuid} stop`, true).catch((err: unknown) => this.o.log.warn({ callId: this.uuid, err }, "uuid_audio_fork stop failed"));
  }

  /** A transfer that failed leaves the call with us: the fork is started again on the same leg. */
  private async resumeFork(): Promise<void> {
    const leg = this.leg;
    if (!leg || leg.closed || this.gone || this.forkSocket) return;
    try {
      const socket = await this.connectFork();
      if (leg.closed) return socket.close(1000, "call ended");
      this.bindFork(socket, leg);
    } catch (err) {
      this.o.log.error({ callId: this.uuid, err, step: "fork restart" }, "audio fork could not be restarted after a failed transfer; ending the call");
      leg.hangup("error", "media: the audio fork could not be restarted after a failed transfer");
    }
  }

  // ---------------------------------------------------------------------------------------------- events

  /** An event for this channel, from the connection that owns it. */
  handleEvent(ev: EslEvent): void {
    const h = ev.headers;
    switch (ev.name) {
      case "CHANNEL_HANGUP":
      case "CHANNEL_HANGUP_COMPLETE":
        this.markGone(h["Hangup-Cause"] ?? "NORMAL_CLEARING", h["variable_sip_term_status"], "caller");
        return;
      case "DTMF": {
        const source = h["DTMF-Source"] ?? "UNKNOWN";
        if (source === "APP") return; // our own uuid_send_dtmf
        const digit = h["DTMF-Digit"];
        const samples = Number(h["DTMF-Duration"]);
        if (digit && this.leg) this.leg.pushDtmf(digit, Number.isFinite(samples) ? Math.round(samples / 8) : undefined, DTMF_SOURCES[source] ?? "pbx");
        return;
      }
      case "CHANNEL_PROGRESS":
      case "CHANNEL_PROGRESS_MEDIA":
        if (this.o.originated) this.events.emit("progress", { earlyMedia: ev.name === "CHANNEL_PROGRESS_MEDIA" });
        return;
      case "CHANNEL_PARK":
        // An originated call is answered, then parked by `&park()`: media can start now (§1.6 originate).
        if (this.o.originated && !this.answeredSeen) {
          this.answeredSeen = true;
          this.events.emit("answered");
        }
        return;
      case "PLAYBACK_START": {
        const file = h["Playback-File-Path"];
        if (file !== undefined) this.pbxPlays.get(file)?.started();
        if (this.playingFile && this.playingFile.file === file) this.leg?.filePlaybackStarted(this.playingFile.playId);
        return;
      }
      case "PLAYBACK_STOP": {
        const file = h["Playback-File-Path"];
        const pbxPlay = file !== undefined ? this.pbxPlays.get(file) : undefined;
        if (pbxPlay) pbxPlay.status = h["Playback-Status"] === "break" ? "break" : "done";
        const playing = this.playingFile;
        if (!playing || playing.file !== file) return;
        this.playingFile = undefined;
        this.leg?.filePlaybackEnded(playing.playId, h["Playback-Status"] === "break" ? "break" : "done");
        this.playNextFile();
        return;
      }
      case "CHANNEL_HOLD":
      case "CHANNEL_UNHOLD":
        this.events.emit("hold", { onHold: ev.name === "CHANNEL_HOLD" });
        return;
      case "CUSTOM":
        return this.handleCustom(ev);
      default:
        return;
    }
  }

  /** The channel is gone (hangup seen, or it vanished during an ESL outage). */
  markGone(cause: string, sipTermStatus: string | undefined, initiator: "caller" | "system"): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.forkGrace);
    this.forkGrace = undefined;
    this.o.forks.cancel(this.uuid);
    this.events.emit("hangup", { cause, sipCode: sipCodeOf(cause, sipTermStatus), initiator });
  }

  private handleCustom(ev: EslEvent): void {
    switch (ev.subclass) {
      case "sofia::notify_refer":
        this.pendingRefer?.(ev.body ?? "");
        return;
      case "mod_audio_fork::buffer_overrun":
        this.o.log.warn({ callId: this.uuid }, "FreeSWITCH dropped caller audio: the fork reader fell behind");
        return;
      case "mod_audio_fork::error":
        this.o.log.warn({ callId: this.uuid, body: ev.body }, "mod_audio_fork error");
        return;
      case "mod_audio_fork::play_audio": {
        // File mode: FS wrote the n-th playAudio to a file and does not play it; we do, one at a time (§2.6).
        const file = parseJson(ev.body)?.file;
        const playId = this.awaitingFiles.shift();
        if (typeof file !== "string" || /[\s\r\n]/.test(file) || playId === undefined) return;
        this.fileQueue.push({ file, playId });
        if (!this.playingFile) this.playNextFile();
        return;
      }
      default:
        return;
    }
  }

  private playNextFile(): void {
    const next = this.fileQueue.shift();
    if (!next) return;
    this.playingFile = next;
    void this.api(`uuid_broadcast ${this.uuid} ${next.file} aleg`, true).catch((err: unknown) => {
      this.o.log.warn({ callId: this.uuid, err }, "file playback failed");
      this.playingFile = undefined;
      this.leg?.filePlaybackEnded(next.playId, "break");
      this.playNextFile();
    });
  }

  /** `api` on the owning connection; `-ERR` is a PBX_ERROR, except "no such channel" when `goneOk` (races with hangup). */
  private async api(command: string, goneOk = false): Promise<string> {
    const reply = await this.o.connection.api(command);
    if (reply.startsWith("-ERR") || reply.startsWith("-USAGE")) {
      if (/no such channel/i.test(reply)) {
        if (goneOk) return reply;
        this.markGone("NORMAL_CLEARING", undefined, "system");
      }
      throw new AppError("PBX_ERROR", `FreeSWITCH refused "${command.split(" ")[0]}": ${reply.trim()}`, { details: { pbxReply: reply.trim() } });
    }
    return reply;
  }
}

/** A value for an ESL command line: one token, no line breaks. */
function safeArg(value: string): string {
  if (/[\s\r\n]/.test(value) || value === "") throw new AppError("BAD_REQUEST", `${JSON.stringify(value)} cannot be sent to FreeSWITCH (spaces or line breaks)`);
  return value;
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text ?? "");
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
