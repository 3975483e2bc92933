/**
 * Contract tests: the OpenAI providers against the local simulator (test/sim/openai), which speaks the same
 * HTTP/SSE protocol, with the injected faults that decide the retry policy.
 */
import { describe, expect, it } from "vitest";
import { simTone } from "../../../test/sim/openai/server.js";
import { useOpenAiSim } from "../../../test/sim/openai/use-sim.js";
import { configSchema, type Config, type ConfigInput } from "../../config/schema.js";
import { AppError } from "../../errors.js";
import { concatPcm, rms } from "../pcm.js";
import { resolveAsr, resolveLlm, resolveTts } from "../registry.js";
import type { LlmEvent, LlmProvider } from "../types.js";

const sim = useOpenAiSim();

function config(extra: { openai?: Record<string, unknown>; azure?: Record<string, unknown> } = {}): Config {
  return configSchema.parse({
    providers: {
      openai: { api_key: "sk-test-123", base_url: sim.url, max_retries: 2, timeout_ms: 2000, ...extra.openai },
      azure: { endpoint: sim.origin, api_key: "az-key-456", ...extra.azure },
    },
  } as ConfigInput);
}
const fast = { retry: { baseDelayMs: 5 } };

async function collect(llm: LlmProvider, text = "hi", signal?: AbortSignal): Promise<LlmEvent[]> {
  const out: LlmEvent[] = [];
  for await (const e of llm.chat({ messages: [{ role: "user", content: text }], signal })) out.push(e);
  return out;
}
const textOf = (events: LlmEvent[]) => events.map((e) => (e.type === "text" ? e.delta : "")).join("");
async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error("expected a rejection");
}

describe("openai llm (chat completions)", () => {
  it("streams text split at arbitrary bytes, including inside UTF-8 characters", async () => {
    const text = "Grüße aus Köln — 你好，世界 🎉 done.";
    sim.chat.push({ text, writeBytes: 3, deltaChars: 2 });
    const llm = await resolveLlm({ provider: "openai", model: "gpt-4o-mini" }, config(), fast);
    const events = await collect(llm);
    expect(textOf(events)).toBe(text);
    const done = events.at(-1);
    expect(done).toEqual({ type: "done", finishReason: "stop", usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15 } });
    const req = sim.requests[0]!;
    expect(req.path).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe("Bearer sk-test-123");
    expect(req.body).toMatchObject({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] });
  });

  it("assembles tool calls by index across chunks and parses their arguments", async () => {
    sim.chat.push({
      text: "One moment.",
      toolCalls: [
        { id: "call_a", name: "lookup_order", arguments: '{"order_number":"A-1234","note":"größe"}' },
        { id: "call_b", name: "transfer_call", arguments: '{"target":"billing"}' },
        { id: "call_c", name: "broken", arguments: '{"x":' },
      ],
      argChars: 3,
      writeBytes: 5,
    });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const events = await collect(llm, "where is my order");
    expect(textOf(events)).toBe("One moment.");
    const calls = events.filter((e) => e.type === "tool_call");
    expect(calls).toEqual([
      { type: "tool_call", id: "call_a", name: "lookup_order", arguments: { order_number: "A-1234", note: "größe" }, argumentsText: '{"order_number":"A-1234","note":"größe"}' },
      { type: "tool_call", id: "call_b", name: "transfer_call", arguments: { target: "billing" }, argumentsText: '{"target":"billing"}' },
      { type: "tool_call", id: "call_c", name: "broken", arguments: undefined, argumentsText: '{"x":', error: "invalid arguments" },
    ]);
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "tool_calls" });
  });

  it("sends tools, history with tool calls, and max_tokens to a compatible server", async () => {
    const llm = await resolveLlm({ provider: "openai", maxTokens: 300, temperature: 0.4 }, config(), fast);
    const out: LlmEvent[] = [];
    for await (const e of llm.chat({
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "order?" },
        { role: "assistant", content: null, toolCalls: [{ id: "call_1", name: "lookup_order", arguments: '{"n":1}' }] },
        { role: "tool", toolCallId: "call_1", content: '{"status":"shipped"}' },
      ],
      tools: [{ name: "lookup_order", description: "find", parameters: { type: "object", properties: { n: { type: "number" } } } }],
    })) out.push(e);
    const body = sim.requests[0]!.body;
    expect(body.max_tokens).toBe(300);
    expect(body.max_completion_tokens).toBeUndefined();
    expect(body.temperature).toBe(0.4);
    expect(body.tool_choice).toBe("auto");
    expect(body.tools).toEqual([{ type: "function", function: { name: "lookup_order", description: "find", parameters: { type: "object", properties: { n: { type: "number" } } } } }]);
    expect(body.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "order?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup_order", arguments: '{"n":1}' } }] },
      { role: "tool", tool_call_id: "call_1", content: '{"status":"shipped"}' },
    ]);
  });

  it("uses max_completion_tokens for api.openai.com", async () => {
    const llm = await resolveLlm({ provider: "openai", maxTokens: 50 }, config({ openai: { base_url: "https://api.openai.com/v1" } }), fast);
    expect((llm as unknown as { body: (r: unknown) => Record<string, unknown> }).body({ messages: [] })).toMatchObject({ max_completion_tokens: 50 });
  });

  it("talks to Azure with the deployment path, api-version and api-key header", async () => {
    const llm = await resolveLlm({ provider: "azure", model: "my-gpt4o" }, config(), fast);
    expect(textOf(await collect(llm, "hola"))).toBe("You said: hola");
    const req = sim.requests[0]!;
    expect(req.path).toBe("/openai/deployments/my-gpt4o/chat/completions");
    expect(req.query["api-version"]).toBe("2024-10-21");
    expect(req.headers["api-key"]).toBe("az-key-456");
    expect(req.headers.authorization).toBeUndefined();
  });

  it("retries 429 (honouring retry-after) and 500 before the first byte", async () => {
    sim.chat.push({ fault: "status", status: 429, retryAfter: "0.2" }, { fault: "status", status: 500 }, { text: "ok" });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const t0 = Date.now();
    expect(textOf(await collect(llm))).toBe("ok");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(3);
  });

  it("gives up after max_retries with PROVIDER_ERROR carrying the status", async () => {
    sim.chat.push({ fault: "status", status: 503 }, { fault: "status", status: 503 }, { fault: "status", status: 502 });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const err = await rejection(collect(llm));
    expect(err.code).toBe("PROVIDER_ERROR");
    expect(err.details).toMatchObject({ provider: "openai", status: 502 });
    expect(sim.requestsTo("/chat/completions")).toHaveLength(3);
  });

  it.each([400, 401, 404])("does not retry %i", async (status) => {
    sim.chat.push({ fault: "status", status }, { text: "never" });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const err = await rejection(collect(llm));
    expect(err.code).toBe("PROVIDER_ERROR");
    expect(err.details.status).toBe(status);
    expect(err.retryable).toBe(false);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
  });

  it("times out a stall before the first byte, retries it, and fails with TIMEOUT when it persists", async () => {
    sim.chat.push({ fault: "stall" }, { text: "recovered" });
    const llm = await resolveLlm({ provider: "openai", timeoutMs: 300 }, config(), fast);
    expect(textOf(await collect(llm))).toBe("recovered");

    sim.chat.push({ fault: "stall" }, { fault: "stall" }, { fault: "stall" });
    const err = await rejection(collect(llm));
    expect(err.code).toBe("TIMEOUT");
    expect(sim.requestsTo("/chat/completions")).toHaveLength(5);
  });

  it("does not retry a stream dropped after output started", async () => {
    sim.chat.push({ fault: "drop", afterBytes: 400, reply: { text: "This reply will be cut somewhere in the middle of it.", writeBytes: 50 } }, { text: "never" });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const events: LlmEvent[] = [];
    const err = await rejection(
      (async () => {
        for await (const e of llm.chat({ messages: [{ role: "user", content: "x" }] })) events.push(e);
      })(),
    );
    expect(err.code).toBe("PROVIDER_ERROR");
    expect(textOf(events).length).toBeGreaterThan(0);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
  });

  it("retries a connection dropped before any byte", async () => {
    sim.chat.push({ fault: "drop", afterBytes: 0 }, { text: "second try" });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    expect(textOf(await collect(llm))).toBe("second try");
    expect(sim.requestsTo("/chat/completions")).toHaveLength(2);
  });

  it("aborts mid-stream at once, with the signal's reason", async () => {
    sim.chat.push({ text: "a long reply ".repeat(200), writeBytes: 20 });
    const llm = await resolveLlm({ provider: "openai" }, config(), fast);
    const ac = new AbortController();
    let deltas = 0;
    const reason = new Error("barge-in");
    await expect(
      (async () => {
        for await (const e of llm.chat({ messages: [{ role: "user", content: "x" }], signal: ac.signal })) {
          if (e.type === "text" && ++deltas === 3) ac.abort(reason);
        }
      })(),
    ).rejects.toBe(reason);
    expect(deltas).toBe(3);
  });

  it("aborts a stalled request without waiting for the timeout", async () => {
    sim.chat.push({ fault: "stall" });
    const llm = await resolveLlm({ provider: "openai", timeoutMs: 10000 }, config(), fast);
    const t0 = Date.now();
    await expect(collect(llm, "x", AbortSignal.timeout(100))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
  });
});

describe("openai asr (transcriptions)", () => {
  const utterance = { pcm: simTone(800, 16000), sampleRate: 16000 };

  it("streams deltas for gpt-4o-mini-transcribe and sends a 16 kHz WAV", async () => {
    sim.transcriptions.push({ text: "please transfer me to billing", deltaChars: 5, writeBytes: 3 });
    const asr = await resolveAsr({ provider: "openai", language: "en", prompt: "billing" }, config(), fast);
    expect(asr.capabilities.streaming).toBe(true);
    const results = [];
    for await (const r of asr.transcribe({ pcm: simTone(800, 8000), sampleRate: 8000 })) results.push(r);
    expect(results.filter((r) => r.type === "partial").length).toBeGreaterThan(3);
    expect(results.at(-1)).toEqual({ type: "final", utterance: 0, text: "please transfer me to billing" });
    const req = sim.requests[0]!;
    expect(req.path).toBe("/v1/audio/transcriptions");
    expect(req.body).toMatchObject({ model: "gpt-4o-mini-transcribe", stream: "true", language: "en", prompt: "billing", response_format: "json" });
    expect(req.file?.name).toBe("turn.wav");
    const wav = req.file!.bytes;
    expect(new DataView(wav.buffer, wav.byteOffset).getUint32(24, true)).toBe(16000);
  });

  it("does not ask whisper-1 to stream", async () => {
    sim.transcriptions.push({ text: "hello there" });
    const asr = await resolveAsr({ provider: "openai", model: "whisper-1" }, config(), fast);
    expect(asr.capabilities.streaming).toBe(false);
    const results = [];
    for await (const r of asr.transcribe(utterance)) results.push(r);
    expect(results).toEqual([{ type: "final", utterance: 0, text: "hello there" }]);
    expect(sim.requests[0]!.body.stream).toBeUndefined();
  });

  it("never sends a segment under 0.1 s", async () => {
    const asr = await resolveAsr({ provider: "openai" }, config(), fast);
    const results = [];
    for await (const r of asr.transcribe({ pcm: new Int16Array(1000), sampleRate: 16000 })) results.push(r);
    expect(results).toEqual([{ type: "final", utterance: 0, text: "" }]);
    expect(sim.requests).toHaveLength(0);
  });

  it("retries 429 then succeeds; a session numbers utterances and reports failures per utterance", async () => {
    sim.transcriptions.push({ fault: "status", status: 429, retryAfterMs: 10 }, { text: "first" }, { fault: "status", status: 400 }, { text: "third" });
    const asr = await resolveAsr({ provider: "openai", streaming: false }, config(), fast);
    const session = asr.session();
    for (let i = 0; i < 3; i++) {
      session.write({ pcm: utterance.pcm, sampleRate: 16000, timestampMs: 0 });
      session.endUtterance();
    }
    session.close();
    const results = [];
    for await (const r of session.results) results.push(r);
    expect(results.map((r) => [r.type, r.utterance, r.type === "final" ? r.text : r.type === "error" ? r.error.details.status : ""])).toEqual([
      ["final", 0, "first"],
      ["error", 1, 400],
      ["final", 2, "third"],
    ]);
  });
});

describe("openai tts (speech)", () => {
  it("streams pcm with odd-byte chunks and resamples 24 kHz to the requested rate", async () => {
    const pcm = simTone(500);
    sim.speech.push({ pcm, writeBytes: 333 });
    const tts = await resolveTts({ provider: "openai", sampleRate: 16000, instructions: "cheerful", speed: 1.1 }, config(), fast);
    const frames = [];
    for await (const f of tts.synthesize("Hello there.")) frames.push(f);
    expect(frames.every((f) => f.sampleRate === 16000)).toBe(true);
    expect(frames.slice(0, -1).every((f) => f.pcm.length === 320)).toBe(true);
    const out = concatPcm(frames);
    expect(Math.abs(out.length - 8000)).toBeLessThanOrEqual(2);
    // A 440 Hz tone survives: same energy (within 5 %), and the odd-byte splits did not garble the samples.
    expect(rms(out)).toBeCloseTo(rms(pcm), 1);
    expect(frames.map((f) => f.timestampMs).slice(0, 3)).toEqual([0, 20, 40]);
    const body = sim.requests[0]!.body;
    expect(body).toEqual({ model: "gpt-4o-mini-tts", input: "Hello there.", voice: "alloy", response_format: "pcm", speed: 1.1, instructions: "cheerful" });
  });

  it("omits instructions for tts-1 and sends one request per sentence of a text stream", async () => {
    const tts = await resolveTts({ provider: "openai", model: "tts-1", voice: "nova", instructions: "calm" }, config(), fast);
    async function* deltas() {
      yield "First sen";
      yield "tence. Second";
      yield " one! Third";
    }
    const frames = [];
    for await (const f of tts.synthesize(deltas())) frames.push(f);
    const bodies = sim.requestsTo("/audio/speech").map((r) => r.body);
    expect(bodies.map((b) => b.input)).toEqual(["First sentence.", "Second one!", "Third"]);
    expect(bodies.every((b) => b.instructions === undefined && b.voice === "nova" && b.model === "tts-1")).toBe(true);
    // Timestamps run on across sentences.
    expect(frames.at(-1)!.timestampMs).toBeGreaterThan(500);
  });

  it("retries a 500 before audio, but not a drop after audio started", async () => {
    sim.speech.push({ fault: "status", status: 500 }, { durationMs: 300 });
    const tts = await resolveTts({ provider: "openai" }, config(), fast);
    const frames = [];
    for await (const f of tts.synthesize("One.")) frames.push(f);
    expect(concatPcm(frames).length).toBeGreaterThan(4500);

    sim.requests.length = 0;
    sim.speech.push({ fault: "drop", afterBytes: 4000, reply: { durationMs: 1000 } }, { durationMs: 300 });
    const got = [];
    await expect(
      (async () => {
        for await (const f of tts.synthesize("Two.")) got.push(f);
      })(),
    ).rejects.toMatchObject({ code: "PROVIDER_ERROR" });
    expect(got.length).toBeGreaterThan(0);
    expect(sim.requestsTo("/audio/speech")).toHaveLength(1);
  });

  it("stops on abort", async () => {
    sim.speech.push({ durationMs: 5000, writeBytes: 101 });
    const tts = await resolveTts({ provider: "openai" }, config(), fast);
    const ac = new AbortController();
    let n = 0;
    await expect(
      (async () => {
        for await (const _f of tts.synthesize("Long.", { signal: ac.signal })) if (++n === 5) ac.abort(new Error("stop"));
      })(),
    ).rejects.toThrow("stop");
    expect(n).toBe(5);
  });
});
