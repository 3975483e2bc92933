/**
 * A call whose playbook uses Deepgram for ASR and TTS (`provider: deepgram`), against the local Deepgram
 * simulator (test/sim/deepgram, the only fake): the caller hears Deepgram TTS audio, the streamed transcript
 * (the simulator hears the energy of real flite speech, which our VAD also hears) reaches the (scripted) LLM, whose reply is spoken by Deepgram again.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import { useDeepgramSim } from "../sim/deepgram/use-sim.js";
import { fliteSpeech, peakOfPcmBytes, silence, startServer, type TestServer } from "./harness.js";

const sim = useDeepgramSim();
let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const PLAYBOOK = `---
asr:
  provider: deepgram
tts:
  provider: deepgram
  voice: aura-2-thalia-en
llm:
  provider: scripted
  fallback: "You said: {{ text }}"
eou:
  type: vad
greeting: "Hello from Deepgram."
---
Test agent.
`;

describe("a playbook with asr and tts on deepgram", () => {
  it("speaks with Deepgram TTS and answers the transcript streamed by Deepgram ASR", async () => {
    server = await startServer({ providers: { deepgram: { api_key: sim.apiKey, base_url: sim.url } } });
    await writeFile(join(server.dir, "playbooks", "deepgram.md"), PLAYBOOK);
    sim.script = ["I would like a pizza"];
    const client = await CallClient.connect(server.wsUrl);
    const audio: Buffer[] = [];
    client.on("audio", (b: Buffer) => audio.push(Buffer.from(b)));
    client.invite({ playbook: "deepgram.md" });
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    expect(sim.speak[0]?.text).toBe("Hello from Deepgram.");
    expect(sim.speak[0]?.query.model).toBe("aura-2-thalia-en");
    expect(Math.max(...audio.map(peakOfPcmBytes))).toBeGreaterThan(1000);

    await client.streamPcm(new Int16Array([...silence(200), ...fliteSpeech("I would like a pizza"), ...silence(1500)]), 16000, { realtime: true });
    const final = await client.waitFor("asrFinal", undefined, 20_000);
    expect(final.text).toBe("I would like a pizza");
    const metric = await client.waitFor("metrics", (e) => e.key === "turn", 20_000);
    expect(typeof (metric.data as Record<string, unknown>).ttsTtfbMs).toBe("number");
    expect(typeof (metric.data as Record<string, unknown>).asrMs).toBe("number");
    const reply = await client.waitFor("trackEnd", (e) => e.playId !== "greeting", 20_000);
    expect(reply.reason).toBe("finished");
    // The reply, spoken one sentence (or clause) per request.
    expect(sim.speak.slice(1).map((r) => r.text).join(" ")).toBe("You said: I would like a pizza");
    expect(sim.listens[0]?.authorization).toBe(`Token ${sim.apiKey}`);
    expect(server.problems).toEqual([]);
    client.hangup();
    await client.closed;
  }, 60_000);
});
