/**
 * Broken playbooks (test/fixtures/playbooks/broken/*.md), each with its exact expected lint output in the
 * `.expected` file beside it: file:line:column, severity, code and message of every diagnostic.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSoundsDir } from "../../test/fixtures/playbooks/sounds.js";
import { DIAGNOSTIC_CODES } from "./diagnostics.js";
import { lintFiles } from "./lint.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DIR = "test/fixtures/playbooks/broken";
const fixtures = readdirSync(`${ROOT}/${DIR}`).filter((n) => n.endsWith(".md")).sort();
// VAD_TYPE is longer than its `${VAD_TYPE}` token: positions after it on the same line must still be right.
const ENV = { VAD_TYPE: "tinysilero" };

let sounds: ReturnType<typeof makeSoundsDir>;
beforeAll(() => {
  sounds = makeSoundsDir();
});
afterAll(() => sounds.remove());

async function lint(paths: string[], extra: { json?: boolean; strict?: boolean } = {}) {
  const r = await lintFiles(paths, { cwd: ROOT, env: ENV, config: { paths: { sounds: sounds.dir } }, ...extra });
  return { ...r, output: r.output.replaceAll(sounds.dir, "<sounds>") };
}

describe("broken playbooks", () => {
  it.each(fixtures)("%s gives exactly its expected diagnostics", async (name) => {
    const expected = readFileSync(`${ROOT}/${DIR}/${name.replace(/\.md$/, ".expected")}`, "utf8").trimEnd().split("\n");
    const r = await lint([`${DIR}/${name}`]);
    const lines = r.output.trimEnd().split("\n");
    expect(lines.slice(0, -1)).toEqual(expected);
    const errors = expected.filter((l) => /: error\[/.test(l)).length;
    expect(lines.at(-1)).toBe(`1 files, ${errors} errors, ${expected.length - errors} warnings`);
    expect(r.exitCode).toBe(errors > 0 ? 1 : 0);
  });

  it("cover every diagnostic code of playbook.md §8", () => {
    const seen = new Set<string>();
    for (const name of fixtures) {
      const text = readFileSync(`${ROOT}/${DIR}/${name.replace(/\.md$/, ".expected")}`, "utf8");
      for (const m of text.matchAll(/: (?:error|warning)\[([a-z-]+)\]: /g)) seen.add(m[1] as string);
    }
    expect([...DIAGNOSTIC_CODES].filter((c) => !seen.has(c))).toEqual([]);
  });

  it("reproduce the examples of playbook.md §8 at their positions", async () => {
    const r = await lint([DIR]);
    const at = (file: string, rest: string) => `${DIR}/${file}:${rest}`;
    for (const line of [
      at("first-line.md", '1:1: error[front-matter]: the first line must be exactly "---"'),
      at("unknown-key.md", '6:3: error[unknown-key]: unknown key "temprature" in llm; did you mean "temperature"?'),
      at("env.md", "9:20: error[env]: environment variable NORTHWIND_API_TOKEN is not set; use ${NORTHWIND_API_TOKEN:-value} to give a default"),
      at("type.md", '12:12: error[type]: followup.timeout must be an integer number of milliseconds (≥ 100), got "10s"'),
      at("alias-conflict.md", "13:5: error[alias-conflict]: followup.max and followup.maxCount are both set; keep one"),
      // The spec's example lists the ASR providers of its day; deepgram (issue 22) has joined them since.
      at("provider.md", '4:13: error[provider]: asr.provider "aliyun" is not available; available: openai, deepgram, pocketsphinx, scripted'),
      at("duplicate-scene.md", '31:1: error[duplicate-scene]: scene "balance" is already defined at line 22'),
      at("unknown-scene.md", '27:34: error[unknown-scene]: <goto scene="closng"/> names no scene; scenes: menu, balance, card, closing'),
      at("unknown-collector.md", '24:1: error[unknown-collector]: <collect type="acount"> names no collector; collectors: account, pin'),
      at("scene-header.md", '18:1: error[scene-header]: "## Scene: menu" is not a scene header; use "# Scene: menu"'),
      at("template.md", '40:17: error[template]: expected "}}" to close "{{ caller"'),
      at("warnings.md", '52:1: warning[unreachable-scene]: scene "survey" is never entered'),
    ]) {
      expect(r.output.split("\n")).toContain(line);
    }
  });

  it("lint a directory: every *.md inside, one summary, exit code 1", async () => {
    const r = await lint([DIR]);
    expect(r.output.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^${fixtures.length} files, \\d+ errors, \\d+ warnings$`));
    expect(r.exitCode).toBe(1);
    expect(r.errors).toBe("");
  });

  it("--json prints the same diagnostics as objects", async () => {
    const text = await lint([`${DIR}/env.md`]);
    const json = await lint([`${DIR}/env.md`], { json: true });
    const list = JSON.parse(json.output) as { file: string; line: number; column: number; severity: string; code: string; message: string }[];
    expect(list.map((d) => `${d.file}:${d.line}:${d.column}: ${d.severity}[${d.code}]: ${d.message}`)).toEqual(text.output.trimEnd().split("\n").slice(0, -1));
    expect(Object.keys(list[0] ?? {})).toEqual(["file", "line", "column", "severity", "code", "message"]);
  });
});
