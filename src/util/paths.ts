/** Folder confinement: file names from playbooks, requests and templates must never leave their folder. */
import { isAbsolute, relative, sep } from "node:path";

/** Whether `path` lies strictly inside `root` (both absolute, already resolved; real paths when links matter). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
