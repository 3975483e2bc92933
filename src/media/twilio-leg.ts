/**
 * TwilioLeg: the media leg of a Twilio Media Streams (bidirectional `<Connect><Stream>`) call, and of other
 * providers speaking that protocol (ws-call-api.md §6, media-protocols.md §4). Audio is base64 µ-law, 8 kHz,
 * mono, both ways; every message is a JSON text frame.
 *
 * In: `handleMessage` takes parsed messages (`parseTwilioMessage`): `media` of the inbound track is decoded and
 * re-chunked into 20 ms frames (other tracks are ignored; chunk sizes vary), `dtmf` becomes a `dtmf` event
 * (source `pbx`), `mark` is an echo of a mark we sent, `stop` ends the leg (reason `caller`).
 *
 * Out: agent audio is paced locally at most `leadMs` (default 100) ahead of real time, one 20 ms frame
 * (160 bytes of µ-law) per `media` message. When the last frame of an utterance has been handed over, a
 * `mark` named `<playId>:<seq>` follows it. `clear()` sends `{"event":"clear"}` (at once for a hard cut; after
 * the fade has played out when `fadeOutMs` is given), so Twilio drops what it buffered.
 *
 * Playout bookkeeping: trackStart/trackEnd and `mark()` are driven by the local pacer clock, so they are accurate
 * within `leadMs` (the provider buffers at most what we sent ahead). Twilio's mark echoes are tracked for
 * observability only: `confirmedMarks` and the `markEcho` event of `twilioEvents`; echoes of marks sent before a
 * `clear` we sent count as cleared (Twilio echoes every pending mark at once on clear).
 */

import type { AudioFrame } from "../audio/index.js";
import type { Logger } from "../log.js";
import type { MediaClock } from "./clock.js";
import { realClock } from "./clock.js";
import { TypedEmitter } from "./emitter.js";
import type { LegCloseReason } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import type { ClearOptions, ClearResult, PacedFrameInfo, TrackEndEvent } from "./pacer.js";
import { WireDecoder, WireEncoder } from "./wire-codec.js";

// --- inbound messages ----------------------------------------------------------------------------------------

export interface TwilioMediaFormat {
  encoding: string;
  sampleRate: number;
  channels: number;
}

export interface TwilioConnected {
  event: "connected";
  protocol?: string;
  version?: string;
}

export interface TwilioStart {
  event: "start";
  sequenceNumber?: string;
  streamSid: string;
  start: {
    streamSid: string;
    callSid?: string;
    accountSid?: string;
    tracks: string[];
    mediaFormat?: TwilioMediaFormat;
    customParameters: Record<string, string>;
  };
}

export interface TwilioMedia {
  event: "media";
  sequenceNumber?: string;
  streamSid?: string;
  media: { track: string; chunk?: string; timestamp?: string; payload: string };
}

export interface TwilioDtmf {
  event: "dtmf";
  sequenceNumber?: string;
  streamSid?: string;
  dtmf: { digit: string; track?: string };
}

export interface TwilioMark {
  event: "mark";
  sequenceNumber?: string;
  streamSid?: string;
  mark: { name: string };
}

export interface TwilioStop {
  event: "stop";
  sequenceNumber?: string;
  streamSid?: string;
  stop: { callSid?: string; accountSid?: string };
}

export type TwilioInbound = TwilioConnected | TwilioStart | TwilioMedia | TwilioDtmf | TwilioMark | TwilioStop;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** First present value among camelCase and snake_case (and other alias) keys. */
function pick(o: Obj, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) return o[k];
  return undefined;
}

/** Strings in this protocol, but tolerate numbers. */
function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function sidOf(o: Obj): string | undefined {
  return str(pick(o, "streamSid", "stream_sid", "streamId", "stream_id"));
}

function common(o: Obj): { sequenceNumber?: string; streamSid?: string } {
  const out: { sequenceNumber?: string; streamSid?: string } = {};
  const seq = str(pick(o, "sequenceNumber", "sequence_number"));
  if (seq !== undefined) out.sequenceNumber = seq;
  const sid = sidOf(o);
  if (sid !== undefined) out.streamSid = sid;
  return out;
}

/**
 * Parses one text frame of the Twilio Media Streams protocol, tolerantly: snake_case aliases (`stream_sid`,
 * `stream_id`, `sequence_number`, `call_sid`, `account_sid`, `custom_parameters`, `media_format`,
 * `sample_rate`) are accepted, numbers may come as strings and strings as numbers, unknown fields are ignored.
 * Returns `{ error }` for invalid JSON, an unknown `event`, or a missing required field.
 */
export function parseTwilioMessage(text: string): TwilioInbound | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: "message is not JSON" };
  }
  if (!isObj(raw)) return { error: "message is not a JSON object" };
  const event = raw.event;
  if (typeof event !== "string") return { error: "event is missing" };
  switch (event) {
    case "connected": {
      const out: TwilioConnected = { event };
      const protocol = str(raw.protocol);
      const version = str(raw.version);
      if (protocol !== undefined) out.protocol = protocol;
      if (version !== undefined) out.version = version;
      return out;
    }
    case "start": {
      const start = pick(raw, "start");
      if (!isObj(start)) return { error: "start is missing" };
      const streamSid = sidOf(raw) ?? sidOf(start);
      if (streamSid === undefined) return { error: "start.streamSid is missing" };
      const tracksRaw = pick(start, "tracks");
      const tracks = Array.isArray(tracksRaw) ? tracksRaw.filter((t): t is string => typeof t === "string") : ["inbound"];
      const params = pick(start, "customParameters", "custom_parameters");
      const customParameters: Record<string, string> = {};
      if (isObj(params)) {
        for (const [k, v] of Object.entries(params)) {
          const s = typeof v === "boolean" ? String(v) : str(v);
          if (s !== undefined) customParameters[k] = s;
        }
      }
      const body: TwilioStart["start"] = { streamSid, tracks, customParameters };
      const callSid = str(pick(start, "callSid", "call_sid"));
      const accountSid = str(pick(start, "accountSid", "account_sid"));
      if (callSid !== undefined) body.callSid = callSid;
      if (accountSid !== undefined) body.accountSid = accountSid;
      const fmt = pick(start, "mediaFormat", "media_format");
      if (isObj(fmt)) {
        body.mediaFormat = {
          encoding: str(fmt.encoding) ?? "",
          sampleRate: num(pick(fmt, "sampleRate", "sample_rate")) ?? 0,
          channels: num(fmt.channels) ?? 1,
        };
      }
      return { event, ...common(raw), streamSid, start: body };
    }
    case "media": {
      const media = pick(raw, "media");
      if (!isObj(media)) return { error: "media is missing" };
      const payload = media.payload;
      if (typeof payload !== "string") return { error: "media.payload is missing" };
      const body: TwilioMedia["media"] = { track: str(media.track) ?? "inbound", payload };
      const chunk = str(media.chunk);
      const timestamp = str(media.timestamp);
      if (chunk !== undefined) body.chunk = chunk;
      if (timestamp !== undefined) body.timestamp = timestamp;
      return { event, ...common(raw), media: body };
    }
    case "dtmf": {
      const dtmf = pick(raw, "dtmf");
      if (!isObj(dtmf)) return { error: "dtmf is missing" };
      const digit = str(dtmf.digit);
      if (digit === undefined || digit === "") return { error: "dtmf.digit is missing" };
      const body: TwilioDtmf["dtmf"] = { digit };
      const track = str(dtmf.track);
      if (track !== undefined) body.track = track;
      return { event, ...common(raw), dtmf: body };
    }
    case "mark": {
      const mark = pick(raw, "mark");
      const name = isObj(mark) ? str(mark.name) : undefined;
      if (name === undefined) return { error: "mark.name is missing" };
      return { event, ...common(raw), mark: { name } };
    }
    case "stop": {
      const stop = pick(raw, "stop");
      const body: TwilioStop["stop"] = {};
      if (isObj(stop)) {
        const callSid = str(pick(stop, "callSid", "call_sid"));
        const accountSid = str(pick(stop, "accountSid", "account_sid"));
        if (callSid !== undefined) body.callSid = callSid;
        if (accountSid !== undefined) body.accountSid = accountSid;
      }
      return { event, ...common(raw), stop: body };
    }
    default:
      return { error: `event ${event} is not supported` };
  }
}

/** The mediaFormat a Twilio stream must have: audio/x-mulaw, 8000 Hz, mono. */
export function isTwilioMulaw(format: TwilioMediaFormat | undefined): boolean {
  return format !== undefined && format.encoding.toLowerCase() === "audio/x-mulaw" && format.sampleRate === 8000 && format.channels === 1;
}

// --- the leg ---------------------------------------------------------------------------------------------------

export interface TwilioLegOptions {
  id: string;
  streamSid: string;
  /** How far ahead of real time agent audio is sent (`[twilio] lead_ms`, default 100). */
  leadMs?: number;
  clock?: MediaClock;
  /** Sends one JSON text frame (the http layer passes `ws.send`). */
  send: (text: string) => void;
  callerCapacity?: number;
  log?: Logger;
}

export interface TwilioMarkEcho {
  name: string;
  /** Echoed because of a `clear` we sent (the audio before it was dropped), not because it played. */
  cleared: boolean;
  /** Leg media time of the echo. */
  atMs: number;
}

export type TwilioLegEvents = {
  /** Twilio echoed a mark we sent. */
  markEcho: [TwilioMarkEcho];
};

const RATE = 8000;
const FRAME_MS = 20;
const FRAME_BYTES = 160;

export class TwilioLeg extends PacedLeg {
  readonly streamSid: string;
  /** Observability of Twilio's side: mark echoes. */
  readonly twilioEvents = new TypedEmitter<TwilioLegEvents>();
  /** Every mark echo received, in order. */
  readonly confirmedMarks: TwilioMarkEcho[] = [];
  /** `media` messages sent so far. */
  sentFrames = 0;
  /** Inbound messages of other tracks, ignored. */
  ignoredMedia = 0;

  private readonly sendText: (text: string) => void;
  private readonly log: Logger | undefined;
  private readonly decoder = new WireDecoder({ codec: "pcmu", sampleRate: RATE });
  private readonly encoder = new WireEncoder({ codec: "pcmu", sampleRate: RATE });
  private readonly encoded = Buffer.alloc(FRAME_BYTES);
  private readonly mediaPrefix: string;
  private readonly sidJson: string;
  private readonly markedPlays = new Set<string>();
  /** Marks sent and not echoed yet, with the clear epoch they were sent in. */
  private readonly pendingMarks = new Map<string, number>();
  private clearEpoch = 0;
  private markSeq = 0;

  constructor(options: TwilioLegOptions) {
    super({
      id: options.id,
      clock: options.clock ?? realClock,
      callerRate: RATE,
      agentRate: RATE,
      agentFrameMs: FRAME_MS,
      leadMs: options.leadMs ?? 100,
      callerCapacity: options.callerCapacity,
    });
    this.streamSid = options.streamSid;
    this.sendText = options.send;
    this.log = options.log;
    this.sidJson = JSON.stringify(options.streamSid);
    this.mediaPrefix = `{"event":"media","streamSid":${this.sidJson},"media":{"payload":"`;
    this.pacer.events.on("trackEnd", (e) => this.onTrackEnd(e));
  }

  /** Marks sent and not echoed yet. */
  get pendingMarkNames(): string[] {
    return [...this.pendingMarks.keys()];
  }

  /** One parsed inbound message. `connected` and `start` are the call layer's business and are ignored here. */
  handleMessage(msg: TwilioInbound): void {
    if (this.closed) return;
    switch (msg.event) {
      case "media": {
        if (msg.media.track !== "inbound" && msg.media.track !== "inbound_track") {
          this.ignoredMedia++;
          return;
        }
        const bytes = Buffer.from(msg.media.payload, "base64");
        this.pushCallerPcm(this.decoder.decode(bytes));
        return;
      }
      case "dtmf":
        this.emitDtmf(msg.dtmf.digit, undefined, "pbx");
        return;
      case "mark":
        this.onMarkEcho(msg.mark.name);
        return;
      case "stop":
        this.shutdown("caller", "stop");
        return;
      case "connected":
      case "start":
        return;
    }
  }

  /** The provider closed the socket (or it failed). */
  hangup(reason: "caller" | "transport" | "error" = "transport", detail?: string): void {
    this.shutdown(reason, detail);
  }

  override clear(options?: ClearOptions): ClearResult {
    const result = super.clear(options);
    if (this.closed) return result;
    // Utterances cut here get no end-of-utterance mark (a fade tail of one may still be sent). Their trackEnd
    // already fired inside super.clear(), so these entries stay until close: one short string per interruption.
    for (const p of result.plays) if (p.interrupted) this.markedPlays.add(p.playId);
    // Let the fade tail play out (by the local clock), then make Twilio drop whatever it still buffers.
    this.flushAfterFade(result, options, () => this.sendClear());
    return result;
  }

  protected sendFrame(frame: AudioFrame, info: PacedFrameInfo): void {
    if (this.closed) return;
    const n = this.encoder.encodeInto(frame.pcm, this.encoded);
    const payload = this.encoded.toString("base64", 0, n);
    this.send(`${this.mediaPrefix}${payload}"}}`);
    this.sentFrames++;
    if (info.last && info.playId !== undefined) this.sendEndMark(info.playId);
  }

  protected override onShutdown(_reason: LegCloseReason, _detail: string | undefined): void {
    this.markedPlays.clear();
  }

  private onTrackEnd(e: TrackEndEvent): void {
    // An utterance ended after its audio had been sent (endPlay came late): mark it now, behind its audio.
    if (e.reason === "finished" && !this.closed) this.sendEndMark(e.playId);
    this.markedPlays.delete(e.playId);
  }

  private sendEndMark(playId: string): void {
    if (this.markedPlays.has(playId)) return;
    this.markedPlays.add(playId);
    const name = `${playId}:${++this.markSeq}`;
    this.pendingMarks.set(name, this.clearEpoch);
    this.send(`{"event":"mark","streamSid":${this.sidJson},"mark":{"name":${JSON.stringify(name)}}}`);
  }

  private sendClear(): void {
    this.clearEpoch++;
    this.send(`{"event":"clear","streamSid":${this.sidJson}}`);
  }

  private onMarkEcho(name: string): void {
    const epoch = this.pendingMarks.get(name);
    if (epoch === undefined) {
      this.log?.debug({ legId: this.id, mark: name }, "twilio echoed an unknown mark");
      return;
    }
    this.pendingMarks.delete(name);
    const echo: TwilioMarkEcho = { name, cleared: epoch < this.clearEpoch, atMs: this.nowMs };
    this.confirmedMarks.push(echo);
    this.twilioEvents.emit("markEcho", echo);
  }

  private send(text: string): void {
    try {
      this.sendText(text);
    } catch (err) {
      this.log?.warn({ err, legId: this.id }, "twilio leg send failed");
      throw err;
    }
  }
}
