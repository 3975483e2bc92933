import { describe, expect, it } from "vitest";
import { AppError } from "../../errors.js";
import { ScriptLlm } from "../../playbook/runner/testutil.js";
import { clockVariables } from "../../playbook/variables.js";
import { ScriptedTts } from "../../providers/scripted.js";
import type { AudioFrame } from "../../audio/index.js";
import type { TtsOptions } from "../../providers/types.js";
import { Harness, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();

describe("SerialConversation", () => {
  it("a full turn: greeting, caller speech, early EOU hit, reply audio, events in order", async () => {
    const h: Harness = new Harness({ script: ["hello there"] });
    await h.conv.start();
    await h.run(600);
    await h.run(700, Harness.speech(700));
    await h.run(3000);
    const names = h.names().filter((n) => n !== "metrics");
    expect(names).toEqual([
      "trackStart:greeting",
      "trackEnd:greeting",
      "speaking",
      "silence",
      "asrFinal",
      "eou",
      "llmDelta",
      "llmDelta",
      "llmDelta",
      "llmDelta",
      "trackStart:r-1",
      "trackEnd:r-1",
    ]);
    expect(h.of("asrFinal")[0]?.text).toBe("hello there");
    expect(h.of("eou")[0]?.completed).toBe(true);
    const turn = h.of("metrics").find((m) => m.key === "turn");
    expect(turn?.data.early).toBe(true);
    expect(h.conv.speculation.stats).toMatchObject({ started: 1, adopted: 1 });
    const hist = h.conv.snapshot().runner?.history.map((e) => e.message);
    expect(hist?.slice(-2)).toEqual([
      { role: "user", content: "hello there" },
      { role: "assistant", content: "You said: hello there" },
    ]);
    // The reply's audio really went out, all of it (the scripted TTS: 60 ms of tone per character).
    const end = h.of("trackEnd").find((e) => e.playId === "r-1");
    expect(end?.duration).toBe(h.leg.captured.filter((f) => f.playId === "r-1").length * 20);
    expect(end?.duration).toBeGreaterThanOrEqual(20 * 60);
    expect(rejections).toEqual([]);
  });

  it("templates and the history use the wall clock, not the media clock (which counts from the call's start)", async () => {
    const wall = Date.UTC(2026, 11, 7, 10, 30);
    const h = new Harness({
      playbook: `---\nllm: { provider: scripted }\ngreeting: "Today is {{ date }}, a {{ weekday }}."\n---\nBe brief.\n`,
      wallClock: (): number => wall + h.clock.now(),
    });
    await h.conv.start();
    await h.run(3000);
    const { date, weekday } = clockVariables({ now: new Date(wall) });
    expect(date.startsWith("2026-12-0")).toBe(true);
    const [greeting] = h.conv.snapshot().runner?.history ?? [];
    expect(greeting?.message).toEqual({ role: "assistant", content: `Today is ${date}, a ${weekday}.` });
    expect(greeting?.at).toBeGreaterThanOrEqual(wall);
  });

  it("barge-in clears agent audio within one frame and the history keeps only what was heard", async () => {
    const long = "This is a long answer. It goes on for quite a while. And then some more words follow here.";
    const h = new Harness({ script: ["tell me", "stop please"], llm: new ScriptLlm([long]), interruption: { ignoreFirstMs: 200 } });
    await h.conv.start();
    await h.run(500);
    await h.run(500, Harness.speech(500));
    await h.run(1500); // the reply is playing
    expect(h.names()).toContain("trackStart:r-1");
    const before = h.leg.captured.length;
    await h.run(500, Harness.speech(500));
    await h.run(2000);
    const cut = h.of("interruption")[0];
    expect(cut).toMatchObject({ playId: "r-1", reason: "bargeIn" });
    expect(cut!.current).toBeLessThan(cut!.totalDuration);
    // Audio stopped within the fade + lead after the clear (one 20 ms frame of lead + 20 ms fade).
    const lastAgent = h.leg.captured.filter((f) => f.playId === "r-1").at(-1)!;
    expect(h.leg.captured.length).toBeGreaterThan(before);
    const speakingAt = h.of("speaking")[1]!.timestamp;
    expect(lastAgent.sentAtMs).toBeLessThanOrEqual(speakingAt + 400);
    const hist = h.conv.snapshot().runner!.history;
    const assistant = hist.filter((e) => e.message.role === "assistant").at(-1)!;
    expect(assistant.interrupted).toBe(true);
    expect(long.startsWith(assistant.message.content as string)).toBe(true);
    expect((assistant.message.content as string).length).toBeLessThan(long.length);
    expect(assistant.message.content).toBe(cut!.subtitle);
    expect(rejections).toEqual([]);
  });

  it("filler words do not interrupt (asr strategy)", async () => {
    const reply = "Here is a reply that takes a few seconds to play.";
    const h = new Harness({
      script: ["question", "uh huh"],
      llm: new ScriptLlm([reply]),
      interruption: { strategy: "asr", fillerWordFilter: true, fillerWords: ["uh", "huh", "uh huh"], ignoreFirstMs: 0 },
    });
    await h.conv.start();
    await h.run(500);
    await h.run(500, Harness.speech(500));
    await h.run(1000);
    await h.run(300, Harness.speech(300));
    await h.run(4000);
    expect(h.of("interruption")).toEqual([]);
    expect(h.of("trackEnd").find((e) => e.playId === "r-1")).toMatchObject({ reason: "finished", duration: reply.length * 60 });
  });

  it("EOU speculation miss: speech resumes, the speculation is discarded, the reply answers the whole turn", async () => {
    const h = new Harness({ script: ["I want", "a pizza"], eou: { silenceMs: 800 } });
    await h.conv.start();
    await h.run(500);
    await h.run(400, Harness.speech(400));
    await h.run(300); // provisional end: speculate on "I want"
    await h.run(400, Harness.speech(400));
    await h.run(3000);
    expect(h.of("eou").map((e) => e.completed)).toEqual([false, true]);
    // Missed once when speech resumed, once when the second segment's final changed the text; then a hit.
    expect(h.conv.turns.stats).toMatchObject({ speculations: 3, misses: 2, hits: 1 });
    expect(h.conv.speculation.stats).toMatchObject({ started: 3, aborted: 2, adopted: 1 });
    const hist = h.conv.snapshot().runner!.history.map((e) => e.message.content);
    expect(hist.slice(-2)).toEqual(["I want a pizza", "You said: I want a pizza"]);
  });

  it("autoHangup waits until the utterance has played out", async () => {
    const h = new Harness({ playbook: `---\nllm: { provider: scripted }\ngreeting: false\n---\nBe brief.\n` });
    await h.conv.start();
    h.conv.handleCommand({ command: "tts", text: "Goodbye now.", playId: "bye", autoHangup: true });
    let closed = false;
    void h.conv.closed.then(() => (closed = true));
    await h.run(500);
    expect(closed).toBe(false);
    await h.run(400);
    expect(closed).toBe(true);
    expect(h.names().slice(-3)).toEqual(["trackStart:bye", "trackEnd:bye", "hangup"]);
    expect(h.of("hangup")[0]).toMatchObject({ reason: "autohangup", initiator: "client" });
    expect(h.leg.agentEndMs).toBe(12 * 60);
    expect(h.of("hangup")[0]!.timestamp).toBeGreaterThanOrEqual(12 * 60);
  });

  it("LLM failure mid-turn with on_provider_error=continue: error event, the call goes on", async () => {
    const llm = new ScriptLlm([{ fail: new AppError("PROVIDER_ERROR", "boom") }, "Second try works."]);
    const h = new Harness({ script: ["one", "two"], llm, onProviderError: "continue" });
    await h.conv.start();
    await h.run(500);
    await h.run(400, Harness.speech(400));
    await h.run(1500);
    expect(h.of("error")[0]).toMatchObject({ sender: "llm", code: "PROVIDER_ERROR" });
    expect(h.of("hangup")).toEqual([]);
    await h.run(400, Harness.speech(400));
    await h.run(3000);
    expect(h.names()).toContain("trackEnd:r-2");
    expect(rejections).toEqual([]);
  });

  it("LLM failure with on_provider_error=hangup ends the call with reason error", async () => {
    const llm = new ScriptLlm([{ fail: new AppError("TIMEOUT", "no first token") }]);
    const h = new Harness({ script: ["one"], llm, onProviderError: "hangup" });
    await h.conv.start();
    await h.run(500);
    await h.run(400, Harness.speech(400));
    await h.run(1500);
    expect(h.names().slice(-2)).toEqual(["error", "hangup"]);
    expect(h.of("error")[0]).toMatchObject({ code: "TIMEOUT" });
    await expect(h.conv.closed).resolves.toMatchObject({ reason: "error", initiator: "system" });
    expect(rejections).toEqual([]);
  });

  it("TTS failure mid-reply: error event, the turn is dropped, the runner is told, the call goes on", async () => {
    const inner = new ScriptedTts({ sampleRate: 16000 });
    const tts = {
      name: "flaky",
      capabilities: inner.capabilities,
      sampleRate: 16000,
      synthesize(text: string | AsyncIterable<string>, options?: TtsOptions): AsyncIterable<AudioFrame> {
        if (typeof text === "string" && text.includes("explode")) {
          return (async function* () {
            await Promise.resolve();
            if (text !== "") throw new AppError("PROVIDER_ERROR", "tts down");
            yield* [];
          })();
        }
        return inner.synthesize(text, options);
      },
    };
    const h = new Harness({ script: ["one"], tts, llm: new ScriptLlm(["Fine first. Then explode here."]) });
    await h.conv.start();
    await h.run(500);
    await h.run(400, Harness.speech(400));
    await h.run(3000);
    expect(h.of("error")[0]).toMatchObject({ sender: "tts", code: "PROVIDER_ERROR" });
    expect(h.of("trackEnd").at(-1)).toMatchObject({ playId: "r-1", reason: "error" });
    expect(h.of("hangup")).toEqual([]);
    const last = h.conv.snapshot().runner!.history.at(-1)!;
    expect(last.interrupted).toBe(true);
    expect(rejections).toEqual([]);
  });

  it("ASR error result: error event, then hangup per policy", async () => {
    const asr = {
      name: "bad",
      capabilities: { streaming: false, endpointed: true, sampleRates: [16000], languages: "any" as const },
      transcribe: () => (async function* () {})(),
      session: () => {
        let push: ((r: unknown) => void) | undefined;
        let n = 0;
        return {
          write() {},
          discardUtterance() {},
          endUtterance() {
            const utterance = n++;
            queueMicrotask(() => push?.({ type: "error", utterance, error: new AppError("PROVIDER_ERROR", "asr down") }));
          },
          close() {
            push?.(undefined);
          },
          results: {
            async *[Symbol.asyncIterator]() {
              for (;;) {
                const r = await new Promise((resolve) => (push = resolve));
                if (r === undefined) return;
                yield r as never;
              }
            },
          },
        };
      },
    };
    const h = new Harness({ asr, onProviderError: "hangup" });
    await h.conv.start();
    await h.run(500);
    await h.run(400, Harness.speech(400));
    await h.run(1000);
    expect(h.of("error")[0]).toMatchObject({ sender: "asr", code: "PROVIDER_ERROR" });
    await expect(h.conv.closed).resolves.toMatchObject({ reason: "error" });
    expect(rejections).toEqual([]);
  });
});
