import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { confinedWritePath, fileNameProblem, isInside } from "./paths.js";

describe("isInside", () => {
  it("accepts files below the root only", () => {
    expect(isInside("/srv/sounds", "/srv/sounds/a.wav")).toBe(true);
    expect(isInside("/srv/sounds", "/srv/sounds/x/../b.wav")).toBe(true);
    expect(isInside("/srv/sounds", "/srv/sounds")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/other/a.wav")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/sounds/../secret")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/soundsX/a.wav")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/sounds/..hidden")).toBe(true);
  });
});

describe("fileNameProblem", () => {
  it.each([
    ["", "is empty"],
    ["a\u0000.wav", "NUL"],
    ["/etc/x.wav", "absolute"],
    ["C:\\x.wav", "absolute"],
    ["\\\\server\\x.wav", "absolute"],
    ["../x.wav", '".."'],
    ["a/../../x.wav", '".."'],
    ["..\\x.wav", '".."'],
    ["..%2fx.wav", "URL-encoded"],
    ["%2e%2e/x.wav", "URL-encoded"],
    ["%2E%2E%5Cx.wav", "URL-encoded"],
  ])("%j is refused (%s)", (name, why) => {
    expect(fileNameProblem(name)).toContain(why);
  });
  it.each(["a.wav", "day/{id}.wav", "..hidden.wav", "a..b.wav", "100%.wav"])("%j is fine", (name) => {
    expect(fileNameProblem(name)).toBeUndefined();
  });
});

describe("confinedWritePath", () => {
  it("creates folders inside the root, and refuses a folder or file that links out", async () => {
    const base = await mkdtemp(join(tmpdir(), "paths-"));
    try {
      const root = join(base, "rec");
      const outside = join(base, "outside");
      await mkdir(outside);
      await mkdir(root);
      await symlink(outside, join(root, "out"));
      await writeFile(join(outside, "victim.wav"), "x");
      await symlink(join(outside, "victim.wav"), join(root, "link.wav"));
      await mkdir(join(root, "dir.wav"));

      const ok = await confinedWritePath(root, "a/b/c.wav");
      expect(ok).toMatchObject({ ok: true });
      expect(ok.ok && ok.path.endsWith(join("rec", "a", "b", "c.wav"))).toBe(true);
      expect(await confinedWritePath(root, "out/x.wav")).toEqual({ ok: false, problem: expect.stringMatching(/symbolic link/) });
      expect(await confinedWritePath(root, "out/deeper/x.wav")).toEqual({ ok: false, problem: expect.stringMatching(/symbolic link/) });
      expect(await confinedWritePath(root, "link.wav")).toEqual({ ok: false, problem: expect.stringMatching(/symbolic link/) });
      expect(await confinedWritePath(root, "dir.wav")).toEqual({ ok: false, problem: "is a directory" });
      expect(await confinedWritePath(root, "../x.wav")).toEqual({ ok: false, problem: expect.stringMatching(/\.\./) });
      // Nothing was created outside (not even the folder of out/deeper).
      const { readdir } = await import("node:fs/promises");
      expect(await readdir(outside)).toEqual(["victim.wav"]);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
