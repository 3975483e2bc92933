import { describe, expect, it } from "vitest";
import type { AudioFrame } from "../../audio/index.js";
import { AppError } from "../../errors.js";
import type { AudioProcessor } from "./processors.js";
import { ProcessorRegistry } from "./processors.js";

function gain(name: string, g: number, log: string[]): AudioProcessor {
  return {
    name,
    process(frame: AudioFrame) {
      for (let i = 0; i < frame.pcm.length; i++) frame.pcm[i] = Math.round((frame.pcm[i] as number) * g);
      return frame;
    },
    close: () => log.push(`close ${name}`),
  };
}

describe("ProcessorRegistry and ProcessorChain", () => {
  it("builds a per-call chain of user processors, run in order, in place", async () => {
    const log: string[] = [];
    const reg = new ProcessorRegistry()
      .register({ name: "double", create: () => gain("double", 2, log) })
      .register({ name: "gain", create: async (_ctx, opts) => gain("gain", (opts as { g: number }).g, log) });
    const chain = await reg.createChain(["double", { name: "gain", options: { g: 3 } }], { sampleRate: 8000 });
    const frame: AudioFrame = { pcm: Int16Array.of(1, -2, 3), sampleRate: 8000, timestampMs: 0 };
    expect(chain.process(frame)).toBe(frame);
    expect(Array.from(frame.pcm)).toEqual([6, -12, 18]);
    chain.close();
    chain.close();
    expect(log).toEqual(["close double", "close gain"]);
  });

  it("rejects unknown names and duplicate registrations", async () => {
    const reg = new ProcessorRegistry().register({ name: "a", create: () => gain("a", 1, []) });
    expect(() => reg.register({ name: "a", create: () => gain("a", 1, []) })).toThrow(/already registered/);
    await expect(reg.createChain(["a", "nope"], { sampleRate: 8000 })).rejects.toBeInstanceOf(AppError);
  });

  it("takes a throwing processor out of the chain and keeps going", async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const reg = new ProcessorRegistry()
      .register({ name: "bad", create: () => ({ name: "bad", process: () => { throw new Error("boom"); }, close: () => log.push("close bad") }) })
      .register({ name: "double", create: () => gain("double", 2, log) });
    const chain = await reg.createChain(["bad", "double"], { sampleRate: 8000 }, (e, p) => errors.push(`${p}: ${e.message}`));
    const frame: AudioFrame = { pcm: Int16Array.of(5), sampleRate: 8000, timestampMs: 0 };
    chain.process(frame);
    chain.process(frame);
    expect(frame.pcm[0]).toBe(20);
    expect(errors).toEqual(["bad: boom"]);
    expect(chain.names).toEqual(["double"]);
    expect(log).toEqual(["close bad"]);
  });
});
