import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import { AppError } from "../../errors.js";
import { SIM_API_KEY, SIM_AMPLITUDE, useElevenLabsSim } from "./testutil.js";
import { ElevenLabsTts, type ElevenLabsTtsOptions } from "./tts.js";

const sim = useElevenLabsSim();

function tts(over: Partial<ElevenLabsTtsOptions> = {}): ElevenLabsTts {
  return new ElevenLabsTts({ apiKey: SIM_API_KEY, baseUrl: sim.url, voiceId: "voice-default", modelId: "eleven_flash_v2_5", sampleRate: 16000, timeoutMs: 2000, maxRetries: 0, retryDelayMs: 10, ...over });
}

async function collect(it: AsyncIterable<AudioFrame>): Promise<AudioFrame[]> {
  const out: AudioFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

async function failure(it: AsyncIterable<AudioFrame>): Promise<AppError> {
  try {
    await collect(it);
  } catch (err) {
    return err as AppError;
  }
  throw new Error("expected a failure");
}

const peak = (frames: AudioFrame[]) => frames.reduce((m, f) => f.pcm.reduce((a, s) => Math.max(a, Math.abs(s)), m), 0);

describe("ElevenLabs stream-input TTS", () => {
  it("starts the audio of the first sentence while the LLM is still writing the rest", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let textDone = false;
    async function* llm() {
      for (const piece of ["Hel", "lo the", "re, how ", "are you? ", "I am"]) yield piece;
      await gate;
      yield " fine, thanks.";
      textDone = true;
    }
    const frames: AudioFrame[] = [];
    let framesBeforeTextDone = 0;
    const run = (async () => {
      for await (const f of tts().synthesize(llm())) {
        frames.push(f);
        if (!textDone) framesBeforeTextDone++;
        if (frames.length === 10) release();
      }
    })();
    await run;
    expect(textDone).toBe(true);
    expect(framesBeforeTextDone).toBeGreaterThan(0);
    const c = sim.connections[0]!;
    // Words sent whole (each ending with a space), the sentence flushed, then the rest, then the end of input.
    expect(c.messages[0]).toEqual({ text: " " });
    expect(c.messages.at(-1)).toEqual({ text: "" });
    for (const m of c.messages.slice(1, -1)) expect(String(m.text)).toMatch(/\S $/);
    expect(c.messages.find((m) => m.flush === true)?.text).toBe("are you? ");
    expect(c.generations).toEqual(["Hello there, how are you?", "I am fine, thanks."]);
    // 20 ms frames at 16 kHz, timestamps continuous, the sim's tone at its level.
    expect(frames.every((f) => f.sampleRate === 16000)).toBe(true);
    expect(frames[1]!.timestampMs).toBe(20);
    expect(peak(frames)).toBeGreaterThan(SIM_AMPLITUDE * 0.95);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.closed?.code).toBe(1000);
  });

  it("sends the voice, model and output format of the request and the key in the xi-api-key header", async () => {
    const frames = await collect(tts({ sampleRate: 8000, modelId: "eleven_turbo_v2_5" }).synthesize("Hi there.", { voice: "voice-xyz" }));
    const c = sim.connections[0]!;
    expect(c.voiceId).toBe("voice-xyz");
    expect(c.query).toMatchObject({ model_id: "eleven_turbo_v2_5", output_format: "pcm_8000" });
    expect(c.apiKey).toBe(SIM_API_KEY);
    expect(JSON.stringify(c.messages)).not.toContain(SIM_API_KEY);
    expect(c.messages).toEqual([{ text: " " }, { text: "Hi there. ", flush: true }, { text: "" }]);
    expect(frames[0]!.sampleRate).toBe(8000);
    // 9 characters at 40 ms each.
    expect(frames.reduce((n, f) => n + f.pcm.length, 0)).toBe(Math.round(0.36 * 8000));
  });

  it("decodes ulaw_8000 and ignores OpenAI voice names (the config default voice is used)", async () => {
    const frames = await collect(tts({ sampleRate: 8000, outputFormat: "ulaw_8000" }).synthesize("Hello.", { voice: "alloy" }));
    expect(sim.connections[0]!.query.output_format).toBe("ulaw_8000");
    expect(sim.connections[0]!.voiceId).toBe("voice-default");
    expect(peak(frames)).toBeGreaterThan(SIM_AMPLITUDE * 0.9);
    expect(peak(frames)).toBeLessThan(SIM_AMPLITUDE * 1.1);
  });

  it("barge-in: aborting closes the socket at once and delivers no further audio", async () => {
    sim.behaviour.chunkIntervalMs = 40;
    const ctrl = new AbortController();
    const frames: AudioFrame[] = [];
    let afterAbort = 0;
    const err = await (async () => {
      try {
        for await (const f of tts().synthesize("This is a long answer that takes a good while to speak out loud.", { signal: ctrl.signal })) {
          if (ctrl.signal.aborted) afterAbort++;
          frames.push(f);
          if (frames.length === 5) ctrl.abort(new Error("barge-in"));
        }
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toBe("barge-in");
    expect(afterAbort).toBe(0);
    await new Promise((r) => setTimeout(r, 150));
    const c = sim.connections[0]!;
    expect(c.closed).toMatchObject({ code: 1000, byClient: true, reason: "cancelled" });
    expect(c.audioChunksDropped).toBeGreaterThan(0);
  });

  it.each(["message", "http"] as const)("a rejected key (%s) is a non-retried PROVIDER_ERROR naming [providers.elevenlabs] api_key", async (mode) => {
    sim.behaviour.authFailure = mode;
    const err = await failure(tts({ apiKey: "wrong-secret-key", maxRetries: 2 }).synthesize("Hello."));
    expect(err).toBeInstanceOf(AppError);
    expect(err.code).toBe("PROVIDER_ERROR");
    expect(err.details).toMatchObject({ provider: "elevenlabs", reason: "unauthorized", key: "[providers.elevenlabs] api_key" });
    expect(err.message).toContain("[providers.elevenlabs] api_key");
    expect(err.retryable).toBe(false);
    expect(JSON.stringify({ m: err.message, d: err.details, c: String(err.cause) })).not.toContain("wrong-secret-key");
    if (mode === "message") expect(sim.connections).toHaveLength(1);
  });

  it("an exhausted quota is a non-retried PROVIDER_ERROR naming the key setting", async () => {
    sim.behaviour.quotaExceeded = true;
    const err = await failure(tts({ maxRetries: 2 }).synthesize("Hello."));
    expect(err.details).toMatchObject({ reason: "quota_exceeded", vendorCode: "quota_exceeded", key: "[providers.elevenlabs] api_key" });
    expect(err.message).toMatch(/quota exceeded.*\[providers\.elevenlabs\] api_key/);
    expect(sim.connections).toHaveLength(1);
  });

  it("no audio within timeout_ms is a TIMEOUT, retried before any audio", async () => {
    sim.behaviour.silent = true;
    const started = Date.now();
    const err = await failure(tts({ timeoutMs: 200, maxRetries: 1 }).synthesize("Hello."));
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toContain("no audio within 200 ms");
    expect(sim.connections).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it("retries a refused handshake (503) and then speaks", async () => {
    sim.behaviour.refuseNext = 1;
    const frames = await collect(tts({ maxRetries: 1 }).synthesize("Hello."));
    expect(frames.length).toBeGreaterThan(0);
    expect(sim.connections).toHaveLength(1);
  });

  it("the server's input timeout (text stopped coming) is a clear error", async () => {
    async function* stalled() {
      yield "Hello. ";
      await new Promise((r) => setTimeout(r, 5000));
    }
    const err = await failure(tts({ inactivityTimeoutS: 0.3 }).synthesize(stalled()));
    expect(err.details).toMatchObject({ reason: "input_timeout", vendorCode: "input_timeout_exceeded" });
  });
});
