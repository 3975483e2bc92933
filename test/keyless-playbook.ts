/**
 * The drop-ins' promise that an agent number works on a fresh install: the playbook it names parses and needs no
 * API key (no realtime service; asr, tts and llm resolve, with an empty config, to local engines).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { configSchema } from "../src/config/schema.js";
import { parsePlaybook } from "../src/playbook/parse.js";
import { resolveName } from "../src/providers/registry.js";

export async function expectKeylessPlaybook(playbooksDir: string, name: string): Promise<void> {
  const file = join(playbooksDir, name);
  const parsed = parsePlaybook(readFileSync(file), { file });
  expect(parsed.diagnostics.filter((d) => d.severity === "error"), name).toEqual([]);
  const settings = parsed.playbook!.settings;
  expect(settings.realtime, `${name} needs a realtime service`).toBeUndefined();
  const config = configSchema.parse({});
  for (const kind of ["asr", "tts", "llm"] as const) {
    const provider = await resolveName(kind, settings[kind], config, { binaryExists: async () => true });
    expect(["openai", "azure"], `${name} ${kind} resolves to ${provider}`).not.toContain(provider);
  }
}
