/**
 * ChanWebsocketLeg: the media leg of an Asterisk call whose audio rides on chan_websocket (externalMedia
 * `transport=websocket connection_type=server`, media-protocols.md §3.6). We are the WebSocket client.
 *
 * - `connect` opens `<ws(s)>/media/<connection id>` with subprotocol `media` and resolves once MEDIA_START came
 *   (plain `MEDIA_START key:value …` or JSON `{"event":"MEDIA_START",…}`): it carries `optimal_frame_size`.
 *   404 (unknown id), 409 (already connected), no MEDIA_START in time: rejected with an AppError.
 * - Caller audio: binary frames of any size (the source's framing: 960 bytes = 30 ms recorded), raw format
 *   (slin/slin16 little-endian here, or G.711). Asterisk sends nothing while the caller is silent: the caller
 *   stream is held to wall clock with silence (PacedLeg `callerGapFill`).
 * - Agent audio: the pacer's frame is exactly `optimal_frame_size` bytes, so only whole frames are ever sent
 *   (bytes beyond a multiple are dropped by Asterisk), at most `leadMs` (200 by default in the config) ahead.
 * - Barge-in: `clear()` stops the pacer (fading when asked), then sends FLUSH_MEDIA (after the fade tail).
 *   FLUSH_MEDIA discards the marks queued before it without MEDIA_MARK_PROCESSED: they count as cleared, and the
 *   pacer's clock becomes the ledger of those utterances.
 * - Marks (`marks`: MARK_MEDIA exists on this Asterisk): MARK_MEDIA follows the last frame of each utterance, and
 *   its trackEnd waits for MEDIA_MARK_PROCESSED, so the ledger is what Asterisk played. A mark unanswered
 *   `markTimeoutMs` after its audio should have played turns marks off for the call (the pacer clock is the
 *   ledger again), as with mod_audio_fork.
 * - Backpressure: MEDIA_XOFF pauses the pacer, MEDIA_XON resumes it. Choice: nothing is dropped and nothing is
 *   released while XOFF holds, so the queued agent audio waits in the pacer and the pacer's books (played,
 *   trackEnd, marks) stop advancing instead of counting audio Asterisk could not take; the pacer's media clock
 *   keeps running, and playback resumes from the same sample at XON. Asterisk still holds 800-900 frames then:
 *   with marks the ledger stays exact, without them it is early by that backlog. A flush empties Asterisk's
 *   queue, so it also lifts XOFF. With our lead (≤ 200 ms = 10 frames) XOFF only happens when Asterisk stops
 *   consuming (media paused, channel not bridged).
 * - Control both ways in plain or JSON form (≤ 128 bytes; we only send short ids). DTMF_END is ignored (ARI is the
 *   DTMF source: `pushDtmf`), ERROR is logged.
 * - Close: the socket closing ends the leg (reason "caller" on a normal 1000 close from Asterisk, "transport"
 *   otherwise); a local close sends HANGUP, then closes the socket.
 */

import { WebSocket } from "ws";
import type { RawData } from "ws";
import type { AudioFrame } from "../audio/index.js";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { CallerGapFillOptions } from "./caller-gap-filler.js";
import type { MediaClock } from "./clock.js";
import { realClock } from "./clock.js";
import { TypedEmitter } from "./emitter.js";
import type { LegCloseReason } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import { PlayoutMarks } from "./playout-marks.js";
import type { ClearOptions, ClearResult, PacedFrameInfo, TrackEndEvent } from "./pacer.js";
import { SendRing } from "./rtp-send-ring.js";
import type { WireCodec } from "./wire-codec.js";
import { WireDecoder, WireEncoder } from "./wire-codec.js";

export type ChanWebsocketFormat = "slin16" | "slin" | "ulaw" | "alaw";

export interface ChanWebsocketLegOptions {
  id: string;
  /** ws(s)://host:port/media/<connection id> */
  url: string;
  format: ChanWebsocketFormat;
  control: "plain" | "json";
  leadMs: number;
  /** MARK_MEDIA is supported by this Asterisk (≥ 20.18 / 22.8 / 23.2). */
  marks: boolean;
  connectTimeoutMs?: number;
  clock?: MediaClock;
  log?: Logger;
  /** How long after its audio should have played a mark may stay unanswered before marks are turned off (default 2000). */
  markTimeoutMs?: number;
  /** Silence filling of caller gaps (default on; false = off). */
  callerGapFill?: CallerGapFillOptions | false;
}

/** What MEDIA_START said. */
export interface ChanWebsocketMediaStart {
  connectionId: string | undefined;
  channel: string | undefined;
  channelId: string | undefined;
  format: string | undefined;
  optimalFrameSize: number;
  ptime: number | undefined;
  /** The text, verbatim. */
  text: string;
}

/** A STATUS reply to GET_STATUS. */
export interface ChanWebsocketStatus {
  queueLength: number;
  xonLevel: number;
  xoffLevel: number;
  queueFull: boolean;
  bulkMedia: boolean;
  mediaPaused: boolean;
}

export type ChanWebsocketLegEvents = {
  /** Any control message from Asterisk, parsed (event name upper case, fields as strings). */
  control: [{ event: string; fields: Record<string, string>; text: string }];
  status: [ChanWebsocketStatus];
  /** Flow control changed (MEDIA_XOFF → true, MEDIA_XON or a flush → false). */
  flow: [{ xoff: boolean }];
  /** Marks were turned off for this call (a MARK_MEDIA went unanswered). */
  marksDisabled: [{ mark: string }];
};

interface FormatInfo {
  codec: WireCodec;
  rate: number;
  bytesPerSample: number;
}

const FORMATS: Record<ChanWebsocketFormat, FormatInfo> = {
  slin16: { codec: "pcm", rate: 16000, bytesPerSample: 2 },
  slin: { codec: "pcm", rate: 8000, bytesPerSample: 2 },
  ulaw: { codec: "pcmu", rate: 8000, bytesPerSample: 1 },
  alaw: { codec: "pcma", rate: 8000, bytesPerSample: 1 },
};

export const MEDIA_SUBPROTOCOL = "media";
/** Asterisk ignores longer control messages (only a console warning). */
export const MAX_CONTROL_BYTES = 128;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** Marks outstanding at most (one per utterance; more means Asterisk is not answering). */
/** Frames Asterisk still holds at XON (its xon level): the backlog a mark waits behind after XOFF. */
const XON_BACKLOG_FRAMES = 800;

interface ParsedControl {
  event: string;
  fields: Record<string, string>;
  /** First positional argument of the plain form (MEDIA_MARK_PROCESSED <id>). */
  arg: string | undefined;
}

/** Asterisk's control messages are flat; channel_variables nests one level. */
const MAX_CONTROL_DEPTH = 16;

/** Whether a parsed JSON value nests arrays/objects more than `limit` levels (iterative: no stack). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Parses an Asterisk control message in either form. */
export function parseChanWebsocketControl(text: string): ParsedControl | undefined {
  const t = text.trim();
  if (t.startsWith("{")) {
    let o: unknown;
    try {
      o = JSON.parse(t);
    } catch {
      return undefined;
    }
    if (typeof o !== "object" || o === null) return undefined;
    const rec = o as Record<string, unknown>;
    if (typeof rec.event !== "string") return undefined;
    // Nesting JSON.parse accepts but JSON.stringify below cannot walk back (RangeError, at a depth that varies
    // with the stack in use): unparsable by a fixed limit, never a throw out of the socket's message handler.
    if (nestedDeeperThan(o, MAX_CONTROL_DEPTH)) return undefined;
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (k === "event") continue;
      fields[k] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return { event: rec.event.toUpperCase(), fields, arg: undefined };
  }
  const parts = t.split(/\s+/);
  const event = (parts[0] ?? "").toUpperCase();
  if (event === "") return undefined;
  const fields: Record<string, string> = {};
  let arg: string | undefined;
  for (const p of parts.slice(1)) {
    const i = p.indexOf(":");
    if (i > 0) fields[p.slice(0, i)] = p.slice(i + 1);
    else arg ??= p;
  }
  return { event, fields, arg };
}

function mediaStartOf(text: string, parsed: ParsedControl): ChanWebsocketMediaStart | undefined {
  if (parsed.event !== "MEDIA_START") return undefined;
  const f = parsed.fields;
  const size = Number(f.optimal_frame_size);
  if (!Number.isInteger(size) || size <= 0) return undefined;
  const ptime = f.ptime === undefined ? undefined : Number(f.ptime);
  return { connectionId: f.connection_id, channel: f.channel, channelId: f.channel_id, format: f.format, optimalFrameSize: size, ptime, text };
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class ChanWebsocketLeg extends PacedLeg {
  readonly format: ChanWebsocketFormat;
  readonly control: "plain" | "json";
  readonly optimalFrameSize: number;
  readonly mediaStart: ChanWebsocketMediaStart;
  readonly wsEvents = new TypedEmitter<ChanWebsocketLegEvents>();
  /** Binary frames sent. */
  sentFrames = 0;
  /** MEDIA_XOFF received. */
  xoffCount = 0;
  lastStatus: ChanWebsocketStatus | undefined;

  private readonly ws: WebSocket;
  private readonly log: Logger | undefined;
  private readonly decoder: WireDecoder;
  private readonly encoder: WireEncoder;
  private readonly ring: SendRing;
  private readonly frameMs: number;
  private readonly markTimeoutMs: number;
  /** trackEnds wait for Asterisk's MEDIA_MARK_PROCESSED of the utterance's end mark (§3.6). */
  private readonly marks: PlayoutMarks;
  private xoff = false;
  private userPaused = false;

  private constructor(ws: WebSocket, start: ChanWebsocketMediaStart, options: ChanWebsocketLegOptions) {
    const info = FORMATS[options.format];
    const frameSamples = start.optimalFrameSize / info.bytesPerSample;
    const frameMs = (frameSamples * 1000) / info.rate;
    if (!Number.isInteger(frameSamples) || !Number.isInteger(frameMs)) {
      throw new AppError("PBX_ERROR", `chan_websocket: optimal_frame_size ${start.optimalFrameSize} is not a whole number of ms of ${options.format}`);
    }
    super({
      id: options.id,
      clock: options.clock ?? realClock,
      callerRate: info.rate,
      agentRate: info.rate,
      agentFrameMs: frameMs,
      leadMs: Math.max(options.leadMs, frameMs),
      callerGapFill: options.callerGapFill === false ? undefined : (options.callerGapFill ?? {}),
    });
    this.ws = ws;
    this.mediaStart = start;
    this.format = options.format;
    this.control = options.control;
    this.optimalFrameSize = start.optimalFrameSize;
    this.frameMs = frameMs;
    this.log = options.log;
    this.markTimeoutMs = options.markTimeoutMs ?? 2000;
    this.marks = new PlayoutMarks({
      clock: this.clock,
      now: () => this.nowMs,
      enabled: options.marks,
      timeoutMs: this.markTimeoutMs,
      // Short ids keep MARK_MEDIA far below the 128-byte control limit whatever the playId.
      name: (_playId, seq) => `m${seq}`,
      send: (name) => this.sendControl("MARK_MEDIA", name),
      emit: (e) => this.events.emit("trackEnd", e),
      onDisabled: (mark) => {
        this.log?.warn({ legId: this.id, mark }, "chan_websocket: no MEDIA_MARK_PROCESSED; marks are off for this call");
        this.wsEvents.emit("marksDisabled", { mark });
      },
      log: this.log,
      legId: this.id,
      label: "chan_websocket",
    });
    this.decoder = new WireDecoder({ codec: info.codec, sampleRate: info.rate });
    this.encoder = new WireEncoder({ codec: info.codec, sampleRate: info.rate });
    this.ring = new SendRing(start.optimalFrameSize);
    if (start.format !== undefined && start.format !== options.format) {
      this.log?.warn({ legId: this.id, expected: options.format, got: start.format }, "chan_websocket: MEDIA_START format differs from the one requested");
    }
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on("close", (code: number) => this.shutdown(code === 1000 ? "caller" : "transport", `media websocket closed (${code})`));
    ws.on("error", (err: Error) => this.log?.warn({ err, legId: this.id }, "chan_websocket: socket error"));
    this.startCallerGapFill();
  }

  /** Connects to Asterisk's media WebSocket and resolves after MEDIA_START. */
  static connect(options: ChanWebsocketLegOptions): Promise<ChanWebsocketLeg> {
    if (!(options.format in FORMATS)) return Promise.reject(new RangeError(`chan_websocket format ${String(options.format)} is not supported`));
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<ChanWebsocketLeg>((resolve, reject) => {
      let settled = false;
      // Asterisk does not negotiate compression; off also keeps ws from holding our reused send buffers.
      const ws = new WebSocket(options.url, MEDIA_SUBPROTOCOL, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      const timer = setTimeout(() => fail(new AppError("TIMEOUT", `chan_websocket: no MEDIA_START within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners("message");
        ws.on("error", () => {});
        ws.terminate();
        reject(err);
      };
      ws.on("unexpected-response", (_req, res) => {
        const status = res.statusCode ?? 0;
        const why = status === 404 ? "unknown connection id" : status === 409 ? "connection id already connected" : "upgrade refused";
        res.resume();
        fail(new AppError("PBX_ERROR", `chan_websocket: ${why} (HTTP ${status})`, { details: { status, pbxReply: why } }));
      });
      ws.on("error", (err: Error) => fail(new AppError("PBX_UNAVAILABLE", `chan_websocket: cannot connect (${err.message})`, { cause: err })));
      ws.on("close", (code: number) => fail(new AppError("PBX_ERROR", `chan_websocket: closed before MEDIA_START (${code})`, { details: { code } })));
      ws.on("open", () => {
        if (ws.protocol !== MEDIA_SUBPROTOCOL) options.log?.warn({ legId: options.id, protocol: ws.protocol }, "chan_websocket: subprotocol media not echoed");
      });
      ws.on("message", (data: RawData, isBinary: boolean) => {
        if (settled) return;
        if (isBinary) return; // media before MEDIA_START does not happen; nothing to attach it to yet
        const text = rawToBuffer(data).toString("utf8");
        const parsed = parseChanWebsocketControl(text);
        const start = parsed && mediaStartOf(text, parsed);
        if (!start) {
          options.log?.debug({ legId: options.id, text }, "chan_websocket: control before MEDIA_START ignored");
          return;
        }
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners("message");
        ws.removeAllListeners("close");
        ws.removeAllListeners("error");
        ws.removeAllListeners("unexpected-response");
        try {
          // Listeners are attached synchronously here, so frames right after MEDIA_START are not missed.
          resolve(new ChanWebsocketLeg(ws, start, options));
        } catch (err) {
          ws.terminate();
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }

  /** Marks are in use (requested and not turned off by a missing reply). */
  get marksEnabled(): boolean {
    return this.marks.enabled;
  }

  /** MEDIA_XOFF is in force (the pacer holds agent audio). */
  get flowPaused(): boolean {
    return this.xoff;
  }

  override get paused(): boolean {
    return this.userPaused;
  }

  /** A DTMF digit the ARI adapter saw (ChannelDtmfReceived): emits `dtmf` with source "pbx". */
  pushDtmf(digit: string, durationMs?: number): void {
    this.emitDtmf(digit, durationMs, "pbx");
  }

  /** Sends GET_STATUS; resolves with the next STATUS (rejects after `timeoutMs`). */
  getStatus(timeoutMs = 2000): Promise<ChanWebsocketStatus> {
    return new Promise<ChanWebsocketStatus>((resolve, reject) => {
      const onStatus = (s: ChanWebsocketStatus): void => {
        clearTimeout(timer);
        resolve(s);
      };
      const timer = setTimeout(() => {
        this.wsEvents.off("status", onStatus);
        reject(new AppError("TIMEOUT", "chan_websocket: no STATUS reply"));
      }, timeoutMs);
      this.wsEvents.once("status", onStatus);
      this.sendControl("GET_STATUS");
    });
  }

  override pause(): void {
    this.userPaused = true;
    this.applyFlow();
  }

  override resume(): void {
    this.userPaused = false;
    this.applyFlow();
  }

  override clear(options?: ClearOptions): ClearResult {
    const result = super.clear(options);
    // FLUSH_MEDIA discards marks queued before it without a reply: their utterances fall back to the pacer's ledger.
    this.marks.cleared(result, true);
    if (this.closed) return result;
    this.flushAfterFade(result, options, () => this.flush());
    return result;
  }

  // --- PacedLeg ----------------------------------------------------------------------------------------------

  protected sendFrame(frame: AudioFrame, info: PacedFrameInfo): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    const slot = this.ring.take();
    this.encoder.encodeInto(frame.pcm, slot.buf);
    this.ws.send(slot.buf, { binary: true }, slot.done);
    this.sentFrames++;
    if (info.last && info.playId !== undefined) this.marks.markEnd(info.playId, frame.timestampMs + this.frameMs);
  }

  /**
   * The pacer played an utterance out by its clock. With marks on, its trackEnd waits for Asterisk's
   * MEDIA_MARK_PROCESSED for the utterance's end mark: the ledger then says what the caller heard (§0).
   */
  protected override forwardTrackEnd(e: TrackEndEvent): void {
    if (!this.marks.hold(e, this.closed)) super.forwardTrackEnd(e);
  }

  protected override onShutdown(_reason: LegCloseReason, _detail: string | undefined): void {
    this.marks.close();
    if (this.ws.readyState === WebSocket.OPEN) {
      this.sendControl("HANGUP");
      this.ws.close(1000);
    } else if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
  }

  // --- internals ---------------------------------------------------------------------------------------------

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const buf = rawToBuffer(data);
    if (isBinary) {
      this.pushCallerPcm(this.decoder.decode(buf));
      return;
    }
    const text = buf.toString("utf8");
    const c = parseChanWebsocketControl(text);
    if (!c) {
      this.log?.debug({ legId: this.id, text }, "chan_websocket: unparsable control message");
      return;
    }
    this.wsEvents.emit("control", { event: c.event, fields: c.fields, text });
    switch (c.event) {
      case "MEDIA_XOFF":
        this.xoffCount++;
        this.setXoff(true);
        return;
      case "MEDIA_XON":
        this.setXoff(false);
        return;
      case "MEDIA_MARK_PROCESSED": {
        const id = c.fields.correlation_id ?? c.arg;
        if (id !== undefined) this.onMarkProcessed(id);
        return;
      }
      case "STATUS": {
        const f = c.fields;
        const status: ChanWebsocketStatus = {
          queueLength: Number(f.queue_length ?? 0),
          xonLevel: Number(f.xon_level ?? 0),
          xoffLevel: Number(f.xoff_level ?? 0),
          queueFull: f.queue_full === "true",
          bulkMedia: f.bulk_media === "true",
          mediaPaused: f.media_paused === "true",
        };
        this.lastStatus = status;
        this.wsEvents.emit("status", status);
        return;
      }
      case "ERROR":
        this.log?.error({ legId: this.id, text }, "chan_websocket: Asterisk reported an error");
        return;
      case "DTMF_END": // duplicates ARI ChannelDtmfReceived, the one DTMF source (§3.6 pitfalls)
      case "MEDIA_START":
      case "QUEUE_DRAINED":
      case "MEDIA_BUFFERING_COMPLETED":
        return;
      default:
        this.log?.debug({ legId: this.id, text }, "chan_websocket: unknown control message");
    }
  }

  private setXoff(xoff: boolean): void {
    if (this.xoff === xoff) return;
    this.xoff = xoff;
    this.applyFlow();
    // Marks now wait behind Asterisk's backlog (up to its xon level) rather than our lead: new deadlines.
    this.marks.rearm(XON_BACKLOG_FRAMES * this.frameMs + this.markTimeoutMs);
    this.wsEvents.emit("flow", { xoff });
  }

  /** The pacer holds while the caller paused us or Asterisk asked for XOFF. */
  private applyFlow(): void {
    if (this.userPaused || this.xoff) this.pacer.pause();
    else this.pacer.resume();
  }

  private flush(): void {
    this.sendControl("FLUSH_MEDIA");
    // Asterisk's queue is empty now: whatever XOFF said no longer holds.
    if (this.xoff) this.setXoff(false);
  }

  private onMarkProcessed(name: string): void {
    if (!this.marks.answered(name)) this.log?.debug({ legId: this.id, mark: name }, "chan_websocket: MEDIA_MARK_PROCESSED for an unknown mark");
  }

  /** Plain `COMMAND [id]` or JSON `{"command":…,"correlation_id":…}`; never over MAX_CONTROL_BYTES. */
  private sendControl(command: string, correlationId?: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const text =
      this.control === "json"
        ? correlationId === undefined
          ? `{"command":"${command}"}`
          : `{"command":"${command}","correlation_id":${JSON.stringify(correlationId)}}`
        : correlationId === undefined
          ? command
          : `${command} ${correlationId}`;
    if (Buffer.byteLength(text) > MAX_CONTROL_BYTES) {
      this.log?.warn({ legId: this.id, command }, "chan_websocket: control message over 128 bytes not sent");
      return;
    }
    this.ws.send(text);
  }
}
