/**
 * RtpLeg: the media leg of an Asterisk call whose audio rides on externalMedia RTP/UDP (media-protocols.md §3.5).
 *
 * - `open` takes an even port from the RtpPortPool and binds RTP on it and RTCP on port + 1 (RTCP is read and
 *   discarded, so Asterisk's reports do not bounce as ICMP). The port goes back to the pool when the leg closes.
 *   `external_host` of the externalMedia request names this socket; `setRemote` gets the response's
 *   UNICASTRTP_LOCAL_ADDRESS/PORT, where Asterisk sends from and expects our RTP: we send from the same socket
 *   (strict RTP learns our source).
 * - Caller RTP: keyed on the configured format, never the PT (Asterisk's slin PTs 10/11 are 44.1 kHz in the static
 *   table). Any payload size (Asterisk forwards the caller's packetisation: 240-byte ulaw = 30 ms recorded).
 *   L16 is big-endian. Only packets from the remote are accepted once it is known (setRemote, or until then the
 *   first source seen). A small reorder window (REORDER_SLOTS packets, at most REORDER_WAIT_MS) puts packets back in
 *   sequence order; duplicates and packets older than what was delivered are dropped.
 * - Asterisk sends nothing while the caller is silent: the caller stream is held to wall clock with silence
 *   (PacedLeg `callerGapFill`).
 * - Agent RTP: V=2, random SSRC, seq + 1 per packet, timestamp = media time in samples (so it jumps across a pause
 *   between utterances), marker on the first packet of each talk spurt, PT per format (for slin the one Asterisk
 *   sends, 10 or 11, once its first packet came), 20 ms packets paced at most
 *   `leadMs` ahead. Frames before `setRemote` are dropped. Barge-in: stop sending (no queue in Asterisk).
 * - No hangup on the wire: the ARI adapter ends the leg (`close()`) when the call or its media channel ends.
 */

import type { RemoteInfo, Socket } from "node:dgram";
import { randomInt } from "node:crypto";
import type { AudioFrame } from "../audio/index.js";
import type { Logger } from "../log.js";
import type { CallerGapFillOptions } from "./caller-gap-filler.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import type { LegCloseReason } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import type { PacedFrameInfo } from "./pacer.js";
import type { RtpFormat, RtpHeader } from "./rtp-packet.js";
import { RTP_FORMATS, RTP_HEADER_BYTES, decodeRtpPayload, encodeRtpPayload, isRtpFormat, newRtpHeader, parseRtp, seqDelta, writeRtpHeader } from "./rtp-packet.js";
import type { RtpPortPool, RtpSocketPair } from "./rtp-port-pool.js";
import { SendRing } from "./rtp-send-ring.js";

export type { RtpFormat } from "./rtp-packet.js";

export interface RtpLegOptions {
  id: string;
  format: RtpFormat;
  bindIp: string;
  ports: RtpPortPool;
  leadMs: number;
  clock?: MediaClock;
  log?: Logger;
  /** Silence filling of caller gaps (default on with CallerGapFiller defaults; false = off, e.g. for exact tests). */
  callerGapFill?: CallerGapFillOptions | false;
}

export interface RtpLegStats {
  packetsIn: number;
  packetsOut: number;
  /** Caller packets from another address than the remote (strict RTP). */
  packetsFromUnknownSource: number;
  /** Not RTP v2. */
  invalidPackets: number;
  duplicates: number;
  /** Older than audio already delivered (arrived after the reorder window gave up on it). */
  latePackets: number;
  /** Arrived ahead of a missing one and were held in the reorder window. */
  reordered: number;
  /** Sequence numbers skipped because they never arrived within the window. */
  lostPackets: number;
  /** Agent frames dropped because the remote was not known yet. */
  droppedBeforeRemote: number;
  rtcpPackets: number;
}

const FRAME_MS = 20;
/** Packets held while waiting for a missing one (4 × 30 ms ulaw = 120 ms at most). */
const REORDER_SLOTS = 4;
/** How long held packets wait for a missing one before it is given up. */
const REORDER_WAIT_MS = 60;
/** A sequence jump this large is a new stream (restart), not loss. */
const SEQ_RESTART = 200;
const MAX_PAYLOAD = 1500;

interface ReorderSlot {
  used: boolean;
  seq: number;
  length: number;
  readonly buf: Buffer;
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

export class RtpLeg extends PacedLeg {
  readonly format: RtpFormat;
  readonly localPort: number;
  readonly ssrc: number;
  readonly stats: RtpLegStats = {
    packetsIn: 0,
    packetsOut: 0,
    packetsFromUnknownSource: 0,
    invalidPackets: 0,
    duplicates: 0,
    latePackets: 0,
    reordered: 0,
    lostPackets: 0,
    droppedBeforeRemote: 0,
    rtcpPackets: 0,
  };

  private readonly rtp: Socket;
  private readonly rtcp: Socket;
  private readonly pool: RtpPortPool;
  private readonly log: Logger | undefined;
  private payloadType: number;
  private readonly rate: number;
  // Caller RTP is accepted only from here: latched on the first packet's source until setRemote fixes it.
  private acceptHost: string | undefined;
  private acceptPort = 0;
  private acceptFixed = false;
  // Agent RTP goes here: undefined until setRemote (or, when setRemote named a wildcard, the first caller source).
  private sendHost: string | undefined;
  private sendPort = 0;
  private learnSend = false;
  // caller side
  private readonly header: RtpHeader = newRtpHeader();
  private callerSsrc = -1;
  private expectedSeq = -1;
  private readonly slots: ReorderSlot[] = [];
  private heldCount = 0;
  private reorderTimer: TimerHandle | undefined;
  private decoded = new Int16Array(MAX_PAYLOAD);
  private view = new Int16Array(0);
  // agent side
  private readonly ring: SendRing;
  private seq: number;
  private readonly tsBase: number;
  private nextFrameMs = -1;

  private constructor(options: RtpLegOptions, pair: RtpSocketPair) {
    const info = RTP_FORMATS[options.format];
    super({
      id: options.id,
      clock: options.clock ?? realClock,
      callerRate: info.sampleRate,
      agentRate: info.sampleRate,
      agentFrameMs: FRAME_MS,
      leadMs: options.leadMs,
      callerGapFill: options.callerGapFill === false ? undefined : (options.callerGapFill ?? {}),
    });
    this.format = options.format;
    this.payloadType = info.payloadType;
    this.rate = info.sampleRate;
    this.localPort = pair.port;
    this.rtp = pair.rtp;
    this.rtcp = pair.rtcp;
    this.pool = options.ports;
    this.log = options.log;
    this.ssrc = randomInt(0, 0x1_0000_0000);
    this.seq = randomInt(0, 0x10000);
    this.tsBase = randomInt(0, 0x1_0000_0000);
    this.ring = new SendRing(RTP_HEADER_BYTES + (this.rate * FRAME_MS * info.bytesPerSample) / 1000);
    for (let i = 0; i < REORDER_SLOTS; i++) this.slots.push({ used: false, seq: 0, length: 0, buf: Buffer.alloc(MAX_PAYLOAD) });
    this.rtp.on("message", (msg: Buffer, rinfo: RemoteInfo) => this.onPacket(msg, rinfo));
    this.rtp.on("error", (err) => this.onSocketError(err));
    this.rtcp.on("message", () => void this.stats.rtcpPackets++);
    this.rtcp.on("error", (err) => this.log?.debug({ err, legId: this.id }, "rtp leg: rtcp socket error"));
    this.startCallerGapFill();
  }

  /** Binds an even port (and port + 1 for RTCP) from the pool. Throws AppError CAPACITY when none is free. */
  static async open(options: RtpLegOptions): Promise<RtpLeg> {
    if (!isRtpFormat(options.format)) throw new RangeError(`RTP format ${String(options.format)} is not supported`);
    const pair = await options.ports.bind(options.bindIp);
    return new RtpLeg(options, pair);
  }

  /** Asterisk's side (UNICASTRTP_LOCAL_ADDRESS/PORT): agent RTP goes there; caller RTP is accepted only from there. */
  setRemote(host: string, port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid RTP port ${port}`);
    if (isUnspecified(host)) {
      // Asterisk bound to a wildcard address: its real source is learned from its packets (symmetric RTP).
      this.log?.warn({ legId: this.id, host, port }, "rtp leg: remote address unspecified; learning it from the caller's packets");
      this.learnSend = true;
      if (this.acceptHost !== undefined) this.setSend(this.acceptHost, this.acceptPort);
      return;
    }
    this.acceptHost = host;
    this.acceptPort = port;
    this.acceptFixed = true;
    this.setSend(host, port);
  }

  /** The address agent RTP goes to (undefined until setRemote). */
  get remote(): { host: string; port: number } | undefined {
    return this.sendHost === undefined ? undefined : { host: this.sendHost, port: this.sendPort };
  }

  /** A DTMF digit the ARI adapter saw (ChannelDtmfReceived): emits `dtmf` with source "pbx". */
  pushDtmf(digit: string, durationMs?: number): void {
    this.emitDtmf(digit, durationMs, "pbx");
  }

  /** Outgoing packets written while every preallocated buffer was still in flight. */
  get sendOverflows(): number {
    return this.ring.overflows;
  }

  // --- caller side -------------------------------------------------------------------------------------------

  private onPacket(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    this.stats.packetsIn++;
    if (this.acceptHost === undefined) {
      // Not told yet: latch on the first source (it is Asterisk; the REST response can come after its first packet).
      this.acceptHost = rinfo.address;
      this.acceptPort = rinfo.port;
      if (this.learnSend) this.setSend(rinfo.address, rinfo.port);
    } else if (rinfo.address !== this.acceptHost || rinfo.port !== this.acceptPort) {
      this.stats.packetsFromUnknownSource++;
      return;
    }
    const h = this.header;
    if (!parseRtp(msg, msg.length, h)) {
      this.stats.invalidPackets++;
      return;
    }
    // Send the PT Asterisk uses for slin (§3.5: 10 or 11); the other formats' PTs are fixed.
    if (this.format === "slin" && (h.payloadType === 10 || h.payloadType === 11)) this.payloadType = h.payloadType;
    if (h.ssrc !== this.callerSsrc) {
      // A new stream (first packet, or Asterisk re-INVITE / masquerade): start its sequence afresh.
      this.flushHeld();
      this.callerSsrc = h.ssrc;
      this.expectedSeq = -1;
    }
    if (this.expectedSeq < 0) {
      this.deliver(msg, h.payloadOffset, h.payloadLength);
      this.expectedSeq = (h.seq + 1) & 0xffff;
      return;
    }
    const d = seqDelta(this.expectedSeq, h.seq);
    if (d === 0) {
      this.deliver(msg, h.payloadOffset, h.payloadLength);
      this.expectedSeq = (h.seq + 1) & 0xffff;
      this.drainHeld();
      return;
    }
    if (d > SEQ_RESTART || d < -SEQ_RESTART) {
      this.flushHeld();
      this.deliver(msg, h.payloadOffset, h.payloadLength);
      this.expectedSeq = (h.seq + 1) & 0xffff;
      return;
    }
    if (d < 0) {
      if (d === -1) this.stats.duplicates++;
      else this.stats.latePackets++;
      return;
    }
    for (const s of this.slots) {
      if (s.used && s.seq === h.seq) {
        this.stats.duplicates++;
        return;
      }
    }
    if (this.heldCount === REORDER_SLOTS) {
      // The window is full: the missing packet is not coming; play what is held, then this one.
      this.flushHeld();
      this.onHeldPacket(msg, h);
      return;
    }
    this.hold(msg, h);
  }

  /** Re-evaluates a packet after the held ones were flushed (expectedSeq moved on). */
  private onHeldPacket(msg: Buffer, h: RtpHeader): void {
    const d = seqDelta(this.expectedSeq, h.seq);
    if (d < 0) {
      this.stats.latePackets++;
      return;
    }
    if (d > 0) this.stats.lostPackets += d;
    this.deliver(msg, h.payloadOffset, h.payloadLength);
    this.expectedSeq = (h.seq + 1) & 0xffff;
  }

  private hold(msg: Buffer, h: RtpHeader): void {
    const length = Math.min(h.payloadLength, MAX_PAYLOAD);
    for (const s of this.slots) {
      if (s.used) continue;
      msg.copy(s.buf, 0, h.payloadOffset, h.payloadOffset + length);
      s.used = true;
      s.seq = h.seq;
      s.length = length;
      this.heldCount++;
      this.stats.reordered++;
      break;
    }
    if (!this.reorderTimer) {
      this.reorderTimer = this.clock.setTimer(() => {
        this.reorderTimer = undefined;
        if (!this.closed) this.flushHeld();
      }, REORDER_WAIT_MS);
    }
  }

  /** Delivers held packets that continue the sequence. */
  private drainHeld(): void {
    while (this.heldCount > 0) {
      let found: ReorderSlot | undefined;
      for (const s of this.slots) if (s.used && s.seq === this.expectedSeq) found = s;
      if (!found) return;
      this.release(found);
      this.deliver(found.buf, 0, found.length);
      this.expectedSeq = (found.seq + 1) & 0xffff;
    }
    this.cancelReorderTimer();
  }

  /** Gives up on missing packets: delivers everything held, in sequence order. */
  private flushHeld(): void {
    while (this.heldCount > 0) {
      let next: ReorderSlot | undefined;
      let best = Infinity;
      for (const s of this.slots) {
        if (!s.used) continue;
        const d = seqDelta(this.expectedSeq, s.seq);
        if (d < best) {
          best = d;
          next = s;
        }
      }
      if (!next) break;
      this.release(next);
      if (best > 0) this.stats.lostPackets += best;
      this.deliver(next.buf, 0, next.length);
      this.expectedSeq = (next.seq + 1) & 0xffff;
    }
    this.cancelReorderTimer();
  }

  private release(s: ReorderSlot): void {
    s.used = false;
    this.heldCount--;
  }

  private cancelReorderTimer(): void {
    if (this.heldCount > 0 || !this.reorderTimer) return;
    this.clock.clearTimer(this.reorderTimer);
    this.reorderTimer = undefined;
  }

  private deliver(packet: Uint8Array, offset: number, length: number): void {
    if (length <= 0) return;
    if (this.decoded.length < length) this.decoded = new Int16Array(length);
    const n = decodeRtpPayload(this.format, packet, offset, length, this.decoded);
    // Payload sizes are constant within a call: the view is reused as long as they are.
    if (this.view.length !== n || this.view.buffer !== this.decoded.buffer) this.view = this.decoded.subarray(0, n);
    this.pushCallerPcm(this.view);
  }

  // --- agent side --------------------------------------------------------------------------------------------

  protected sendFrame(frame: AudioFrame, _info: PacedFrameInfo): void {
    if (this.closed) return;
    const host = this.sendHost;
    if (host === undefined) {
      this.stats.droppedBeforeRemote++;
      return;
    }
    const at = frame.timestampMs;
    // A talk spurt starts when this frame does not follow the previous one (first packet, or after a pause).
    const marker = Math.abs(at - this.nextFrameMs) > 0.5;
    this.nextFrameMs = at + FRAME_MS;
    const timestamp = (this.tsBase + Math.round((at * this.rate) / 1000)) >>> 0;
    const slot = this.ring.take();
    writeRtpHeader(slot.buf, marker, this.payloadType, this.seq, timestamp, this.ssrc);
    this.seq = (this.seq + 1) & 0xffff;
    const bytes = RTP_HEADER_BYTES + encodeRtpPayload(this.format, frame.pcm, slot.buf, RTP_HEADER_BYTES);
    this.rtp.send(slot.buf, 0, bytes, this.sendPort, host, slot.done);
    this.stats.packetsOut++;
  }

  protected override onShutdown(_reason: LegCloseReason, _detail: string | undefined): void {
    if (this.reorderTimer) this.clock.clearTimer(this.reorderTimer);
    this.reorderTimer = undefined;
    for (const s of [this.rtp, this.rtcp]) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    this.pool.release(this.localPort);
  }

  private onSocketError(err: Error): void {
    this.log?.warn({ err, legId: this.id }, "rtp leg: socket error");
    this.events.emit("error", err);
  }

  /** Caller RTP is filtered on the address setRemote gave (true), or on the first source seen (false). */
  get remoteConfirmed(): boolean {
    return this.acceptFixed;
  }

  private setSend(host: string, port: number): void {
    this.sendHost = host;
    this.sendPort = port;
  }
}
