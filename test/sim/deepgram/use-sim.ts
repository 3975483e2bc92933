/** Vitest wiring for the Deepgram simulator: one server per test file, reset before every test. */
import { afterAll, beforeAll, beforeEach } from "vitest";
import { DeepgramSim } from "./server.js";

export function useDeepgramSim(): DeepgramSim {
  const sim = new DeepgramSim();
  beforeAll(() => sim.start());
  afterAll(() => sim.close());
  beforeEach(() => sim.reset());
  return sim;
}
