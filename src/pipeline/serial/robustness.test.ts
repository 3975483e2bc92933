/** Provider stalls, barge-in bookkeeping (cleared mark) and false-interruption resume, through SerialConversation. */
import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import { ScriptLlm } from "../../playbook/runner/testutil.js";
import type { RunnerInput } from "../../playbook/runner/index.js";
import { ScriptedTts, tone } from "../../providers/scripted.js";
import type { ChatRequest, LlmEvent, TtsOptions, TtsProvider } from "../../providers/types.js";
import { Harness, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();

const never = (): Promise<never> => new Promise<never>(() => {});

/** An LLM whose n-th request (0-based) in `stalls` hangs (after `prefix` chunks), ignoring its abort signal. */
function stallingLlm(stalls: Set<number>, prefix: string[] = []) {
  const ok = new ScriptLlm(["Second try works."]);
  let n = 0;
  return {
    name: "stally",
    requests: 0,
    chat(request: ChatRequest): AsyncIterable<LlmEvent> {
      const i = n++;
      this.requests++;
      if (!stalls.has(i)) return ok.chat(request) as AsyncIterable<LlmEvent>;
      return (async function* () {
        for (const delta of prefix) yield { type: "text", delta } as LlmEvent;
        await never();
      })();
    },
  };
}

const pb = (llm: string) => `---\nllm: { provider: scripted${llm} }\ngreeting: false\n---\nBe brief.\n`;

describe("SerialConversation provider stalls", () => {
  it("an LLM that never yields: TIMEOUT error after llm.timeoutMs, the turn is dropped, the next turn works", async () => {
    const llm = stallingLlm(new Set([0]));
    const h = new Harness({ script: ["one", "two"], llm, playbook: pb(", timeoutMs: 1500") });
    await h.conv.start();
    await h.run(300);
    await h.run(400, Harness.speech(400));
    await h.run(1000);
    expect(h.of("error")).toEqual([]);
    await h.run(1500);
    expect(h.of("error")).toHaveLength(1);
    expect(h.of("error")[0]).toMatchObject({ sender: "llm", code: "TIMEOUT" });
    expect(h.of("error")[0]!.error).toMatch(/1500 ms/);
    expect(h.of("hangup")).toEqual([]);
    await h.run(400, Harness.speech(400));
    await h.run(4000);
    expect(h.of("error").length).toBeGreaterThanOrEqual(1);
    expect(h.names().filter((n) => n.startsWith("trackEnd"))).toHaveLength(1);
    expect(h.of("trackEnd")[0]).toMatchObject({ reason: "finished" });
    expect(rejections).toEqual([]);
  });

  it("an LLM that stalls mid-reply with on_provider_error=hangup: TIMEOUT, then the call ends with reason error", async () => {
    const llm = stallingLlm(new Set([0, 1, 2]), ["Hello ", "there"]);
    const h = new Harness({ script: ["one"], llm, playbook: pb(", timeoutMs: 1000"), onProviderError: "hangup" });
    await h.conv.start();
    await h.run(300);
    await h.run(400, Harness.speech(400));
    await h.run(3000);
    expect(h.of("error")[0]).toMatchObject({ sender: "llm", code: "TIMEOUT" });
    expect(h.names().at(-1)).toBe("hangup");
    await expect(h.conv.closed).resolves.toMatchObject({ reason: "error", initiator: "system" });
    expect(rejections).toEqual([]);
  });

  it("a TTS that stalls after its first audio: TIMEOUT after ttsTimeoutMs, the utterance ends with error, the call goes on", async () => {
    const inner = new ScriptedTts({ sampleRate: 16000 });
    const tts: TtsProvider = {
      name: "stuck",
      capabilities: inner.capabilities,
      sampleRate: 16000,
      synthesize(text: string | AsyncIterable<string>, options?: TtsOptions): AsyncIterable<AudioFrame> {
        if (typeof text === "string" && text.includes("stall")) {
          return (async function* () {
            yield { pcm: new Int16Array(3200).fill(1000), sampleRate: 16000, timestampMs: 0 };
            await never();
          })();
        }
        return inner.synthesize(text, options);
      },
    } as TtsProvider;
    const h = new Harness({ script: ["one"], tts, ttsTimeoutMs: 800, llm: new ScriptLlm(["Fine first. Now stall here. Never said."]) });
    await h.conv.start();
    await h.run(300);
    await h.run(400, Harness.speech(400));
    await h.run(3000);
    expect(h.of("error")).toHaveLength(1);
    expect(h.of("error")[0]).toMatchObject({ sender: "tts", code: "TIMEOUT" });
    // 800 ms after the stalled sentence's first (and only) audio came, i.e. right after the first sentence's.
    const startedAt = h.of("trackStart").find((e) => e.playId === "r-1")!.timestamp;
    expect(h.of("error")[0]!.timestamp - startedAt).toBeGreaterThanOrEqual(800);
    expect(h.of("error")[0]!.timestamp - startedAt).toBeLessThanOrEqual(840);
    expect(h.leg.captured.some((f) => f.playId === "r-1" && f.pcm[0] === 1000)).toBe(true);
    expect(h.of("trackEnd").at(-1)).toMatchObject({ playId: "r-1", reason: "error" });
    expect(h.of("hangup")).toEqual([]);
    const last = h.conv.snapshot().runner!.history.at(-1)!;
    expect(last.interrupted).toBe(true);
    expect(last.message.content).not.toContain("Never said");
    // The call goes on: a client utterance plays normally.
    h.conv.handleCommand({ command: "tts", text: "Still here.", playId: "x" });
    await h.run(1500);
    expect(h.of("trackEnd").at(-1)).toMatchObject({ playId: "x", reason: "finished" });
    expect(rejections).toEqual([]);
  });
});

describe("SerialConversation barge-in bookkeeping", () => {
  it("stops the audio at once, but tells the runner what was heard only once the cleared mark resolved", async () => {
    const long = "This is a long answer. It goes on for quite a while. And then some more words follow here.";
    const h = new Harness({ script: ["tell me", "stop please"], llm: new ScriptLlm([long]), playbook: pb(""), interruption: { strategy: "asr", ignoreFirstMs: 0 } });
    const told: { at: number; input: RunnerInput }[] = [];
    const handle = h.conv.runner.handle.bind(h.conv.runner);
    h.conv.runner.handle = (input: RunnerInput) => {
      if (input.type === "agentSpeechEnded") told.push({ at: h.clock.now(), input });
      return handle(input);
    };
    let cutAt = -1;
    let markedAfterCut: number | undefined;
    h.conv.events.on("event", (e) => {
      if (e.event === "interruption") {
        cutAt = h.clock.now();
        markedAfterCut = told.length;
      }
    });
    await h.conv.start();
    await h.run(300);
    await h.run(400, Harness.speech(400));
    await h.run(1500);
    await h.run(400, Harness.speech(400));
    await h.run(1500);
    expect(cutAt).toBeGreaterThan(0);
    expect(markedAfterCut).toBe(0); // not told synchronously with the cut
    const last = h.leg.captured.filter((f) => f.playId === "r-1").at(-1)!;
    expect(last.sentAtMs).toBeLessThanOrEqual(cutAt); // nothing of r-1 sent after the clear
    expect(told).toHaveLength(1);
    expect(told[0]!.input).toMatchObject({ playId: "r-1", interrupted: true });
    // Told once the released audio (lead + fade) had played out.
    expect(told[0]!.at).toBeGreaterThanOrEqual(last.timestampMs + 20);
    expect(told[0]!.at - cutAt).toBeLessThanOrEqual(60);
    const heard = (told[0]!.input as { heard: string }).heard;
    expect(h.of("interruption")[0]!.subtitle).toBe(heard);
    const assistant = h.conv.snapshot().runner!.history.filter((e) => e.message.role === "assistant").at(-1)!;
    expect(assistant.message.content).toBe(heard);
    expect(rejections).toEqual([]);
  });

  it("false interruption: a VAD barge-in without words re-speaks the cut sentence from its start, same playId", async () => {
    const long = "This is a long answer. It goes on for quite a while. And then some more words follow here.";
    const h = new Harness({
      script: ["tell me", ""],
      llm: new ScriptLlm([long]),
      playbook: pb(""),
      interruption: { strategy: "vad", minSpeechMs: 200, ignoreFirstMs: 200, resumeOnFalse: true },
    });
    await h.conv.start();
    await h.run(300);
    await h.run(400, Harness.speech(400));
    await h.run(1800); // the reply is playing: its second sentence
    await h.run(300, Harness.speech(300)); // a cough
    await h.run(7000);
    const cut = h.of("interruption")[0]!;
    expect(cut).toMatchObject({ playId: "r-1", reason: "bargeIn" });
    expect(h.names().filter((n) => n.endsWith(":r-1"))).toEqual(["trackStart:r-1", "trackEnd:r-1", "trackStart:r-1", "trackEnd:r-1"]);
    expect(h.of("trackEnd").map((e) => e.reason)).toEqual(["interrupted", "finished"]);
    expect(h.conv.snapshot().interruptions).toEqual({ bargeIns: 1, falseInterruptions: 1 });
    // Re-spoken from the start of the cut sentence: what was heard up to that sentence + the resumed audio = all.
    const sentenceStarts = [0, "This is a long answer.".length, "This is a long answer. It goes on for quite a while.".length];
    const cutSentence = [...sentenceStarts].reverse().find((s) => s <= cut.position!)!;
    const resumedMs = h.of("trackEnd")[1]!.duration;
    const before = h.of("trackEnd")[0]!.duration;
    expect(before).toBeGreaterThan(0);
    const charsFrom = (start: number): number =>
      long
        .slice(start)
        .split(/(?<=\.)\s+/)
        .reduce((n, s) => n + s.trim().length, 0);
    expect(resumedMs).toBe(charsFrom(cutSentence) * 60);
    expect(cutSentence).toBeGreaterThan(0);
    // The resumed audio starts at the tone's phase 0: the beginning of a sentence, not the cut point.
    const resumed = h.leg.captured.filter((f) => f.playId === "r-1" && f.sentAtMs > cut.timestamp + 100);
    expect([...resumed[0]!.pcm.subarray(0, 8)]).toEqual([...tone(20, 16000).subarray(0, 8)]);
    const assistant = h.conv.snapshot().runner!.history.filter((e) => e.message.role === "assistant").at(-1)!;
    expect(assistant.interrupted).toBeFalsy();
    expect(assistant.message.content).toBe(long);
    expect(rejections).toEqual([]);
  });
});
