import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sharedFixtures } from "../../test/shared-fixtures.js";
import { CallerGapFiller } from "./caller-gap-filler.js";
import { ManualClock } from "./clock.js";

const RATE = 16000;
const ms = (samples: number) => (samples * 1000) / RATE;

function setup(options: { jitterMs?: number; aheadMs?: number } = {}) {
  const clock = new ManualClock(1000);
  const pushes: Int16Array[] = [];
  const copies: Int16Array[] = [];
  const filler = new CallerGapFiller({ sampleRate: RATE, clock, push: (pcm) => (pushes.push(pcm), copies.push(pcm.slice())), ...options });
  const delivered = () => copies.reduce((n, p) => n + p.length, 0);
  return { clock, filler, pushes, copies, delivered };
}

function packet(samples: number, value: number): Int16Array {
  return new Int16Array(samples).fill(value);
}

describe("CallerGapFiller", () => {
  it("passes audio through untouched while it keeps up with wall clock", () => {
    const { clock, filler, copies, delivered } = setup();
    filler.start();
    for (let i = 0; i < 20; i++) {
      clock.advance(30);
      filler.audio(packet(480, i + 1)); // 30 ms packets, as Asterisk forwards ulaw/alaw callers
    }
    expect(filler.stats).toEqual({ filledMs: 0, droppedMs: 0 });
    expect(delivered()).toBe(20 * 480);
    expect(copies.every((p, i) => p.every((s) => s === i + 1))).toBe(true);
  });

  it("tolerates jitter below the allowance", () => {
    const { clock, filler } = setup({ jitterMs: 60 });
    filler.start();
    clock.advance(20);
    filler.audio(packet(320, 1));
    clock.advance(75); // the next packet is 55 ms late
    filler.audio(packet(320, 2));
    clock.advance(5);
    filler.audio(packet(320, 3));
    expect(filler.stats.filledMs).toBe(0);
  });

  it("feeds silence in real time while the wire is quiet, from one reused buffer", () => {
    const { clock, filler, pushes, delivered } = setup({ jitterMs: 60 });
    filler.start();
    clock.advance(20);
    filler.audio(packet(320, 5));
    clock.advance(500); // caller silent: Asterisk sends nothing
    const wallMs = 520;
    expect(ms(delivered())).toBeGreaterThan(wallMs - 60);
    expect(ms(delivered())).toBeLessThanOrEqual(wallMs);
    expect(filler.stats.filledMs).toBe(ms(delivered()) - 20);
    const silence = pushes.slice(1);
    expect(silence.length).toBeGreaterThan(10);
    expect(new Set(silence).size).toBe(1); // the same zero buffer every time
    expect(silence[0]?.every((s) => s === 0)).toBe(true);
  });

  it("by default keeps every sample of speech that arrives in a burst after a 200 ms stall", () => {
    const { clock, filler, delivered } = setup();
    filler.start();
    clock.advance(20);
    filler.audio(packet(320, 1));
    clock.advance(200); // the PBX stalls: silence stands in after the 80 ms allowance
    expect(filler.stats.filledMs).toBeGreaterThan(0);
    filler.audio(packet(3200, 2)); // the 200 ms it held back, at once
    expect(filler.stats.droppedMs).toBe(0);
    expect(delivered()).toBe(320 + (filler.stats.filledMs * RATE) / 1000 + 3200);
  });

  it("absorbs late audio instead of counting it twice, keeping the newest samples", () => {
    const { clock, filler, copies, delivered } = setup({ jitterMs: 60, aheadMs: 100 });
    filler.start();
    clock.advance(300); // silence filled up to ~300 ms
    const before = delivered();
    // a 200 ms burst of delayed packets arrives at once
    const burst = new Int16Array(3200);
    for (let i = 0; i < burst.length; i++) burst[i] = i + 1;
    filler.audio(burst);
    const after = delivered();
    expect(ms(after)).toBeLessThanOrEqual(300 + 100);
    expect(filler.stats.droppedMs).toBeCloseTo(ms(before + 3200 - after), 6);
    const kept = copies.at(-1) as Int16Array;
    expect(kept[kept.length - 1]).toBe(3200);
    expect(kept.length).toBe(after - before);
  });

  it("passes audio straight through before start and stops filling after stop", () => {
    const { clock, filler, delivered } = setup();
    filler.audio(packet(640, 1));
    clock.advance(1000);
    expect(delivered()).toBe(640);
    filler.start();
    clock.advance(200);
    const n = delivered();
    filler.stop();
    clock.advance(500);
    expect(delivered()).toBe(n);
    expect(clock.pendingTimers).toBe(0);
  });

  it("leaves the recorded Asterisk RTP stream alone (bursty arrival, no gap)", () => {
    // run2: 351 slin16 packets of 20 ms over ~7 s, arriving in pairs up to 94 ms apart (a 30 ms caller, transcoded)
    const packets = readFileSync(sharedFixtures("asterisk", "run2-slin16-bridge-playback", "rtp-rx-all.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { t_ms: number; len: number });
    const { clock, filler, delivered } = setup();
    const t0 = (packets[0] as { t_ms: number }).t_ms;
    filler.start();
    let now = t0;
    for (const p of packets) {
      clock.advance(p.t_ms - now);
      now = p.t_ms;
      filler.audio(new Int16Array(p.len / 2));
    }
    expect(filler.stats).toEqual({ filledMs: 0, droppedMs: 0 });
    expect(delivered()).toBe(packets.length * 320);
  });
});
