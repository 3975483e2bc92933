/**
 * Both halves together: an Asterisk call (ARI simulator, externalMedia RTP in µ-law as recorded in run 1) running a
 * Realtime playbook against the OpenAI simulator. An 8 kHz µ-law leg runs the Realtime session in `audio/pcmu`
 * (no resampling), the model's audio reaches the caller through the paced RTP leg, the caller's turn comes back
 * as a transcript, and a caller hangup ends the call.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { WireEvent } from "../../src/call/session.js";
import { AriSim } from "../sim/asterisk/ari-sim.js";
import { asteriskMediaFactory } from "../sim/asterisk/media-peers.js";
import { useOpenAiSim } from "../sim/openai/use-sim.js";
import { until, useCleanups } from "../wait.js";
import { startServer, type TestServer } from "./harness.js";

const openai = useOpenAiSim();
const cleanup = useCleanups();

function tone(ms: number, rate: number): Int16Array {
  const out = new Int16Array(Math.round((ms * rate) / 1000));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / rate));
  return out;
}

const PLAYBOOK = `---
realtime:
  provider: openai
  voice: marin
greeting: "Thanks for calling Northwind."
---
You are the Northwind help line.
`;

describe("a Realtime playbook on an Asterisk call", () => {
  it("runs the session in µ-law on a ulaw RTP leg, plays the model's audio to the caller, and takes the caller's turn", async () => {
    const sim = await AriSim.start({ user: "active-call", password: "pw", media: asteriskMediaFactory(), lateEventsMs: 30 });
    cleanup(() => sim.close());
    const min = 44000 + 2 * Math.floor(Math.random() * 3000);
    const server: TestServer = await startServer({
      providers: { openai: { api_key: "sk-test-not-real", base_url: openai.url } },
      asterisk: { enabled: true, ari_url: sim.url, ari_password: "pw", media: "rtp", format: "ulaw", rtp_bind_ip: "127.0.0.1", rtp_port_min: min, rtp_port_max: min + 40 },
    });
    cleanup(() => server.stop());
    await writeFile(join(server.dir, "playbooks", "realtime.md"), PLAYBOOK);
    await until("ARI", () => server.asterisk?.status().connected === true);
    openai.realtime.replies.push({ text: "Thanks for calling Northwind.", audioMs: 800 }, { text: "Your order ships tomorrow.", audioMs: 600 });
    openai.realtime.transcripts.push("when does my order ship");

    const caller = await sim.placeCall({ caller: "100", exten: "9000", args: ["playbook=realtime.md"] });
    await until("the call", () => server.calls.get(caller.id)?.state === "active");
    const events: WireEvent[] = [];
    server.calls.get(caller.id)?.subscribe((e) => events.push(e));
    expect(sim.rest.find((r) => r.path === "/ari/channels/externalMedia")?.query).toMatchObject({ format: "ulaw", encapsulation: "rtp" });

    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    const rt = openai.realtime.connections[0];
    const session = rt?.received.find((e) => e.type === "session.update")?.session as { audio?: { input: { format?: unknown }; output: { format?: unknown } } } | undefined;
    expect(session?.audio?.input.format).toEqual({ type: "audio/pcmu" });
    expect(session?.audio?.output.format).toEqual({ type: "audio/pcmu" });
    // 800 ms of model audio at 8 kHz reached the caller over RTP.
    const media = caller.media();
    expect(media?.agentAudio().rate).toBe(8000);
    expect(media?.agentAudio().pcm.length).toBeGreaterThanOrEqual(800 * 8);

    // The caller speaks (µ-law RTP in 30 ms packets, as recorded), then Asterisk sends nothing.
    await media?.sendCaller(tone(600, 8000), 8000);
    await until("the caller's transcript", () => events.some((e) => e.event === "asrFinal"));
    expect(events.find((e) => e.event === "asrFinal")?.text).toBe("when does my order ship");
    // What the caller said went to the model as µ-law, untouched by any resampler: 600 ms = 4800 bytes at least.
    const appended = (rt?.received ?? []).filter((e) => e.type === "input_audio_buffer.append").reduce((n, e) => n + Buffer.from(String(e.audio), "base64").length, 0);
    expect(appended).toBeGreaterThanOrEqual(4800);
    await until("the reply", () => events.some((e) => e.event === "trackEnd" && e.playId !== "greeting"));

    caller.hangup(16);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "caller" });
  }, 60_000);
});
