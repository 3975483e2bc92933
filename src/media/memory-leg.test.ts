import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../audio/index.js";
import { MemoryLeg } from "./memory-leg.js";

describe("MemoryLeg", () => {
  it("delivers pushed caller audio as 20 ms frames with sample-counted timestamps", async () => {
    const leg = new MemoryLeg({ callerRate: 8000 });
    leg.pushCaller(new Int16Array(400).fill(7)); // 50 ms
    leg.pushCallerSilence(30);
    await leg.close();
    const frames: AudioFrame[] = [];
    for await (const f of leg.callerAudio) frames.push(f);
    expect(frames.map((f) => [f.timestampMs, f.pcm.length])).toEqual([
      [0, 160],
      [20, 160],
      [40, 160],
      [60, 160],
    ]);
    expect(frames[2]?.pcm[79]).toBe(7);
    expect(frames[2]?.pcm[80]).toBe(0);
  });

  it("emits dtmf and close events", () => {
    const leg = new MemoryLeg();
    const events: string[] = [];
    leg.events.on("dtmf", (e) => events.push(`dtmf:${e.digit}`));
    leg.events.on("close", (e) => events.push(`close:${e.reason}`));
    leg.pushDtmf("5", { source: "rfc2833" });
    leg.hangup();
    leg.hangup();
    expect(events).toEqual(["dtmf:5", "close:caller"]);
    expect(leg.closed).toBe(true);
  });

  it("barge-in: clear() stops agent audio within one frame and reports what was played", async () => {
    const leg = new MemoryLeg({ leadMs: 20 });
    const ends: string[] = [];
    leg.events.on("trackEnd", (e) => ends.push(`${e.playId}:${e.reason}:${e.playedMs}`));
    const loud = new Int16Array(16000).fill(12000); // 1 s
    const played = leg.play(loud, { playId: "turn-1" });
    const sentence = leg.mark("sentence-1", "turn-1");
    leg.advance(310);
    const result = leg.clear();
    const countAtClear = leg.captured.length;
    leg.advance(1000);
    expect(leg.captured.length).toBe(countAtClear); // nothing sent after the clear
    expect(leg.agentEndMs - result.clearedAtMs).toBeLessThanOrEqual(20); // within one frame
    expect(result.plays).toEqual([{ playId: "turn-1", playedMs: 320, totalMs: 1000, started: true, interrupted: true }]);
    await expect(played).resolves.toMatchObject({ interrupted: true, playedMs: 320 });
    await expect(sentence).resolves.toMatchObject({ played: false });
    expect(ends).toEqual(["turn-1:interrupted:320"]);
    // The captured agent audio is exactly what was reported as played.
    const heard = leg.agentAudio();
    expect(heard.length).toBe(320 * 16);
    expect(heard.every((x) => x === 12000)).toBe(true);
  });

  it("graceful barge-in with the playbook default (20 ms fade) stops within 40 ms at a 20 ms lead", () => {
    const leg = new MemoryLeg({ leadMs: 20 });
    leg.write("t", new Int16Array(16000).fill(12000));
    leg.advance(105);
    const r = leg.clear({ fadeOutMs: 20 });
    leg.advance(200);
    expect(r.stopAtMs - r.clearedAtMs).toBeLessThanOrEqual(40);
    expect(leg.agentEndMs - r.clearedAtMs).toBeLessThanOrEqual(40);
    const tail = leg.agentAudio(r.clearedAtMs, leg.agentEndMs);
    // The faded part ends at zero with no step back up.
    expect(tail[tail.length - 1]).toBe(0);
  });

  it("setAgentTransform installs a transform (with idle silence) after the leg exists; tapAgent sees sent frames", () => {
    const leg = new MemoryLeg({ leadMs: 20 });
    const tapped: [number, boolean, number][] = [];
    const off = leg.tapAgent((f, info) => tapped.push([f.timestampMs, info.speaking, f.pcm[0] as number]));
    leg.advance(100);
    expect(leg.captured).toEqual([]); // no idle silence yet
    leg.setAgentTransform((pcm, speaking) => pcm.fill(speaking ? 2 : 1), { idleSilence: true });
    leg.advance(40);
    expect(leg.captured.length).toBeGreaterThan(0);
    expect(leg.captured.every((f) => !f.speaking && f.pcm[0] === 1)).toBe(true);
    leg.write("a", new Int16Array(320).fill(100));
    leg.endPlay("a");
    leg.advance(60);
    expect(leg.captured.some((f) => f.speaking && f.playId === "a" && f.pcm[0] === 2)).toBe(true);
    expect(tapped.length).toBe(leg.captured.length);
    expect(tapped.map((t) => t[2])).toEqual(leg.captured.map((f) => f.pcm[0]));
    off();
    leg.setAgentTransform(undefined, { idleSilence: false });
    const n = leg.captured.length;
    leg.advance(100);
    expect(leg.captured.length).toBeLessThanOrEqual(n + 2);
    expect(tapped.length).toBe(n);
  });
});
