import { describe, expect, it } from "vitest";
import { configSchema } from "../config/schema.js";
import { AppError } from "../errors.js";
import { concatPcm, PcmBytes, rms, WavStream } from "./pcm.js";
import { checkProviders, resolveAsr, resolveLlm, resolveName, resolveProvider, resolveTts } from "./registry.js";
import { ScriptedAsr, ScriptedLlm, ScriptedTts } from "./scripted.js";
import { SentenceSplitter } from "./text.js";
import type { AsrResult, LlmEvent } from "./types.js";

async function chat(llm: ScriptedLlm, text: string): Promise<LlmEvent[]> {
  const out: LlmEvent[] = [];
  for await (const e of llm.chat({ messages: [{ role: "user", content: text }] })) out.push(e);
  return out;
}
const textOf = (events: LlmEvent[]) => events.map((e) => (e.type === "text" ? e.delta : "")).join("");

describe("scripted providers", () => {
  it("llm: first matching rule (case-insensitive) with {{ text }}, else the echo fallback", async () => {
    const llm = new ScriptedLlm({ rules: [{ match: "billing", reply: "Transferring you. <transfer to=\"billing\"/>" }, { match: "^hi", reply: "Hello! You said {{text}}." }] });
    expect(textOf(await chat(llm, "Please transfer me to BILLING"))).toBe('Transferring you. <transfer to="billing"/>');
    expect(textOf(await chat(llm, "hi there"))).toBe("Hello! You said hi there.");
    const events = await chat(llm, "what time is it");
    expect(textOf(events)).toBe("You said: what time is it");
    expect(events.filter((e) => e.type === "text").length).toBeGreaterThan(1);
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "stop" });
  });

  it("llm: scripted turns with tool calls", async () => {
    const llm = new ScriptedLlm({ turns: [{ text: "Checking.", toolCalls: [{ name: "lookup_order", arguments: { n: "A1" } }, { name: "bad", arguments: "{oops" }] }] });
    const events = await chat(llm, "order?");
    expect(events.filter((e) => e.type === "tool_call")).toEqual([
      { type: "tool_call", id: "call_scripted_0_0", name: "lookup_order", arguments: { n: "A1" }, argumentsText: '{"n":"A1"}' },
      { type: "tool_call", id: "call_scripted_0_1", name: "bad", arguments: undefined, argumentsText: "{oops", error: "invalid arguments" },
    ]);
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "tool_calls" });
    // Script used up: the rules (echo) apply again.
    expect(textOf(await chat(llm, "thanks"))).toBe("You said: thanks");
  });

  it("asr: one script entry per utterance, then empty; each session starts over", async () => {
    const asr = new ScriptedAsr({ script: ["one two", "three"], partials: true });
    for (let round = 0; round < 2; round++) {
      const s = asr.session();
      for (let i = 0; i < 3; i++) {
        s.write({ pcm: new Int16Array(320), sampleRate: 16000, timestampMs: 0 });
        s.endUtterance();
      }
      s.close();
      const finals: AsrResult[] = [];
      const partials: AsrResult[] = [];
      for await (const r of s.results) (r.type === "final" ? finals : partials).push(r);
      expect(finals.map((r) => (r.type === "final" ? r.text : ""))).toEqual(["one two", "three", ""]);
      expect(partials.length).toBe(3);
    }
  });

  it("tts: 440 Hz, 60 ms per character, at the requested rate, deterministic", async () => {
    const tts = new ScriptedTts({ sampleRate: 8000 });
    const frames = [];
    for await (const f of tts.synthesize("Hello.")) frames.push(f);
    const pcm = concatPcm(frames);
    expect(pcm.length).toBe(6 * 60 * 8);
    expect(frames[0]!.pcm.length).toBe(160);
    expect(rms(pcm)).toBeGreaterThan(0.1);
    // Zero crossings give the frequency: 440 Hz -> 880 crossings per second.
    let crossings = 0;
    for (let i = 1; i < pcm.length; i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) crossings++;
    expect(crossings / (pcm.length / 8000)).toBeCloseTo(880, -1);
  });
});

describe("pcm and text helpers", () => {
  it("carries an odd byte across chunks", () => {
    const p = new PcmBytes();
    const bytes = new Uint8Array([0x01, 0x02, 0x03, 0x04, 0xff, 0x7f]);
    const out = [...p.push(bytes.subarray(0, 3)), ...p.push(bytes.subarray(3, 5)), ...p.push(bytes.subarray(5))];
    expect(out).toEqual([0x0201, 0x0403, 0x7fff]);
  });

  it("reads a streamed WAV with a placeholder size, split anywhere", () => {
    const header = new Uint8Array(44);
    const v = new DataView(header.buffer);
    header.set([0x52, 0x49, 0x46, 0x46], 0);
    v.setUint32(4, 0x7ffff024, true);
    header.set([0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20], 8);
    v.setUint32(16, 16, true);
    v.setUint16(20, 1, true);
    v.setUint16(22, 1, true);
    v.setUint32(24, 22050, true);
    v.setUint32(28, 44100, true);
    v.setUint16(32, 2, true);
    v.setUint16(34, 16, true);
    header.set([0x64, 0x61, 0x74, 0x61], 36);
    v.setUint32(40, 0x7ffff000, true);
    const all = new Uint8Array([...header, 1, 0, 2, 0, 3, 0]);
    const w = new WavStream("x");
    const got = [...w.push(all.subarray(0, 10)), ...w.push(all.subarray(10, 45)), ...w.push(all.subarray(45))];
    expect(w.format?.sampleRate).toBe(22050);
    expect(got).toEqual([1, 2, 3]);
  });

  it("splits a delta stream into sentences", () => {
    const s = new SentenceSplitter();
    expect(s.push("Hello there. It costs 3.5")).toEqual(["Hello there."]);
    expect(s.push(" dollars! Ok")).toEqual(["It costs 3.5 dollars!"]);
    expect(s.push("？好的。")).toEqual(["Ok？", "好的。"]);
    expect(s.end()).toBeUndefined();
  });
});

describe("registry", () => {
  const keyless = configSchema.parse({});
  const keyed = configSchema.parse({ providers: { openai: { api_key: "sk-x" } } });

  it("auto: openai with a key; else pocketsphinx, flite (else espeak) and scripted", async () => {
    expect(await resolveName("asr", undefined, keyed)).toBe("openai");
    expect(await resolveName("tts", undefined, keyed)).toBe("openai");
    expect(await resolveName("llm", undefined, keyed)).toBe("openai");
    expect(await resolveName("asr", undefined, keyless)).toBe("pocketsphinx");
    expect(await resolveName("llm", undefined, keyless)).toBe("scripted");
    expect(await resolveName("tts", undefined, keyless, { binaryExists: async () => true })).toBe("flite");
    expect(await resolveName("tts", undefined, keyless, { binaryExists: async () => false })).toBe("espeak");
    // A key in the playbook section counts too.
    expect(await resolveName("llm", { apiKey: "sk-y" }, keyless)).toBe("openai");
  });

  it("builds the named providers, ignoring OpenAI voice names for local engines", async () => {
    expect((await resolveAsr({ provider: "scripted", script: ["a"] }, keyless)).name).toBe("scripted");
    const tts = await resolveTts({ provider: "espeak" }, keyless, { sampleRate: 8000 });
    expect(tts.name).toBe("espeak");
    expect(tts.sampleRate).toBe(8000);
    expect((tts as unknown as { options: { voice: string } }).options.voice).toBe("en-us");
    expect((await resolveLlm(undefined, keyless)).name).toBe("scripted");
    expect((await resolveProvider("llm", { provider: "openai" }, keyed)).name).toBe("openai");
  });

  it("fails at load for an unknown provider, naming the available ones", async () => {
    const err = await resolveProvider("asr", { provider: "aliyun" as never }, keyless).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("CONFIG_INVALID");
    expect((err as AppError).message).toBe('unknown asr provider "aliyun"; available: openai, deepgram, pocketsphinx, scripted, auto');
  });

  it("fails at load for openai or azure without a key, naming the environment variable", async () => {
    await expect(resolveProvider("llm", { provider: "openai" }, keyless)).rejects.toThrow(/OPENAI_API_KEY/);
    await expect(resolveProvider("tts", { provider: "openai" }, keyless)).rejects.toThrow(/OPENAI_API_KEY/);
    await expect(resolveProvider("llm", { provider: "azure" }, keyless)).rejects.toThrow(/AZURE_OPENAI_ENDPOINT/);
    const withEndpoint = configSchema.parse({ providers: { azure: { endpoint: "https://x.openai.azure.com" } } });
    await expect(resolveProvider("llm", { provider: "azure" }, withEndpoint)).rejects.toThrow(/AZURE_OPENAI_API_KEY/);
    await expect(resolveProvider("realtime", { provider: "openai" }, keyless)).rejects.toThrow(/OPENAI_API_KEY/);
  });

  it("checkProviders lists nothing to fix for a keyed config", async () => {
    expect(await checkProviders(keyed)).toEqual([]);
  });
});
