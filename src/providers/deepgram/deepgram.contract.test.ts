/**
 * Contract tests: the Deepgram providers against the local simulator (test/sim/deepgram), which speaks the
 * listen v1 WebSocket and speak v1 REST protocols over real loopback sockets.
 */
import { describe, expect, it } from "vitest";
import { useDeepgramSim } from "../../../test/sim/deepgram/use-sim.js";
import { configSchema, type Config, type ConfigInput } from "../../config/schema.js";
import { AppError } from "../../errors.js";
import { rms } from "../pcm.js";
import { resolveAsr, resolveTts } from "../registry.js";
import type { AsrResult, AsrSession } from "../types.js";

const sim = useDeepgramSim();

function config(extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({ providers: { deepgram: { api_key: sim.apiKey, base_url: sim.url, timeout_ms: 1000, max_retries: 0, ...extra } } } as ConfigInput);
}
const RATE = 8000;
const frame = (loud: boolean) => {
  const pcm = new Int16Array(RATE / 50);
  if (loud) for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / RATE));
  return { pcm, sampleRate: RATE, timestampMs: 0 };
};
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Writes `ms` of speech or silence in real time (20 ms frames). */
async function feed(s: AsrSession, ms: number, loud: boolean): Promise<void> {
  for (let t = 0; t < ms; t += 20) {
    s.write(frame(loud));
    await wait(2);
  }
}
function collect(s: AsrSession): { results: AsrResult[]; done: Promise<void> } {
  const results: AsrResult[] = [];
  const done = (async () => {
    for await (const r of s.results) results.push(r);
  })();
  return { results, done };
}
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await wait(5);
  }
}

describe("deepgram asr (listen WebSocket)", () => {
  it("streams interim results as partials, then one final per utterance, with the documented query and auth", async () => {
    sim.script = ["hello there friend", "second turn"];
    const asr = await resolveAsr({ provider: "deepgram", language: "en" }, config());
    expect(asr.capabilities.streaming).toBe(true);
    const s = asr.session();
    const { results, done } = collect(s);
    await feed(s, 500, true);
    await feed(s, 100, false);
    // Partials arrive while the caller still speaks (before endUtterance).
    expect(results.some((r) => r.type === "partial" && r.utterance === 0)).toBe(true);
    s.endUtterance();
    await until(() => results.some((r) => r.type === "final"));
    await feed(s, 400, true);
    await feed(s, 100, false);
    s.endUtterance();
    s.close();
    await done;
    const finals = results.filter((r) => r.type === "final");
    expect(finals).toEqual([
      { type: "final", utterance: 0, text: "hello there friend" },
      { type: "final", utterance: 1, text: "second turn" },
    ]);
    const partials = results.filter((r) => r.type === "partial" && r.utterance === 0).map((r) => (r.type === "partial" ? r.text : ""));
    expect(partials[0]).toBe("hello");
    expect(partials).toContain("hello there");
    const l = sim.listens[0]!;
    expect(l.authorization).toBe(`Token ${sim.apiKey}`);
    expect(l.query).toMatchObject({ model: "nova-3", encoding: "linear16", sample_rate: "8000", interim_results: "true", endpointing: "300", language: "en" });
    expect(l.controls).toContain("Finalize");
    expect(l.controls.at(-1)).toBe("CloseStream");
    expect(l.audioBytes).toBe(((500 + 100 + 400 + 100) / 20) * (RATE / 50) * 2);
  });

  it("endpointing: a speech_final makes the final without an answer to Finalize", async () => {
    sim.script = ["book a table"];
    sim.answerFinalize = false;
    const s = (await resolveAsr({ provider: "deepgram" }, config({ endpointing_ms: 100 }))).session();
    const { results } = collect(s);
    await feed(s, 400, true);
    await feed(s, 200, false); // > 100 ms of silence: the sim's endpointing sends is_final + speech_final
    const t0 = Date.now();
    s.endUtterance();
    await until(() => results.some((r) => r.type === "final"));
    // Well inside FINAL_WAIT_MS (1500): decided by the timeline, not the fallback.
    expect(Date.now() - t0).toBeLessThan(500);
    expect(results.find((r) => r.type === "final")).toEqual({ type: "final", utterance: 0, text: "book a table" });
    s.close();
  });

  it("without endpointing or a Finalize answer, the final still comes after the wait, from the interim text", async () => {
    sim.script = ["one two three"];
    sim.answerFinalize = false;
    const s = (await resolveAsr({ provider: "deepgram" }, config({ endpointing_ms: 0 }))).session();
    const { results } = collect(s);
    await feed(s, 400, true);
    s.endUtterance();
    await until(() => results.some((r) => r.type === "final"), 3000);
    expect(results.find((r) => r.type === "final")).toEqual({ type: "final", utterance: 0, text: "one two three" });
    expect(sim.listens[0]?.query.endpointing).toBe("false");
    s.close();
  });

  it("aborting the session (call ended, barge-in teardown) sends CloseStream and closes the socket", async () => {
    sim.script = ["never mind"];
    const ctrl = new AbortController();
    const s = (await resolveAsr({ provider: "deepgram" }, config())).session({ signal: ctrl.signal });
    const { done } = collect(s);
    await feed(s, 200, true);
    await until(() => sim.listens[0] !== undefined && sim.listens[0].audioBytes > 0);
    ctrl.abort(new Error("hangup"));
    await done;
    await until(() => sim.listens[0]?.closed === true);
    expect(sim.listens[0]?.controls).toContain("CloseStream");
  });

  it("a rejected key (HTTP 401 on upgrade) is a named error about [providers.deepgram] api_key, without the key", async () => {
    const s = (await resolveAsr({ provider: "deepgram" }, config({ api_key: "dg-wrong-secret" }))).session();
    const { results, done } = collect(s);
    s.write(frame(true));
    await done;
    const e = results.find((r) => r.type === "error");
    expect(e?.type).toBe("error");
    const err = (e as Extract<AsrResult, { type: "error" }>).error;
    expect(err.code).toBe("PROVIDER_ERROR");
    expect(err.details).toMatchObject({ provider: "deepgram", status: 401, requestId: "sim-req-401" });
    expect(err.message).toContain("[providers.deepgram] api_key");
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain("dg-wrong-secret");
  });

  it("an upgrade that is never answered is a TIMEOUT naming [providers.deepgram] timeout_ms", async () => {
    sim.hangUpgrade = true;
    const s = (await resolveAsr({ provider: "deepgram" }, config({ timeout_ms: 200 }))).session();
    const { results, done } = collect(s);
    s.write(frame(true));
    await done;
    const err = (results.find((r) => r.type === "error") as Extract<AsrResult, { type: "error" }>).error;
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toContain("[providers.deepgram] timeout_ms");
  });

  it("a missing key is a CONFIG_INVALID at resolve time naming DEEPGRAM_API_KEY", async () => {
    await expect(resolveAsr({ provider: "deepgram" }, config({ api_key: "" }))).rejects.toMatchObject({ code: "CONFIG_INVALID", message: expect.stringContaining("DEEPGRAM_API_KEY") });
  });
});

describe("deepgram tts (speak REST)", () => {
  it("streams frames before the whole body was sent, at the asked rate, with an aura voice", async () => {
    sim.speech = { durationMs: 1000, chunkMs: 20, chunkDelayMs: 15, firstByteDelayMs: 0 };
    const tts = await resolveTts({ provider: "deepgram", voice: "aura-2-andromeda-en", sampleRate: 16000 }, config());
    let firstAt: number | undefined;
    let bytesAtFirst = 0;
    let samples = 0;
    const t0 = Date.now();
    for await (const f of tts.synthesize("Hello from Deepgram.")) {
      if (firstAt === undefined) {
        firstAt = Date.now() - t0;
        bytesAtFirst = sim.speak[0]?.bytesSent ?? 0;
        expect(rms(f.pcm)).toBeGreaterThan(0.1);
      }
      expect(f.sampleRate).toBe(16000);
      samples += f.pcm.length;
    }
    expect(bytesAtFirst).toBeLessThan(16000 * 2 * 0.5);
    expect(samples).toBe(16000);
    const r = sim.speak[0]!;
    expect(r.text).toBe("Hello from Deepgram.");
    expect(r.authorization).toBe(`Token ${sim.apiKey}`);
    expect(r.query).toEqual({ model: "aura-2-andromeda-en", encoding: "linear16", sample_rate: "16000", container: "none" });
  });

  it("an OpenAI default voice (alloy) falls back to [providers.deepgram] tts_model", async () => {
    const tts = await resolveTts({ provider: "deepgram" }, config());
    for await (const _ of tts.synthesize("Hi.")) void _;
    expect(sim.speak[0]?.query.model).toBe("aura-2-thalia-en");
  });

  it("cancelled mid-stream (barge-in) stops reading: the server sees the request go away", async () => {
    sim.speech = { durationMs: 5000, chunkMs: 20, chunkDelayMs: 10, firstByteDelayMs: 0 };
    const tts = await resolveTts({ provider: "deepgram", sampleRate: 8000 }, config());
    const ctrl = new AbortController();
    let frames = 0;
    await expect(
      (async () => {
        for await (const _ of tts.synthesize("A long sentence.", { signal: ctrl.signal })) {
          if (++frames === 5) ctrl.abort(new Error("barge-in"));
        }
      })(),
    ).rejects.toThrow("barge-in");
    await until(() => sim.speak[0]?.aborted === true);
    expect(sim.speak[0]!.bytesSent).toBeLessThan(8000 * 2 * 5);
  });

  it("401 is a named error about [providers.deepgram] api_key, never retried, without the key", async () => {
    const tts = await resolveTts({ provider: "deepgram" }, config({ api_key: "dg-bad-secret", max_retries: 2 }));
    const err = await (async () => {
      try {
        for await (const _ of tts.synthesize("Hi.")) void _;
      } catch (e) {
        return e as AppError;
      }
      throw new Error("expected a failure");
    })();
    expect(err).toBeInstanceOf(AppError);
    expect(err.details).toMatchObject({ provider: "deepgram", status: 401 });
    expect(err.message).toContain("[providers.deepgram] api_key");
    expect(err.message).not.toContain("dg-bad-secret");
  });

  it("no first byte within timeout_ms is a TIMEOUT", async () => {
    sim.speech = { durationMs: 200, chunkMs: 20, chunkDelayMs: 0, firstByteDelayMs: 800 };
    const tts = await resolveTts({ provider: "deepgram" }, config({ timeout_ms: 150 }));
    await expect(
      (async () => {
        for await (const _ of tts.synthesize("Hi.")) void _;
      })(),
    ).rejects.toMatchObject({ code: "TIMEOUT", details: { provider: "deepgram" } });
  });
});

describe("deepgram config", () => {
  it("DEEPGRAM_API_KEY sets [providers.deepgram] api_key, and the key is a redacted secret", async () => {
    const { loadConfig } = await import("../../config/load.js");
    const { config, secrets } = await loadConfig({ env: { DEEPGRAM_API_KEY: "dg-from-env" }, cwd: "/nonexistent-dir-for-test" });
    expect(config.providers.deepgram.api_key).toBe("dg-from-env");
    expect(secrets).toContain("dg-from-env");
  });
});
