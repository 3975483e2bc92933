import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveSoundFile } from "./files.js";
import { parsePlaybook } from "./parse.js";

let root: string;
let sounds: string;
beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "ac-files-")));
  sounds = join(root, "sounds");
  mkdirSync(join(sounds, "prompts"), { recursive: true });
  writeFileSync(join(sounds, "prompts", "hi.wav"), "RIFF");
  writeFileSync(join(root, "secret.wav"), "RIFF");
  symlinkSync(join(root, "secret.wav"), join(sounds, "escape.wav"));
  symlinkSync(root, join(sounds, "up"));
  symlinkSync(join(sounds, "prompts", "hi.wav"), join(sounds, "alias.wav"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("sound files stay inside the sounds folder", () => {
  it("accepts a file inside, and a symbolic link that stays inside", () => {
    expect(resolveSoundFile("prompts/hi.wav", sounds)).toEqual({ ok: true, path: join(sounds, "prompts", "hi.wav") });
    expect(resolveSoundFile("./prompts/hi.wav", sounds).ok).toBe(true);
    expect(resolveSoundFile("alias.wav", sounds)).toEqual({ ok: true, path: join(sounds, "prompts", "hi.wav") });
  });

  it.each([
    ["../secret.wav", 'must stay inside the sounds folder (no "..")'],
    ["prompts/../../secret.wav", 'must stay inside the sounds folder (no "..")'],
    ["prompts\\..\\..\\secret.wav", 'must stay inside the sounds folder (no "..")'],
    ["/etc/passwd", "is an absolute path; give a path relative to the sounds folder"],
    ["C:/Windows/win.ini", "is an absolute path; give a path relative to the sounds folder"],
    ["\\\\server\\share\\x.wav", "is an absolute path; give a path relative to the sounds folder"],
    ["a\0b.wav", "contains a NUL character"],
    ["", "is empty"],
  ])("rejects %j", (file, problem) => {
    expect(resolveSoundFile(file, sounds)).toEqual({ ok: false, problem });
  });

  it("rejects a symbolic link that leads out, to a file or through a folder", () => {
    const out = `leads outside the sounds folder ${sounds} (through a symbolic link)`;
    expect(resolveSoundFile("escape.wav", sounds)).toEqual({ ok: false, problem: out });
    expect(resolveSoundFile("up/secret.wav", sounds)).toEqual({ ok: false, problem: out });
  });

  it("rejects missing files and folders", () => {
    expect(resolveSoundFile("nope.wav", sounds)).toEqual({ ok: false, problem: `does not exist in the sounds folder ${sounds}` });
    expect(resolveSoundFile("prompts", sounds)).toEqual({ ok: false, problem: `is not a file in the sounds folder ${sounds}` });
  });

  it("without a folder checks the shape only; templates are checked when rendered", () => {
    expect(resolveSoundFile("anything.wav", undefined)).toEqual({ ok: true, path: undefined });
    expect(resolveSoundFile("../x.wav", undefined).ok).toBe(false);
    expect(resolveSoundFile("{{ lang }}/hi.wav", sounds)).toEqual({ ok: true, path: undefined });
  });

  it("<play file>, greeting.play and ambiance.path escape attempts are file errors at the value", () => {
    const text = [
      "---",
      "greeting: { play: escape.wav }",
      "ambiance: { path: up/secret.wav }",
      "---",
      '<play file="../secret.wav"/>',
      '<play file="/etc/passwd"/>',
      '<play file="prompts/hi.wav"/>',
      'Or write <play file="prompts/../../secret.wav"/> when asked.',
    ].join("\n");
    const r = parsePlaybook(text, { file: "p.md", soundsDir: sounds });
    expect(r.playbook).toBeUndefined();
    expect(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.code} ${d.message.replace(sounds, "<sounds>")}`)).toEqual([
      '2:19 file greeting.play "escape.wav" leads outside the sounds folder <sounds> (through a symbolic link)',
      '3:19 file ambiance.path "up/secret.wav" leads outside the sounds folder <sounds> (through a symbolic link)',
      '5:13 file file "../secret.wav" must stay inside the sounds folder (no "..")',
      '6:13 file file "/etc/passwd" is an absolute path; give a path relative to the sounds folder',
      '8:22 file file "prompts/../../secret.wav" must stay inside the sounds folder (no "..")',
    ]);
  });
});
