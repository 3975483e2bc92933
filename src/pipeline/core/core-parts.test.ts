import { describe, expect, it } from "vitest";
import { AppError } from "../../errors.js";
import { ManualClock } from "../../media/clock.js";
import type { VadEngine, VadStream } from "../../vad/index.js";
import type { ConversationEvent } from "../conversation.js";
import { CallerVad, InactivityWatch, SilenceBuffer } from "./caller-input.js";
import { EventSink } from "./event-sink.js";
import { WaitInputTimer } from "./wait-input.js";

describe("InactivityWatch", () => {
  it("fires once, exactly `ms` after the last caller frame, however the frames were spaced", () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const w = new InactivityWatch(clock, 2500, () => fired.push(clock.now()));
    w.start();
    for (let t = 0; t < 3000; t += 20) {
      clock.advance(20);
      w.touch();
    }
    const last = clock.now();
    clock.advance(2499);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([last + 2500]);
    clock.advance(10_000);
    expect(fired).toHaveLength(1);
  });

  it("keeps at most one timer, whatever the frame rate, and none once stopped or when off", () => {
    const clock = new ManualClock();
    const w = new InactivityWatch(clock, 5000, () => undefined);
    w.start();
    for (let i = 0; i < 100; i++) {
      clock.advance(20);
      w.touch();
    }
    expect(clock.pendingTimers).toBe(1);
    w.stop();
    expect(clock.pendingTimers).toBe(0);
    new InactivityWatch(clock, 0, () => undefined).start();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("SilenceBuffer", () => {
  it("hands out zeroed views of the asked length, zeroed again after a consumer wrote into one", () => {
    const s = new SilenceBuffer();
    const a = s.of(160);
    expect(a.length).toBe(160);
    a.fill(7); // a processor works in place on a muted frame
    const b = s.of(320);
    expect(b.length).toBe(320);
    expect(b.every((v) => v === 0)).toBe(true);
    expect(s.of(80).every((v) => v === 0)).toBe(true);
  });
});

/** An engine that reports the rate and the chunk lengths it was given. */
function recordingEngine(rates: number[], seen: { rate?: number; samples: number }): VadEngine {
  return {
    type: "webrtc",
    description: "recording (test)",
    sampleRates: rates as unknown as VadEngine["sampleRates"],
    chunkSamples: (rate) => rate / 50,
    createStream(sampleRate): VadStream {
      seen.rate = sampleRate;
      const chunkSamples = sampleRate / 50;
      return {
        sampleRate,
        chunkSamples,
        stateBytes: 0,
        process() {
          seen.samples += chunkSamples;
          return 0.01;
        },
        reset() {},
        close() {},
      };
    },
  } as VadEngine;
}

describe("CallerVad", () => {
  it("runs the engine at the caller's rate when it supports it, else resamples to the engine's first rate", () => {
    const same = { samples: 0 } as { rate?: number; samples: number };
    const v1 = CallerVad.over(recordingEngine([8000, 16000], same), 8000);
    expect(v1.rate).toBe(8000);
    v1.push(new Int16Array(8000));
    expect(same.samples).toBe(8000);

    const other = { samples: 0 } as { rate?: number; samples: number };
    const v2 = CallerVad.over(recordingEngine([16000], other), 8000);
    expect(other.rate).toBe(16000);
    for (let i = 0; i < 50; i++) v2.push(new Int16Array(160)); // 1 s of 8 kHz audio in 20 ms frames
    // One streaming resampler: 1 s at 8 kHz is about 1 s at 16 kHz (less the filter's delay), never frame-rounded.
    expect(other.samples).toBeGreaterThanOrEqual(15_360);
    expect(other.samples).toBeLessThanOrEqual(16_000);
  });
});

describe("EventSink", () => {
  it("stamps each event with the wall clock read at emission, and lets only the hangup through once closed", () => {
    const out: ConversationEvent[] = [];
    let wall = 1000;
    const sink = new EventSink((e) => out.push(e), () => wall, "call-1");
    sink.emit({ event: "inactivity", trackId: "call-1" });
    wall = 2000;
    sink.error("tts", new AppError("TIMEOUT", "no audio"));
    sink.error("media", new Error("boom"));
    sink.close();
    sink.emit({ event: "trackStart", trackId: "agent", playId: "p" });
    sink.emit({ event: "hangup", trackId: "call-1", reason: "caller", initiator: "caller" });
    expect(out).toEqual([
      { event: "inactivity", trackId: "call-1", timestamp: 1000 },
      { event: "error", trackId: "call-1", sender: "tts", code: "TIMEOUT", error: "no audio", timestamp: 2000 },
      { event: "error", trackId: "call-1", sender: "media", code: "INTERNAL", error: "boom", timestamp: 2000 },
      { event: "hangup", trackId: "call-1", reason: "caller", initiator: "caller", timestamp: 2000 },
    ]);
  });
});

describe("WaitInputTimer", () => {
  it("reports the silence after its timeout with the wall time it started; pause keeps what is left", () => {
    const clock = new ManualClock();
    const fired: [number, number][] = [];
    const t = new WaitInputTimer(clock, () => 50_000 + clock.now(), (start, duration) => fired.push([start, duration]));
    t.start(1000, false);
    clock.advance(400);
    t.pause();
    clock.advance(5000);
    expect(fired).toEqual([]);
    t.resume();
    clock.advance(599);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([[50_000, 1000]]);
  });

  it("started while paused waits for resume; cancel and a new start replace the countdown", () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const t = new WaitInputTimer(clock, () => clock.now(), (_s, d) => fired.push(d));
    t.start(300, true);
    clock.advance(1000);
    expect(fired).toEqual([]);
    t.resume();
    clock.advance(300);
    expect(fired).toEqual([300]);
    t.start(500, false);
    t.start(200, false);
    clock.advance(1000);
    expect(fired).toEqual([300, 200]);
    t.start(100, false);
    t.cancel();
    clock.advance(1000);
    expect(fired).toEqual([300, 200]);
  });
});
