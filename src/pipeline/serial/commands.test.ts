import { afterEach, describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import type { ManualClock } from "../../media/clock.js";
import { ScriptLlm } from "../../playbook/runner/testutil.js";
import type { TtsOptions, TtsProvider } from "../../providers/types.js";
import { pcmFromBase64, speakableText } from "../core/commands.js";
import { Harness, energyVad, type HarnessOptions, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();
afterEach(() => {
  expect(rejections).toEqual([]);
});

const NO_GREETING = `---\nllm: { provider: scripted }\ngreeting: false\n---\nBe brief.\n`;

/**
 * A TTS for these tests: 60 ms per character, every sample of a request's audio is the request's number
 * (1, 2, ...), so the order of sentences on the wire can be read back; optional per-text latency on the clock.
 */
class TestTts implements TtsProvider {
  readonly name = "test";
  readonly capabilities = { streaming: true, nativeSampleRate: 16000, sampleRates: [16000], cancellable: true as const };
  readonly sampleRate = 16000;
  readonly requests: { text: string; voice: string | undefined }[] = [];
  clock: ManualClock | undefined;
  constructor(private readonly delayMs: (text: string) => number = () => 0) {}

  synthesize(text: string | AsyncIterable<string>, options: TtsOptions = {}): AsyncIterable<AudioFrame> {
    if (typeof text !== "string") throw new Error("strings only");
    this.requests.push({ text, voice: options.voice });
    const n = this.requests.length;
    const delay = this.delayMs(text);
    const clock = this.clock;
    return (async function* () {
      if (delay > 0 && clock) await new Promise<void>((resolve) => clock.setTimer(resolve, delay));
      if (options.signal?.aborted) return;
      const samples = Math.round(([...text].length * 60 * 16000) / 1000);
      for (let i = 0; i < samples; i += 320) yield { pcm: new Int16Array(Math.min(320, samples - i)).fill(n), sampleRate: 16000, timestampMs: 0 };
    })();
  }
}

async function started(options: HarnessOptions = {}): Promise<Harness> {
  const h = new Harness({ playbook: NO_GREETING, ...options });
  await h.conv.start();
  await h.run(100);
  return h;
}

describe("tts playId rules (§3.4)", () => {
  it("streaming chunks append to the open utterance; endOfStream closes it; one trackStart/trackEnd", async () => {
    const tts = new TestTts();
    const h = await started({ tts });
    h.conv.handleCommand({ command: "tts", text: "Hello there. How", playId: "p", streaming: true });
    await h.run(200);
    h.conv.handleCommand({ command: "tts", text: " are you?", playId: "p", streaming: true });
    await h.run(200);
    h.conv.handleCommand({ command: "tts", text: "", playId: "p", endOfStream: true });
    await h.run(3000);
    expect(h.names()).toEqual(["trackStart:p", "trackEnd:p"]);
    expect(tts.requests.map((r) => r.text)).toEqual(["Hello there.", "How are you?"]);
    expect(h.of("trackEnd")[0]).toMatchObject({ reason: "finished", duration: ("Hello there.".length + "How are you?".length) * 60 });
  });

  it("a new utterance replaces current and queued ones: interruption+trackEnd (replaced) each, autoHangup cancelled", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "A long first utterance here.", playId: "a", autoHangup: true });
    h.conv.handleCommand({ command: "tts", text: "Queued second.", playId: "b", queue: true, autoHangup: true });
    await h.run(500);
    h.conv.handleCommand({ command: "tts", text: "Third.", playId: "c" });
    await h.run(1500);
    expect(h.events.map((e) => (e.event === "interruption" ? `interruption:${e.playId}:${e.reason}` : e.event === "trackEnd" ? `trackEnd:${e.playId}:${e.reason}` : e.event === "trackStart" ? `trackStart:${e.playId}` : e.event))).toEqual([
      "trackStart:a",
      "interruption:a:replaced",
      "trackEnd:a:replaced",
      "interruption:b:replaced",
      "trackEnd:b:replaced",
      "trackStart:c",
      "trackEnd:c:finished",
    ]);
    expect(h.of("hangup")).toEqual([]);
  });

  it("queue:true plays after the current one; a closed playId starts a new utterance", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "One.", playId: "x" });
    h.conv.handleCommand({ command: "tts", text: "Two.", playId: "y", queue: true });
    await h.run(1000);
    // (the pacer sends y's first frame while x's last one is still in the lead, so trackEnd:x may follow trackStart:y)
    expect(h.names().filter((n) => n.startsWith("trackStart"))).toEqual(["trackStart:x", "trackStart:y"]);
    expect(h.of("trackEnd").map((e) => [e.playId, e.reason])).toEqual([
      ["x", "finished"],
      ["y", "finished"],
    ]);
    expect(h.leg.captured.findIndex((f) => f.playId === "y")).toBe(h.leg.captured.filter((f) => f.playId === "x").length);
    h.conv.handleCommand({ command: "tts", text: "Again.", playId: "x", queue: true });
    await h.run(1000);
    expect(h.names().slice(4)).toEqual(["trackStart:x", "trackEnd:x"]);
  });

  it("an open utterance with no text for 30 s is closed automatically", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "Hello. ", playId: "s", streaming: true });
    await h.run(29_000);
    expect(h.names()).toEqual(["trackStart:s"]);
    await h.run(1500);
    expect(h.names()).toEqual(["trackStart:s", "trackEnd:s"]);
    // closed: the same playId now starts a new utterance
    h.conv.handleCommand({ command: "tts", text: "Next.", playId: "s", streaming: true, endOfStream: true });
    await h.run(600);
    expect(h.names()).toEqual(["trackStart:s", "trackEnd:s", "trackStart:s", "trackEnd:s"]);
  });

  it("sentence N+1 never plays before sentence N, even when N is slower to synthesise", async () => {
    const tts = new TestTts((t) => (t.startsWith("Slow") ? 400 : 0));
    const h = await started({ tts });
    tts.clock = h.clock;
    h.conv.handleCommand({ command: "tts", text: "Slow one. Fast two. Fast three.", playId: "o" });
    await h.run(3500);
    const values = h.leg.captured.filter((f) => f.playId === "o").map((f) => f.pcm[0]);
    const order = values.filter((v, i) => v !== values[i - 1]);
    expect(order).toEqual([1, 2, 3]);
    expect(h.of("trackEnd")[0]?.reason).toBe("finished");
  });

  it("text for a stopped open utterance is dropped until its endOfStream", async () => {
    const tts = new TestTts();
    const h = await started({ tts });
    h.conv.handleCommand({ command: "tts", text: "Streaming first sentence here. ", playId: "z", streaming: true });
    await h.run(300);
    h.conv.handleCommand({ command: "interrupt" });
    h.conv.handleCommand({ command: "tts", text: " More text.", playId: "z", streaming: true });
    h.conv.handleCommand({ command: "tts", text: "", playId: "z", endOfStream: true });
    await h.run(1500);
    expect(h.names()).toEqual(["trackStart:z", "interruption", "trackEnd:z"]);
    expect(tts.requests.map((r) => r.text)).toEqual(["Streaming first sentence here."]);
  });

  it("autoHangup given on a later chunk applies to the stream, and makes it non-interruptible by default", async () => {
    const h = await started({ tts: new TestTts(), interruption: { ignoreFirstMs: 0 } });
    h.conv.handleCommand({ command: "tts", text: "Thanks for calling us today. ", playId: "bye", streaming: true });
    h.conv.handleCommand({ command: "tts", text: "Goodbye now.", playId: "bye", endOfStream: true, autoHangup: true });
    await h.run(300);
    await h.run(600, Harness.speech(600)); // barge-in attempt
    await h.run(3000);
    expect(h.of("interruption")).toEqual([]);
    expect(h.of("trackEnd")[0]).toMatchObject({ playId: "bye", reason: "finished" });
    expect(h.of("hangup")[0]).toMatchObject({ reason: "autohangup", initiator: "client" });
  });

  it("bad fields are error events (BAD_REQUEST / INVALID_STATE), never throws", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "" });
    h.conv.handleCommand({ command: "tts", text: "x".repeat(20_001) });
    h.conv.handleCommand({ command: "tts", text: "Hi.", queue: "yes" as unknown as boolean });
    h.conv.handleCommand({ command: "interrupt", fadeOutMs: 5000 });
    h.conv.handleCommand({ command: "tts", text: "Hello.", playId: "m", streaming: true });
    h.conv.handleCommand({ command: "tts", text: "AAAA", playId: "m", base64: true, streaming: true });
    h.conv.handleCommand({ command: "tts", text: "not base64!!", base64: true });
    expect(h.of("error").map((e) => e.code)).toEqual(["BAD_REQUEST", "BAD_REQUEST", "BAD_REQUEST", "BAD_REQUEST", "INVALID_STATE", "BAD_REQUEST"]);
    expect(h.of("error").every((e) => e.sender === "command")).toBe(true);
  });
});

describe("waitInputTimeout", () => {
  it("is validated: 1-99 and > 600000 are BAD_REQUEST", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "Hi.", waitInputTimeout: 50 });
    h.conv.handleCommand({ command: "tts", text: "Hi.", waitInputTimeout: 600_001 });
    h.conv.handleCommand({ command: "play", url: "a.wav", waitInputTimeout: 8 });
    expect(h.of("error").map((e) => [e.code, e.error])).toEqual([
      ["BAD_REQUEST", "waitInputTimeout is in milliseconds"],
      ["BAD_REQUEST", "waitInputTimeout must be at most 600000 ms"],
      ["BAD_REQUEST", "waitInputTimeout is in milliseconds"],
    ]);
    expect(h.names()).toEqual(["error", "error", "error"]);
  });

  it("emits silence {startTime: trackEnd time, duration, reason} when nothing follows the trackEnd", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "Hi.", playId: "w", streaming: true, waitInputTimeout: 5000 });
    h.conv.handleCommand({ command: "tts", text: "", playId: "w", endOfStream: true, waitInputTimeout: 1000 }); // last wins
    await h.run(500);
    const end = h.of("trackEnd")[0]!;
    await h.run(end.timestamp + 960 - h.clock.now());
    expect(h.of("silence")).toEqual([]);
    await h.run(60);
    expect(h.of("silence")).toEqual([{ event: "silence", trackId: "c1", startTime: end.timestamp, duration: 1000, reason: "waitInputTimeout", timestamp: end.timestamp + 1000 }]);
    await h.run(3000);
    expect(h.of("silence")).toHaveLength(1);
  });

  it("is cancelled by caller speech and by a new utterance", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "Hi.", waitInputTimeout: 1000 });
    await h.run(600);
    await h.run(300, Harness.speech(300));
    await h.run(1500);
    expect(h.of("speaking")).toHaveLength(1);
    expect(h.of("silence").filter((s) => s.reason === "waitInputTimeout")).toEqual([]);
    h.conv.handleCommand({ command: "tts", text: "Hi.", waitInputTimeout: 1000 });
    await h.run(600);
    h.conv.handleCommand({ command: "tts", text: "Other.", queue: true });
    await h.run(2000);
    expect(h.of("silence").filter((s) => s.reason === "waitInputTimeout")).toEqual([]);
  });

  it("is suspended while paused", async () => {
    const h = await started({ tts: new TestTts() });
    h.conv.handleCommand({ command: "tts", text: "Hi.", waitInputTimeout: 1000 });
    await h.run(400);
    const end = h.of("trackEnd")[0]!;
    await h.run(400);
    h.conv.handleCommand({ command: "pause" });
    const left = end.timestamp + 1000 - h.clock.now();
    await h.run(3000);
    expect(h.of("silence")).toEqual([]);
    h.conv.handleCommand({ command: "resume" });
    const resumedAt = h.clock.now();
    await h.run(1000);
    const s = h.of("silence");
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ startTime: end.timestamp, duration: 1000, reason: "waitInputTimeout" });
    // what was left at the pause, counted from the resume
    expect(s[0]!.timestamp - resumedAt).toBe(left);
  });
});

describe("base64, speaker/option, speakable text", () => {
  it("plays raw PCM16 without synthesis, carrying the odd byte to the next command of the playId", async () => {
    const tts = new TestTts();
    const h = await started({ tts });
    const samples = Int16Array.from({ length: 960 }, (_, i) => (i % 200) * 100 - 10_000);
    const bytes = Buffer.from(samples.buffer);
    const parts = [bytes.subarray(0, 701), bytes.subarray(701, 1201), bytes.subarray(1201)];
    parts.forEach((p, i) =>
      h.conv.handleCommand({ command: "tts", text: p.toString("base64"), playId: "pcm", base64: true, streaming: true, endOfStream: i === parts.length - 1 }),
    );
    await h.run(400);
    expect(tts.requests).toEqual([]);
    const out = h.leg.captured.filter((f) => f.playId === "pcm");
    const played = Int16Array.from(out.flatMap((f) => [...f.pcm]));
    expect(played.subarray(0, samples.length)).toEqual(samples);
    expect(h.names()).toEqual(["trackStart:pcm", "trackEnd:pcm"]);
    expect(h.of("trackEnd")[0]?.duration).toBe(60);
  });

  it("resamples base64 audio from option.sampleRate", async () => {
    const h = await started({ tts: new TestTts() });
    const pcm8k = new Int16Array(800).fill(1000); // 100 ms at 8 kHz
    h.conv.handleCommand({ command: "tts", text: Buffer.from(pcm8k.buffer).toString("base64"), playId: "r", base64: true, option: { sampleRate: 8000 } });
    await h.run(400);
    expect(h.of("trackEnd")[0]).toMatchObject({ playId: "r", duration: 100 });
  });

  it("pcmFromBase64 carries the odd byte", () => {
    const a = pcmFromBase64(Buffer.from([1, 0, 2]).toString("base64"), undefined);
    expect([...a.samples]).toEqual([1]);
    expect(a.carry).toBe(2);
    const b = pcmFromBase64(Buffer.from([1]).toString("base64"), a.carry);
    expect([...b.samples]).toEqual([258]);
    expect(b.carry).toBeUndefined();
  });

  it("speaker / option.voice go to the TTS for that utterance only", async () => {
    const tts = new TestTts();
    const h = await started({ tts });
    h.conv.handleCommand({ command: "tts", text: "One.", speaker: "anna" });
    h.conv.handleCommand({ command: "tts", text: "Two.", option: { voice: "bob" }, queue: true });
    h.conv.handleCommand({ command: "tts", text: "Three.", queue: true });
    await h.run(1500);
    expect(tts.requests).toEqual([
      { text: "One.", voice: "anna" },
      { text: "Two.", voice: "bob" },
      { text: "Three.", voice: undefined },
    ]);
  });

  it("emoji and Markdown emphasis are removed before synthesis; what was heard is reported without them", async () => {
    const tts = new TestTts();
    const h = await started({ tts });
    h.conv.handleCommand({ command: "tts", text: "Hello 👋 **dear** _friend_! Your order_id is ~~old~~ new. 👍🏽", playId: "e" });
    await h.run(5000);
    expect(tts.requests.map((r) => r.text)).toEqual(["Hello dear friend!", "Your order_id is old new."]);
    h.conv.handleCommand({ command: "tts", text: "🎉 *Great* news, everyone. More follows.", playId: "f" });
    await h.run(700);
    h.conv.handleCommand({ command: "interrupt" });
    const cut = h.of("interruption")[0]!;
    expect(cut.subtitle).not.toMatch(/[*🎉]/u);
    expect("Great news, everyone. More follows.".startsWith(cut.subtitle ?? "?")).toBe(true);
  });

  it("speakableText keeps snake_case, collapses the spaces left behind", () => {
    expect(speakableText("A ❤️ B")).toBe("A B");
    expect(speakableText("__init__ and my_var")).toBe("init and my_var");
    expect(speakableText("🇫🇷 Paris 1️⃣")).toBe(" Paris 1");
    expect(speakableText(" plain text ")).toBe(" plain text ");
  });
});

describe("turn metrics (§4 metrics key turn)", () => {
  it("reports duration (caller stop -> first audio) and eouMs, asrMs, llmTtftMs, ttsTtfbMs on the clock", async () => {
    const tts = new TestTts((t) => (t.startsWith("You said") ? 200 : 0));
    const h = new Harness({ script: ["hello there"], tts, llm: new ScriptLlm(["You said hello."]), playbook: NO_GREETING });
    tts.clock = h.clock;
    await h.conv.start();
    await h.run(300);
    await h.run(700, Harness.speech(700));
    await h.run(3000);
    const turn = h.of("metrics").filter((m) => m.key === "turn");
    expect(turn).toHaveLength(1);
    const d = turn[0]!.data as Record<string, number | boolean>;
    expect(Object.keys(d).sort()).toEqual(["asrMs", "early", "eouMs", "llmTtftMs", "ttsTtfbMs"]);
    for (const k of ["eouMs", "asrMs", "llmTtftMs", "ttsTtfbMs"]) expect(typeof d[k]).toBe("number");
    expect(d.ttsTtfbMs).toBeGreaterThanOrEqual(200);
    expect(d.ttsTtfbMs).toBeLessThanOrEqual(240);
    const parts = (d.eouMs as number) + (d.asrMs as number) + (d.llmTtftMs as number) + (d.ttsTtfbMs as number);
    expect(turn[0]!.duration).toBeGreaterThanOrEqual(parts);
    const start = h.of("trackStart")[0]!;
    const speechEnd = h.of("silence").find((s) => s.reason === "vad")!;
    expect(turn[0]!.duration).toBeLessThanOrEqual(start.timestamp - (speechEnd.startTime + speechEnd.duration) + 20);
  });
});

describe("vad.silenceTimeoutMs", () => {
  it("emits silence {reason:timeout} each time the caller has been silent that long", async () => {
    const h = new Harness({ playbook: NO_GREETING, vad: { engine: energyVad, silenceTimeoutMs: 1000 } });
    await h.conv.start();
    await h.run(3500);
    const t = (): { startTime: number; duration: number }[] =>
      h.of("silence").filter((s) => s.reason === "timeout").map((s) => ({ startTime: s.startTime, duration: s.duration }));
    expect(t()).toEqual([
      { startTime: 0, duration: 1000 },
      { startTime: 1000, duration: 1000 },
      { startTime: 2000, duration: 1000 },
    ]);
    await h.run(2000, Harness.speech(2000));
    expect(t()).toHaveLength(3); // speaking: no timeouts
    await h.run(2500);
    const vadEnd = h.of("silence").find((s) => s.reason === "vad")!;
    expect(t()).toHaveLength(5);
    expect(t()[3]!.startTime).toBe(vadEnd.timestamp);
  });

  it("0 is off", async () => {
    const h = new Harness({ playbook: NO_GREETING, vad: { engine: energyVad, silenceTimeoutMs: 0 } });
    await h.conv.start();
    await h.run(5000);
    expect(h.of("silence")).toEqual([]);
  });
});
