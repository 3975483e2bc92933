/**
 * Loads playbooks by name from the playbook folder for calls and the API. Names follow
 * `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.md$` and resolve inside the folder only (a symbolic link that leads
 * out is refused). Parsed playbooks are cached until the file changes, so a call start costs a stat.
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { isInside } from "../util/paths.js";
import { PLAYBOOK_NAME } from "../config.js";
import { AppError } from "../errors.js";
import type { PlaybookConfig } from "./options.js";
import { resolveSoundFile, resolveSoundFileAsync, type SoundFile } from "./files.js";
import { parsePlaybook } from "./parse.js";
import type { Playbook } from "./types.js";

export interface PlaybookStoreOptions {
  dir: string;
  soundsDir: string;
  env: Readonly<Record<string, string | undefined>>;
  config?: PlaybookConfig;
}

interface CacheEntry {
  mtimeMs: number;
  size: number;
  playbook: Playbook;
}

export class PlaybookStore {
  private readonly dir: string;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly options: PlaybookStoreOptions) {
    this.dir = resolve(options.dir);
  }

  /** The file of a playbook name, checked: INVALID_NAME for a bad name or a path that leaves the folder. */
  async pathOf(name: string): Promise<string> {
    if (!PLAYBOOK_NAME.test(name)) throw new AppError("INVALID_NAME", `invalid playbook name ${JSON.stringify(name)}: use letters, digits, "_", "-", "." and end in .md`);
    const file = resolve(this.dir, name);
    let real: string;
    let root: string;
    try {
      [real, root] = await Promise.all([realpath(file), realpath(this.dir)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new AppError("PLAYBOOK_NOT_FOUND", `no playbook ${name} in ${this.options.dir}`);
      throw err;
    }
    if (!isInside(root, real)) {
      throw new AppError("INVALID_NAME", `playbook ${name} leads outside the playbook folder`);
    }
    return real;
  }

  /** The parsed playbook; PLAYBOOK_NOT_FOUND, INVALID_NAME, or PLAYBOOK_INVALID with `details.errors`. */
  async load(name: string): Promise<Playbook> {
    const file = await this.pathOf(name);
    const info = await stat(file);
    if (!info.isFile()) throw new AppError("PLAYBOOK_NOT_FOUND", `${name} is not a file`);
    const cached = this.cache.get(name);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached.playbook;
    const playbook = await this.parseAsync(await readFile(file), name);
    this.cache.set(name, { mtimeMs: info.mtimeMs, size: info.size, playbook });
    return playbook;
  }

  /** An inline playbook (webhook reply, API request), validated the same way. */
  parseContent(content: string, label = "inline.md"): Promise<Playbook> {
    return this.parseAsync(content, label);
  }

  /**
   * Parses twice: first only to learn which sound files the playbook names (shapes checked, disk untouched),
   * then, with those files resolved asynchronously, for real. No synchronous file I/O on a call's path.
   */
  private async parseAsync(input: string | Uint8Array, name: string): Promise<Playbook> {
    const named = new Set<string>();
    this.parse(input, name, (file) => {
      named.add(file);
      return resolveSoundFile(file, undefined);
    }, false);
    const resolved = new Map<string, SoundFile>();
    await Promise.all([...named].map(async (f) => resolved.set(f, await resolveSoundFileAsync(f, this.options.soundsDir))));
    return this.parse(input, name, (file) => resolved.get(file) ?? resolveSoundFile(file, undefined)) as Playbook;
  }

  private parse(input: string | Uint8Array, name: string, resolveSound: (file: string) => SoundFile, strict = true): Playbook | undefined {
    const result = parsePlaybook(input, {
      file: name,
      env: this.options.env,
      soundsDir: this.options.soundsDir,
      config: this.options.config,
      resolveSound,
    });
    if (!strict) return result.playbook;
    if (!result.playbook) {
      const errors = result.diagnostics.filter((d) => d.severity === "error");
      const first = errors[0];
      const where = first ? `${first.file}:${first.line}:${first.column}: ${first.message}` : "invalid";
      throw new AppError("PLAYBOOK_INVALID", `playbook ${name} is invalid (${errors.length} error${errors.length === 1 ? "" : "s"}; first: ${where})`, {
        details: { errors },
      });
    }
    return result.playbook;
  }
}
