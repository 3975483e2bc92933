import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createVadEngine } from "./index.js";
import { loadSileroWeights, readSileroModel, SILERO_V5_SHA256, sileroModelPath, sileroWeightShapes } from "./silero-model.js";
import { TinySileroEngine } from "./tinysilero/index.js";

describe("Silero v5 model file", () => {
  it("is found in @ricky0123/vad-web, hash checked, parsed once with every weight of both branches", () => {
    const path = sileroModelPath();
    expect(path).toMatch(/@ricky0123\/vad-web\/dist\/silero_vad_v5\.onnx$/);
    const w = loadSileroWeights(path);
    expect(loadSileroWeights(path)).toBe(w); // shared
    for (const sr of [16000, 8000] as const) {
      const shapes = sileroWeightShapes(sr);
      expect(w[sr].tensors.map((t) => t.length)).toEqual(shapes.map((s) => s.reduce((a, b) => a * b, 1)));
    }
    // the decoder biases differ per branch (the branches have their own weights)
    expect(w[16000].tensors[14]?.[0]).toBeCloseTo(-0.19063705205917358, 7);
    expect(w[8000].tensors[14]?.[0]).toBeCloseTo(-0.4019045829772949, 7);
  });

  it("rejects a tampered copy (sha256) with an INTERNAL error naming both hashes", () => {
    const dir = mkdtempSync(join(tmpdir(), "silero-"));
    const bad = join(dir, "silero_vad_v5.onnx");
    const bytes = readFileSync(sileroModelPath());
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 1;
    writeFileSync(bad, bytes);
    let err: unknown;
    try {
      readSileroModel(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "INTERNAL", retryable: false });
    expect((err as Error).message).toContain(SILERO_V5_SHA256);
    expect(() => new TinySileroEngine({ modelPath: bad })).toThrow(/sha256/);
    // an untouched copy is accepted
    const good = join(dir, "good.onnx");
    copyFileSync(sileroModelPath(), good);
    expect(readSileroModel(good).length).toBe(bytes.length);
  });

  it("a missing file is a PROVIDER_ERROR naming the path", async () => {
    expect(() => readSileroModel("/nonexistent/silero.onnx")).toThrow(expect.objectContaining({ code: "PROVIDER_ERROR" }));
    await expect(createVadEngine("tinysilero", { tinysilero: { modelPath: "/nonexistent/silero.onnx" } })).rejects.toMatchObject({
      code: "PROVIDER_ERROR",
      message: expect.stringContaining("/nonexistent/silero.onnx"),
    });
  });
});
