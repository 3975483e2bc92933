import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lintFiles, runLintCommand, type LintIo } from "./lint.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ac-lint-"));
  mkdirSync(join(dir, "books", "nested"), { recursive: true });
  writeFileSync(join(dir, "books", "good.md"), "---\nllm: { provider: scripted }\n---\nHello.\n");
  writeFileSync(join(dir, "books", "warn.md"), "---\n---\nHello {{ nobody }}.\n");
  writeFileSync(join(dir, "books", "notes.txt"), "not a playbook");
  writeFileSync(join(dir, "books", ".hidden.md"), "broken");
  writeFileSync(join(dir, "books", "nested", "deep.md"), "broken");
  writeFileSync(join(dir, "bad.md"), "no front matter\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(config?: LintIo["config"]) {
  const out = { stdout: "", stderr: "" };
  const value: LintIo = {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    env: {},
    cwd: dir,
    config,
  };
  return { io: value, out };
}

describe("lintFiles", () => {
  it("a directory means the *.md files directly inside it, in name order", async () => {
    const r = await lintFiles(["books"], { cwd: dir });
    expect(r.output).toBe('books/warn.md:3:10: warning[undefined-variable]: variable "nobody" is never defined in this playbook\n2 files, 0 errors, 1 warnings\n');
    expect(r.exitCode).toBe(0);
  });

  it("warnings fail only with strict", async () => {
    expect((await lintFiles(["books/warn.md"], { cwd: dir, strict: true })).exitCode).toBe(1);
    expect((await lintFiles(["books/good.md"], { cwd: dir, strict: true })).exitCode).toBe(0);
  });

  it("errors exit 1", async () => {
    const r = await lintFiles(["bad.md", "books/good.md"], { cwd: dir });
    expect(r.output).toBe('bad.md:1:1: error[front-matter]: the first line must be exactly "---"\n2 files, 1 errors, 0 warnings\n');
    expect(r.exitCode).toBe(1);
  });

  it("an unreadable or missing file exits 2, and the others are still linted", async () => {
    const r = await lintFiles(["missing.md", "bad.md"], { cwd: dir });
    expect(r.errors).toBe("missing.md: cannot read: ENOENT\n");
    expect(r.output).toContain("bad.md:1:1: error[front-matter]");
    expect(r.output).toContain("1 files, 1 errors, 0 warnings");
    expect(r.exitCode).toBe(2);
  });

  it("--json prints an array, and no summary", async () => {
    const r = await lintFiles(["bad.md"], { cwd: dir, json: true });
    expect(JSON.parse(r.output)).toEqual([
      { file: "bad.md", line: 1, column: 1, severity: "error", code: "front-matter", message: 'the first line must be exactly "---"' },
    ]);
    expect((await lintFiles(["books/good.md"], { cwd: dir, json: true })).output).toBe("[]\n");
  });

  it("uses the configured sounds folder, relative to cwd", async () => {
    mkdirSync(join(dir, "snd"), { recursive: true });
    writeFileSync(join(dir, "snd", "a.wav"), "RIFF");
    writeFileSync(join(dir, "play.md"), '---\nllm: { provider: scripted }\n---\n<play file="a.wav"/>\nHi\n');
    expect((await lintFiles(["play.md"], { cwd: dir, config: { paths: { sounds: "snd" } } })).exitCode).toBe(0);
    const r = await lintFiles(["play.md"], { cwd: dir });
    expect(r.output).toContain(`play.md:4:13: error[file]: file "a.wav" does not exist in the sounds folder ${join(dir, "sounds")}`);
  });
});

describe("runLintCommand", () => {
  it("parses --json and --strict, accepts --conf (handled by the caller), returns the exit code", async () => {
    const { io: ioValue, out } = io();
    expect(await runLintCommand(["--strict", "books/warn.md", "--conf", "x.toml"], ioValue)).toBe(1);
    expect(out.stdout).toContain("1 files, 0 errors, 1 warnings");
    const json = io();
    expect(await runLintCommand(["books/good.md", "--json"], json.io)).toBe(0);
    expect(json.out.stdout).toBe("[]\n");
  });

  it("usage errors exit 2 on stderr", async () => {
    const a = io();
    expect(await runLintCommand([], a.io)).toBe(2);
    expect(a.out.stderr).toBe("active-call lint: give at least one playbook file or directory\nUsage: active-call lint <file|dir>... [--json] [--strict] [--conf <path>]\n");
    const b = io();
    expect(await runLintCommand(["--jsn", "x.md"], b.io)).toBe(2);
    expect(b.out.stderr).toMatch(/^active-call lint: Unknown option '--jsn'/);
    expect(b.out.stdout).toBe("");
  });

  it("--help prints the usage and exits 0", async () => {
    const h = io();
    expect(await runLintCommand(["--help"], h.io)).toBe(0);
    expect(h.out.stdout).toMatch(/^Usage: active-call lint/);
  });

  it("uses the config and environment it is given", async () => {
    writeFileSync(join(dir, "key.md"), "---\nllm: { provider: openai }\nasr: { provider: scripted }\ntts: { provider: scripted }\n---\nHi\n");
    const without = io();
    expect(await runLintCommand(["key.md", "--strict"], without.io)).toBe(1);
    expect(without.out.stdout).toContain("key.md:2:18: warning[provider]");
    const withKey = io({ providers: { openai: { api_key: "sk" } } });
    expect(await runLintCommand(["key.md", "--strict"], withKey.io)).toBe(0);
  });
});
