/**
 * A playbook with `tts: {provider: elevenlabs, voice: <id>}` through the real controller: the greeting and the
 * reply are synthesised over the stream-input WebSocket by the local ElevenLabs simulator (the only fake), and
 * the caller hears its audio. The `turn` metric's ttsTtfbMs covers the simulator's first-audio delay.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import { SIM_API_KEY, SIM_AMPLITUDE, useElevenLabsSim } from "../../src/providers/elevenlabs/testutil.js";
import { fliteSpeech, peakOfPcmBytes, silence, startServer, type TestServer } from "./harness.js";

const sim = useElevenLabsSim();
let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const PLAYBOOK = `---
asr: { provider: scripted, script: ["what can you do"] }
tts: { provider: elevenlabs, voice: voice-e2e-42 }
llm: { provider: scripted, fallback: "I can read you the news." }
greeting: "Hello from eleven labs."
---
Test agent.
`;

describe("tts provider elevenlabs", () => {
  it("speaks the greeting and the reply with the simulator's audio, voice and model from the config", async () => {
    server = await startServer({ providers: { elevenlabs: { api_key: SIM_API_KEY, base_url: sim.url, model_id: "eleven_turbo_v2_5" } } });
    await writeFile(join(server.dir, "playbooks", "eleven.md"), PLAYBOOK);
    sim.behaviour.firstAudioDelayMs = 120;
    const client = await CallClient.connect(server.wsUrl);
    const audio: Buffer[] = [];
    client.on("audio", (b: Buffer) => audio.push(Buffer.from(b)));
    client.invite({ playbook: "eleven.md", eou: { type: "vad" } });
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    const greeting = sim.connections[0]!;
    expect(greeting.voiceId).toBe("voice-e2e-42");
    expect(greeting.query).toMatchObject({ model_id: "eleven_turbo_v2_5", output_format: "pcm_16000" });
    expect(greeting.generations).toEqual(["Hello from eleven labs."]);
    const peak = Math.max(...audio.map(peakOfPcmBytes));
    expect(peak).toBeGreaterThan(SIM_AMPLITUDE * 0.5);

    const turn = client.waitFor("metrics", (e) => e.key === "turn", 20_000);
    await client.streamPcm(new Int16Array([...silence(200), ...fliteSpeech("what can you do"), ...silence(1500)]), 16000, { realtime: true });
    const reply = await client.waitFor("trackEnd", (e) => e.playId !== "greeting", 20_000);
    expect(reply.reason).toBe("finished");
    expect(sim.connections.at(-1)!.generations).toEqual(["I can read you the news."]);
    const metric = await turn;
    expect((metric.data as { ttsTtfbMs: number }).ttsTtfbMs).toBeGreaterThanOrEqual(120);
    expect(JSON.stringify(server.problems)).not.toContain(SIM_API_KEY);
    client.hangup();
    await client.closed;
  }, 60_000);

  it("a rejected key fails the utterance with an error naming [providers.elevenlabs] api_key, and the key is never logged", async () => {
    server = await startServer({ providers: { elevenlabs: { api_key: "el-wrong-key-secret", base_url: sim.url } } });
    await writeFile(join(server.dir, "playbooks", "eleven.md"), PLAYBOOK);
    const client = await CallClient.connect(server.wsUrl);
    client.invite({ playbook: "eleven.md" });
    const error = await client.waitFor("error", undefined, 20_000);
    expect(JSON.stringify(error)).toContain("[providers.elevenlabs] api_key");
    expect(JSON.stringify(error)).not.toContain("el-wrong-key-secret");
    expect(JSON.stringify(server.problems)).not.toContain("el-wrong-key-secret");
    client.hangup();
    await client.closed;
  }, 30_000);
});
