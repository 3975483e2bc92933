// The seeded fuzz set CI runs: every target, a fixed seed, a couple of hundred cases each, after the inputs that
// once crashed a parser (`npm run fuzz` runs 100k per target with a fresh seed).
import fc from "fast-check";
import { describe, it } from "vitest";
import { fuzzProperty, TARGETS } from "./targets.js";

const SEED = 20261207;
const RUNS = 200;

describe("fuzz targets (seeded)", () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${RUNS} cases, no crash, every rejection named`, async () => {
      const property = fuzzProperty(target);
      const examples = (target.regressions ?? []).map((r) => [r] as [unknown]);
      // On failure fast-check shrinks and prints the seed and path that replay it.
      if (target.async) await fc.assert(property as fc.IAsyncProperty<[unknown]>, { seed: SEED, numRuns: RUNS, examples });
      else fc.assert(property as fc.IProperty<[unknown]>, { seed: SEED, numRuns: RUNS, examples });
    }, 60_000);
  }
});
