/**
 * Loads playbooks by name from the playbook folder for calls and the API. Names follow
 * `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.md$` and resolve inside the folder only (a symbolic link that leads
 * out is refused). Parsed playbooks are cached until the file changes, so a call start costs a stat.
 */
import { randomBytes } from "node:crypto";
import { lstat, readdir, readFile, realpath, rename, stat, unlink, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { isInside } from "../util/paths.js";
import { PLAYBOOK_NAME } from "../config.js";
import { AppError } from "../errors.js";
import type { Diagnostic } from "./diagnostics.js";
import type { PlaybookConfig } from "./options.js";
import { resolveSoundFile, resolveSoundFileAsync, type SoundFile } from "./files.js";
import { parsePlaybook, type ParseResult } from "./parse.js";
import type { Playbook } from "./types.js";

export interface PlaybookStoreOptions {
  dir: string;
  soundsDir: string;
  env: Readonly<Record<string, string | undefined>>;
  config?: PlaybookConfig;
}

/** One playbook file as the API lists it. */
export interface PlaybookFileInfo {
  name: string;
  /** Modification time, RFC 3339. */
  updated: string;
  size: number;
  valid: boolean;
  errors: number;
  warnings: number;
}

/** The outcome of checking a playbook text: diagnostics split by severity. */
export interface PlaybookCheck {
  valid: boolean;
  errors: Diagnostic[];
  warnings: Diagnostic[];
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

  /** The playbooks of the folder (names that follow the rules, regular files inside it), in name order, each checked. */
  async list(): Promise<PlaybookFileInfo[]> {
    let entries;
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const names = entries.filter((e) => PLAYBOOK_NAME.test(e.name) && !e.isDirectory()).map((e) => e.name).sort();
    const infos = await Promise.all(
      names.map(async (name): Promise<PlaybookFileInfo | undefined> => {
        try {
          const file = await this.pathOf(name);
          const info = await stat(file);
          if (!info.isFile()) return undefined;
          // Checked afresh each time: validity also depends on sound files and keys, not only on this file.
          const check = await this.check(await readFile(file), name);
          return { name, updated: info.mtime.toISOString(), size: info.size, valid: check.valid, errors: check.errors.length, warnings: check.warnings.length };
        } catch {
          return undefined; // vanished, unreadable or leading out of the folder: not listed
        }
      }),
    );
    return infos.filter((i): i is PlaybookFileInfo => i !== undefined);
  }

  /** The raw text of a playbook; PLAYBOOK_NOT_FOUND or INVALID_NAME. */
  async read(name: string): Promise<{ text: string; updated: string; size: number }> {
    const file = await this.pathOf(name);
    const info = await stat(file);
    if (!info.isFile()) throw new AppError("PLAYBOOK_NOT_FOUND", `${name} is not a file`);
    return { text: await readFile(file, "utf8"), updated: info.mtime.toISOString(), size: info.size };
  }

  /** Checks a playbook text the way `load` would, without throwing on errors. `name` labels the diagnostics. */
  async check(input: string | Uint8Array, name = "inline.md"): Promise<PlaybookCheck> {
    const result = await this.diagnose(input, name);
    const errors = result.diagnostics.filter((d) => d.severity === "error");
    const warnings = result.diagnostics.filter((d) => d.severity !== "error");
    return { valid: result.playbook !== undefined && errors.length === 0, errors, warnings };
  }

  /**
   * Writes a playbook atomically (a temporary file in the folder, then a rename), whatever it contains: the
   * caller checks it first. INVALID_NAME for a bad name or an existing file that leads out of the folder.
   */
  async write(name: string, content: string | Uint8Array): Promise<{ updated: string; size: number }> {
    const target = await this.writablePath(name);
    const temp = resolve(this.dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      await writeFile(temp, content, { flag: "wx" });
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    this.cache.delete(name);
    const info = await stat(target);
    return { updated: info.mtime.toISOString(), size: info.size };
  }

  /** Deletes a playbook (a link itself, never what it points to); PLAYBOOK_NOT_FOUND or INVALID_NAME. */
  async remove(name: string): Promise<void> {
    await this.pathOf(name);
    await unlink(resolve(this.dir, name));
    this.cache.delete(name);
  }

  /** The path a write goes to: the name checked, and an existing entry (a link) must stay inside the folder. */
  private async writablePath(name: string): Promise<string> {
    if (!PLAYBOOK_NAME.test(name)) throw new AppError("INVALID_NAME", `invalid playbook name ${JSON.stringify(name)}: use letters, digits, "_", "-", "." and end in .md`);
    const file = resolve(this.dir, name);
    const root = await realpath(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw new AppError("PLAYBOOK_NOT_FOUND", `the playbook folder ${this.options.dir} does not exist`);
      throw err;
    });
    const existing = await lstat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (existing === undefined) return file;
    if (existing.isDirectory()) throw new AppError("INVALID_NAME", `playbook ${name} is a directory`);
    if (existing.isSymbolicLink()) {
      // A dangling link, or one that leads out, is refused: the rename would replace what the operator linked.
      const real = await realpath(file).catch(() => undefined);
      if (real === undefined || !isInside(root, real)) throw new AppError("INVALID_NAME", `playbook ${name} leads outside the playbook folder`);
    }
    return file;
  }

  /**
   * Parses twice: first only to learn which sound files the playbook names (shapes checked, disk untouched),
   * then, with those files resolved asynchronously, for real. No synchronous file I/O on a call's path.
   */
  private async parseAsync(input: string | Uint8Array, name: string): Promise<Playbook> {
    const resolved = await this.resolveSounds(input, name);
    return this.parse(input, name, (file) => resolved.get(file) ?? resolveSoundFile(file, undefined)) as Playbook;
  }

  /** The sound files a playbook names, resolved asynchronously (shapes checked first, disk untouched). */
  private async resolveSounds(input: string | Uint8Array, name: string): Promise<Map<string, SoundFile>> {
    const named = new Set<string>();
    this.parse(input, name, (file) => {
      named.add(file);
      return resolveSoundFile(file, undefined);
    }, false);
    const resolved = new Map<string, SoundFile>();
    await Promise.all([...named].map(async (f) => resolved.set(f, await resolveSoundFileAsync(f, this.options.soundsDir))));
    return resolved;
  }

  /** Parse result with every diagnostic, sound files resolved asynchronously. */
  private async diagnose(input: string | Uint8Array, name: string): Promise<ParseResult> {
    const resolved = await this.resolveSounds(input, name);
    return parsePlaybook(input, {
      file: name,
      env: this.options.env,
      soundsDir: this.options.soundsDir,
      config: this.options.config,
      resolveSound: (file) => resolved.get(file) ?? resolveSoundFile(file, undefined),
    });
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
