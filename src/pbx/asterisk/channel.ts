/**
 * One Asterisk call the controller owns (media-protocols.md §3): the caller's channel in our Stasis application,
 * its CallControl over ARI REST, its mixing bridge and externalMedia channel (§3.4-3.7), and the routing of its
 * events (§3.3). The adapter creates it and hands it events; media starts when the call layer accepts the call.
 *
 * Ids: the bridge is `ac-<callId>` and the media channel `ac-<callId>-m`, so both can be cleaned up (and
 * recognised after a reconnect) without keeping anything but the call id.
 */
import type { Config } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { TypedEmitter } from "../../media/emitter.js";
import type { CallControl, CallControlEvents, PbxPlayer, TransferOutcome, TransferRequest } from "../call-control.js";
import type { AriClient } from "./ari/client.js";
import type { AriKnownEvent } from "./ari/events.js";
import { causeName, q850ForCause, q850ForSip, sipForQ850 } from "./causes.js";
import { startAsteriskMedia, type AsteriskLeg, type AsteriskMedia, type AsteriskMediaDeps, type AsteriskMediaMode } from "./media.js";
import { asteriskSupports } from "./version.js";

type AstConfig = Config["asterisk"];

/** A redirect (REFER) has no outcome event: success shows as the caller's channel leaving (§3.9). */
const DEFAULT_REFER_TIMEOUT_MS = 10_000;

export interface AsteriskCallOptions {
  /** The caller's channel id, which is also the call id. */
  channelId: string;
  ari: AriClient;
  config: AstConfig;
  /** `system.version` of the Asterisk we talk to (feature gates). */
  version: () => string | undefined;
  media: AsteriskMediaDeps;
  /** Media transport for this call (config, or the Stasis argument `media=`). */
  mediaMode: AsteriskMediaMode;
  log: Logger;
  /** We placed this call (originate): ringing, answer and failure are reported as control events. */
  originated?: boolean;
  /** Our own channels (media), so the adapter ignores their StasisStart (§3.9). */
  ours: Set<string>;
}

/** How long externalMedia's channel may take to enter Stasis after the reply (live: a few ms). */
export const MEDIA_STASIS_TIMEOUT_MS = 5000;
/** The whole media start (bridge, externalMedia, its connection, Stasis, addChannel); past it the call is ended. */
export const MEDIA_START_DEADLINE_MS = 10_000;
/** addChannel refused with 422 "not in Stasis" is tried again this often, this far apart (ms x attempt). */
const ADD_CHANNEL_RETRIES = 3;
const ADD_CHANNEL_RETRY_MS = 50;

/** The steps of a media start, as error lines and the post-call hook name them. */
export type MediaStartStep = "bridge" | "externalMedia" | "media channel StasisStart" | "addChannel";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Asterisk's 422 for a channel that is not (yet) in our application (live-2026-12-06 fact 3). */
function notInStasis(err: unknown): boolean {
  if (!(err instanceof AppError)) return false;
  const reply = err.details.pbxReply as { status?: number; message?: string } | undefined;
  return reply?.status === 422 && /not in stasis/i.test(reply.message ?? err.message);
}

export class AsteriskCall implements CallControl, PbxPlayer {
  readonly pbx = "asterisk" as const;
  readonly events = new TypedEmitter<CallControlEvents>();
  readonly id: string;
  readonly bridgeId: string;
  readonly mediaChannelId: string;
  leg: AsteriskLeg | undefined;

  private gone = false;
  private bridged = false;
  private cleanedUp = false;
  private hangupCause: number | undefined;
  private answeredSeen = false;
  /** A `continue` or `redirect` is under way: the channel leaving Stasis is its outcome, not a hangup. */
  private leaving: ((how: "left") => void) | undefined;
  private playSeq = 0;
  /** `pbx:` playbacks under way by playback id (events may arrive twice, §3.9: each settles once). */
  private readonly plays = new Map<string, { started: () => void; ended: (status: "done" | "break") => void; stopped: boolean }>();
  private readonly o: AsteriskCallOptions;
  /** Resolved by the media channel's StasisStart; armed before externalMedia, whose reply may come first or last. */
  private mediaStasis: { seen: Promise<void>; resolve: () => void } | undefined;

  constructor(options: AsteriskCallOptions) {
    this.o = options;
    this.id = options.channelId;
    this.bridgeId = `ac-${options.channelId}`;
    this.mediaChannelId = `ac-${options.channelId}-m`;
    options.ours.add(this.mediaChannelId);
  }

  get ended(): boolean {
    return this.gone;
  }

  get mediaMode(): AsteriskMediaMode {
    return this.o.mediaMode;
  }

  // ---------------------------------------------------------------------------------------------- CallControl

  async answer(): Promise<void> {
    await this.o.ari.answer(this.id);
  }

  async ringing(earlyMedia: boolean): Promise<void> {
    if (earlyMedia && asteriskSupports(this.o.version(), "progress")) await this.o.ari.progress(this.id);
    else await this.o.ari.ring(this.id);
  }

  async reject(code: number, _reason: string): Promise<void> {
    // Only the Q.850 cause reaches the far end; §3.8 picks the one Asterisk turns into this SIP status.
    await this.o.ari.hangup(this.id, q850ForSip(code));
  }

  async hangup(options: { cause?: string; headers?: Record<string, string> | undefined }): Promise<void> {
    if (options.headers && Object.keys(options.headers).length > 0) {
      this.o.log.debug({ callId: this.id }, "hangup headers are not supported on Asterisk (§3.9); only the cause is sent");
    }
    if (!this.gone) await this.o.ari.hangup(this.id, q850ForCause(options.cause));
    await this.cleanup();
  }

  async transfer(request: TransferRequest): Promise<TransferOutcome> {
    if (request.mode === "dialplan") {
      // `continue` takes the channel out of our bridge and Stasis: its StasisEnd is the transfer, not a hangup.
      const left = this.expectLeaving();
      try {
        await this.o.ari.continueInDialplan(this.id, { context: request.context ?? this.o.config.transfer_context, extension: request.target, priority: 1 });
      } catch (err) {
        this.leaving = undefined;
        return { state: "failed", reason: (err as Error).message };
      }
      void left.then(() => this.cleanup());
      return { state: "accepted" };
    }
    const endpoint = request.target.includes("/") ? request.target : `PJSIP/${request.target}`;
    if (!endpoint.startsWith("PJSIP/")) return { state: "failed", reason: `redirect needs a PJSIP endpoint, not ${JSON.stringify(request.target)}` };
    if (request.headers && Object.keys(request.headers).length > 0) this.o.log.debug({ callId: this.id }, "REFER headers are not supported through ARI redirect; sent without them");
    const left = this.expectLeaving();
    try {
      await this.o.ari.redirect(this.id, endpoint);
    } catch (err) {
      this.leaving = undefined;
      return { state: "failed", reason: (err as Error).message };
    }
    // 204 comes before the REFER outcome: success is the caller's channel going away; failure is silence.
    const timeoutMs = request.timeoutMs ?? DEFAULT_REFER_TIMEOUT_MS;
    const outcome = await Promise.race([left, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs).unref())]);
    if (outcome === "timeout") {
      this.leaving = undefined;
      return { state: "failed", reason: "no REFER outcome in time (the caller's channel stayed)" };
    }
    void this.cleanup();
    return { state: "accepted" };
  }

  async sendDtmf(digits: string, durationMs: number): Promise<void> {
    await this.o.ari.sendDtmf(this.id, digits, { duration: durationMs });
  }

  get player(): PbxPlayer {
    return this;
  }

  /**
   * `pbx:` playback (ws-call-api §3.5): on the bridge once the call is bridged, never on the bridged channel,
   * which would cut the caller's audio to the media leg for the whole playback (§3.9); on the channel before
   * that (early media). A bare name is a `sound:`.
   */
  play(target: string, playId: string): { started: Promise<void>; ended: Promise<{ status: "done" | "break" }> } {
    const media = /^[a-z]+:/.test(target) ? target : `sound:${target}`;
    const playbackId = `${this.bridgeId}-p${++this.playSeq}`;
    let started!: () => void;
    let ended!: (status: "done" | "break") => void;
    const startedP = new Promise<void>((r) => (started = r));
    const endedP = new Promise<{ status: "done" | "break" }>((r) => (ended = (status) => r({ status })));
    const entry = {
      stopped: false,
      started: () => started(),
      ended: (status: "done" | "break") => {
        this.plays.delete(playbackId);
        started();
        ended(entry.stopped ? "break" : status);
      },
    };
    this.plays.set(playbackId, entry);
    const request = this.bridged ? this.o.ari.playOnBridge(this.bridgeId, media, { playbackId }) : this.o.ari.playOnChannel(this.id, media, { playbackId });
    request.catch((err: unknown) => {
      this.o.log.warn({ callId: this.id, err, target, playId }, "pbx playback failed");
      if (this.plays.has(playbackId)) entry.ended("break");
    });
    return { started: startedP, ended: endedP };
  }

  async stopPlayback(): Promise<void> {
    const ids = [...this.plays.keys()];
    for (const id of ids) {
      const entry = this.plays.get(id);
      if (entry) entry.stopped = true;
    }
    await Promise.all(ids.map((id) => this.o.ari.stopPlayback(id).catch(() => false)));
  }

  async pausePlayback(paused: boolean): Promise<void> {
    const operation = paused ? "pause" : "unpause";
    await Promise.all([...this.plays.keys()].map((id) => this.o.ari.controlPlayback(id, operation).catch(() => undefined)));
  }

  // ---------------------------------------------------------------------------------------------- media

  /** The adapter saw our media channel's StasisStart. */
  mediaEnteredStasis(): void {
    this.mediaStasis?.resolve();
  }

  /**
   * Bridge + externalMedia + addChannel (§3.4 step 2); on failure everything created is removed again.
   * addChannel waits for the media channel's StasisStart: Asterisk answers externalMedia before the channel is in
   * Stasis, and an addChannel in between gets 422 "Channel not in Stasis application" (live-2026-12-06 fact 3);
   * a 422 all the same is tried again. Fail loud: an error names the step that failed (or was still running at
   * MEDIA_START_DEADLINE_MS), so the call layer can end the call and say why, never leaving the caller in silence.
   */
  async startMedia(): Promise<AsteriskMedia> {
    if (this.gone) throw new AppError("PBX_ERROR", `call ${this.id} is gone`);
    let resolve!: () => void;
    const seen = new Promise<void>((r) => (resolve = r));
    this.mediaStasis = { seen, resolve };
    let step: MediaStartStep = "bridge";
    let abandoned = false;
    const work = (async (): Promise<AsteriskMedia> => {
      await this.o.ari.createBridge({ type: "mixing", bridgeId: this.bridgeId });
      step = "externalMedia";
      const made = await startAsteriskMedia({
        ari: this.o.ari,
        config: this.o.config,
        deps: this.o.media,
        mode: this.o.mediaMode,
        callId: this.id,
        mediaChannelId: this.mediaChannelId,
        version: this.o.version(),
        log: this.o.log,
      });
      if (abandoned) {
        await made.leg.close("media start abandoned");
        throw new AppError("PBX_ERROR", "media start abandoned");
      }
      this.leg = made.leg;
      made.leg.events.on("close", () => void this.cleanup());
      step = "media channel StasisStart";
      await this.untilMediaInStasis();
      step = "addChannel";
      await this.addToBridge();
      this.bridged = true;
      if (this.gone) throw new AppError("PBX_ERROR", `call ${this.id} hung up while its media started`);
      return made;
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError("TIMEOUT", `not done within ${MEDIA_START_DEADLINE_MS} ms`)), MEDIA_START_DEADLINE_MS);
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (err) {
      abandoned = true;
      work.catch(() => undefined);
      await this.leg?.close("media setup failed").catch(() => undefined);
      await this.cleanup();
      const e = err instanceof AppError ? err : new AppError("PBX_ERROR", (err as Error).message, { cause: err });
      throw new AppError(e.code, `Asterisk ${step} failed: ${e.message}`, { cause: e, details: { ...e.details, step } });
    } finally {
      clearTimeout(timer);
    }
  }

  /** addChannel, tried again while Asterisk says the media channel is not in Stasis yet (fact 3). */
  private async addToBridge(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.ari.addChannel(this.bridgeId, [this.id, this.mediaChannelId]);
        return;
      } catch (err) {
        if (attempt > ADD_CHANNEL_RETRIES || !notInStasis(err) || this.gone) throw err;
        this.o.log.info({ callId: this.id, attempt }, "addChannel refused: the media channel is not in Stasis yet; trying again");
        await sleep(ADD_CHANNEL_RETRY_MS * attempt);
      }
    }
  }

  private async untilMediaInStasis(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError("PBX_ERROR", `media channel ${this.mediaChannelId} did not enter Stasis within ${MEDIA_STASIS_TIMEOUT_MS} ms, so it cannot join the bridge`)),
        MEDIA_STASIS_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.mediaStasis?.seen, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Media channel and bridge go on every call end (§3.2 clean-up); 404 (already gone) is success. */
  async cleanup(): Promise<void> {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    this.bridged = false;
    for (const entry of [...this.plays.values()]) entry.ended("break");
    const ari = this.o.ari;
    await ari.hangup(this.mediaChannelId).catch((err: unknown) => this.o.log.debug({ err, callId: this.id }, "media channel clean-up failed"));
    await ari.destroyBridge(this.bridgeId).catch((err: unknown) => this.o.log.debug({ err, callId: this.id }, "bridge clean-up failed"));
    // The id stays in `ours` a little: its StasisEnd/ChannelDestroyed may still be on the way.
    setTimeout(() => this.o.ours.delete(this.mediaChannelId), 30_000).unref();
  }

  // ---------------------------------------------------------------------------------------------- events

  /** An event about the caller's channel or one of our playbacks. */
  handleEvent(ev: AriKnownEvent): void {
    switch (ev.type) {
      case "StasisStart":
        // Our outbound call was answered: it enters the application with `originate` (§3.3).
        if (this.o.originated && !this.answeredSeen) {
          this.answeredSeen = true;
          this.events.emit("answered");
        }
        return;
      case "ChannelStateChange":
        if (this.o.originated && !this.answeredSeen && ev.channel.state === "Ringing") this.events.emit("progress", { earlyMedia: false });
        return;
      case "ChannelDtmfReceived":
        // ARI is the only DTMF source on Asterisk (chan_websocket and AudioSocket copies are ignored, §3.6).
        this.leg?.pushDtmf(ev.digit, ev.duration_ms);
        return;
      case "ChannelHangupRequest":
        // Soft requests carry Asterisk's own flags (32 after our DELETE), not the Q.850 cause (recorded).
        if (ev.cause !== undefined && ev.soft !== true) this.hangupCause = ev.cause;
        if (this.leaving) return this.left();
        return;
      case "StasisEnd":
        if (this.leaving) return this.left();
        return this.markGone(this.hangupCause, "caller");
      case "ChannelDestroyed":
        if (this.leaving) return this.left();
        return this.markGone(ev.cause || this.hangupCause, "caller");
      case "ChannelHold":
      case "ChannelUnhold":
        this.events.emit("hold", { onHold: ev.type === "ChannelHold" });
        return;
      case "PlaybackStarted":
        this.plays.get(ev.playback.id)?.started();
        return;
      case "PlaybackFinished":
        this.plays.get(ev.playback.id)?.ended(ev.playback.state === "failed" ? "break" : "done");
        return;
      default:
        return;
    }
  }

  /** The channel is gone: hung up, or vanished while the events socket was down (`system`: `pbxLost`). */
  markGone(cause: number | undefined, initiator: "caller" | "system"): void {
    if (this.gone) return;
    this.gone = true;
    const name = causeName(cause);
    if (this.o.originated && !this.answeredSeen) {
      // An originate that never reached Stasis failed (§3.3 ChannelDestroyed): busy, no answer, unreachable.
      this.events.emit("failed", { cause: name, sipCode: sipForQ850(cause) });
    }
    this.events.emit("hangup", { cause: name, sipCode: cause === undefined || cause === 16 ? undefined : sipForQ850(cause), initiator });
    void this.cleanup();
  }

  private expectLeaving(): Promise<"left"> {
    return new Promise((resolve) => (this.leaving = resolve));
  }

  /** The channel left as a transfer asked: gone for us, without a hangup of our own making. */
  private left(): void {
    const done = this.leaving;
    this.leaving = undefined;
    this.gone = true;
    done?.("left");
  }
}

/** An originate's Asterisk caller id: `"Name" <number>` from the request, else `[asterisk] caller_id`. */
export function originateCallerId(from: string | undefined, fromName: string | undefined, fallback: string): string | undefined {
  if (from === undefined && fromName === undefined) return fallback === "" ? undefined : fallback;
  if (/["<>\r\n]/.test(`${from ?? ""}${fromName ?? ""}`)) throw new AppError("BAD_REQUEST", "from/fromName must not contain quotes, angle brackets or line breaks");
  return fromName !== undefined ? `"${fromName}" <${from ?? ""}>` : (from ?? "");
}
