/**
 * Helpers for tests that run the built `active-call` command as a real process: directly (`node bin/...`), under
 * `npm start` and under `npx` (offline, from the local bin), with real signals, and with /proc checks that no
 * controller process is left behind. Needs `npm run build` first (npm test does it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const BIN = join(ROOT, "bin/active-call.js");

/** The test process's environment without our own ACTIVE_CALL_* and OPENAI_* settings. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ACTIVE_CALL_") && !k.startsWith("OPENAI_")) env[k] = v;
  return env;
}

const made: string[] = [];

/** A new temporary folder, removed by `removeTmp()`. */
export const tmp = (prefix = "ac-proc-"): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};

/** Removes the folders `tmp()` made (call it in afterAll). */
export function removeTmp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * A config file whose paths all point into `dir` (so a controller started with the project root as its working
 * directory, as `npm start` does, writes nothing into the repository), plus `extra` TOML. Playbooks come from
 * the project's `playbooks/` unless `playbooks` names another folder.
 */
export function writeConf(dir: string, extra = "", playbooks = join(ROOT, "playbooks")): string {
  const file = join(dir, "active-call.toml");
  const p = (name: string) => JSON.stringify(join(dir, name));
  writeFileSync(
    file,
    `[paths]\nplaybooks = ${JSON.stringify(playbooks)}\nsounds = ${JSON.stringify(join(ROOT, "sounds"))}\n` +
      `recordings = ${p("recordings")}\ndumps = ${p("dumps")}\nspool = ${p("spool")}\ncache = ${p("cache")}\n\n${extra}\n`,
  );
  return file;
}

/**
 * An npm cache for `npx active-call` run in the project folder, offline. npx installs a local package's bin
 * into `<cache>/_npx/<hash of the folder>` (a link to the folder); done by npx itself that would also run the
 * project's `prepare` (a build) and `install` scripts, so the entry npx would make is written here directly.
 */
export function npxCache(): string {
  const cache = tmp("ac-npm-cache-");
  const root = ROOT.replace(/\/$/, "");
  const dir = join(cache, "_npx", createHash("sha512").update(root).digest("hex").slice(0, 16));
  mkdirSync(join(dir, "node_modules/.bin"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ dependencies: { "active-call": `file:${root}` }, _npx: { packages: [root] } }));
  symlinkSync(root, join(dir, "node_modules/active-call"));
  symlinkSync("../active-call/bin/active-call.js", join(dir, "node_modules/.bin/active-call"));
  return cache;
}

export interface Started {
  child: ChildProcess;
  /** Exit code, or the signal name when it died of one. */
  exited: Promise<number | string>;
  output(): string;
  /** `addr` (host:port) of the "http listening" log line, and `pid` of the node process that serves. */
  listening: { addr: string; pid: number };
  /** Resolves with the first JSON log line whose `msg` is `msg`. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Spawns `command args` (stdout and stderr piped) and waits for the controller's "http listening" line. */
export async function startController(command: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Started> {
  const child = spawn(command, args, { cwd: opts.cwd, env: { ...cleanEnv(), ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  const waitForLog = (msg: string, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const find = () => {
        for (const line of out.split("\n")) {
          if (!line.startsWith("{")) continue;
          try {
            const rec = JSON.parse(line) as Record<string, unknown>;
            if (rec.msg === msg) return rec;
          } catch {
            // a partial line; the next chunk completes it
          }
        }
        return undefined;
      };
      const check = () => {
        const rec = find();
        if (!rec) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(rec);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no ${JSON.stringify(msg)} log line within ${timeoutMs} ms; output:\n${out}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  const rec = await waitForLog("http listening", 15_000).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  const pid = controllerPid(child.pid ?? 0);
  if (pid === undefined) {
    child.kill("SIGKILL");
    throw new Error(`no node process under pid ${child.pid}`);
  }
  return { child, exited, output: () => out, listening: { addr: rec.addr as string, pid }, waitForLog };
}

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** The node process that runs bin/active-call.js: `root` itself or its deepest `node` descendant. */
function controllerPid(root: number): number | undefined {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  let found: number | undefined;
  const visit = (pid: number) => {
    const a = argv(pid);
    if (/(^|\/)node$/.test(a[0] ?? "") && a.some((x) => x.includes("active-call"))) found = pid;
    for (const c of children.get(pid) ?? []) visit(c);
  };
  visit(root);
  return found;
}

/** True while `pid` is a running (not zombie) process. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Pids of live processes whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(marker) && alive(Number(name))) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Polls until `pid` is gone; false after `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** Resolves with `p`'s value, or `fallback` after `ms`. */
export function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return Promise.race([p, new Promise<F>((r) => setTimeout(() => r(fallback), ms))]);
}
