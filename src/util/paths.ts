/** Folder confinement: file names from playbooks, requests and templates must never leave their folder. */
import { lstat, mkdir, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** Whether `path` lies strictly inside `root` (both absolute, already resolved; real paths when links matter). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** `%2e`, `%2f`, `%5c` (any case): an encoded `.`, `/` or `\`, which is how `..` hides from a naive check. */
const ENCODED_SEPARATOR = /%(2e|2f|5c)/i;

/**
 * What is wrong with a relative file name meant for a folder, or undefined when its shape is fine: empty, a NUL,
 * an absolute or drive path, a `..` segment (with `/` or `\` as separators), or a URL-encoded dot or separator
 * (names are never URL-decoded, so `%2e%2e/x` would otherwise look harmless here and dangerous elsewhere).
 */
export function fileNameProblem(name: string): string | undefined {
  if (name.trim() === "") return "is empty";
  if (name.includes("\0")) return "contains a NUL character";
  if (isAbsolute(name) || /^[A-Za-z]:[\\/]/.test(name) || name.startsWith("\\")) return "is an absolute path";
  if (name.split(/[\\/]/).includes("..")) return 'leaves its folder (a ".." segment)';
  if (ENCODED_SEPARATOR.test(name)) return 'contains a URL-encoded ".", "/" or "\\" (%2e, %2f, %5c)';
  return undefined;
}

/**
 * The path a new file `name` (relative, shape already checked) is written to inside `root`: the folders on the way
 * are created, and their real path (symbolic links resolved) must stay inside the real `root`; an existing entry
 * that is a symbolic link is refused (writing would follow it). Returns the problem instead of throwing.
 */
export async function confinedWritePath(root: string, name: string): Promise<{ ok: true; path: string } | { ok: false; problem: string }> {
  const shape = fileNameProblem(name);
  if (shape !== undefined) return { ok: false, problem: shape };
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  const target = resolve(realRoot, name);
  if (!isInside(realRoot, target)) return { ok: false, problem: "leaves its folder" };
  const parent = dirname(target);
  // Each folder on the way is created only after the one above it is known to be inside the root.
  const steps = relative(realRoot, parent).split(sep).filter((s) => s !== "");
  let realParent = realRoot;
  for (const step of steps) {
    const next = join(realParent, step);
    await mkdir(next).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    realParent = await realpath(next);
    if (!isInside(realRoot, realParent)) return { ok: false, problem: "leads outside its folder (through a symbolic link)" };
  }
  const path = join(realParent, basename(target));
  const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (existing?.isSymbolicLink()) return { ok: false, problem: "is a symbolic link (not followed for writing)" };
  if (existing?.isDirectory()) return { ok: false, problem: "is a directory" };
  return { ok: true, path };
}
