/**
 * The embedded default with an OpenAI key: the same hello.md call, and `provider: auto` now means OpenAI for
 * ASR, LLM and TTS. The OpenAI service is the local simulator (the only fake: it speaks OpenAI's HTTP protocol).
 */
import { afterEach, describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import { useOpenAiSim } from "../sim/openai/use-sim.js";
import { fliteSpeech, peakOfPcmBytes, silence, startServer, type TestServer } from "./harness.js";

const sim = useOpenAiSim();
let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe("hello.md with an OpenAI key", () => {
  it("speaks the greeting with OpenAI TTS, transcribes with OpenAI, and answers with the OpenAI LLM", async () => {
    server = await startServer({ providers: { openai: { api_key: "sk-test-not-real", base_url: sim.url } } });
    sim.speech.push({ durationMs: 800 }, { durationMs: 800 }, { durationMs: 1000 });
    sim.transcriptions.push({ text: "What can you do?" });
    sim.chat.push({ text: "I can answer your questions." });

    const client = await CallClient.connect(server.wsUrl);
    const audio: Buffer[] = [];
    client.on("audio", (b: Buffer) => audio.push(Buffer.from(b)));
    // End of turn on VAD silence only (an invite option overriding the playbook): no speculative LLM request on
    // the partial transcript, so the simulator's one chat reply is the answer.
    client.invite({ playbook: "hello.md", eou: { type: "vad" } });
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    const greetingTts = sim.requestsTo("/audio/speech")[0];
    // Synthesised one sentence at a time.
    expect(sim.requestsTo("/audio/speech").map((r) => r.body.input)).toEqual(["Hello, this is active call.", "Say something and I will answer."]);
    expect(greetingTts?.headers.authorization).toBe("Bearer sk-test-not-real");
    expect(Math.max(...audio.map(peakOfPcmBytes))).toBeGreaterThan(1000);

    await client.streamPcm(new Int16Array([...silence(200), ...fliteSpeech("what can you do"), ...silence(1500)]), 16000, { realtime: true });
    const final = await client.waitFor("asrFinal", undefined, 20_000);
    expect(final.text).toBe("What can you do?");
    expect(sim.requestsTo("/audio/transcriptions")[0]?.file?.bytes.length).toBeGreaterThan(16000);
    const reply = await client.waitFor("trackEnd", (e) => e.playId !== "greeting", 20_000);
    expect(reply.reason).toBe("finished");
    const chat = sim.requestsTo("/chat/completions")[0]?.body as { messages: { role: string; content: string }[] };
    expect(chat.messages[0]?.role).toBe("system");
    expect(chat.messages[0]?.content).toContain("friendly voice assistant");
    expect(chat.messages.at(-1)).toEqual({ role: "user", content: "What can you do?" });
    expect(sim.requestsTo("/audio/speech")[2]?.body).toMatchObject({ input: "I can answer your questions." });
    client.hangup();
    await client.closed;
  }, 60_000);
});
