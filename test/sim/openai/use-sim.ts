/** Vitest wiring for the OpenAI simulator: one server per test file, reset before every test. */
import { afterAll, beforeAll, beforeEach } from "vitest";
import { OpenAiSim } from "./server.js";

/** Starts a simulator for this file; the returned simulator is usable inside tests (after beforeAll). */
export function useOpenAiSim(): OpenAiSim {
  const sim = new OpenAiSim();
  beforeAll(async () => {
    await sim.start();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());
  return sim;
}
