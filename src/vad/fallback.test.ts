import { describe, expect, it, vi } from "vitest";
import { TinySileroEngine } from "./tinysilero/index.js";
import { maxAbsDiff, vadFixture } from "./testutil.js";

// As if `npm ci` could not build the addon.
vi.mock("./tinysilero/native.js", () => ({ loadAddon: () => ({ addon: undefined, reason: "test: no addon" }) }));

describe("TinySilero without the native addon", () => {
  it("falls back to the TypeScript forward pass, says so once, and still matches the reference", async () => {
    const warn = vi.fn();
    const a = new TinySileroEngine({ logger: { warn } as never });
    const b = new TinySileroEngine({ logger: { warn } as never });
    expect(a.kernelKind).toBe("ts");
    expect(b.description).toBe("tinysilero (typescript)");
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toEqual({ reason: "test: no addon" });
    const f = await vadFixture(8000);
    const s = a.createStream(8000);
    const p: number[] = [];
    for (let k = 0; k < 300; k++) p.push(s.process(f.pcm, k * 256));
    expect(maxAbsDiff(p, f.reference.slice(0, 300))).toBeLessThanOrEqual(1e-4);
  });

  it("kernel: native refuses to run without it (PROVIDER_ERROR)", () => {
    expect(() => new TinySileroEngine({ kernel: "native" })).toThrow(expect.objectContaining({ code: "PROVIDER_ERROR" }));
  });
});
