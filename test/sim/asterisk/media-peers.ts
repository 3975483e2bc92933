/**
 * Asterisk's end of each externalMedia channel, for tests (media-protocols.md §3.5-3.7), as recorded in
 * shared/fixtures/asterisk (Asterisk 23.4.1):
 *
 * - RTP (`encapsulation=rtp transport=udp`): binds UDP on 127.0.0.1 (RTP on an even port, RTCP on port + 1) and
 *   reports it in `UNICASTRTP_LOCAL_PORT` / `UNICASTRTP_LOCAL_ADDRESS` (in that order, as recorded). Caller audio
 *   goes to `external_host` from that socket with the recorded header fields: V=2, no marker, PT 0/8/118/11, a
 *   random SSRC, seq + 1, timestamp + samples; the caller's packetisation (ulaw/alaw 240 bytes = 30 ms as
 *   recorded, slin16 640 bytes big-endian = 20 ms). RTCP receiver reports go to external_host port + 1. Strict RTP:
 *   the first agent packet's source is learned; packets from anywhere else are dropped (counted). Received payload
 *   types resolve as in res_rtp_asterisk: a UnicastRTP channel has no SDP, so its receive map is empty and only
 *   static types (0..34) resolve through the static table (0 ulaw, 8 alaw, 10/11 slin). Anything else, PT 118
 *   slin16 included, is dropped without a word: it never reaches the caller (live-2026-12-06 fact 4). What the
 *   peer collects as agent audio is what the caller would hear, decoded in the format the PT resolved to.
 * - chan_websocket (`transport=websocket`): channelvars `MEDIA_WEBSOCKET_CONNECTION_ID` and
 *   `MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE`; `acceptWebSocket` sends MEDIA_START exactly as recorded (JSON when
 *   `transport_data` has `f(json)`); caller audio in the source framing (960 bytes = 30 ms slin16); agent audio
 *   queued in optimal frames and played in real time, MEDIA_XOFF at 900 / MEDIA_XON at 800 queued frames (queue
 *   of 1000), FLUSH_MEDIA empties the queue (marks in it are discarded unanswered), MARK_MEDIA answered with
 *   MEDIA_MARK_PROCESSED once the audio before it has played, bytes beyond a whole number of optimal frames
 *   dropped (counted), control messages over 128 bytes ignored (counted), binary over 65 500 bytes hangs up,
 *   GET_STATUS answered as recorded, HANGUP closes.
 * - AudioSocket (`encapsulation=audiosocket transport=tcp`): a TCP client to external_host that sends kind 0x01
 *   with the 16 raw bytes of the UUID in `data`, then audio in the channel's kind (0x10 slin, 0x12 slin16...),
 *   collects received audio, and drops the connection on any kind other than audio/hangup or a zero-length audio
 *   message (counted).
 *
 * Not recorded (shape guessed from the protocol description): MEDIA_XOFF / MEDIA_XON (sent bare in plain form,
 * `{"event":"MEDIA_XOFF","channel_id":…}` in JSON), the WebSocket close code after an oversized binary message,
 * everything AudioSocket.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { createSocket } from "node:dgram";
import type { RemoteInfo, Socket as UdpSocket } from "node:dgram";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect as tcpConnect } from "node:net";
import type { Socket as TcpSocket } from "node:net";
import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";
import { aLawDecode, aLawEncode, concatPcm, muLawDecode, muLawEncode, resample } from "../../../src/audio/index.js";
import type { ExternalMediaRequest, SimMediaEndpoint, SimMediaFactory } from "./types.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

type SlinFormat = "slin16" | "slin" | "ulaw" | "alaw";

interface FormatInfo {
  rate: number;
  bytesPerSample: 1 | 2;
  /** RTP payload type Asterisk sends. */
  payloadType: number;
}

const FORMATS: Record<SlinFormat, FormatInfo> = {
  ulaw: { rate: 8000, bytesPerSample: 1, payloadType: 0 },
  alaw: { rate: 8000, bytesPerSample: 1, payloadType: 8 },
  slin16: { rate: 16000, bytesPerSample: 2, payloadType: 118 },
  slin: { rate: 8000, bytesPerSample: 2, payloadType: 11 },
};

/** Asterisk's static payload table (main/rtp_engine.c), for the types a UnicastRTP channel can resolve. */
const STATIC_RECEIVE: Readonly<Record<number, SlinFormat>> = { 0: "ulaw", 8: "alaw", 10: "slin", 11: "slin" };
/** The last static payload type: above it only the (empty) negotiated map would resolve a type. */
const LAST_STATIC_PT = 34;

function formatOf(format: string): SlinFormat {
  if (format in FORMATS) return format as SlinFormat;
  throw new Error(`media peer: format ${format} is not simulated`);
}

function parseHostPort(hostPort: string | undefined): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(hostPort ?? "");
  if (!m) throw new Error(`media peer: external_host ${String(hostPort)} is not host:port`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/** Encodes PCM at the format's rate into wire bytes (L16 in `endian` order, or G.711). */
function encodePcm(format: SlinFormat, pcm: Int16Array, endian: "be" | "le"): Buffer {
  if (format === "ulaw") return Buffer.from(muLawEncode(pcm));
  if (format === "alaw") return Buffer.from(aLawEncode(pcm));
  const out = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) {
    if (endian === "be") out.writeInt16BE(pcm[i] as number, i * 2);
    else out.writeInt16LE(pcm[i] as number, i * 2);
  }
  return out;
}

function decodePcm(format: SlinFormat, bytes: Uint8Array, endian: "be" | "le"): Int16Array {
  if (format === "ulaw") return muLawDecode(bytes);
  if (format === "alaw") return aLawDecode(bytes);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = endian === "be" ? buf.readInt16BE(i * 2) : buf.readInt16LE(i * 2);
  return out;
}

function toRate(pcm: Int16Array, from: number, to: number): Int16Array {
  return from === to ? pcm : resample(pcm, from, to);
}

/** Splits `pcm` into packets of `samples` (the last one may be shorter). */
function packetise(pcm: Int16Array, samples: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let i = 0; i < pcm.length; i += samples) out.push(pcm.subarray(i, Math.min(pcm.length, i + samples)));
  return out;
}

/** Runs `send(i)` for i in [0, count) every `intervalMs` on an absolute schedule (no drift). */
async function realTime(count: number, intervalMs: number, send: (i: number) => void, stopped: () => boolean): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (stopped()) return;
    const wait = start + i * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    if (stopped()) return;
    send(i);
  }
}

/** Common part: collected agent audio, mute flag, stats. */
abstract class PeerBase {
  readonly stats: Record<string, number> = {};
  protected readonly agent: Int16Array[] = [];
  protected muted = false;
  protected closed = false;

  constructor(readonly rate: number) {}

  protected count(name: string, by = 1): void {
    this.stats[name] = (this.stats[name] ?? 0) + by;
  }

  /** The media channel is gone (hung up by either side, or dropped). */
  get isClosed(): boolean {
    return this.closed;
  }

  setCallerMuted(muted: boolean): void {
    this.muted = muted;
  }

  agentAudio(): { pcm: Int16Array; rate: number } {
    return { pcm: concatPcm(this.agent), rate: this.rate };
  }
}

// --- RTP ------------------------------------------------------------------------------------------------------

export interface RtpPeerOptions {
  /** Caller packetisation (default as recorded: 30 ms ulaw/alaw, 20 ms slin16/slin). */
  packetMs?: number;
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Payload type of caller RTP (default the format's: 0, 8, 118, 11; Asterisk also uses 10 for slin). */
  payloadType?: number;
  /** Called with every peer created (tests reach the concrete peer this way). */
  onPeer?: (peer: RtpMediaPeer) => void;
}

export interface RtpPacketRecord {
  /** Why Asterisk dropped it, if it did (the caller heard nothing of it). */
  dropped?: "unknownPayloadType" | "unsimulatedPayloadType";
  marker: boolean;
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  payloadLength: number;
  from: string;
}

/** Asterisk's UnicastRTP channel. */
export class RtpMediaPeer extends PeerBase implements SimMediaEndpoint {
  readonly channelvars: Record<string, string>;
  readonly ready = Promise.resolve();
  readonly format: SlinFormat;
  readonly port: number;
  /** Headers of agent packets from the learned source (arrival order), `dropped` set on those the caller never heard. */
  readonly agentPackets: RtpPacketRecord[] = [];
  /** Where caller RTP goes (external_host). */
  readonly target: { host: string; port: number };
  readonly ssrc = randomInt(0, 0x1_0000_0000);
  private seq = randomInt(0, 0x10000);
  private timestamp = randomInt(0, 0x1_0000_0000);
  private learned: string | undefined;
  private readonly packetMs: number;
  private readonly payloadType: number;

  private constructor(
    request: ExternalMediaRequest,
    private readonly rtp: UdpSocket,
    private readonly rtcp: UdpSocket,
    options: RtpPeerOptions,
  ) {
    const format = formatOf(request.format);
    super(FORMATS[format].rate);
    this.format = format;
    this.port = rtp.address().port;
    this.target = parseHostPort(request.externalHost);
    this.packetMs = options.packetMs ?? (format === "ulaw" || format === "alaw" ? 30 : 20);
    this.payloadType = options.payloadType ?? FORMATS[format].payloadType;
    this.channelvars = { UNICASTRTP_LOCAL_PORT: String(this.port), UNICASTRTP_LOCAL_ADDRESS: rtp.address().address };
    rtp.on("message", (msg, rinfo) => this.onPacket(msg, rinfo));
    rtcp.on("message", () => this.count("rtcpReceived"));
  }

  static async create(request: ExternalMediaRequest, options: RtpPeerOptions = {}): Promise<RtpMediaPeer> {
    const host = options.host ?? "127.0.0.1";
    for (let attempt = 0; attempt < 50; attempt++) {
      const rtp = createSocket("udp4");
      await new Promise<void>((resolve, reject) => {
        rtp.once("error", reject);
        rtp.bind(0, host, () => resolve());
      });
      const port = rtp.address().port;
      const rtcp = createSocket("udp4");
      const ok =
        port % 2 === 0 &&
        (await new Promise<boolean>((resolve) => {
          rtcp.once("error", () => resolve(false));
          rtcp.bind(port + 1, host, () => resolve(true));
        }));
      if (ok) {
        const peer = new RtpMediaPeer(request, rtp, rtcp, options);
        options.onPeer?.(peer);
        return peer;
      }
      rtp.close();
      try {
        rtcp.close();
      } catch {
        // not bound
      }
    }
    throw new Error("media peer: no even RTP port pair");
  }

  /** Builds caller RTP packets (recorded header fields) for `pcm` at `rate`, advancing seq and timestamp. */
  buildCallerPackets(pcm: Int16Array, rate: number, packetMs = this.packetMs): Buffer[] {
    const samples = (this.rate * packetMs) / 1000;
    const packets: Buffer[] = [];
    for (const chunk of packetise(toRate(pcm, rate, this.rate), samples)) {
      const payload = encodePcm(this.format, chunk, "be");
      const p = Buffer.alloc(12 + payload.length);
      p[0] = 0x80;
      p[1] = this.payloadType; // Asterisk never set the marker bit in the recordings
      p.writeUInt16BE(this.seq, 2);
      p.writeUInt32BE(this.timestamp >>> 0, 4);
      p.writeUInt32BE(this.ssrc, 8);
      payload.copy(p, 12);
      packets.push(p);
      this.seq = (this.seq + 1) & 0xffff;
      this.timestamp = (this.timestamp + chunk.length) >>> 0;
    }
    return packets;
  }

  /** Sends packets as they are (any order, duplicates...) every `intervalMs` (0 = at once). */
  async sendPackets(packets: Buffer[], intervalMs = 0): Promise<void> {
    const send = (i: number): void => {
      if (this.muted || this.closed) return;
      this.rtp.send(packets[i] as Buffer, this.target.port, this.target.host);
      this.count("packetsSent");
    };
    if (intervalMs <= 0) {
      for (let i = 0; i < packets.length; i++) send(i);
      await sleep(0);
      return;
    }
    await realTime(packets.length, intervalMs, send, () => this.closed);
  }

  async sendCaller(pcm: Int16Array, rate: number, packetMs = this.packetMs): Promise<void> {
    const packets = this.buildCallerPackets(pcm, rate, packetMs);
    this.sendRtcp();
    await this.sendPackets(packets, packetMs);
  }

  /** A minimal RTCP receiver report to external_host port + 1 (Asterisk sends RTCP there). */
  sendRtcp(): void {
    if (this.closed) return;
    const rr = Buffer.alloc(8);
    rr[0] = 0x80;
    rr[1] = 201;
    rr.writeUInt16BE(1, 2);
    rr.writeUInt32BE(this.ssrc, 4);
    this.rtcp.send(rr, this.target.port + 1, this.target.host);
    this.count("rtcpSent");
  }

  /** Sends a packet from another socket (an address strict RTP must reject on the leg's side). */
  async sendFromStranger(packet: Buffer): Promise<void> {
    const s = createSocket("udp4");
    await new Promise<void>((resolve) => s.send(packet, this.target.port, this.target.host, () => resolve()));
    s.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rtp.close();
    this.rtcp.close();
  }

  private onPacket(msg: Buffer, rinfo: RemoteInfo): void {
    const from = `${rinfo.address}:${rinfo.port}`;
    // Strict RTP: the first source is learned, anything else is dropped.
    this.learned ??= from;
    if (from !== this.learned) {
      this.count("packetsFromUnknownSource");
      return;
    }
    if (from !== `${this.target.host}:${this.target.port}`) this.count("packetsNotFromExternalHost");
    if (msg.length < 12 || (msg[0] as number) >> 6 !== 2) {
      this.count("invalidPackets");
      return;
    }
    const cc = (msg[0] as number) & 0x0f;
    const record: RtpPacketRecord = {
      marker: ((msg[1] as number) & 0x80) !== 0,
      payloadType: (msg[1] as number) & 0x7f,
      seq: msg.readUInt16BE(2),
      timestamp: msg.readUInt32BE(4),
      ssrc: msg.readUInt32BE(8),
      payloadLength: msg.length - 12 - cc * 4,
      from,
    };
    if (record.payloadType !== this.payloadType) this.count("payloadTypeMismatch");
    this.agentPackets.push(record);
    this.count("packetsReceived");
    const heardAs = STATIC_RECEIVE[record.payloadType];
    if (heardAs === undefined) {
      record.dropped = record.payloadType > LAST_STATIC_PT ? "unknownPayloadType" : "unsimulatedPayloadType";
      this.count(record.dropped === "unknownPayloadType" ? "droppedUnknownPayloadType" : "droppedUnsimulatedPayloadType");
      return;
    }
    const pcm = decodePcm(heardAs, msg.subarray(12 + cc * 4), "be");
    this.agent.push(toRate(pcm, FORMATS[heardAs].rate, this.rate));
  }
}

// --- chan_websocket ----------------------------------------------------------------------------------------------

export interface ChanWebsocketPeerOptions {
  /** Caller packetisation (default 30 ms: 960 bytes of slin16, as recorded). */
  packetMs?: number;
  /** Queue levels (default as recorded: XOFF 900, XON 800; the queue holds 1000 frames). */
  xoffLevel?: number;
  xonLevel?: number;
  maxQueue?: number;
  /** Start with playout paused (nothing drains; see `setPlayoutPaused`). */
  playoutPaused?: boolean;
  onPeer?: (peer: ChanWebsocketMediaPeer) => void;
}

type QueueEntry = { frame: Buffer } | { mark: string };

const OPTIMAL_FRAME: Record<SlinFormat, number> = { slin16: 640, slin: 320, ulaw: 160, alaw: 160 };
const MAX_CONTROL_BYTES = 128;
const MAX_BINARY_BYTES = 65500;

/** Asterisk's chan_websocket channel in server mode (`connection_type=server`). */
export class ChanWebsocketMediaPeer extends PeerBase implements SimMediaEndpoint {
  readonly channelvars: Record<string, string>;
  readonly ready: Promise<void>;
  readonly format: SlinFormat;
  readonly connectionId = randomUUID();
  readonly channelName = `WebSocket/INCOMING/0x7f66${randomBytes(4).toString("hex")}`;
  readonly channelId: string;
  readonly json: boolean;
  readonly optimalFrameSize: number;
  readonly xoffLevel: number;
  readonly xonLevel: number;
  readonly maxQueue: number;
  /** Every text message received, verbatim. */
  readonly controlReceived: string[] = [];
  /** Every text message sent, verbatim. */
  readonly controlSent: string[] = [];
  /** Sizes of the binary messages received. */
  readonly binarySizes: number[] = [];
  private ws: WebSocket | undefined;
  private markReady!: () => void;
  private queue: QueueEntry[] = [];
  private queuedFrames = 0;
  private xoff = false;
  private buffering: Buffer[] | undefined;
  private reportDrained = false;
  private mediaPaused = false;
  private playoutPaused: boolean;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly packetMs: number;

  constructor(request: ExternalMediaRequest, options: ChanWebsocketPeerOptions = {}) {
    const format = formatOf(request.format);
    super(FORMATS[format].rate);
    this.format = format;
    this.channelId = request.channelId;
    this.json = /f\(json\)/.test(request.transportData ?? "");
    this.optimalFrameSize = OPTIMAL_FRAME[format];
    this.xoffLevel = options.xoffLevel ?? 900;
    this.xonLevel = options.xonLevel ?? 800;
    this.maxQueue = options.maxQueue ?? 1000;
    this.playoutPaused = options.playoutPaused ?? false;
    this.packetMs = options.packetMs ?? 30;
    this.channelvars = { MEDIA_WEBSOCKET_CONNECTION_ID: this.connectionId, MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE: String(this.optimalFrameSize) };
    this.ready = new Promise<void>((resolve) => (this.markReady = resolve));
    options.onPeer?.(this);
  }

  /** The MEDIA_START text exactly as Asterisk 23.4.1 sends it. */
  mediaStartText(): string {
    if (!this.json) {
      return `MEDIA_START connection_id:${this.connectionId} channel:${this.channelName} channel_id:${this.channelId} format:${this.format} optimal_frame_size:${this.optimalFrameSize} ptime:20`;
    }
    return JSON.stringify({
      event: "MEDIA_START",
      connection_id: this.connectionId,
      channel: this.channelName,
      channel_id: this.channelId,
      format: this.format,
      optimal_frame_size: this.optimalFrameSize,
      ptime: 20,
      channel_variables: this.channelvars,
    });
  }

  acceptWebSocket(ws: WebSocket): void {
    if (this.ws || this.closed) {
      ws.close(1008);
      return;
    }
    this.ws = ws;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(data as Buffer, isBinary));
    ws.on("close", () => this.stop());
    ws.on("error", () => this.count("socketErrors"));
    this.sendText(this.mediaStartText());
    this.schedule(performance.now());
    this.markReady();
  }

  /** Frames queued (not played yet). */
  get queueLength(): number {
    return this.queuedFrames;
  }

  get flowOff(): boolean {
    return this.xoff;
  }

  /** Stops / restarts draining the queue (a channel not consuming media), to drive XOFF in tests. */
  setPlayoutPaused(paused: boolean): void {
    this.playoutPaused = paused;
  }

  async sendCaller(pcm: Int16Array, rate: number, packetMs = this.packetMs): Promise<void> {
    await this.ready;
    const samples = (this.rate * packetMs) / 1000;
    const chunks = packetise(toRate(pcm, rate, this.rate), samples).map((c) => encodePcm(this.format, c, "le"));
    await realTime(
      chunks.length,
      packetMs,
      (i) => {
        if (this.muted || this.closed || this.ws?.readyState !== 1) return;
        this.ws.send(chunks[i] as Buffer);
        this.count("callerFramesSent");
      },
      () => this.closed,
    );
  }

  /** DTMF passed into the channel (the leg must ignore it: ARI is the source). */
  sendDtmf(digit: string): void {
    this.sendText(this.json ? JSON.stringify({ event: "DTMF_END", channel_id: this.channelId, digit }) : `DTMF_END digit:${digit} channel_id:${this.channelId}`);
  }

  /** An ERROR event (the leg logs it). */
  sendError(message: string): void {
    this.sendText(this.json ? JSON.stringify({ event: "ERROR", channel_id: this.channelId, message }) : `ERROR ${message}`);
  }

  /** Asterisk hangs up the channel: the WebSocket closes normally. */
  close(): void {
    if (this.closed) return;
    this.ws?.close(1000);
    this.stop();
  }

  private stop(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private sendText(text: string): void {
    if (this.ws?.readyState !== 1) return;
    this.controlSent.push(text);
    this.ws.send(text);
  }

  private event(name: string, fields: Record<string, string | number | boolean> = {}, plainArgs = ""): void {
    if (this.json) this.sendText(JSON.stringify({ event: name, channel_id: this.channelId, ...fields }));
    else this.sendText(plainArgs === "" ? name : `${name} ${plainArgs}`);
  }

  private statusText(): void {
    const f = {
      queue_length: this.queuedFrames,
      xon_level: this.xonLevel,
      xoff_level: this.xoffLevel,
      queue_full: this.queuedFrames >= this.maxQueue,
      bulk_media: this.buffering !== undefined,
      media_paused: this.mediaPaused,
    };
    if (this.json) this.sendText(JSON.stringify({ event: "STATUS", channel_id: this.channelId, ...f }));
    else this.sendText(`STATUS channel_id:${this.channelId} ${Object.entries(f).map(([k, v]) => `${k}:${String(v)}`).join(" ")}`);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (isBinary) this.onBinary(data);
    else this.onControl(data);
  }

  private onBinary(data: Buffer): void {
    this.binarySizes.push(data.length);
    if (data.length > MAX_BINARY_BYTES) {
      this.count("oversizeBinaryHangups");
      this.close();
      return;
    }
    if (this.buffering) {
      this.buffering.push(Buffer.from(data));
      return;
    }
    const size = this.optimalFrameSize;
    const whole = data.length - (data.length % size);
    if (whole !== data.length) {
      // Current releases drop the bytes beyond a whole number of frames (older ones padded with silence).
      this.count("partialFramesDropped");
      this.count("partialBytesDropped", data.length - whole);
    }
    for (let o = 0; o < whole; o += size) this.enqueueFrame(Buffer.from(data.subarray(o, o + size)));
  }

  private enqueueFrame(frame: Buffer): void {
    if (this.queuedFrames >= this.maxQueue) {
      this.count("framesDroppedQueueFull");
      return;
    }
    this.queue.push({ frame });
    this.queuedFrames++;
    this.count("framesQueued");
    if (!this.xoff && this.queuedFrames >= this.xoffLevel) {
      this.xoff = true;
      this.count("xoffSent");
      this.event("MEDIA_XOFF");
    }
  }

  private onControl(data: Buffer): void {
    const text = data.toString("utf8");
    this.controlReceived.push(text);
    if (data.length > MAX_CONTROL_BYTES) {
      this.count("oversizeControlIgnored"); // Asterisk only warns on its console
      return;
    }
    let command: string;
    let arg: string | undefined;
    if (text.trimStart().startsWith("{")) {
      try {
        const o = JSON.parse(text) as { command?: unknown; correlation_id?: unknown };
        command = typeof o.command === "string" ? o.command : "";
        arg = typeof o.correlation_id === "string" ? o.correlation_id : undefined;
      } catch {
        this.count("invalidMessages");
        return;
      }
    } else {
      const parts = text.trim().split(/\s+/);
      command = parts[0] ?? "";
      arg = parts[1];
    }
    this.count(`cmd_${command}`);
    switch (command) {
      case "ANSWER":
        return;
      case "HANGUP":
        this.count("hangups");
        this.close();
        return;
      case "FLUSH_MEDIA":
        this.flush();
        return;
      case "MARK_MEDIA":
        this.queue.push({ mark: arg ?? "" });
        this.count("marksReceived");
        return;
      case "GET_STATUS":
        this.statusText();
        return;
      case "REPORT_QUEUE_DRAINED":
        this.reportDrained = true;
        return;
      case "START_MEDIA_BUFFERING":
        this.buffering ??= [];
        return;
      case "STOP_MEDIA_BUFFERING":
        this.stopBuffering(arg);
        return;
      case "PAUSE_MEDIA":
        this.mediaPaused = true;
        return;
      case "CONTINUE_MEDIA":
        this.mediaPaused = false;
        return;
      default:
        this.count("invalidMessages");
    }
  }

  private flush(): void {
    this.count("flushes");
    for (const e of this.queue) {
      if ("mark" in e) this.count("marksDiscarded");
      else this.count("framesFlushed");
    }
    this.queue = [];
    this.queuedFrames = 0;
    this.checkXon();
  }

  private stopBuffering(id: string | undefined): void {
    const parts = this.buffering ?? [];
    this.buffering = undefined;
    const all = Buffer.concat(parts);
    const size = this.optimalFrameSize;
    for (let o = 0; o < all.length; o += size) {
      const frame = Buffer.alloc(size);
      all.copy(frame, 0, o, Math.min(all.length, o + size)); // buffering mode pads the last frame with silence
      this.enqueueFrame(frame);
    }
    this.event("MEDIA_BUFFERING_COMPLETED", id === undefined ? {} : { correlation_id: id }, id ?? "");
  }

  private checkXon(): void {
    if (this.xoff && this.queuedFrames <= this.xonLevel) {
      this.xoff = false;
      this.count("xonSent");
      this.event("MEDIA_XON");
    }
  }

  private schedule(at: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.tick();
      this.schedule(at + 20);
    }, Math.max(0, at + 20 - performance.now()));
  }

  /** One 20 ms playout period: marks behind played audio are answered, then one frame plays. */
  private tick(): void {
    if (this.closed) return;
    while (this.queue.length > 0 && "mark" in (this.queue[0] as QueueEntry)) {
      const { mark } = this.queue.shift() as { mark: string };
      this.count("marksProcessed");
      this.event("MEDIA_MARK_PROCESSED", { correlation_id: mark }, mark);
    }
    if (this.playoutPaused || this.mediaPaused) return;
    const head = this.queue[0];
    if (head && "frame" in head) {
      this.queue.shift();
      this.queuedFrames--;
      this.agent.push(decodePcm(this.format, head.frame, "le"));
      this.count("framesPlayed");
      this.checkXon();
      return;
    }
    if (this.queue.length === 0 && this.reportDrained) {
      this.reportDrained = false;
      this.event("QUEUE_DRAINED");
    }
  }
}

/**
 * Asterisk's HTTP server end of `/media/<connection id>` for tests without the ARI simulator: 404 for an unknown
 * id, 409 when the id is already connected, else the upgrade (echoing subprotocol `media`) goes to the peer.
 */
export class MediaWebSocketServer {
  private readonly peers = new Map<string, ChanWebsocketMediaPeer>();
  private readonly connected = new Set<string>();
  private readonly wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has("media") ? "media" : false) });

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on("upgrade", (req, socket, head) => {
      const id = /^\/media\/([^/?]+)/.exec(req.url ?? "")?.[1] ?? "";
      const peer = this.peers.get(id);
      const refuse = (status: number, text: string): void => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      };
      if (!peer) return refuse(404, "Not Found");
      if (this.connected.has(id)) return refuse(409, "Conflict");
      this.connected.add(id);
      this.wss.handleUpgrade(req, socket, head, (ws) => peer.acceptWebSocket(ws));
    });
  }

  static async start(): Promise<MediaWebSocketServer> {
    const server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return new MediaWebSocketServer(server, (server.address() as AddressInfo).port);
  }

  /** Makes the peer reachable at `url(peer)`. */
  register(peer: ChanWebsocketMediaPeer): string {
    this.peers.set(peer.connectionId, peer);
    return this.url(peer.connectionId);
  }

  url(connectionId: string): string {
    return `ws://127.0.0.1:${this.port}/media/${connectionId}`;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// --- AudioSocket -----------------------------------------------------------------------------------------------

export interface AudioSocketPeerOptions {
  /** Caller packetisation (default 20 ms). */
  packetMs?: number;
  onPeer?: (peer: AudioSocketMediaPeer) => void;
}

/** Audio kinds by format (0x10 slin 8 kHz ... 0x18 slin192). */
export const AUDIOSOCKET_KINDS: Record<string, number> = {
  slin: 0x10,
  slin12: 0x11,
  slin16: 0x12,
  slin24: 0x13,
  slin32: 0x14,
  slin44: 0x15,
  slin48: 0x16,
  slin96: 0x17,
  slin192: 0x18,
};

const KIND_RATES: Record<number, number> = { 0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000 };

export interface AudioSocketMessage {
  kind: number;
  length: number;
}

/** Asterisk's AudioSocket channel (externalMedia `encapsulation=audiosocket transport=tcp`): a TCP client. */
export class AudioSocketMediaPeer extends PeerBase implements SimMediaEndpoint {
  readonly channelvars: Record<string, string> = {};
  readonly ready: Promise<void>;
  readonly kind: number;
  readonly uuid: string;
  /** Every message received (kind, length), in order. */
  readonly received: AudioSocketMessage[] = [];
  private socket: TcpSocket | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private firstAudioAt = -1;
  private receivedSamples = 0;
  private readonly packetMs: number;

  constructor(request: ExternalMediaRequest, options: AudioSocketPeerOptions = {}) {
    const kind = AUDIOSOCKET_KINDS[request.format];
    if (kind === undefined) throw new Error(`media peer: AudioSocket format ${request.format} is not simulated`);
    super(KIND_RATES[kind] as number);
    this.kind = kind;
    const uuid = (request.data ?? "").toLowerCase();
    // Asterisk fails the channel at creation when data is not a UUID.
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(uuid)) throw new Error(`media peer: AudioSocket data ${String(request.data)} is not a UUID`);
    this.uuid = uuid;
    this.packetMs = options.packetMs ?? 20;
    const target = parseHostPort(request.externalHost);
    this.ready = new Promise<void>((resolve, reject) => {
      const socket = tcpConnect({ host: target.host, port: target.port }, () => {
        const hello = Buffer.alloc(3 + 16);
        hello[0] = 0x01;
        hello.writeUInt16BE(16, 1);
        Buffer.from(uuid.replace(/-/g, ""), "hex").copy(hello, 3);
        socket.write(hello);
        resolve();
      });
      socket.on("error", (err) => {
        this.count("socketErrors");
        reject(err);
      });
      socket.on("data", (chunk: Buffer) => this.onData(chunk));
      socket.on("close", () => {
        this.closed = true;
      });
      this.socket = socket;
    });
    // A failed connect is reported through `ready`; nobody may be waiting on it yet.
    this.ready.catch(() => {});
    options.onPeer?.(this);
  }

  async sendCaller(pcm: Int16Array, rate: number, packetMs = this.packetMs): Promise<void> {
    await this.ready;
    const samples = Math.round((this.rate * packetMs) / 1000);
    const chunks = packetise(toRate(pcm, rate, this.rate), samples).map((c) => this.message(this.kind, encodePcm("slin", c, "le")));
    await realTime(
      chunks.length,
      packetMs,
      (i) => {
        if (this.muted || this.closed) return;
        this.socket?.write(chunks[i] as Buffer);
        this.count("audioSent");
      },
      () => this.closed,
    );
  }

  /** Sends any message (tests: DTMF 0x03, error 0xff, odd kinds). */
  sendMessage(kind: number, payload: Buffer = Buffer.alloc(0)): void {
    if (!this.closed) this.socket?.write(this.message(kind, payload));
  }

  sendDtmf(digit: string): void {
    this.sendMessage(0x03, Buffer.from(digit, "ascii"));
  }

  /** Asterisk hangs up: kind 0x00, then the connection ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.end(this.message(0x00, Buffer.alloc(0)));
  }

  /** How far the audio received ran ahead of wall clock at most (a leg that bursts shows a large value). */
  get maxAheadMs(): number {
    return this.stats.maxAheadMs ?? 0;
  }

  private message(kind: number, payload: Buffer): Buffer {
    const m = Buffer.alloc(3 + payload.length);
    m[0] = kind;
    m.writeUInt16BE(payload.length, 1);
    payload.copy(m, 3);
    return m;
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 3) {
      const kind = this.pending[0] as number;
      const length = this.pending.readUInt16BE(1);
      if (this.pending.length < 3 + length) return;
      const payload = this.pending.subarray(3, 3 + length);
      this.pending = this.pending.subarray(3 + length);
      this.received.push({ kind, length });
      if (!this.onMessage(kind, payload)) return;
    }
  }

  /** Returns false when the connection was dropped. */
  private onMessage(kind: number, payload: Buffer): boolean {
    if (kind === 0x00) {
      this.count("hangupsReceived");
      this.closed = true;
      this.socket?.end();
      return false;
    }
    const isAudio = kind >= 0x10 && kind <= 0x18;
    if (!isAudio || payload.length === 0) {
      // Asterisk drops the connection on anything else, or on zero-length audio.
      this.count("invalidMessages");
      this.count("droppedConnection");
      this.closed = true;
      this.socket?.destroy();
      return false;
    }
    if (kind !== this.kind) this.count("wrongAudioKind");
    this.count("audioReceived");
    const pcm = decodePcm("slin", payload, "le");
    this.agent.push(pcm);
    const now = performance.now();
    if (this.firstAudioAt < 0) this.firstAudioAt = now;
    this.receivedSamples += pcm.length;
    const ahead = (this.receivedSamples * 1000) / this.rate - (now - this.firstAudioAt);
    if (ahead > (this.stats.maxAheadMs ?? 0)) this.stats.maxAheadMs = Math.round(ahead);
    return true;
  }
}

// --- factories ---------------------------------------------------------------------------------------------------

export function rtpMediaFactory(options: RtpPeerOptions = {}): SimMediaFactory {
  return (request) => RtpMediaPeer.create(request, options);
}

export function chanWebsocketMediaFactory(options: ChanWebsocketPeerOptions = {}): SimMediaFactory {
  return (request) => new ChanWebsocketMediaPeer(request, options);
}

export function audioSocketMediaFactory(options: AudioSocketPeerOptions = {}): SimMediaFactory {
  return (request) => new AudioSocketMediaPeer(request, options);
}

export interface AsteriskMediaOptions {
  rtp?: RtpPeerOptions;
  websocket?: ChanWebsocketPeerOptions;
  audiosocket?: AudioSocketPeerOptions;
}

/** Chooses the peer by the request: `transport=websocket`, `encapsulation=audiosocket`, else RTP. */
export function asteriskMediaFactory(options: AsteriskMediaOptions = {}): SimMediaFactory {
  return (request) => {
    if (request.transport === "websocket") return new ChanWebsocketMediaPeer(request, options.websocket);
    if (request.encapsulation === "audiosocket") return new AudioSocketMediaPeer(request, options.audiosocket);
    if (request.encapsulation === "rtp" || request.encapsulation === "" || request.encapsulation === undefined) return RtpMediaPeer.create(request, options.rtp);
    throw new Error(`media peer: encapsulation ${request.encapsulation} / transport ${request.transport} is not simulated`);
  };
}
