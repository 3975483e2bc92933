import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AppError } from "../errors.js";
import { PlaybookStore } from "./store.js";
import { silentWav } from "../../test/fixtures/playbooks/sounds.js";
import * as fs from "node:fs";

// Wrap the synchronous calls so a test can prove the store never makes them.
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  return { ...real, statSync: vi.fn(real.statSync), realpathSync: vi.fn(real.realpathSync) };
});

const PB = (file: string) => `---\nllm:\n  provider: scripted\n---\n# Scene: main\n<play file="${file}"/>\nHello.\n`;

function setup() {
  const root = mkdtempSync(join(tmpdir(), "ac-store-"));
  const dir = join(root, "playbooks");
  const sounds = join(root, "sounds");
  mkdirSync(dir);
  mkdirSync(join(sounds, "greet"), { recursive: true });
  writeFileSync(join(sounds, "greet/hi.wav"), silentWav());
  return { root, dir, sounds, store: new PlaybookStore({ dir, soundsDir: sounds, env: {} }) };
}

async function failure(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

afterEach(() => vi.clearAllMocks());

describe("PlaybookStore", () => {
  it("loads a playbook whose sound exists, resolving the file, and caches it until the file changes", async () => {
    const { dir, store, sounds } = setup();
    writeFileSync(join(dir, "a.md"), PB("greet/hi.wav"));
    const first = await store.load("a.md");
    expect(first.playFiles).toEqual(["greet/hi.wav"]);
    expect(await store.load("a.md")).toBe(first);
    writeFileSync(join(dir, "a.md"), PB("greet/hi.wav") + "More text here.\n");
    const second = await store.load("a.md");
    expect(second).not.toBe(first);
    expect(sounds).toBeTruthy();
  });

  it("refuses a missing sound file with a positioned diagnostic", async () => {
    const { dir, store } = setup();
    writeFileSync(join(dir, "b.md"), PB("greet/missing.wav"));
    const err = await failure(store.load("b.md"));
    expect(err.code).toBe("PLAYBOOK_INVALID");
    expect(err.details.errors).toEqual([expect.objectContaining({ file: "b.md", line: 6, code: "file", message: expect.stringMatching(/greet\/missing\.wav" does not exist/) })]);
  });

  it("refuses a sound that is a symbolic link out of the sounds folder", async () => {
    const { dir, store, root, sounds } = setup();
    writeFileSync(join(root, "secret.wav"), silentWav());
    symlinkSync(join(root, "secret.wav"), join(sounds, "greet/evil.wav"));
    writeFileSync(join(dir, "c.md"), PB("greet/evil.wav"));
    const err = await failure(store.load("c.md"));
    expect(err.details.errors).toEqual([expect.objectContaining({ code: "file", message: expect.stringMatching(/leads outside the sounds folder/) })]);
  });

  it("does not touch the disk synchronously while loading", async () => {
    const { dir, store, sounds } = setup();
    writeFileSync(join(dir, "d.md"), PB("greet/hi.wav"));
    vi.clearAllMocks();
    const playbook = await store.load("d.md");
    expect(playbook.playFiles).toEqual(["greet/hi.wav"]);
    expect(fs.statSync).not.toHaveBeenCalled();
    expect(fs.realpathSync).not.toHaveBeenCalled();
    // The wrapper does see the synchronous checker when it is used (lint), so the assertion above can fail.
    const { resolveSoundFile } = await import("./files.js");
    resolveSoundFile("greet/hi.wav", sounds);
    expect(fs.statSync).toHaveBeenCalled();
  });

  it("names bad names and missing playbooks with their codes", async () => {
    const { store } = setup();
    expect((await failure(store.load("../x.md"))).code).toBe("INVALID_NAME");
    expect((await failure(store.load("nothing.md"))).code).toBe("PLAYBOOK_NOT_FOUND");
  });

  it("lists the playbooks of the folder with validity, skipping other files and links that lead out", async () => {
    const { root, dir, store } = setup();
    writeFileSync(join(dir, "b.md"), PB("greet/hi.wav"));
    writeFileSync(join(dir, "a.md"), PB("greet/missing.wav"));
    writeFileSync(join(dir, "readme.txt"), "x");
    writeFileSync(join(root, "out.md"), PB("greet/hi.wav"));
    symlinkSync(join(root, "out.md"), join(dir, "out.md"));
    const list = await store.list();
    expect(list.map((p) => [p.name, p.valid, p.errors])).toEqual([
      ["a.md", false, 1],
      ["b.md", true, 0],
    ]);
    expect(list[1]?.size).toBe(PB("greet/hi.wav").length);
    expect(list[1]?.updated).toMatch(/Z$/);
  });

  it("checks a text without throwing, splitting errors and warnings", async () => {
    const { store } = setup();
    const good = await store.check(PB("greet/hi.wav"), "x.md");
    expect(good).toEqual({ valid: true, errors: [], warnings: [] });
    const bad = await store.check(PB("greet/missing.wav"), "x.md");
    expect(bad.valid).toBe(false);
    expect(bad.errors).toEqual([expect.objectContaining({ file: "x.md", line: 6, code: "file" })]);
  });

  it("writes atomically, replaces the cached playbook, reads and removes; refuses bad names and links out", async () => {
    const { root, dir, store } = setup();
    await store.write("w.md", PB("greet/hi.wav"));
    const first = await store.load("w.md");
    await store.write("w.md", PB("greet/hi.wav") + "More.\n");
    expect(await store.load("w.md")).not.toBe(first);
    expect((await store.read("w.md")).text).toBe(PB("greet/hi.wav") + "More.\n");
    expect(fs.readdirSync(dir)).toEqual(["w.md"]);
    expect((await failure(store.write("../w.md", "x"))).code).toBe("INVALID_NAME");
    writeFileSync(join(root, "target.md"), "keep");
    symlinkSync(join(root, "target.md"), join(dir, "link.md"));
    expect((await failure(store.write("link.md", "x"))).code).toBe("INVALID_NAME");
    expect((await failure(store.remove("link.md"))).code).toBe("INVALID_NAME");
    expect(fs.readFileSync(join(root, "target.md"), "utf8")).toBe("keep");
    await store.remove("w.md");
    expect((await failure(store.read("w.md"))).code).toBe("PLAYBOOK_NOT_FOUND");
    expect((await failure(store.remove("w.md"))).code).toBe("PLAYBOOK_NOT_FOUND");
  });
});
