/**
 * Sounds the realtime conversation plays through the leg itself, not through the model: files and http(s)
 * URLs (`play`, scene `<play>`s, `play_audio`, a greeting's `play`) and `tts` with `base64` PCM (streamed chunks
 * of one playId append, the odd trailing byte carried). Each is its own utterance on the leg, paced by it;
 * a barge-in or a replacing command cuts them, and a cut one's `autoHangup` is off.
 */
import { AlignedResampler, resample } from "../../audio/index.js";
import type { MediaLeg } from "../../media/leg.js";
import type { ConversationCommand } from "../conversation.js";
import { pcmFromBase64 } from "../serial/commands.js";
import { loadSoundSource } from "../serial/sound-source.js";
import type { LegPlay } from "./types.js";

export interface LegPlaysHost {
  readonly leg: MediaLeg;
  /** Aborts downloads at hangup. */
  readonly signal: AbortSignal;
  readonly soundsDir?: string | undefined;
  readonly cacheDir?: string | undefined;
  nextSeq(): number;
  ended(): boolean;
  writeAgent(playId: string, pcm: Int16Array): void;
  /** A sound starts: the follow-up countdown stops. */
  started(): void;
  failed(err: unknown): void;
  /** A sound with `autoHangup` was heard to its end. */
  autoHangup(): void;
  /** A `tts base64` without `queue`: what plays is cut first. */
  replace(): void;
}

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
  cutAll(): string[] {
    const ids = [...this.plays.keys()];
    for (const [playId, lp] of this.plays) {
      lp.cut = true;
      if (lp.open) this.dropped.add(playId);
    }
    this.plays.clear();
    return ids;
  }

  /** Its trackEnd came: a closed sound is over (an open stream stays until its last chunk). */
  ended(playId: string): void {
    if (!this.plays.get(playId)?.open) this.plays.delete(playId);
  }

  /**
   * A sound file (or http(s) URL) played through the leg as its own utterance. `interruptible` defaults to
   * `!autoHangup` (ws-call-api §3.4); scene `<play>`s and `play_audio` pass false, the greeting's its own flag.
   */
  playFile(url: string, opts: { playId?: string | undefined; autoHangup?: boolean | undefined; interruptible?: boolean | undefined } = {}): void {
    const playId = opts.playId ?? `play-${this.h.nextSeq()}`;
    const autoHangup = opts.autoHangup === true;
    const lp: LegPlay = { interruptible: opts.interruptible ?? !autoHangup };
    this.plays.set(playId, lp);
    this.h.started();
    const load = loadSoundSource(url, this.h.signal, { soundsDir: this.h.soundsDir, cacheDir: this.h.cacheDir });
    const previous = this.order;
    const written = (async (): Promise<boolean> => {
      try {
        const sound = await load;
        await previous;
        if (this.h.ended() || this.h.leg.closed || lp.cut) return false;
        const pcm = sound.sampleRate === this.h.leg.agentRate ? sound.pcm : resample(sound.pcm, sound.sampleRate, this.h.leg.agentRate);
        this.h.writeAgent(playId, pcm);
        this.h.leg.endPlay(playId);
        return true;
      } catch (err) {
        if (this.plays.get(playId) === lp) this.plays.delete(playId);
        this.h.failed(err);
        return false;
      }
    })();
    // The next file waits for this one's write, not for its autoHangup mark.
    this.order = written.then(() => undefined);
    if (autoHangup) void written.then((ok) => (ok ? this.hangupAfter(playId, lp) : undefined));
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
