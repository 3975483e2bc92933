/**
 * Where the shared recordings live (`shared/fixtures` beside the repository: the contract's FreeSWITCH, Asterisk
 * and VAD captures). A fresh clone made elsewhere (CI clones into a temp dir) finds them beside the repository it
 * was cloned from, via the clone's `origin`. Tests only; nothing in the product reads them.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function originCheckout(): string | undefined {
  try {
    const url = execFileSync("git", ["config", "--get", "remote.origin.url"], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const path = url.startsWith("file://") ? fileURLToPath(url) : url;
    return isAbsolute(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

function findRoot(): string {
  const candidates = [process.env.ACTIVE_CALL_SHARED_DIR, join(REPO, "..", "shared"), ...[originCheckout()].filter((o) => o !== undefined).map((o) => join(o as string, "..", "shared"))];
  for (const c of candidates) if (c !== undefined && existsSync(join(c, "fixtures"))) return join(c, "fixtures");
  throw new Error(`shared fixtures not found (looked in ${candidates.filter(Boolean).join(", ")}); set ACTIVE_CALL_SHARED_DIR`);
}

let root: string | undefined;

/** The folder `shared/fixtures/<parts…>`. */
export function sharedFixtures(...parts: string[]): string {
  root ??= findRoot();
  return join(root, ...parts);
}

/** The same as a directory URL (for `new URL(name, base)`). */
export function sharedFixturesUrl(...parts: string[]): URL {
  return pathToFileURL(`${sharedFixtures(...parts)}/`);
}
