/**
 * Sounds the realtime conversation plays through the leg itself, not through the model: files and http(s)
 * URLs (`play`, scene `<play>`s, `play_audio`, a greeting's `play`) and `tts` with `base64` PCM (streamed chunks
 * of one playId append, the odd trailing byte carried). Each is its own utterance on the leg, paced by it;
 * a barge-in or a replacing command cuts them, and a cut one's `autoHangup` is off. Files load in parallel but
 * reach the leg in command order, `loop` times (the serial pipeline's looped write); a file cut by a barge-in
 * that proves false can be played again from its start (`replay`). A `pbx:` sound is played by the PBX (the
 * serial pipeline's `playOnPbx`) once what the leg holds ahead of it has been heard; its trackStart/trackEnd
 * come from the PBX, and a cut stops it there.
 */
import { AlignedResampler } from "../../audio/index.js";
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import { AppError } from "../../errors.js";
import type { ConversationCommand } from "../conversation.js";
import { pcmFromBase64 } from "../core/commands.js";
import { writeLooped } from "../core/looped-write.js";
import { playOnPbx } from "../core/pbx-play.js";
import { isPbxUrl, loadSoundPcm } from "../core/sound-source.js";
import type { FilePlayRequest, LegPlay } from "./types.js";

export interface LegPlaysHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  /** Aborts downloads at hangup. */
  readonly signal: AbortSignal;
  readonly soundsDir?: string | undefined;
  readonly cacheDir?: string | undefined;
  /** Plays `pbx:` sounds on the PBX (none on a call without one: they fail as UNSUPPORTED). */
  readonly pbxPlayer?: PbxPlayer | undefined;
  nextSeq(): number;
  ended(): boolean;
  writeAgent(playId: string, pcm: Int16Array): void;
  /** A sound starts: the follow-up countdown stops. */
  started(): void;
  /** The sound could not be loaded (nothing of it was written). */
  failed(playId: string, err: unknown): void;
  /** A sound with `autoHangup` was heard to its end. */
  autoHangup(): void;
  /** A `tts base64` without `queue`: what plays is cut first. */
  replace(): void;
  /** A `pbx:` sound started or ended on the PBX: handled like the leg's own trackStart/trackEnd. */
  trackStarted(e: TrackStartEvent): void;
  trackEnded(e: TrackEndEvent): void;
}

/** What `cutAll` stopped: every playId, and for the PBX's sounds that had started, what they played. */
export interface CutPlays {
  playIds: string[];
  pbx: { playId: string; playedMs: number }[];
}

/** How often a looping file looks at its backlog on the leg (ms, media clock). */
const LOOP_TICK_MS = 20;

export class LegPlays {
  /** Sounds playing (or loading), by playId. */
  private readonly plays = new Map<string, LegPlay>();
  /** `tts base64 streaming` utterances stopped while the client still streams them: the rest is dropped. */
  private readonly dropped = new Set<string>();
  /**
   * The last file's turn on the leg. Files load in parallel but reach the leg in command order: a short
   * file that loads first must not jump ahead of a longer one queued before it.
   */
  private order: Promise<void> = Promise.resolve();
  /** The file plays the last cut stopped, by playId, with their PCM once loaded (what a false interruption plays again). */
  private readonly lastCut = new Map<string, { req: FilePlayRequest; pcm: Int16Array | undefined }>();
  private paused = false;

  constructor(private readonly h: LegPlaysHost) {}

  get size(): number {
    return this.plays.size;
  }

  /** One of them may not be cut by the caller. */
  uninterruptible(): boolean {
    for (const p of this.plays.values()) if (!p.interruptible) return true;
    return false;
  }

  /** A barge-in or an explicit stop: every sound is cut (a stream's later chunks dropped); their playIds. */
  cutAll(): CutPlays {
    const cut: CutPlays = { playIds: [...this.plays.keys()], pbx: [] };
    this.lastCut.clear();
    let onPbx = false;
    for (const [playId, lp] of this.plays) {
      lp.cut = true;
      if (lp.open) this.dropped.add(playId);
      if (lp.file) this.lastCut.set(playId, { req: lp.file, pcm: lp.pcm });
      if (lp.pbx) {
        lp.pbx.ctrl.abort();
        onPbx = true;
        if (lp.pbx.startedAtMs !== undefined) cut.pbx.push({ playId, playedMs: Math.max(0, this.h.leg.nowMs - lp.pbx.startedAtMs) });
      }
    }
    this.plays.clear();
    if (onPbx) void this.h.pbxPlayer?.stopPlayback().catch(() => undefined);
    return cut;
  }

  /** `pause`/`resume` (§3.7): a sound the PBX is playing pauses there too, once per change. */
  pause(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    for (const lp of this.plays.values()) {
      if (lp.pbx?.startedAtMs === undefined) continue;
      void this.h.pbxPlayer?.pausePlayback(paused).catch(() => undefined);
      return;
    }
  }

  /** The sound playing (or loading) under this playId. */
  get(playId: string): LegPlay | undefined {
    return this.plays.get(playId);
  }

  /** Its trackEnd came: a closed sound is over (an open stream stays until its last chunk); its record. */
  ended(playId: string): LegPlay | undefined {
    const lp = this.plays.get(playId);
    if (!lp?.open) this.plays.delete(playId);
    return lp;
  }

  /**
   * A false interruption (interruption.resumeOnFalse): the file the barge-in cut plays again from its start under
   * the same playId, ahead of nothing else. False when that playId was no file of the last cut.
   */
  replay(playId: string): boolean {
    const cut = this.lastCut.get(playId);
    this.lastCut.clear();
    if (!cut) return false;
    this.playFile(cut.req, cut.pcm);
    return true;
  }

  /**
   * A sound file (or http(s) URL) played through the leg as its own utterance; its playId defaults to the url
   * (§3.5). `interruptible` defaults to `!autoHangup` (§3.4); scene `<play>`s and `play_audio` pass false, the
   * greeting's its own flag.
   */
  playFile(req: FilePlayRequest, loaded?: Int16Array): void {
    const playId = req.playId ?? req.url;
    const autoHangup = req.autoHangup === true;
    const lp: LegPlay = { interruptible: req.interruptible ?? !autoHangup, file: { ...req, playId } };
    this.plays.set(playId, lp);
    this.h.started();
    const url = req.url;
    if (isPbxUrl(url) && this.h.pbxPlayer) {
      this.playPbx(playId, lp, url.slice(4), this.h.pbxPlayer);
      return;
    }
    const load = loaded
      ? Promise.resolve(loaded)
      : isPbxUrl(url)
        ? Promise.reject(new AppError("UNSUPPORTED", `play ${url}: pbx: urls are played by the PBX, and this call has no PBX playback`))
        : loadSoundPcm(url, this.h.signal, this.h.leg.agentRate, { soundsDir: this.h.soundsDir, cacheDir: this.h.cacheDir });
    const previous = this.order;
    const written = (async (): Promise<boolean> => {
      let pcm: Int16Array;
      try {
        pcm = lp.pcm = await load;
      } catch (err) {
        await previous;
        if (this.plays.get(playId) === lp) this.plays.delete(playId);
        if (lp.cut || this.h.ended()) return false;
        this.h.failed(playId, err);
        return false;
      }
      await previous;
      const stopped = (): boolean => this.h.ended() || this.h.leg.closed || lp.cut === true;
      if (stopped()) return false;
      await writeLooped(
        { leg: this.h.leg, clock: this.h.clock, tickMs: LOOP_TICK_MS },
        { playId, pcm, loop: req.loop ?? 1, signal: this.h.signal, stopped, write: (copy) => this.h.writeAgent(playId, copy) },
      );
      if (stopped()) return false;
      this.h.leg.endPlay(playId);
      return true;
    })();
    // The next file waits for this one's write, not for its autoHangup mark.
    this.order = written.then(() => undefined);
    if (autoHangup) void written.then((ok) => (ok ? this.hangupAfter(playId, lp) : undefined));
  }

  /**
   * A `pbx:` sound: after the files queued before it were written and what the leg holds has been heard (the PBX
   * plays beside our leg, so order holds only this way), `loop` rounds on the PBX. The next file waits for its end.
   */
  private playPbx(playId: string, lp: LegPlay, target: string, player: PbxPlayer): void {
    const pbx = (lp.pbx = { ctrl: new AbortController(), startedAtMs: undefined as number | undefined });
    const signal = AbortSignal.any([this.h.signal, pbx.ctrl.signal]);
    const stopped = (): boolean => this.h.ended() || this.h.leg.closed || lp.cut === true;
    const previous = this.order;
    const played = (async (): Promise<boolean> => {
      await previous;
      if (stopped()) return false;
      await this.h.leg.mark(`pbx-${this.h.nextSeq()}`).catch(() => undefined);
      if (stopped()) return false;
      const playedMs = await playOnPbx({
        player,
        target,
        playId,
        loop: lp.file?.loop ?? 1,
        signal,
        stopped,
        nowMs: () => this.h.leg.nowMs,
        started: (atMs) => {
          pbx.startedAtMs = atMs;
          this.h.trackStarted({ playId, atMs });
        },
      });
      if (playedMs === undefined || stopped()) return false;
      this.h.trackEnded({ playId, atMs: this.h.leg.nowMs, playedMs, totalMs: playedMs, reason: "finished" });
      return true;
    })().catch((err: unknown) => {
      if (this.plays.get(playId) === lp) this.plays.delete(playId);
      if (!stopped()) this.h.failed(playId, err);
      return false;
    });
    this.order = played.then(() => undefined);
    if (lp.file?.autoHangup === true) void played.then((ok) => (ok && !lp.cut ? this.h.autoHangup() : undefined));
  }

  /** `autoHangup`: hang up once the play has been heard, unless it was cut (an explicit stop cancels the hangup). */
  private async hangupAfter(playId: string, lp: LegPlay): Promise<void> {
    await this.h.leg.mark(`play-end-${this.h.nextSeq()}`, playId).catch(() => undefined);
    if (!lp.cut) this.h.autoHangup();
  }

  /**
   * `tts` with `base64` (ws-call-api §3.4): raw PCM16 at `option.sampleRate` (default 16000) played through the
   * leg like the serial pipeline does, without the model (it is playback, not speech). Streaming chunks of one
   * playId append (the odd trailing byte carried to the next chunk); without `queue` it replaces what plays. Like
   * on the serial pipeline, a client's utterance does not enter the playbook history (it has no text).
   */
  ttsAudio(c: Extract<ConversationCommand, { command: "tts" }>): void {
    const playId = c.playId ?? `tts-${this.h.nextSeq()}`;
    const last = c.endOfStream === true || c.streaming !== true;
    if (this.dropped.has(playId)) {
      if (last) this.dropped.delete(playId);
      return;
    }
    let lp = this.plays.get(playId);
    if (!lp?.open) {
      if (c.queue !== true) this.h.replace();
      const rate = c.option?.sampleRate ?? 16000;
      const autoHangup = c.autoHangup === true;
      lp = {
        interruptible: c.interruptible ?? !autoHangup,
        open: { rate, resampler: rate === this.h.leg.agentRate ? undefined : new AlignedResampler(rate, this.h.leg.agentRate), carry: undefined, autoHangup },
      };
      this.plays.set(playId, lp);
      this.h.started();
    } else {
      if (c.autoHangup !== undefined && lp.open) lp.open.autoHangup = c.autoHangup;
      if (c.interruptible !== undefined) lp.interruptible = c.interruptible;
    }
    const o = lp.open as NonNullable<LegPlay["open"]>;
    const { samples, carry } = pcmFromBase64(c.text, o.carry);
    o.carry = carry;
    if (samples.length > 0) this.h.writeAgent(playId, o.resampler ? o.resampler.process(samples) : samples);
    if (!last) return;
    lp.open = undefined;
    const tail = o.resampler?.flush();
    if (tail) this.h.writeAgent(playId, tail);
    if (this.h.leg.closed) return;
    this.h.leg.endPlay(playId);
    if (o.autoHangup) void this.hangupAfter(playId, lp);
  }
}
