/**
 * AudioSocketLeg: the media leg of an Asterisk call whose audio rides on AudioSocket (externalMedia
 * `encapsulation=audiosocket transport=tcp`, media-protocols.md §3.7), over a connection the AudioSocketServer
 * matched by UUID.
 *
 * - Framing: `kind:u8 | length:u16 BE | payload`. TCP delivers bytes, not messages: bytes are gathered in one
 *   preallocated buffer until the header and the whole payload are in.
 * - In: audio kinds 0x10 (slin 8 kHz) / 0x12 (slin16), 16-bit little-endian; 0x00 = Asterisk hung up (close
 *   "caller"); 0xff = error (`error` event); 0x03 DTMF ignored (ARI is the DTMF source: `pushDtmf`); 0x01 and
 *   others ignored. Asterisk sends nothing while the caller is silent: the caller stream is held to wall clock
 *   with silence (PacedLeg `callerGapFill`).
 * - Out: only audio and hangup kinds are ever sent (anything else, or a zero-length audio message, makes Asterisk
 *   drop the connection). Agent audio goes in 20 ms frames in the audio kind we receive (the channel's format;
 *   the configured one until the first caller audio says otherwise, then resampled to it), paced at most `leadMs`
 *   ahead: we own the clock, Asterisk plays what arrives, and what was written cannot be flushed (barge-in = stop
 *   sending).
 * - Writes are backpressure-safe: outgoing buffers come from a SendRing (never overwritten while queued in the
 *   socket), and when the socket holds more than MAX_BUFFERED_MS of unsent audio (Asterisk not reading), frames
 *   are dropped (counted) instead of queueing without bound: late audio is worthless on a real-time wire.
 * - Local close: a hangup message (0x00, length 0), then the socket is ended.
 */

import type { Socket } from "node:net";
import type { AudioFrame } from "../audio/index.js";
import { Resampler } from "../audio/index.js";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { AudioSocketConnection } from "./audiosocket-server.js";
import type { CallerGapFillOptions } from "./caller-gap-filler.js";
import type { MediaClock } from "./clock.js";
import { realClock } from "./clock.js";
import type { LegCloseReason } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import type { PacedFrameInfo } from "./pacer.js";
import { SendRing } from "./rtp-send-ring.js";

export const AUDIOSOCKET_KIND_HANGUP = 0x00;
export const AUDIOSOCKET_KIND_DTMF = 0x03;
export const AUDIOSOCKET_KIND_SLIN = 0x10;
export const AUDIOSOCKET_KIND_SLIN16 = 0x12;
export const AUDIOSOCKET_KIND_ERROR = 0xff;

/** Sample rates of the audio kinds 0x10 … 0x18 (slin, slin12, slin16, slin24, slin32, slin44, slin48, slin96, slin192). */
export const AUDIOSOCKET_KIND_RATES: Readonly<Record<number, number>> = {
  0x10: 8000,
  0x11: 12000,
  0x12: 16000,
  0x13: 24000,
  0x14: 32000,
  0x15: 44100,
  0x16: 48000,
  0x17: 96000,
  0x18: 192000,
};

export interface AudioSocketLegOptions {
  id: string;
  connection: AudioSocketConnection;
  format: "slin16" | "slin";
  leadMs: number;
  clock?: MediaClock;
  log?: Logger;
  /** Silence filling of caller gaps (default on; false = off). */
  callerGapFill?: CallerGapFillOptions | false;
}

export interface AudioSocketLegStats {
  audioIn: number;
  audioOut: number;
  /** Agent frames dropped because the socket was not draining. */
  droppedBackpressure: number;
  /** Audio messages of another kind than the configured format. */
  otherKindAudio: number;
  dtmfIgnored: number;
  errors: number;
}

const FRAME_MS = 20;
const HEADER = 3;
const MAX_PAYLOAD = 0xffff;
/** Unsent audio the socket may hold before frames are dropped. */
const MAX_BUFFERED_MS = 500;

export class AudioSocketLeg extends PacedLeg {
  readonly uuid: string;
  readonly format: "slin16" | "slin";
  readonly stats: AudioSocketLegStats = { audioIn: 0, audioOut: 0, droppedBackpressure: 0, otherKindAudio: 0, dtmfIgnored: 0, errors: 0 };

  private readonly socket: Socket;
  private readonly log: Logger | undefined;
  private readonly rx = Buffer.allocUnsafe(HEADER + MAX_PAYLOAD + 4096);
  private rxLen = 0;
  private decoded = new Int16Array(1024);
  private view = new Int16Array(0);
  private readonly configuredKind: number;
  // outgoing
  private wireKind: number;
  private wireRate: number;
  private ring: SendRing;
  private maxBufferedBytes: number;
  private inResampler: Resampler | undefined;
  private outResampler: Resampler | undefined;
  private readonly hangupMessage = Buffer.from([AUDIOSOCKET_KIND_HANGUP, 0, 0]);

  constructor(o: AudioSocketLegOptions) {
    if (o.format !== "slin16" && o.format !== "slin") throw new RangeError(`AudioSocket format ${String(o.format)} is not supported`);
    const rate = o.format === "slin16" ? 16000 : 8000;
    super({
      id: o.id,
      clock: o.clock ?? realClock,
      callerRate: rate,
      agentRate: rate,
      agentFrameMs: FRAME_MS,
      leadMs: o.leadMs,
      callerGapFill: o.callerGapFill === false ? undefined : (o.callerGapFill ?? {}),
    });
    this.uuid = o.connection.uuid;
    this.format = o.format;
    this.socket = o.connection.socket;
    this.log = o.log;
    this.configuredKind = o.format === "slin16" ? AUDIOSOCKET_KIND_SLIN16 : AUDIOSOCKET_KIND_SLIN;
    this.wireKind = this.configuredKind;
    this.wireRate = rate;
    this.ring = new SendRing(HEADER + (rate * FRAME_MS * 2) / 1000);
    this.maxBufferedBytes = (rate * 2 * MAX_BUFFERED_MS) / 1000;
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("end", () => {
      if (!this.closed) this.socket.end();
    });
    this.socket.on("close", () => this.shutdown("transport", "audiosocket connection closed"));
    this.socket.on("error", (err) => this.log?.warn({ err, legId: this.id }, "audiosocket: socket error"));
    // The bytes that came with the UUID message (a hangup, an error, audio in the first TCP segment) are decoded
    // on the next turn of the event loop, not here: whoever builds the leg must be able to attach its listeners
    // first, or a close or error decoded from them would go to nobody. The socket stays paused until then, so
    // later bytes cannot overtake them.
    const initial = o.connection.initial;
    setImmediate(() => {
      if (initial.length > 0) this.onData(initial);
      this.socket.resume();
      this.startCallerGapFill();
    });
  }

  /** A DTMF digit the ARI adapter saw (ChannelDtmfReceived): emits `dtmf` with source "pbx". */
  pushDtmf(digit: string, durationMs?: number): void {
    this.emitDtmf(digit, durationMs, "pbx");
  }

  /** The audio kind sent (the one received, once caller audio came). */
  get audioKind(): number {
    return this.wireKind;
  }

  /** Outgoing frames written while every preallocated buffer was still queued in the socket. */
  get sendOverflows(): number {
    return this.ring.overflows;
  }

  // --- in ----------------------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.closed) {
      const take = Math.min(chunk.length - off, this.rx.length - this.rxLen);
      chunk.copy(this.rx, this.rxLen, off, off + take);
      this.rxLen += take;
      off += take;
      this.parse();
    }
  }

  /** Handles every complete message in `rx`, then moves the incomplete rest to the front. */
  private parse(): void {
    const rx = this.rx;
    let pos = 0;
    while (this.rxLen - pos >= HEADER && !this.closed) {
      const kind = rx[pos] as number;
      const length = ((rx[pos + 1] as number) << 8) | (rx[pos + 2] as number);
      if (this.rxLen - pos < HEADER + length) break;
      this.onMessage(kind, pos + HEADER, length);
      pos += HEADER + length;
    }
    if (pos > 0) {
      rx.copy(rx, 0, pos, this.rxLen);
      this.rxLen -= pos;
    }
  }

  private onMessage(kind: number, offset: number, length: number): void {
    if (kind >= 0x10 && kind <= 0x18) {
      this.onAudio(kind, offset, length);
      return;
    }
    switch (kind) {
      case AUDIOSOCKET_KIND_HANGUP:
        this.shutdown("caller", "audiosocket hangup");
        return;
      case AUDIOSOCKET_KIND_DTMF:
        this.stats.dtmfIgnored++; // duplicates ARI ChannelDtmfReceived, the one DTMF source
        return;
      case AUDIOSOCKET_KIND_ERROR: {
        this.stats.errors++;
        const detail = this.rx.toString("hex", offset, offset + length);
        this.log?.warn({ legId: this.id, detail }, "audiosocket: Asterisk reported an error");
        this.events.emit("error", new AppError("PBX_ERROR", `audiosocket: error message from Asterisk${detail ? ` (${detail})` : ""}`, { details: { pbxReply: detail } }));
        return;
      }
      default:
        this.log?.debug({ legId: this.id, kind }, "audiosocket: message ignored");
    }
  }

  private onAudio(kind: number, offset: number, length: number): void {
    this.stats.audioIn++;
    if (kind !== this.configuredKind) this.stats.otherKindAudio++;
    if (kind !== this.wireKind) this.switchKind(kind);
    const n = length >> 1;
    if (n === 0) return;
    if (this.decoded.length < n) this.decoded = new Int16Array(n);
    const rx = this.rx;
    const out = this.decoded;
    for (let i = 0, o = offset; i < n; i++, o += 2) out[i] = (rx[o] as number) | ((rx[o + 1] as number) << 8); // LE; Int16Array wraps
    // Message sizes are constant within a call: the view is reused as long as they are.
    if (this.view.length !== n || this.view.buffer !== out.buffer) this.view = out.subarray(0, n);
    this.pushCallerPcm(this.inResampler ? this.inResampler.process(this.view) : this.view);
  }

  /** Asterisk sends another audio kind than configured: it is the channel's format, so we answer in it too. */
  private switchKind(kind: number): void {
    const rate = AUDIOSOCKET_KIND_RATES[kind] as number;
    this.log?.warn({ legId: this.id, expected: this.format, kind }, "audiosocket: audio kind differs from the configured format; following Asterisk's");
    this.wireKind = kind;
    this.wireRate = rate;
    this.inResampler = rate === this.callerRate ? undefined : new Resampler(rate, this.callerRate);
    this.outResampler = rate === this.agentRate ? undefined : new Resampler(this.agentRate, rate);
    this.ring = new SendRing(HEADER + Math.ceil((rate * FRAME_MS) / 1000 + 64) * 2);
    this.maxBufferedBytes = (rate * 2 * MAX_BUFFERED_MS) / 1000;
  }

  // --- out ---------------------------------------------------------------------------------------------------

  protected sendFrame(frame: AudioFrame, _info: PacedFrameInfo): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.writableLength > this.maxBufferedBytes) {
      if (this.stats.droppedBackpressure++ === 0) this.log?.warn({ legId: this.id }, "audiosocket: Asterisk is not reading; dropping agent audio");
      return;
    }
    const pcm = this.outResampler ? this.outResampler.process(frame.pcm) : frame.pcm;
    const n = pcm.length;
    if (n === 0) return; // never a zero-length audio message
    const slot = this.ring.take();
    const buf = slot.buf;
    const bytes = n * 2;
    buf[0] = this.wireKind;
    buf[1] = (bytes >> 8) & 0xff;
    buf[2] = bytes & 0xff;
    for (let i = 0, o = HEADER; i < n; i++, o += 2) {
      const s = pcm[i] as number;
      buf[o] = s & 0xff;
      buf[o + 1] = (s >> 8) & 0xff;
    }
    // The slot is exactly one 20 ms frame (no view needed) unless resampling changed the size.
    this.socket.write(HEADER + bytes === buf.length ? buf : buf.subarray(0, HEADER + bytes), slot.done);
    this.stats.audioOut++;
  }

  protected override onShutdown(reason: LegCloseReason, _detail: string | undefined): void {
    if (this.socket.destroyed) return;
    if (reason === "caller") {
      this.socket.end();
      return;
    }
    if (this.socket.writable) this.socket.end(this.hangupMessage);
    else this.socket.destroy();
  }
}
