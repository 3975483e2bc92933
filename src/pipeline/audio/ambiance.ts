/**
 * Ambiance: a looping background sound mixed under the agent's audio, ducked while the agent speaks
 * (playbook.md §2.12). It is applied to each frame the pacer releases (AgentPacer `transform`, with
 * `idleSilence` so the background also plays while the agent is quiet or paused).
 *
 * Levels: `normalLevel` while the agent is quiet, `duckLevel` while it speaks. Changes ramp linearly (GainRamp)
 * at `transitionSpeed` gain per 20 ms frame, so a level change never clicks; the ramp starts from wherever the
 * previous one had got to. The agent counts as quiet only after `releaseMs` without agent audio, so short
 * pauses between sentences do not pump the background up and down. The sound fades in from silence at start.
 *
 * Pure and synchronous; the loop position and a scratch frame are the only state (no allocation per frame
 * unless a frame is longer than every frame before it).
 */

import { GainRamp, downmixToMono, mixInto, readWav, resample } from "../../audio/index.js";

export interface AmbianceOptions {
  /** Mono PCM16 at `sampleRate`, looped. */
  pcm: Int16Array;
  sampleRate: number;
  /** Gain while the agent is quiet, 0..1 (default 0.3). */
  normalLevel?: number;
  /** Gain while the agent speaks, 0..1 (default 0.1). */
  duckLevel?: number;
  /** Gain change per 20 ms frame, > 0 (default 0.01; 1 = jump within one frame). */
  transitionSpeed?: number;
  /** Agent silence needed before the level goes back up (default 300 ms). */
  releaseMs?: number;
}

function checkLevel(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new RangeError(`ambiance ${name} must be within 0..1, got ${v}`);
  return v;
}

export class Ambiance {
  readonly sampleRate: number;
  readonly normalLevel: number;
  readonly duckLevel: number;
  readonly transitionSpeed: number;
  private readonly loop: Int16Array;
  private readonly ramp: GainRamp;
  private readonly releaseSamples: number;
  private scratch: Int16Array;
  private position = 0;
  private ducked = false;
  private quietSamples = 0;

  constructor(options: AmbianceOptions) {
    if (options.pcm.length === 0) throw new RangeError("ambiance sound is empty");
    this.loop = options.pcm;
    this.sampleRate = options.sampleRate;
    this.normalLevel = checkLevel("normalLevel", options.normalLevel ?? 0.3);
    this.duckLevel = checkLevel("duckLevel", options.duckLevel ?? 0.1);
    this.transitionSpeed = options.transitionSpeed ?? 0.01;
    if (!(this.transitionSpeed > 0)) throw new RangeError(`ambiance transitionSpeed must be > 0, got ${this.transitionSpeed}`);
    this.releaseSamples = Math.round(((options.releaseMs ?? 300) * this.sampleRate) / 1000);
    this.ramp = new GainRamp(this.sampleRate, 0);
    this.ramp.setTarget(this.normalLevel, this.rampMs(0, this.normalLevel));
    this.scratch = new Int16Array(Math.round(this.sampleRate / 50));
  }

  /** Length of a ramp between two gains at `transitionSpeed` per 20 ms. */
  rampMs(from: number, to: number): number {
    return (Math.abs(to - from) / this.transitionSpeed) * 20;
  }

  /** The gain the next sample of background gets. */
  get gain(): number {
    return this.ramp.gain;
  }

  get isDucked(): boolean {
    return this.ducked;
  }

  /**
   * Mixes the next `pcm.length` samples of the loop into `pcm` (the agent's frame, or silence) in place and
   * returns it. `agentSpeaking`: the frame carries agent audio.
   */
  process(pcm: Int16Array, agentSpeaking: boolean): Int16Array {
    if (agentSpeaking) {
      this.quietSamples = 0;
      if (!this.ducked) this.duck(true);
    } else if (this.ducked) {
      this.quietSamples += pcm.length;
      if (this.quietSamples >= this.releaseSamples) this.duck(false);
    }
    const n = pcm.length;
    if (this.scratch.length < n) this.scratch = new Int16Array(n);
    const bg = this.scratch.length === n ? this.scratch : this.scratch.subarray(0, n);
    const loop = this.loop;
    let p = this.position;
    for (let i = 0; i < n; i++) {
      bg[i] = loop[p] as number;
      if (++p === loop.length) p = 0;
    }
    this.position = p;
    this.ramp.process(bg);
    mixInto(pcm, bg);
    return pcm;
  }

  private duck(on: boolean): void {
    this.ducked = on;
    const target = on ? this.duckLevel : this.normalLevel;
    this.ramp.setTarget(target, this.rampMs(this.ramp.gain, target));
  }
}

export interface LoadAmbianceOptions extends Omit<AmbianceOptions, "pcm" | "sampleRate"> {
  /** The rate the ambiance is mixed at (the agent's rate). */
  sampleRate: number;
}

/** Reads a WAV file (asynchronously), mixes it to mono and resamples it, and builds the Ambiance. */
export async function loadAmbiance(path: string, options: LoadAmbianceOptions): Promise<Ambiance> {
  const wav = await readWav(path);
  const mono = downmixToMono(wav.pcm, wav.channels);
  const pcm = wav.sampleRate === options.sampleRate ? mono : resample(mono, wav.sampleRate, options.sampleRate);
  return new Ambiance({ ...options, pcm, sampleRate: options.sampleRate });
}
