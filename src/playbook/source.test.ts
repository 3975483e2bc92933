import { describe, expect, it } from "vitest";
import { expandWithPositions } from "./env.js";
import { parsePlaybook } from "./parse.js";
import { decodePlaybook, firstInvalidUtf8, LineIndex, MAX_PLAYBOOK_BYTES, splitFrontMatter } from "./source.js";

const opts = { file: "p.md", env: {} };

describe("file checks", () => {
  it("rejects a file over 1 MiB at 1:1", () => {
    const text = `---\n---\n${"x".repeat(MAX_PLAYBOOK_BYTES)}`;
    const r = parsePlaybook(text, opts);
    expect(r.playbook).toBeUndefined();
    expect(r.diagnostics).toEqual([
      { file: "p.md", line: 1, column: 1, severity: "error", code: "front-matter", message: `the file is ${MAX_PLAYBOOK_BYTES + 8} bytes; a playbook must be at most 1 MiB` },
    ]);
  });

  it("accepts exactly 1 MiB", () => {
    const head = "---\n---\n";
    const r = parsePlaybook(Buffer.from(head + "x".repeat(MAX_PLAYBOOK_BYTES - head.length)), opts);
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  it("reports invalid UTF-8 at the line and column of the bad byte", () => {
    const bytes = Buffer.concat([Buffer.from("---\n---\nHello\nWorld é "), Buffer.from([0xc3, 0x28]), Buffer.from(" end\n")]);
    const r = parsePlaybook(bytes, opts);
    expect(r.diagnostics).toEqual([
      { file: "p.md", line: 4, column: 9, severity: "error", code: "front-matter", message: "the file is not valid UTF-8 (byte 0xc3 at offset 23)" },
    ]);
  });

  it("finds overlong encodings, surrogates and truncated sequences", () => {
    expect(firstInvalidUtf8(Buffer.from("aé€😀"))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc0, 0x80]))).toBe(1); // overlong NUL
    expect(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80]))).toBe(0); // UTF-16 surrogate
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xe2, 0x82]))).toBe(2); // cut short
    expect(firstInvalidUtf8(Uint8Array.from([0xf5, 0x80, 0x80, 0x80]))).toBe(0); // above U+10FFFF
  });

  it("tolerates a BOM before the first line; columns count from after it", () => {
    const r = parsePlaybook("\uFEFF---\nllm:\n  temprature: 1\n---\nHi\n", opts);
    expect(r.diagnostics.map((d) => [d.line, d.column, d.code])).toEqual([[3, 3, "unknown-key"]]);
    expect(decodePlaybook(Buffer.from("\uFEFF---\n")).ok && decodePlaybook(Buffer.from("\uFEFFx")))
      .toEqual({ ok: true, text: "x" });
  });

  it("accepts CRLF line ends, with the same positions", () => {
    const r = parsePlaybook("---\r\nllm:\r\n  temprature: 1\r\n---\r\nHi\r\n", opts);
    expect(r.diagnostics.map((d) => [d.line, d.column, d.code])).toEqual([[3, 3, "unknown-key"]]);
  });
});

describe("front matter delimiters", () => {
  it("line 1 must be exactly ---", () => {
    expect(splitFrontMatter("--- \nx: 1\n---\n")).toEqual({ ok: false, message: 'the first line must be exactly "---"', offset: 0 });
    expect(splitFrontMatter("\n---\n---\n").ok).toBe(false);
    expect(splitFrontMatter("----\n---\n").ok).toBe(false);
  });

  it("the first later line that is exactly --- closes it; a longer or indented one does not", () => {
    const text = "---\na: 1\n ---\n----\n---\nbody\n---\n";
    const r = splitFrontMatter(text);
    expect(r).toEqual({ ok: true, parts: { frontStart: 4, frontEnd: 19, bodyStart: 23 } });
    expect(text.slice(23)).toBe("body\n---\n");
  });

  it("a closing line at the end of the file without a newline", () => {
    expect(splitFrontMatter("---\na: 1\n---")).toEqual({ ok: true, parts: { frontStart: 4, frontEnd: 9, bodyStart: 12 } });
  });

  it("an empty front matter is valid", () => {
    const r = parsePlaybook("---\n---\nHello.\n", opts);
    expect(r.diagnostics).toEqual([]);
    expect(r.playbook?.scenes.get("default")?.prompt).toBe("Hello.");
  });

  it("a scalar front matter is not a mapping", () => {
    const r = parsePlaybook("---\njust text\n---\nHi\n", opts);
    expect(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message}`)).toEqual([
      '2:1 front-matter the front matter must be a YAML mapping of keys to values, got the value "just text"',
    ]);
  });
});

describe("line index", () => {
  it("maps offsets to 1-based line:column", () => {
    const idx = new LineIndex("ab\ncd\n\nx");
    expect(idx.positionAt(0)).toEqual({ line: 1, column: 1 });
    expect(idx.positionAt(2)).toEqual({ line: 1, column: 3 });
    expect(idx.positionAt(3)).toEqual({ line: 2, column: 1 });
    expect(idx.positionAt(6)).toEqual({ line: 3, column: 1 });
    expect(idx.positionAt(7)).toEqual({ line: 4, column: 1 });
    expect(idx.positionAt(99)).toEqual({ line: 4, column: 2 });
  });
});

describe("${ENV} expansion with positions", () => {
  const lookup = (env: Record<string, string>) => (name: string) => env[name];

  it("expands variables and defaults, and $${ as a literal", () => {
    const r = expandWithPositions("a: ${A}\nb: ${B:-dflt}\nc: $${A}\nd: ${E:-}", lookup({ A: "alpha", E: "" }));
    expect(r.text).toBe("a: alpha\nb: dflt\nc: ${A}\nd: ");
    expect(r.unset).toEqual([]);
  });

  it("maps offsets after a longer or shorter value back to the original", () => {
    const src = "x: ${LONG} y: ${S} z";
    const r = expandWithPositions(src, lookup({ LONG: "a-much-longer-value", S: "" }));
    expect(r.text).toBe("x: a-much-longer-value y:  z");
    expect(src[r.toSource(r.text.indexOf("y"))]).toBe("y");
    expect(src[r.toSource(r.text.indexOf("z"))]).toBe("z");
    expect(r.toSource(0)).toBe(0);
    // Inside an expanded value: the `$` of its token.
    expect(r.toSource(r.text.indexOf("longer"))).toBe(3);
  });

  it("reports each unset variable at its $ and keeps the token", () => {
    const r = expandWithPositions("a: ${X}\nb: ${Y}\nc: ${X:-ok}", lookup({}));
    expect(r.unset).toEqual([
      { name: "X", offset: 3 },
      { name: "Y", offset: 11 },
    ]);
    expect(r.text).toBe("a: ${X}\nb: ${Y}\nc: ok");
  });

  it("is applied to the front matter only, never to the body", () => {
    const r = parsePlaybook("---\nvariables:\n  who: ${WHO}\n---\nCost: ${PRICE} for {{ who }}\n", { file: "p.md", env: { WHO: "Ada" } });
    expect(r.diagnostics).toEqual([]);
    expect(r.playbook?.variables).toEqual({ who: "Ada" });
    expect(r.playbook?.scenes.get("default")?.prompt).toBe("Cost: ${PRICE} for {{ who }}");
  });

  it("keeps positions of later errors on a line whose value changed length", () => {
    const text = "---\nvad: { type: ${VAD}, threshold: 7 }\nllm: { provider: '${P:-scripted}', temperature: 9 }\n---\nHi\n";
    const r = parsePlaybook(text, { file: "p.md", env: { VAD: "tinysilero" } });
    expect(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual(["2:33 type", "3:49 type"]);
    expect(text.split("\n")[1]?.[32]).toBe("7");
    expect(text.split("\n")[2]?.[48]).toBe("9");
  });

  it("$${ gives a literal ${ in a value", () => {
    const r = parsePlaybook('---\ngreeting: "costs $${PRICE}"\n---\nHi\n', { file: "p.md", env: {} });
    expect(r.diagnostics).toEqual([]);
    expect(r.playbook?.greeting).toEqual({ text: "costs ${PRICE}", interruptible: true, generate: false });
  });
});
