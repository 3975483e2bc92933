/**
 * Sound files named by a playbook (`<play file>`, `greeting.play`, `ambiance.path`) live inside the sounds
 * folder and never outside it: no absolute paths, no `..`, and no symbolic link that leads out.
 */
import { realpathSync, statSync } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { isInside } from "../util/paths.js";

export type SoundFile = { ok: true; path: string | undefined } | { ok: false; problem: string };

/** Whether a value is a template, resolved only when rendered (then checked again by `resolveSoundFile`). */
const isTemplate = (s: string) => /\{[{%]/.test(s);

/**
 * Checks `file` against the sounds folder. `path` is the real path when the folder is known and the file
 * exists; undefined when only the shape could be checked (no folder given, or a template).
 */
export function resolveSoundFile(file: string, soundsDir: string | undefined): SoundFile {
  if (file.trim() === "") return { ok: false, problem: "is empty" };
  if (file.includes("\0")) return { ok: false, problem: "contains a NUL character" };
  if (isTemplate(file)) return { ok: true, path: undefined };
  if (isAbsolute(file) || /^[A-Za-z]:[\\/]/.test(file) || file.startsWith("\\")) {
    return { ok: false, problem: "is an absolute path; give a path relative to the sounds folder" };
  }
  if (file.split(/[\\/]/).includes("..")) return { ok: false, problem: 'must stay inside the sounds folder (no "..")' };
  if (/%(2e|2f|5c)/i.test(file)) return { ok: false, problem: 'contains a URL-encoded ".", "/" or "\\" (%2e, %2f, %5c); names are not URL-decoded' };
  if (soundsDir === undefined) return { ok: true, path: undefined };

  const full = resolve(soundsDir, file);
  let real: string;
  let root: string;
  try {
    if (!statSync(full).isFile()) return { ok: false, problem: `is not a file in the sounds folder ${soundsDir}` };
    real = realpathSync(full);
    root = realpathSync(soundsDir);
  } catch {
    return { ok: false, problem: `does not exist in the sounds folder ${soundsDir}` };
  }
  return insideRoot(real, root, soundsDir);
}

function insideRoot(real: string, root: string, soundsDir: string): SoundFile {
  if (!isInside(root, real)) {
    return { ok: false, problem: `leads outside the sounds folder ${soundsDir} (through a symbolic link)` };
  }
  return { ok: true, path: real };
}

/** `resolveSoundFile` with asynchronous file system calls (for call paths). Same answers. */
export async function resolveSoundFileAsync(file: string, soundsDir: string): Promise<SoundFile> {
  const shape = resolveSoundFile(file, undefined);
  if (!shape.ok || isTemplate(file)) return shape;
  const full = resolve(soundsDir, file);
  let real: string;
  let root: string;
  try {
    if (!(await stat(full)).isFile()) return { ok: false, problem: `is not a file in the sounds folder ${soundsDir}` };
    [real, root] = await Promise.all([realpath(full), realpath(soundsDir)]);
  } catch {
    return { ok: false, problem: `does not exist in the sounds folder ${soundsDir}` };
  }
  return insideRoot(real, root, soundsDir);
}

