/**
 * A Realtime playbook end to end: the real controller, a real `/call` WebSocket, and the OpenAI simulator's
 * Realtime socket (the only fake: it speaks OpenAI's protocol). The playbook's `realtime:` key selects the
 * Realtime pipeline; the post-call hook gets the transcript of both sides and its LLM summary.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import { startHttpReceiver, type HttpReceiver } from "../sim/http-receiver.js";
import { useOpenAiSim } from "../sim/openai/use-sim.js";
import { peakOfPcmBytes, silence, startServer, type TestServer } from "./harness.js";

/** The parts of a `session.update` session the tests read. */
interface SessionJson {
  type?: string;
  instructions?: string;
  tools?: { name: string }[];
  audio?: { input: { format?: unknown; turn_detection?: unknown; transcription?: unknown }; output: { format?: unknown; voice?: string } };
}

const sim = useOpenAiSim();
let server: TestServer | undefined;
let receiver: HttpReceiver | undefined;
afterEach(async () => {
  await server?.stop();
  await receiver?.close();
  server = undefined;
  receiver = undefined;
});

const playbook = (hookUrl: string) => `---
realtime:
  provider: openai
  voice: marin
greeting: "Thanks for calling Northwind."
posthook:
  url: ${hookUrl}
  summary: short
---
You are the Northwind help line.
`;

function tone(ms: number, rate: number): Int16Array {
  const out = new Int16Array(Math.round((ms * rate) / 1000));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / rate));
  return out;
}

describe("a realtime playbook over /call", () => {
  it("greets, answers the caller through the Realtime socket, and the post-call hook has both sides and a summary", async () => {
    receiver = await startHttpReceiver();
    server = await startServer({ providers: { openai: { api_key: "sk-test-not-real", base_url: sim.url } } });
    await writeFile(join(server.dir, "playbooks", "realtime.md"), playbook(`${receiver.origin}/hook`));
    sim.realtime.replies.push({ text: "Thanks for calling Northwind.", audioMs: 800 }, { text: "Your order ships tomorrow.", audioMs: 1000 });
    sim.realtime.transcripts.push("when does my order ship");
    sim.chat.push({ text: "The caller asked about shipping; it ships tomorrow." });

    const client = await CallClient.connect(server.wsUrl);
    const audio: Buffer[] = [];
    client.on("audio", (b: Buffer) => audio.push(Buffer.from(b)));
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "realtime.md" });
    await client.waitFor("answer");
    const greeting = await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    expect(greeting.reason).toBe("finished");
    // 800 ms of 24 kHz model audio, resampled and paced as 20 ms frames of 16 kHz PCM.
    expect(audio.reduce((n, b) => n + b.length, 0)).toBe(800 * 32);
    expect(Math.max(...audio.map(peakOfPcmBytes))).toBeGreaterThan(5000);

    const rt = sim.realtime.connections[0]!;
    expect(rt.headers.authorization).toBe("Bearer sk-test-not-real");
    const session = rt.received.find((e) => e.type === "session.update")!.session as SessionJson;
    expect(session.instructions).toContain("Northwind help line");
    expect(session.audio!.output.voice).toBe("marin");
    expect(session.audio!.input.format).toEqual({ type: "audio/pcm", rate: 24000 });

    await client.streamPcm(new Int16Array([...silence(100), ...tone(500, 16000), ...silence(900)]), 16000, { realtime: true });
    const final = await client.waitFor("asrFinal", undefined, 20_000);
    expect(final.text).toBe("when does my order ship");
    const reply = await client.waitFor("trackEnd", (e) => e.playId !== "greeting", 20_000);
    expect(reply.reason).toBe("finished");
    expect(reply.duration).toBe(1000);
    const history = client.events.filter((e) => e.event === "addHistory").map((e) => [(e as { speaker: string }).speaker, (e as { text: string }).text]);
    expect(history).toEqual([
      ["assistant", "Thanks for calling Northwind."],
      ["user", "when does my order ship"],
      ["assistant", "Your order ships tomorrow."],
    ]);

    client.hangup();
    await client.closed;
    await waitFor(() => receiver!.received.length > 0);
    await server.posthooks.idle();
    const payload = JSON.parse(receiver.received[0]!.body) as { history: { role: string; content: string }[]; summary: unknown; hangupReason: string; playbook: string };
    expect(payload.playbook).toBe("realtime.md");
    expect(payload.hangupReason).toBe("client");
    expect(payload.history.map((h) => [h.role, h.content])).toEqual([
      ["assistant", "Thanks for calling Northwind."],
      ["user", "when does my order ship"],
      ["assistant", "Your order ships tomorrow."],
    ]);
    expect(payload.summary).toBe("The caller asked about shipping; it ships tomorrow.");
    const summaryRequest = sim.requestsTo("/chat/completions")[0]!.body as { messages: { content: string }[] };
    expect(summaryRequest.messages[1]!.content).toContain("Caller: when does my order ship");
    // The Realtime socket closes with the call.
    await waitFor(() => rt.socket.readyState === rt.socket.CLOSED);
  }, 60_000);
});

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
