/**
 * Audio between a call leg and a Realtime session (media-protocols.md §5.4 "Audio rate"): Realtime PCM is
 * 24 kHz only, G.711 is 8 kHz. A µ-law 8 kHz leg runs the session in `audio/pcmu` with no resampling at all
 * (the leg's PCM is µ-law decoded, and µ-law → PCM → µ-law is exact); any other leg runs `audio/pcm` 24 kHz with
 * one streaming resampler per direction, so the filter state runs across frames and nothing is allocated per
 * frame.
 */
import type { AudioFrame } from "../../audio/index.js";
import { AlignedResampler, Rechunker } from "../../audio/index.js";
import type { RealtimeAudioFormat } from "../../providers/types.js";

/** The leg's wire format, when the call layer knows it (websocket invite, Twilio). */
export interface LegCodec {
  codec?: string | undefined;
  outputCodec?: string | undefined;
}

/** `realtime.audioFormat` resolved for a leg: `auto` = pcmu on an 8 kHz µ-law leg, else pcm16 (playbook.md §2.4). */
export function chooseAudioFormat(setting: "auto" | RealtimeAudioFormat | undefined, leg: { callerRate: number; agentRate: number }, wire: LegCodec = {}): RealtimeAudioFormat {
  if (setting !== undefined && setting !== "auto") return setting;
  const out = wire.outputCodec ?? wire.codec;
  const mulaw = wire.codec?.toLowerCase() === "pcmu" && out?.toLowerCase() === "pcmu";
  return mulaw && leg.callerRate === 8000 && leg.agentRate === 8000 ? "pcmu" : "pcm16";
}

/** Realtime PCM is 24 kHz only; G.711 is 8 kHz. */
export const sessionRateOf = (format: RealtimeAudioFormat): number => (format === "pcm16" ? 24000 : 8000);

/**
 * Caller audio → session: resampled when the rates differ, then sent in batches of `batchMs` (20–100 ms per
 * `input_audio_buffer.append`). The batch buffer and the frame handed to `send` are reused: `send` must encode
 * synchronously (RealtimeSession.sendAudio does).
 */
export class CallerAudioPump {
  private readonly resampler: AlignedResampler | undefined;
  private readonly chunker: Rechunker;
  private readonly frame: AudioFrame;

  constructor(fromRate: number, toRate: number, batchMs: number, send: (frame: AudioFrame) => void) {
    this.resampler = fromRate === toRate ? undefined : new AlignedResampler(fromRate, toRate);
    this.frame = { pcm: EMPTY, sampleRate: toRate, timestampMs: 0 };
    this.chunker = new Rechunker({ sampleRate: toRate, frameMs: batchMs }, (pcm, timestampMs) => {
      this.frame.pcm = pcm;
      this.frame.timestampMs = timestampMs;
      send(this.frame);
    });
  }

  push(pcm: Int16Array): void {
    this.chunker.push(this.resampler ? this.resampler.process(pcm) : pcm);
  }

  /** Drops a partial batch (the session is gone: that audio will not be heard by the model). */
  reset(): void {
    this.chunker.reset();
  }
}

/** Session audio → leg rate. One instance per conversation; `end()` at the end of each agent audio item. */
export class AgentAudioOut {
  private readonly resampler: AlignedResampler | undefined;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
  ) {
    this.resampler = fromRate === toRate ? undefined : new AlignedResampler(fromRate, toRate);
  }

  /** Leg-rate PCM for `pcm` (a view valid until the next call: the leg's `write` copies it). */
  process(pcm: Int16Array): Int16Array {
    return this.resampler ? this.resampler.process(pcm) : pcm;
  }

  /** The filter's tail at the end of an item (empty without resampling); also resets for the next item. */
  end(): Int16Array {
    return this.resampler ? this.resampler.flush() : EMPTY;
  }

  /** Forgets the current item's tail (the item was cut). */
  discard(): void {
    this.resampler?.flush();
  }
}

const EMPTY = new Int16Array(0);
