/**
 * Loader of the TinySilero native addon (native/, built by `npm ci` through native/build.mjs). Returns undefined
 * with the reason when it is missing or does not load, so that the caller can fall back to the TypeScript pass.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The functions of native/src/binding.c. */
export interface TinySileroAddon {
  create(sampleRate: number, weights: readonly Float32Array[], isa: number): unknown;
  forward(model: unknown, state: Float32Array, input: Float32Array): number;
  isa(model: unknown): string;
  selectIsa(isa: number): string;
}

export type AddonLoad = { addon: TinySileroAddon; path: string } | { addon: undefined; reason: string };

let cached: AddonLoad | undefined;

/** The addon path: <package root>/native/build/Release/tinysilero.node (same depth from src/ and dist/). */
export function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, "..", "..", "..", "native", "build", "Release", "tinysilero.node");
}

export function loadAddon(): AddonLoad {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    cached = { addon: undefined, reason: `${path} not found (npm ci builds it; or run npm run build:native)` };
    return cached;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as TinySileroAddon;
    if (typeof addon.create !== "function" || typeof addon.forward !== "function") throw new Error("unexpected exports");
    cached = { addon, path };
  } catch (err) {
    cached = { addon: undefined, reason: `${path} failed to load: ${(err as Error).message}` };
  }
  return cached;
}
