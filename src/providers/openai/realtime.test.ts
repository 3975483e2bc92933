/** The Realtime client's wire shapes (media-protocols.md §5.4) and its handshake with the simulator, OpenAI and Azure. */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../config/schema.js";
import { isAppError } from "../../errors.js";
import { useOpenAiSim } from "../../../test/sim/openai/use-sim.js";
import { resolveRealtime } from "../registry.js";
import type { RealtimeEvent, RealtimeSession } from "../types.js";
import { OpenAiRealtime } from "./realtime.js";
import { realtimeHeaders, realtimeUrl, sessionJson } from "./realtime-protocol.js";

const sim = useOpenAiSim();

const base = { apiKey: "k-secret", model: "gpt-realtime" };

describe("realtime protocol shapes", () => {
  it("URLs and headers: OpenAI (Bearer, beta header) and Azure (api-key, deployment, api-version)", () => {
    expect(realtimeUrl({ ...base, flavor: "openai", baseUrl: "https://api.openai.com/v1/", protocol: "ga" })).toBe("wss://api.openai.com/v1/realtime?model=gpt-realtime");
    expect(realtimeHeaders({ ...base, flavor: "openai", baseUrl: "x", protocol: "ga" })).toEqual({ Authorization: "Bearer k-secret" });
    expect(realtimeHeaders({ ...base, flavor: "openai", baseUrl: "x", protocol: "beta", organization: "org1" })).toEqual({
      Authorization: "Bearer k-secret",
      "OpenAI-Organization": "org1",
      "OpenAI-Beta": "realtime=v1",
    });
    const az = { ...base, flavor: "azure" as const, baseUrl: "https://res.openai.azure.com/", model: "rt-deploy", apiVersion: "2025-04-01-preview" };
    expect(realtimeUrl({ ...az, protocol: "ga" })).toBe("wss://res.openai.azure.com/openai/v1/realtime?model=rt-deploy");
    expect(realtimeUrl({ ...az, protocol: "beta" })).toBe("wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=rt-deploy");
    expect(realtimeHeaders({ ...az, protocol: "ga" })).toEqual({ "api-key": "k-secret" });
  });

  it("beta session shape: g711 names, transcription, local turn detection as null", () => {
    expect(
      sessionJson(
        { instructions: "i", voice: "alloy", audioFormat: "pcmu", turnDetection: { type: "local" }, inputTranscription: { model: "whisper-1" }, tools: [{ name: "f", parameters: { type: "object" } }] },
        "beta",
      ),
    ).toEqual({
      instructions: "i",
      modalities: ["text", "audio"],
      voice: "alloy",
      input_audio_format: "g711_ulaw",
      output_audio_format: "g711_ulaw",
      input_audio_transcription: { model: "whisper-1" },
      turn_detection: null,
      tools: [{ type: "function", name: "f", parameters: { type: "object" } }],
      tool_choice: "auto",
    });
  });

  it("GA scene update carries only type, instructions and tools; semantic_vad keeps its eagerness", () => {
    expect(sessionJson({ instructions: "new", tools: [] }, "ga")).toEqual({ type: "realtime", instructions: "new", tools: [], tool_choice: "auto" });
    const s = sessionJson({ turnDetection: { type: "semantic_vad", eagerness: "low" }, audioFormat: "pcma" }, "ga") as { audio: { input: Record<string, unknown> } };
    expect(s.audio.input).toEqual({ format: { type: "audio/pcma" }, turn_detection: { type: "semantic_vad", eagerness: "low", create_response: true, interrupt_response: true } });
  });
});

async function collect(session: RealtimeSession, until: (e: RealtimeEvent) => boolean): Promise<RealtimeEvent[]> {
  const out: RealtimeEvent[] = [];
  for await (const e of session.events) {
    out.push(e);
    if (until(e)) break;
  }
  return out;
}

describe("realtime client against the simulator", () => {
  it("Azure GA: /openai/v1/realtime?model=<deployment> with the api-key header and no bearer token", async () => {
    const config = configSchema.parse({ providers: { azure: { endpoint: sim.origin, api_key: "az-secret" } } });
    const provider = await resolveRealtime({ provider: "azure", model: "rt-deploy" }, config);
    expect(provider.name).toBe("azure");
    const session = await provider.connect({ instructions: "hi", audioFormat: "pcm16" });
    await collect(session, (e) => e.type === "session_updated");
    const conn = sim.realtime.connections[0]!;
    expect(conn.path).toBe("/openai/v1/realtime");
    expect(conn.query).toEqual({ model: "rt-deploy" });
    expect(conn.headers["api-key"]).toBe("az-secret");
    expect(conn.headers.authorization).toBeUndefined();
    expect(conn.received[0]).toMatchObject({ type: "session.update", session: { type: "realtime", instructions: "hi" } });
    await session.close();
  });

  it("beta protocol: the beta header, and beta event names read as the same events (audio decoded to PCM)", async () => {
    sim.realtime.replies.push({ text: "Hello there", audioMs: 300 });
    const provider = new OpenAiRealtime({ ...base, flavor: "openai", baseUrl: sim.url, protocol: "beta" });
    const session = await provider.connect({ audioFormat: "pcm16", voice: "alloy" });
    session.createResponse();
    const events = await collect(session, (e) => e.type === "response_done");
    const conn = sim.realtime.connections[0]!;
    expect(conn.beta).toBe(true);
    expect(conn.received[0]).toMatchObject({ type: "session.update", session: { voice: "alloy", input_audio_format: "pcm16" } });
    const audio = events.filter((e): e is Extract<RealtimeEvent, { type: "audio" }> => e.type === "audio");
    expect(audio.reduce((n, e) => n + e.frame.pcm.length, 0)).toBe(300 * 24);
    expect(audio.every((e) => e.frame.sampleRate === 24000)).toBe(true);
    expect(Math.max(...audio[0]!.frame.pcm.map(Math.abs))).toBeGreaterThan(5000);
    expect(events.find((e) => e.type === "transcript" && e.final)).toMatchObject({ text: "Hello there" });
    expect(events.at(-1)).toMatchObject({ type: "response_done", status: "completed", usage: { totalTokens: 12 } });
    await session.close();
  });

  it("a failed connect is a PROVIDER_ERROR whose message never carries the key", async () => {
    const provider = new OpenAiRealtime({ ...base, flavor: "openai", baseUrl: "http://127.0.0.1:9/v1", protocol: "ga" });
    const err = await provider.connect({}).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe("PROVIDER_ERROR");
    expect(String((err as Error).message)).not.toContain("k-secret");
  });
});
