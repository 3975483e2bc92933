import { describe, expect, it } from "vitest";
import { parsePlaybook } from "./parse.js";
import { locate, parseFrontYaml, scalarCharOffset } from "./yaml-front.js";

const diag = (text: string) => parsePlaybook(text, { file: "p.md" }).diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message}`);

describe("front matter YAML", () => {
  it("allows anchors and aliases", () => {
    const r = parsePlaybook("---\nvariables: &v { a: 1 }\nsip: { hangupHeaders: { X-A: 'x' } }\ntools: []\n---\nHi\n", { file: "p.md" });
    expect(r.diagnostics).toEqual([]);
    const reuse = parseFrontYaml("base: &b { provider: scripted }\nllm: *b\n");
    expect(reuse.value).toEqual({ base: { provider: "scripted" }, llm: { provider: "scripted" } });
    expect(locate(reuse.doc, ["llm", "provider"])?.value).toEqual([21, 29]);
  });

  it("refuses exponential alias expansion with a yaml error instead of hanging or throwing", () => {
    const lines = ["---", "variables:", "  a: &a [x, x, x, x, x, x, x, x, x, x]"];
    let prev = "a";
    for (let i = 0; i < 8; i++) {
      lines.push(`  b${i}: &b${i} [${Array(10).fill(`*${prev}`).join(", ")}]`);
      prev = `b${i}`;
    }
    lines.push("---", "Hi");
    expect(diag(lines.join("\n"))).toEqual(["4:12 yaml YAML: Excessive alias count indicates a resource exhaustion attack"]);
  });

  it("duplicate keys are errors, also when they differ only in YAML type", () => {
    expect(diag("---\nllm: { temperature: 1, temperature: 2 }\ndtmf:\n  1: { action: hangup }\n  '1': { action: hangup }\n---\nHi\n")).toEqual([
      '2:24 yaml duplicate key "temperature"',
      '5:3 yaml duplicate key "1"',
    ]);
  });

  it("uses the YAML 1.2 core schema: yes/no are strings, 0o17 is octal", () => {
    expect(parseFrontYaml("a: yes\nb: 0o17\nc: ~\n").value).toEqual({ a: "yes", b: 15, c: null });
    expect(diag("---\ntts: { cache: yes }\n---\nHi\n")).toEqual(['2:15 type tts.cache must be true or false, got "yes"']);
  });

  it("unknown tags are errors", () => {
    expect(diag("---\nvariables: { a: !secret x }\n---\nHi\n")).toEqual(["2:17 yaml YAML: Unresolved tag: !secret"]);
  });

  it("maps a character of a string value to its offset, by scalar style", () => {
    const text = 'a: plain {{ x }}\nb: "quoted {{ y }}"\nc: |\n  line one\n  two {{ z }}\n';
    const doc = parseFrontYaml(text).doc;
    const at = (key: string, index: number) => scalarCharOffset(text, locate(doc, [key])?.node, index);
    expect(text.slice(at("a", 6))).toMatch(/^\{\{ x/);
    expect(text.slice(at("b", 7))).toMatch(/^\{\{ y/);
    expect(text.slice(at("c", 13))).toMatch(/^\{\{ z/);
  });
});
