/** The README is the user's manual: its tables and commands must match the code and CI. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { knownKeys } from "../src/config/issues.js";
import { configSchema } from "../src/config/schema.js";
import { parsePlaybook } from "../src/playbook/index.js";
import { makeSoundsDir } from "./fixtures/playbooks/sounds.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const ci = readFileSync(new URL("../.ci/run", import.meta.url), "utf8");

describe("README", () => {
  it("documents every config key in its section's table", () => {
    const sectionText = (heading: string) => {
      const start = readme.indexOf(`#### \`${heading}`);
      if (start < 0) return "";
      const end = readme.indexOf("\n#### ", start + 1);
      return readme.slice(start, end < 0 ? undefined : end);
    };
    const rowFor = (text: string, key: string) => new RegExp("\\| `" + key + "`( / `\\w+`)* \\||/ `" + key.split(".").pop() + "` \\|").test(text);
    const missing: string[] = [];
    for (const section of knownKeys(configSchema, [])) {
      if (section === "defaults") {
        for (const sub of knownKeys(configSchema, ["defaults"])) if (!sectionText("[defaults.asr]").includes(`[defaults.${sub}]`)) missing.push(`defaults.${sub}`);
      } else if (section === "providers") {
        const text = sectionText("[providers.*]");
        for (const vendor of knownKeys(configSchema, ["providers"])) {
          for (const key of knownKeys(configSchema, ["providers", vendor])) if (!rowFor(text, `providers.${vendor}.${key}`)) missing.push(`providers.${vendor}.${key}`);
        }
      } else {
        const text = sectionText(`[${section}]`);
        for (const key of knownKeys(configSchema, [section])) {
          if (key === "rules") {
            for (const rk of knownKeys(configSchema, [section, key, 0])) if (!rowFor(text, rk)) missing.push(`${section}.rules.${rk}`);
          } else if (!rowFor(text, key)) missing.push(`${section}.${key}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it("shows the run and test commands, and CI runs exactly that test command", () => {
    const run = /\| run the controller \| `([^`]+)` \|/.exec(readme)?.[1];
    const test = /\| run the tests \| `([^`]+)` \|/.exec(readme)?.[1];
    expect(run).toBe("npm ci && npx active-call");
    expect(test).toBeDefined();
    const ciLines = ci.split("\n").map((l) => l.trim());
    expect(ciLines).toContain(test);
  });

  it("its example playbook passes validation", () => {
    const example = /```markdown\n(---\n[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const sounds = makeSoundsDir(["billing/hold.wav"]);
    try {
      const result = parsePlaybook(example as string, { file: "README-example.md", env: { CRM_HOOK_URL: "https://crm.example.com/hook" }, soundsDir: sounds.dir });
      expect(result.diagnostics).toEqual([]);
      expect(result.playbook).toBeDefined();
    } finally {
      sounds.remove();
    }
  });
});
