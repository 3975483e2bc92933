/**
 * The realtime pipeline's barge-in runs on the shared InterruptionPolicy (playbook §2.7). With `turnDetection:
 * local` our VAD feeds it, so the protection period (`ignoreFirstMs`), `minSpeechMs`, `strategy` and the
 * false-interruption verdict hold as on the serial pipeline; with server turn detection the server has already
 * cut at `speech_started`, so the cut is immediate. On a ManualClock, with a fake model session.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../media/clock.js";
import { MemoryLeg } from "../../media/memory-leg.js";
import type { ConversationEvent } from "../conversation.js";
import type { InterruptionOptions } from "../turn/interruption.js";
import { Harness, runCaller } from "../serial/testutil.js";
import type { RealtimeConversation } from "./realtime-conversation.js";
import { fakeRealtimeCall } from "./testutil.js";

const live: { conv: RealtimeConversation; leg: MemoryLeg }[] = [];
afterEach(async () => {
  for (const r of live.splice(0)) {
    await r.conv.stop();
    await r.leg.close();
  }
});

function make(turnDetection: "local" | "server_vad", interruption: Partial<InterruptionOptions> = {}) {
  const clock = new ManualClock();
  const leg = new MemoryLeg({ clock, leadMs: 20 });
  const td = turnDetection === "local" ? ", turnDetection: { type: local, silenceDurationMs: 400 }" : "";
  const { conv, provider } = fakeRealtimeCall(leg, clock, `---\nrealtime: { provider: openai, apiKey: sk-test${td} }\ngreeting: false\n---\nBe brief.\n`, {
    soundsDir: "/nonexistent",
    interruption,
  });
  const events: { at: number; e: ConversationEvent }[] = [];
  conv.events.on("event", (e) => events.push({ at: clock.now(), e }));
  live.push({ conv, leg });
  return { conv, leg, clock, events, session: () => provider.sessions.at(-1) };
}
type Made = ReturnType<typeof make>;

/** Advances 20 ms steps with `audio` (else silence) as caller frames. */
const run = (m: Made, ms: number, audio?: Int16Array): Promise<void> => runCaller(m.leg, m.clock, ms, audio);

/** A 4 s clip through the leg (tts base64, in chunks of at most 20 000 characters): no file I/O. */
function playClip(m: Made, playId = "clip"): void {
  const bytes = Buffer.from(new Int16Array(4 * 16000).fill(1500).buffer);
  for (let at = 0; at < bytes.length; at += 15_000) {
    m.conv.handleCommand({ command: "tts", base64: true, streaming: true, endOfStream: at + 15_000 >= bytes.length, text: bytes.subarray(at, at + 15_000).toString("base64"), playId });
  }
}

const at = (m: Made, name: ConversationEvent["event"]) => m.events.filter((x) => x.e.event === name).map((x) => x.at);

async function started(turnDetection: "local" | "server_vad", interruption?: Partial<InterruptionOptions>): Promise<Made> {
  const m = make(turnDetection, interruption);
  await m.conv.start();
  await run(m, 100);
  playClip(m);
  await run(m, 20);
  expect(at(m, "trackStart")).toHaveLength(1);
  return m;
}

describe("realtime barge-in through the InterruptionPolicy", () => {
  it("local: speech during the first ignoreFirstMs is judged when the protection ends, not before", async () => {
    const m = await started("local", { ignoreFirstMs: 800, minSpeechMs: 300 });
    const trackStart = at(m, "trackStart")[0] as number;
    await run(m, 1500, Harness.speech(1500)); // starts at once: inside the protection period
    const cuts = m.events.filter((x) => x.e.event === "interruption");
    expect(cuts.map((x) => x.e.event === "interruption" && x.e.reason)).toEqual(["bargeIn"]);
    const cutAt = cuts[0]!.at;
    expect(cutAt).toBeGreaterThanOrEqual(trackStart + 800);
    expect(cutAt).toBeLessThan(trackStart + 800 + 100);
    expect(m.conv.snapshot().interruptions.bargeIns).toBe(1);
  });

  it("local: speech shorter than minSpeechMs after the protection does not cut; longer speech cuts minSpeechMs after its onset", async () => {
    const m = await started("local", { ignoreFirstMs: 200, minSpeechMs: 600 });
    await run(m, 400);
    await run(m, 300, Harness.speech(300)); // the VAD says speaking, but 300 ms < 600 ms
    await run(m, 600);
    expect(at(m, "speaking")).toHaveLength(1);
    expect(at(m, "interruption")).toEqual([]);
    const onset = m.clock.now();
    await run(m, 1200, Harness.speech(1200));
    const cutAt = at(m, "interruption")[0] as number;
    expect(cutAt).toBeGreaterThanOrEqual(onset + 600 - 60); // the VAD pads the onset a little
    expect(cutAt).toBeLessThan(onset + 600 + 100);
  });

  it("local: strategy none never cuts", async () => {
    const m = await started("local", { strategy: "none", ignoreFirstMs: 0 });
    await run(m, 1500, Harness.speech(1500));
    expect(at(m, "speaking")).toHaveLength(1);
    expect(at(m, "interruption")).toEqual([]);
  });

  it("local: a barge-in whose transcript is empty is a false interruption; one with words is confirmed", async () => {
    for (const [text, falseOnes] of [
      ["", 1],
      ["wait a moment", 0],
    ] as const) {
      const m = await started("local", { ignoreFirstMs: 0, minSpeechMs: 200 });
      await run(m, 800, Harness.speech(800));
      await run(m, 600); // our VAD ends the turn: the audio is committed
      expect(at(m, "interruption")).toHaveLength(1);
      expect(m.session()?.commits).toBe(1);
      m.session()?.push({ type: "input_transcript", itemId: "in-1", final: true, text });
      await run(m, 100);
      expect(m.conv.snapshot().interruptions).toEqual({ bargeIns: 1, falseInterruptions: falseOnes });
      await m.conv.stop();
    }
  });

  it("server_vad: speech_started cuts at once, even inside ignoreFirstMs (the server has already cancelled)", async () => {
    const m = await started("server_vad", { ignoreFirstMs: 800, minSpeechMs: 300 });
    const trackStart = at(m, "trackStart")[0] as number;
    m.session()?.push({ type: "speech_started" });
    await run(m, 40);
    expect(at(m, "interruption")).toHaveLength(1);
    expect((at(m, "interruption")[0] as number) - trackStart).toBeLessThan(100);
    // interruption first, then the trackEnd the leg reported from inside its clear
    const names = m.events.map((x) => x.e.event).filter((n) => n === "interruption" || n === "trackEnd");
    expect(names).toEqual(["interruption", "trackEnd"]);
  });

  it("server_vad: speech while a response is generating but not yet audible cancels it, and its late audio never plays", async () => {
    const m = make("server_vad");
    await m.conv.start();
    await run(m, 100);
    m.conv.handleCommand({ command: "tts", text: "Let me check that for you." });
    const session = m.session()!;
    expect(session.creates).toBe(1);
    session.push({ type: "response_started", responseId: "r1" });
    await run(m, 40);
    session.push({ type: "speech_started" });
    await run(m, 40);
    expect(session.cancels).toBe(1);
    session.push({ type: "audio", responseId: "r1", itemId: "i1", frame: { pcm: new Int16Array(2400).fill(3000), sampleRate: 24000, timestampMs: 0 } });
    session.push({ type: "response_done", responseId: "r1", status: "cancelled" });
    await run(m, 300);
    expect(at(m, "trackStart")).toEqual([]);
    expect(m.leg.captured.filter((f) => f.pcm.some((x) => x !== 0))).toEqual([]);
  });

  it("server_vad: strategy none leaves the agent speaking", async () => {
    const m = await started("server_vad", { strategy: "none" });
    m.session()?.push({ type: "speech_started" });
    await run(m, 200);
    expect(at(m, "speaking")).toHaveLength(1);
    expect(at(m, "interruption")).toEqual([]);
  });
});
