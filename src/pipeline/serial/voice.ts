/**
 * The serial pipeline's voice: how a reply becomes audio on the leg. One worker takes the utterances in queue
 * order and writes them: `tts` text sentence by sentence through the TTS provider (a stall is a TIMEOUT),
 * `base64` PCM chunks as they come, `play` files looped without piling up audio, `pbx:` targets on the PBX.
 * The conversation owns the queue and what happens when an utterance ends or fails; the worker only writes.
 */
import type { AudioFrame } from "../../audio/index.js";
import { AlignedResampler } from "../../audio/index.js";
import { AppError } from "../../errors.js";
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import type { MediaLeg, TrackEndEvent, TrackStartEvent } from "../../media/leg.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import type { TtsProvider } from "../../providers/types.js";
import { playOnPbx } from "../core/pbx-play.js";
import { isPbxUrl, loadSoundPcm } from "../core/sound-source.js";
import { abortable } from "./speculative-llm.js";
import type { TurnMetric } from "./turn-metric.js";
import type { Utterance } from "./utterance.js";
import { writeLooped } from "../core/looped-write.js";

/** What the voice needs from its conversation. */
export interface VoiceHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly tts: TtsProvider;
  /** Longest wait for a sentence's audio (before the first frame or between frames). */
  readonly ttsTimeoutMs: number;
  readonly tickMs: number;
  readonly soundsDir?: string | undefined;
  readonly cacheDir?: string | undefined;
  readonly loadSound?: ((url: string, signal: AbortSignal) => Promise<AudioFrame>) | undefined;
  readonly pbxPlayer?: PbxPlayer | undefined;
  ended(): boolean;
  /** Utterances not yet ended, in playback order. */
  queue(): readonly Utterance[];
  /** The `turn` metric (its ttsTtfbMs is measured here). */
  readonly turnMetric: TurnMetric;
  writeAgent(playId: string, pcm: Int16Array): void;
  /** All of `u` was written (or there was nothing to write). */
  finishWriting(u: Utterance): void;
  utteranceFailed(u: Utterance, err: unknown): void;
  /** A `pbx:` play started or played out on the PBX. */
  trackStarted(e: TrackStartEvent): void;
  trackEnded(e: TrackEndEvent): void;
}

export class SerialVoice {
  private wakeUp: (() => void) | undefined;

  constructor(private readonly h: VoiceHost) {}

  /** Something changed (a new utterance, more text, a stop): the worker looks again. */
  wake(): void {
    this.wakeUp?.();
  }

  private sleep(): Promise<void> {
    return new Promise<void>((resolve) => (this.wakeUp = resolve)).then(() => {
      this.wakeUp = undefined;
    });
  }

  /** Synthesises utterances in order, one sentence at a time, writing audio to the leg as it comes. */
  async run(): Promise<void> {
    while (!this.h.ended()) {
      const u = this.h.queue().find((x) => !x.synthDone && !x.stopped && !x.suspended);
      if (!u) {
        await this.sleep();
        continue;
      }
      try {
        if (u.kind === "play") await this.playFile(u);
        else if (u.pcm) await this.speakPcm(u, u.pcm);
        else await this.speak(u);
      } catch (err) {
        if (u.stopped || u.suspended || this.h.ended()) continue;
        this.h.utteranceFailed(u, err);
      }
    }
  }

  private async speak(u: Utterance): Promise<void> {
    const tts = this.h.tts;
    for (;;) {
      if (u.stopped || u.suspended || this.h.ended()) return;
      const sentence = u.sentences[u.next];
      if (!sentence) {
        if (u.open) {
          await this.sleep();
          continue;
        }
        this.h.finishWriting(u);
        return;
      }
      const index = u.next++;
      const stall = new AbortController();
      // A stall is no audio for ttsTimeoutMs: before the first frame, or between frames.
      const arm = (first: boolean): TimerHandle =>
        this.h.clock.setTimer(
          () => stall.abort(new AppError("TIMEOUT", `${first ? "no audio" : "audio stalled"} from ${tts.name} within ${this.h.ttsTimeoutMs} ms`)),
          this.h.ttsTimeoutMs,
        );
      let timer = arm(true);
      const signal = AbortSignal.any([u.ctrl.signal, stall.signal]);
      const ctrl = u.ctrl;
      let samples = 0;
      // The `turn` metric's ttsTtfbMs: the first sentence of the reply to the pending caller turn.
      const firstAudio = u.fromRunner ? this.h.turnMetric.ttsRequested(this.h.leg.nowMs) : undefined;
      // A provider normally synthesises at the leg's rate already; otherwise one streaming resampler per sentence.
      let resampler: AlignedResampler | undefined;
      const write = (pcm: Int16Array) => {
        samples += pcm.length;
        this.h.writeAgent(u.playId, pcm);
      };
      try {
        for await (const frame of abortable(tts.synthesize(sentence.text, { signal, voice: u.voice }), signal)) {
          if (ctrl.signal.aborted) break;
          if (stall.signal.aborted) throw stall.signal.reason as Error;
          firstAudio?.(this.h.leg.nowMs);
          this.h.clock.clearTimer(timer);
          timer = arm(false);
          if (frame.sampleRate === this.h.leg.agentRate) write(frame.pcm);
          else write((resampler ??= new AlignedResampler(frame.sampleRate, this.h.leg.agentRate)).process(frame.pcm));
        }
        if (stall.signal.aborted) throw stall.signal.reason as Error;
        if (resampler && !ctrl.signal.aborted) write(resampler.flush());
      } catch (err) {
        if (ctrl.signal.aborted && !stall.signal.aborted) return;
        throw stall.signal.aborted ? (stall.signal.reason as Error) : err;
      } finally {
        this.h.clock.clearTimer(timer);
      }
      if (ctrl.signal.aborted) return;
      u.writtenSamples += samples;
      u.sentences[index] = { text: sentence.text, durationMs: (samples * 1000) / this.h.leg.agentRate };
    }
  }

  /** `base64` utterance: each chunk is one "sentence" (no text), written in order as it arrives. */
  private async speakPcm(u: Utterance, chunks: Int16Array[]): Promise<void> {
    for (;;) {
      if (u.stopped || u.suspended || this.h.ended()) return;
      const chunk = chunks[u.next];
      if (!chunk) {
        if (u.open) {
          await this.sleep();
          continue;
        }
        const tail = u.pcmResampler?.flush();
        if (tail && tail.length > 0) {
          u.writtenSamples += tail.length;
          this.h.writeAgent(u.playId, tail);
        }
        this.h.finishWriting(u);
        return;
      }
      const index = u.next++;
      const pcm = u.pcmRate === this.h.leg.agentRate ? chunk : (u.pcmResampler ??= new AlignedResampler(u.pcmRate, this.h.leg.agentRate)).process(chunk);
      u.writtenSamples += pcm.length;
      u.sentences[index] = { text: "", durationMs: (pcm.length * 1000) / this.h.leg.agentRate };
      this.h.writeAgent(u.playId, pcm);
      await Promise.resolve();
    }
  }

  /**
   * `play`: loads the source, then writes it `loop` times (0 = until stopped), keeping at most about
   * PLAY_LEAD_MS queued on the leg so an endless loop never piles up audio.
   */
  private async playFile(u: Utterance): Promise<void> {
    const url = u.url ?? "";
    if (isPbxUrl(url) && this.h.pbxPlayer) return this.playPbx(u, url.slice(4), this.h.pbxPlayer);
    const ctrl = u.ctrl;
    let pcm: Int16Array;
    try {
      pcm = await loadSoundPcm(url, ctrl.signal, this.h.leg.agentRate, { soundsDir: this.h.soundsDir, cacheDir: this.h.cacheDir }, this.h.loadSound);
    } catch (err) {
      if (ctrl.signal.aborted) return;
      throw err;
    }
    if (ctrl.signal.aborted || u.stopped || u.suspended || this.h.ended()) return;
    await writeLooped(this.h, {
      playId: u.playId,
      pcm,
      loop: u.loop,
      signal: ctrl.signal,
      stopped: () => u.stopped || u.suspended || this.h.ended(),
      write: (copy) => {
        u.writtenSamples += copy.length;
        u.sentences = [{ text: "", durationMs: (u.writtenSamples * 1000) / this.h.leg.agentRate }];
        this.h.writeAgent(u.playId, copy);
      },
    });
    if (ctrl.signal.aborted || u.stopped || u.suspended || this.h.ended()) return;
    this.h.finishWriting(u);
  }

  /**
   * `pbx:` playback: the PBX plays the target (after every earlier utterance has played out, so order holds), and
   * its start and end become this utterance's trackStart/trackEnd. A stop (interrupt, barge-in, replace) reaches
   * the PBX through `cut`.
   */
  private async playPbx(u: Utterance, target: string, pbx: PbxPlayer): Promise<void> {
    u.pbx = true;
    u.synthDone = true; // nothing to synthesise: the worker moves on to the next utterance
    while (this.h.queue()[0] !== u) {
      if (u.stopped || u.suspended || this.h.ended()) return;
      await new Promise<void>((resolve) => this.h.clock.setTimer(resolve, this.h.tickMs));
    }
    const playedMs = await playOnPbx({
      player: pbx,
      target,
      playId: u.playId,
      loop: u.loop,
      signal: u.ctrl.signal,
      stopped: () => u.stopped || u.suspended || u.ended || this.h.ended(),
      nowMs: () => this.h.leg.nowMs,
      started: (atMs) => {
        u.pbxStartedAtMs = atMs;
        this.h.trackStarted({ playId: u.playId, atMs });
      },
    });
    if (playedMs === undefined) return;
    u.sentences = [{ text: "", durationMs: playedMs }];
    this.h.trackEnded({ playId: u.playId, atMs: this.h.leg.nowMs, playedMs, totalMs: playedMs, reason: "finished" });
  }
}
