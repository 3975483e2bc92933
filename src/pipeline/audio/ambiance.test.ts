import { describe, expect, it } from "vitest";
import { rms } from "../../audio/index.js";
import { MemoryLeg } from "../../media/index.js";
import { Ambiance } from "./ambiance.js";

const RATE = 16000;
const FRAME = 320;

function tone(samples: number, amplitude: number, hz = 440): Int16Array {
  const a = new Int16Array(samples);
  for (let i = 0; i < samples; i++) a[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / RATE));
  return a;
}

/** Runs `frames` frames of silence through the ambiance, flagged speaking or not; returns the output. */
function run(amb: Ambiance, frames: number, speaking: boolean): Int16Array {
  const out = new Int16Array(frames * FRAME);
  for (let f = 0; f < frames; f++) {
    const pcm = new Int16Array(FRAME);
    amb.process(pcm, speaking);
    out.set(pcm, f * FRAME);
  }
  return out;
}

describe("Ambiance", () => {
  it("is ducked to duckLevel while the agent speaks (RMS ratio matches within tolerance)", () => {
    const loop = tone(RATE, 10000); // 1 s loop
    const amb = new Ambiance({ pcm: loop, sampleRate: RATE, normalLevel: 0.5, duckLevel: 0.1, transitionSpeed: 0.05, releaseMs: 100 });
    run(amb, 50, false); // fade in done (0.5 / 0.05 * 20 = 200 ms)
    const idle = rms(run(amb, 50, false));
    run(amb, 20, true); // ramp down: 0.4 / 0.05 * 20 = 160 ms
    const ducked = rms(run(amb, 50, true));
    expect(idle).toBeCloseTo((0.5 * 10000) / Math.SQRT2 / 32768, 3);
    expect(ducked / idle).toBeGreaterThan(0.2 * 0.97);
    expect(ducked / idle).toBeLessThan(0.2 * 1.03);
    // Back up after the release time and the ramp.
    run(amb, 5 + 8, false);
    expect(amb.gain).toBeCloseTo(0.5, 6);
  });

  it("mixes under the agent's audio (adds, does not replace)", () => {
    const amb = new Ambiance({ pcm: new Int16Array(1000).fill(1000), sampleRate: RATE, normalLevel: 1, duckLevel: 0.5, transitionSpeed: 1 });
    run(amb, 2, false);
    const agent = new Int16Array(FRAME).fill(3000);
    amb.process(agent, true);
    // transitionSpeed 1: the ramp from 1 to 0.5 takes 10 ms (160 samples).
    expect(agent[FRAME - 1]).toBe(3500);
    expect(agent[0]).toBe(4000);
  });

  it("ramps without clicks: the gain moves at most transitionSpeed per 20 ms", () => {
    const dc = new Int16Array(RATE).fill(20000);
    const amb = new Ambiance({ pcm: dc, sampleRate: RATE, normalLevel: 0.8, duckLevel: 0.1, transitionSpeed: 0.02, releaseMs: 0 });
    const out = new Int16Array(200 * FRAME);
    const states = [false, true, false];
    let o = 0;
    for (const speaking of states) {
      for (let f = 0; f < 66; f++) {
        const pcm = new Int16Array(FRAME);
        amb.process(pcm, speaking);
        out.set(pcm, o);
        o += FRAME;
      }
    }
    // With a constant source the output is gain * 20000: the per-sample step must stay under the ramp slope.
    const maxStepPerSample = (0.02 / FRAME) * 20000 + 1;
    let maxStep = 0;
    for (let i = 1; i < o; i++) maxStep = Math.max(maxStep, Math.abs((out[i] as number) - (out[i - 1] as number)));
    expect(maxStep).toBeLessThanOrEqual(maxStepPerSample);
    // Ramp length respected: 0.7 / 0.02 frames = 35 frames (700 ms) from normal to duck.
    const downStart = 66 * FRAME;
    expect(out[downStart + 34 * FRAME]).toBeGreaterThan(0.1 * 20000 + 20);
    expect(Math.abs((out[downStart + 36 * FRAME] as number) - 0.1 * 20000)).toBeLessThanOrEqual(1);
  });

  it("loops the sound seamlessly", () => {
    const loop = new Int16Array(500);
    for (let i = 0; i < 500; i++) loop[i] = i;
    const amb = new Ambiance({ pcm: loop, sampleRate: RATE, normalLevel: 1, transitionSpeed: 1 });
    run(amb, 1, false); // through the short fade-in
    const out = run(amb, 2, false);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe((FRAME + i) % 500);
  });
});

describe("Ambiance under a paced leg", () => {
  it("plays while the agent is quiet and is ducked under agent speech", () => {
    const amb = new Ambiance({ pcm: tone(RATE, 10000), sampleRate: RATE, normalLevel: 0.4, duckLevel: 0.1, transitionSpeed: 0.1, releaseMs: 100 });
    const leg = new MemoryLeg({ agentRate: RATE, idleSilence: true, transform: (pcm, speaking) => amb.process(pcm, speaking) });
    leg.advance(1000);
    leg.write("t", new Int16Array(RATE)); // 1 s of (silent) agent speech: only the ducked background is heard
    leg.endPlay("t");
    leg.advance(1500);
    const level = (from: number, to: number): number => rms(leg.agentAudio(from, to));
    const idle = level(500, 1000);
    const ducked = level(1300, 1900);
    expect(ducked / idle).toBeGreaterThan(0.25 * 0.95);
    expect(ducked / idle).toBeLessThan(0.25 * 1.05);
    expect(leg.captured.filter((f) => f.speaking)).toHaveLength(50);
  });
});
