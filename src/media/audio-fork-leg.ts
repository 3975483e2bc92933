/**
 * AudioForkLeg: the media leg of a FreeSWITCH call whose audio rides on a mod_audio_fork WebSocket
 * (media-protocols.md §2; jambonz module line). FS is the WebSocket client; the http layer hands the socket over
 * (ForkRegistry) and feeds every frame to `handleMessage` (see `bindForkSocket`).
 *
 * In (FS → us):
 * - the first text frame is the metadata given to `uuid_audio_fork … start` (kept verbatim in `metadata`,
 *   `metadata` event of `forkEvents`);
 * - binary frames are raw L16 little-endian mono at `forkRate`, sized by the caller's packetisation (640 B / 20 ms,
 *   960 B / 30 ms at 16 kHz...): they are re-chunked by byte count into 20 ms frames (an odd byte is carried);
 * - a zero-length binary frame is FS's graceful shutdown: the leg closes with reason `transport`;
 * - later text frames: mark replies `{"type": "mark", "data": {"name":"…", "event": "playout"|"cleared"}}`
 *   (parsed as JSON, spacing irrelevant); anything else (send_text, stop text) becomes a `text` event.
 *
 * Out, `mode: "stream"` (10-argument start with streaming playback): agent audio is paced locally in 20 ms binary
 * L16 frames at `playbackRate`, at most `leadMs` (default 60) ahead of real time, on top of FS's own 80/40 ms
 * pre-buffer. With `useMarks` (default true) a `{"type":"mark","data":{"name":"<playId>:<seq>"}}` follows the
 * last frame of each utterance (at most 30 outstanding). Replies are recorded in `confirmedMarks` and emitted as
 * `markReply`; a mark still unanswered `markTimeoutMs` (2 s) after its audio should have played (pacer time +
 * FS pre-buffer) turns marks off for the call (`marksDisabled` event): older module, or `send_silence_when_idle`
 * missing. A finished utterance's trackEnd waits for the `playout` reply to its end mark, so the playout ledger is
 * what FS actually played; while marks are off (or never answered) the local pacer clock is the ledger.
 * trackStart and `mark()` follow the pacer clock (accurate within the lead plus FS's pre-buffer).
 * `clear()` stops the pacer and sends `{"type":"killAudio"}` at once, then calls `onFlush` (the adapter issues
 * `uuid_break <uuid> all`). No fade: FS already holds the released lead and its pre-buffer, which only killAudio
 * can drop, so waiting for a fade tail kept the caller hearing the agent 80-110 ms after barge-in (live fact 10).
 * Playout probe: with marks on, a `probe:<n>` mark follows the call's first agent frame. Only a `playout` reply
 * proves that the caller hears the stream; none within `playoutDeadlineMs` (3 s) of the probe, before any
 * `playout` reply at all, emits `noPlayout`: the adapter ends the call instead of leaving the caller in silence
 * (a channel parked without `send_silence_when_idle` writes no frames, so nothing streamed is ever heard). A probe
 * answered `cleared` (barge-in) proves nothing: the next agent frame sends a new one.
 *
 * Out, `mode: "file"` (drachtio line, or streaming off): there is no pacing. The audio of each utterance
 * (`write`/`play`) is accumulated and sent, when the utterance ends (`endPlay`, or the end of `play`'s source), as
 * one `{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":<playbackRate>,"audioContent":"<base64
 * L16>","textContent":""}}`, followed by a `playAudio` event of `forkEvents` ({playId, seq}). FS writes the file
 * and fires `mod_audio_fork::play_audio` (in the same order); the adapter plays it (`uuid_broadcast`, one at a
 * time) and reports the playback with `filePlaybackStarted(playId)` (PLAYBACK_START → trackStart) and
 * `filePlaybackEnded(playId, "done"|"break")` (PLAYBACK_STOP → trackEnd, resolves `play()` and `mark()`).
 * `clear()` ends every unfinished utterance as interrupted (played = time since its start), and calls `onFlush`
 * (`uuid_break <uuid> all`); no killAudio is sent in file mode.
 */

import type { AudioFrame } from "../audio/index.js";
import { resample } from "../audio/index.js";
import type { Logger } from "../log.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import { TypedEmitter } from "./emitter.js";
import type { ForkSocket } from "./fork-registry.js";
import type { DtmfSource, LegCloseReason } from "./leg.js";
import { PacedLeg } from "./paced-leg.js";
import { PlayoutMarks } from "./playout-marks.js";
import type {
  AgentAudio,
  ClearOptions,
  ClearResult,
  MarkResult,
  PacedFrameInfo,
  PlayOptions,
  PlayOutcome,
  PlayStatus,
  PlaySummary,
  TrackEndEvent,
} from "./pacer.js";
import { WireDecoder } from "./wire-codec.js";

export type AudioForkRate = 8000 | 16000;
export type AudioForkMode = "stream" | "file";

export interface AudioForkLegOptions {
  id: string;
  /** Rate of the caller L16 FS forks (`8k` / `16k` in the start command). */
  forkRate: AudioForkRate;
  /** Rate of the agent audio we send (argv 9 in stream mode, `sampleRate` of playAudio in file mode; default 16000). */
  playbackRate?: number;
  mode: AudioForkMode;
  /** Send a mark after each utterance (stream mode; default true). */
  useMarks?: boolean;
  /** How far ahead of real time agent audio is sent (default 60). */
  leadMs?: number;
  /** How long after its audio should have played a mark may stay unanswered before marks are turned off (default 2000). */
  markTimeoutMs?: number;
  /** How long the playout probe may stay unanswered before `noPlayout` (default 3000). */
  playoutDeadlineMs?: number;
  clock?: MediaClock;
  /** Sends one frame: Buffer = binary, string = text (the http layer passes `ws.send`). */
  send: (data: Buffer | string) => void;
  /** Barge-in flush on the PBX side: the adapter issues `uuid_break <uuid> all`. */
  onFlush?: () => void;
  /** Caller frames buffered before the oldest are dropped (default 250 = 5 s). */
  callerCapacity?: number;
  log?: Logger;
}

export interface AudioForkMetadata {
  /** The first text frame, verbatim. */
  text: string;
  /** Its JSON value, or undefined when it is not JSON. */
  json: unknown;
}

export type AudioForkMarkEvent = "playout" | "cleared";

export interface AudioForkMarkReply {
  name: string;
  /** Utterance the mark followed (undefined for a reply to a mark we did not send). */
  playId: string | undefined;
  event: AudioForkMarkEvent;
  /** Leg media time of the reply. */
  atMs: number;
}

export interface AudioForkPlayAudio {
  playId: string;
  /** 1, 2, ... in sending order: the n-th `mod_audio_fork::play_audio` event belongs to seq n. */
  seq: number;
  sampleRate: number;
  durationMs: number;
}

export type AudioForkLegEvents = {
  metadata: [AudioForkMetadata];
  /** FS answered a mark we sent. */
  markReply: [AudioForkMarkReply];
  /** Marks were turned off for this call (a mark went unanswered); the pacer clock is the only ledger. */
  marksDisabled: [{ mark: string }];
  /** A text frame other than the metadata or a mark reply (send_text, stop text...). */
  text: [{ text: string; json: unknown }];
  /** FS confirmed no agent audio as played within the deadline of the playout probe: the caller hears nothing. */
  noPlayout: [{ mark: string; waitedMs: number }];
  /** File mode: a playAudio message was sent; the adapter plays the file FS reports in `::play_audio`. */
  playAudio: [AudioForkPlayAudio];
};

export { MAX_OUTSTANDING_MARKS } from "./playout-marks.js";
/** FS pre-buffers about this much streamed audio before playout. */
const FS_PREBUFFER_MS = 80;
const FRAME_MS = 20;
const KILL_AUDIO = '{"type":"killAudio"}';
const PROBE_PREFIX = "probe:";

interface FileUtterance {
  playId: string;
  chunks: Int16Array[];
  samples: number;
  sent: boolean;
  startedAtMs: number | undefined;
  done: boolean;
  markWaiters: ((played: boolean, atMs: number) => void)[];
  playWaiters: ((outcome: PlayOutcome) => void)[];
  outcome: PlayOutcome | undefined;
}

/** L16 little-endian bytes of `pcm` (a fresh Buffer: a WebSocket may keep it after `send`). */
export function pcmToL16(pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i] as number, i * 2);
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function markReplyOf(json: unknown): { name: string; event: AudioForkMarkEvent } | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const o = json as { type?: unknown; data?: unknown };
  if (o.type !== "mark" || typeof o.data !== "object" || o.data === null) return undefined;
  const d = o.data as { name?: unknown; event?: unknown };
  if (typeof d.name !== "string" || (d.event !== "playout" && d.event !== "cleared")) return undefined;
  return { name: d.name, event: d.event };
}

export class AudioForkLeg extends PacedLeg {
  readonly mode: AudioForkMode;
  readonly forkRate: AudioForkRate;
  readonly playbackRate: number;
  readonly forkEvents = new TypedEmitter<AudioForkLegEvents>();
  /** Every mark reply received, in order. */
  readonly confirmedMarks: AudioForkMarkReply[] = [];
  /** The metadata text frame (undefined until it arrived). */
  metadata: AudioForkMetadata | undefined;
  /** Binary frames sent (stream mode). */
  sentFrames = 0;

  private readonly sendData: (data: Buffer | string) => void;
  private readonly onFlush: (() => void) | undefined;
  private readonly log: Logger | undefined;
  private readonly markTimeoutMs: number;
  private readonly decoder: WireDecoder;
  /** trackEnds wait for FreeSWITCH to answer the utterance's end mark with `playout` (§2.7). */
  private readonly marks: PlayoutMarks;
  private textFrames = 0;
  private readonly playoutDeadlineMs: number;
  /** FS answered some mark with `playout`: agent audio reaches the caller. */
  private playoutSeen = false;
  private probeSeq = 0;
  /** `noPlayout` was emitted: no more probes (the adapter ends the call). */
  private probeFailed = false;
  /** The probe mark waiting for its reply, and its deadline. */
  private probe: { name: string; timer: TimerHandle } | undefined;
  // file mode
  private readonly files = new Map<string, FileUtterance>();
  private playAudioSeq = 0;

  constructor(options: AudioForkLegOptions) {
    if (options.forkRate !== 8000 && options.forkRate !== 16000) throw new RangeError(`fork rate ${String(options.forkRate)} is not supported`);
    const playbackRate = options.playbackRate ?? 16000;
    if (![8000, 16000, 24000, 32000, 48000, 64000].includes(playbackRate)) throw new RangeError(`playback rate ${String(playbackRate)} is not supported`);
    super({
      id: options.id,
      clock: options.clock ?? realClock,
      callerRate: options.forkRate,
      agentRate: playbackRate,
      agentFrameMs: FRAME_MS,
      leadMs: options.leadMs ?? 60,
      callerCapacity: options.callerCapacity,
    });
    this.mode = options.mode;
    this.forkRate = options.forkRate;
    this.playbackRate = playbackRate;
    this.sendData = options.send;
    this.onFlush = options.onFlush;
    this.log = options.log;
    this.markTimeoutMs = options.markTimeoutMs ?? 2000;
    this.playoutDeadlineMs = options.playoutDeadlineMs ?? 3000;
    this.marks = new PlayoutMarks({
      clock: this.clock,
      now: () => this.nowMs,
      enabled: options.mode === "stream" && (options.useMarks ?? true),
      timeoutMs: this.markTimeoutMs,
      slackMs: FS_PREBUFFER_MS,
      name: (playId, seq) => `${playId}:${seq}`,
      send: (name) => this.send(`{"type":"mark","data":{"name":${JSON.stringify(name)}}}`),
      emit: (e) => this.events.emit("trackEnd", e),
      onDisabled: (mark) => {
        this.log?.warn({ legId: this.id, mark }, "audio fork: no reply to a mark; marks are off for this call (old mod_audio_fork, or send_silence_when_idle not set)");
        this.forkEvents.emit("marksDisabled", { mark });
      },
      log: this.log,
      legId: this.id,
      label: "audio fork",
    });
    this.decoder = new WireDecoder({ codec: "pcm", sampleRate: options.forkRate });
  }

  /** Marks are sent (stream mode, `useMarks`, not turned off by a missing reply). */
  get marksEnabled(): boolean {
    return this.marks.enabled;
  }

  /** Marks sent and not answered yet. */
  get pendingMarkNames(): string[] {
    return this.marks.pendingNames;
  }

  /** Marks not sent because MAX_OUTSTANDING_MARKS were outstanding. */
  get skippedMarks(): number {
    return this.marks.skipped;
  }

  /** One WebSocket frame from FS. Ignored after close. */
  handleMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (isBinary) {
      if (data.length === 0) {
        this.shutdown("transport", "graceful shutdown");
        return;
      }
      this.pushCallerPcm(this.decoder.decode(data));
      return;
    }
    const text = data.toString("utf8");
    const json = parseJson(text);
    const first = this.textFrames++ === 0;
    const reply = markReplyOf(json);
    // The metadata comes first; a mark reply can only be first when FS was started without metadata.
    if (first && !(reply && this.marks.has(reply.name))) {
      this.metadata = { text, json };
      this.forkEvents.emit("metadata", this.metadata);
      return;
    }
    if (reply) {
      if (reply.name.startsWith(PROBE_PREFIX)) this.onProbeReply(reply.name, reply.event);
      else this.onMarkReply(reply.name, reply.event);
      return;
    }
    this.forkEvents.emit("text", { text, json });
  }

  /** A DTMF digit the adapter saw on ESL (the fork carries none): emits a `dtmf` event at the caller media time. */
  pushDtmf(digit: string, durationMs?: number, source: DtmfSource = "pbx"): void {
    this.emitDtmf(digit, durationMs, source);
  }

  /** The socket closed or failed (FS stopped the fork, or the call went away). */
  hangup(reason: "caller" | "transport" | "error" = "transport", detail?: string): void {
    this.shutdown(reason, detail);
  }

  // --- agent audio -----------------------------------------------------------------------------------------

  override play(source: AgentAudio | Iterable<AgentAudio> | AsyncIterable<AgentAudio>, options: PlayOptions): Promise<PlayOutcome> {
    if (this.mode === "stream") return super.play(source, options);
    return this.playFile(source, options);
  }

  override write(playId: string, pcm: Int16Array): void {
    if (this.mode === "stream") {
      super.write(playId, pcm);
      return;
    }
    if (this.closed) return;
    const u = this.fileOf(playId);
    if (u.sent) {
      this.log?.debug({ legId: this.id, playId }, "audio fork: audio written after the utterance was sent is dropped");
      return;
    }
    u.chunks.push(pcm.slice());
    u.samples += pcm.length;
  }

  override endPlay(playId: string): void {
    if (this.mode === "stream") {
      super.endPlay(playId);
      return;
    }
    if (this.closed) return;
    const u = this.files.get(playId);
    if (u && !u.sent) this.sendPlayAudio(u);
  }

  override mark(name: string, playId?: string): Promise<MarkResult> {
    if (this.mode === "stream") return super.mark(name, playId);
    return new Promise<MarkResult>((resolve) => {
      let target: FileUtterance | undefined;
      if (playId !== undefined) target = this.files.get(playId);
      else for (const u of this.files.values()) if (!u.done) target = u;
      if (!target || target.done || this.closed) {
        resolve({ name, played: !this.closed && (target?.outcome?.interrupted !== true), atMs: this.nowMs });
        return;
      }
      target.markWaiters.push((played, atMs) => resolve({ name, played, atMs }));
    });
  }

  override status(playId: string): PlayStatus | undefined {
    if (this.mode === "stream") return super.status(playId);
    const u = this.files.get(playId);
    if (!u) return undefined;
    const totalMs = (u.samples * 1000) / this.playbackRate;
    const playedMs = u.outcome ? u.outcome.playedMs : u.startedAtMs === undefined ? 0 : Math.min(totalMs, this.nowMs - u.startedAtMs);
    return { playId, playedMs, releasedMs: u.sent ? totalMs : 0, totalMs, started: u.startedAtMs !== undefined, ended: u.sent };
  }

  override clear(options?: ClearOptions): ClearResult {
    if (this.mode === "file") return this.clearFiles();
    // A hard cut: a fade could only shape audio not yet sent, while FS keeps playing what it holds (file comment).
    const result = super.clear({ ...options, fadeOutMs: 0 });
    // Utterances fully sent but not yet confirmed played: FS had them in its buffer; killAudio may cut their
    // tail. They are reported as played as far as we sent them (FS answers their marks `cleared` later).
    this.marks.cleared(result, false);
    if (this.closed) return result;
    this.flush();
    return result;
  }

  // --- file mode hooks (the adapter, from ESL events) -------------------------------------------------------

  /** File mode: FS started playing the utterance's file (PLAYBACK_START): trackStart. */
  filePlaybackStarted(playId: string): void {
    const u = this.files.get(playId);
    if (!u || u.done || u.startedAtMs !== undefined || this.closed) return;
    u.startedAtMs = this.nowMs;
    this.events.emit("trackStart", { playId, atMs: u.startedAtMs });
  }

  /** File mode: FS stopped playing it (PLAYBACK_STOP, `Playback-Status: done|break`): trackEnd. */
  filePlaybackEnded(playId: string, status: "done" | "break"): void {
    const u = this.files.get(playId);
    if (!u || u.done) return;
    this.finishFile(u, status === "break");
  }

  // --- PacedLeg ----------------------------------------------------------------------------------------------

  protected sendFrame(frame: AudioFrame, info: PacedFrameInfo): void {
    if (this.closed || this.mode !== "stream") return;
    this.send(pcmToL16(frame.pcm));
    this.sentFrames++;
    if (info.playId !== undefined && !this.playoutSeen && !this.probe && !this.probeFailed && this.marks.enabled) this.sendProbe();
    if (info.last && info.playId !== undefined) this.marks.markEnd(info.playId, frame.timestampMs + FRAME_MS);
  }

  protected override onShutdown(_reason: LegCloseReason, _detail: string | undefined): void {
    this.stopProbe();
    this.marks.close();
    for (const u of this.files.values()) if (!u.done) this.finishFile(u, true);
  }

  // --- internals ---------------------------------------------------------------------------------------------

  /**
   * The pacer released an utterance's last frame. With marks on, its trackEnd waits for FreeSWITCH's `playout`
   * reply to the utterance's end mark: the ledger then says what the caller heard, not what we sent (§0).
   */
  protected override forwardTrackEnd(e: TrackEndEvent): void {
    if (!this.marks.hold(e, this.closed)) super.forwardTrackEnd(e);
  }

  /** Asks FS to confirm that the audio sent so far was played (see the file comment). */
  private sendProbe(): void {
    const name = `${PROBE_PREFIX}${++this.probeSeq}`;
    const timer = this.clock.setTimer(() => {
      if (this.probe?.name !== name || this.playoutSeen || this.closed) return;
      this.probe = undefined;
      this.probeFailed = true;
      this.forkEvents.emit("noPlayout", { mark: name, waitedMs: this.playoutDeadlineMs });
    }, this.playoutDeadlineMs);
    this.probe = { name, timer };
    this.send(`{"type":"mark","data":{"name":${JSON.stringify(name)}}}`);
  }

  private stopProbe(): void {
    if (this.probe) this.clock.clearTimer(this.probe.timer);
    this.probe = undefined;
  }

  private onProbeReply(name: string, event: AudioForkMarkEvent): void {
    this.confirmedMarks.push({ name, playId: undefined, event, atMs: this.nowMs });
    if (this.probe?.name !== name) return;
    this.stopProbe();
    if (event === "playout") this.playoutSeen = true;
  }

  private onMarkReply(name: string, event: AudioForkMarkEvent): void {
    if (event === "playout" && !this.playoutSeen) {
      this.playoutSeen = true;
      this.stopProbe();
    }
    const m = this.marks.answered(name);
    if (!m) this.log?.debug({ legId: this.id, mark: name }, "audio fork: reply to an unknown mark");
    const reply: AudioForkMarkReply = { name, playId: m?.playId, event, atMs: this.nowMs };
    this.confirmedMarks.push(reply);
    this.forkEvents.emit("markReply", reply);
  }

  private flush(): void {
    this.send(KILL_AUDIO);
    // FS answers pending marks `cleared` at once: give them a fresh deadline instead of their playout time.
    this.marks.rearm(this.markTimeoutMs);
    this.callFlush();
  }

  private callFlush(): void {
    try {
      this.onFlush?.();
    } catch (err) {
      this.log?.warn({ err, legId: this.id }, "audio fork: flush failed");
    }
  }

  private send(data: Buffer | string): void {
    try {
      this.sendData(data);
    } catch (err) {
      this.log?.warn({ err, legId: this.id }, "audio fork leg send failed");
      throw err;
    }
  }

  // --- file mode -----------------------------------------------------------------------------------------------

  private fileOf(playId: string): FileUtterance {
    let u = this.files.get(playId);
    if (!u) {
      u = { playId, chunks: [], samples: 0, sent: false, startedAtMs: undefined, done: false, markWaiters: [], playWaiters: [], outcome: undefined };
      this.files.set(playId, u);
    }
    return u;
  }

  private async playFile(source: AgentAudio | Iterable<AgentAudio> | AsyncIterable<AgentAudio>, options: PlayOptions): Promise<PlayOutcome> {
    const { playId } = options;
    const u = this.fileOf(playId);
    const add = (a: AgentAudio): void => {
      if (a instanceof Int16Array) this.write(playId, a);
      else this.write(playId, a.sampleRate === this.playbackRate ? a.pcm : resample(a.pcm, a.sampleRate, this.playbackRate));
    };
    if (source instanceof Int16Array || (typeof source === "object" && "pcm" in source)) add(source);
    else if (Symbol.asyncIterator in source) {
      for await (const a of source) {
        if (options.signal?.aborted || u.done || this.closed) break;
        add(a);
      }
    } else for (const a of source) add(a);
    const outcome = new Promise<PlayOutcome>((resolve) => {
      if (u.outcome) resolve(u.outcome);
      else u.playWaiters.push(resolve);
    });
    if (options.end !== false) this.endPlay(playId);
    return outcome;
  }

  private sendPlayAudio(u: FileUtterance): void {
    u.sent = true;
    const pcm = new Int16Array(u.samples);
    let o = 0;
    for (const c of u.chunks) {
      pcm.set(c, o);
      o += c.length;
    }
    u.chunks = [];
    const audioContent = pcmToL16(pcm).toString("base64");
    this.send(`{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":${this.playbackRate},"audioContent":"${audioContent}","textContent":""}}`);
    this.forkEvents.emit("playAudio", { playId: u.playId, seq: ++this.playAudioSeq, sampleRate: this.playbackRate, durationMs: (u.samples * 1000) / this.playbackRate });
  }

  private finishFile(u: FileUtterance, interrupted: boolean): PlaySummary {
    const totalMs = (u.samples * 1000) / this.playbackRate;
    const started = u.startedAtMs !== undefined;
    const playedMs = !started ? 0 : interrupted ? Math.min(totalMs, this.nowMs - (u.startedAtMs ?? 0)) : totalMs;
    u.done = true;
    u.outcome = { playId: u.playId, playedMs, totalMs, interrupted };
    this.files.delete(u.playId);
    this.events.emit("trackEnd", { playId: u.playId, reason: interrupted ? "interrupted" : "finished", playedMs, totalMs, atMs: this.nowMs });
    for (const w of u.markWaiters.splice(0)) w(!interrupted, this.nowMs);
    for (const w of u.playWaiters.splice(0)) w(u.outcome);
    return { playId: u.playId, playedMs, totalMs, started, interrupted };
  }

  private clearFiles(): ClearResult {
    const at = this.nowMs;
    const plays = [...this.files.values()].filter((u) => !u.done).map((u) => this.finishFile(u, true));
    if (!this.closed && plays.length > 0) this.callFlush();
    return { clearedAtMs: at, stopAtMs: at, plays };
  }
}

/**
 * Wires a fork socket to a leg: frames in → `handleMessage`, socket close → `hangup("transport")`.
 * (The leg's `send` is the caller's business, usually `(d) => socket.send(d)` guarded by readyState.)
 */
export function bindForkSocket(socket: ForkSocket, leg: AudioForkLeg): void {
  socket.on("message", (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    leg.handleMessage(buf, isBinary);
  });
  socket.on("close", (code) => leg.hangup("transport", `fork socket closed (${code})`));
}
