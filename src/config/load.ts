/**
 * Loads the configuration (config.md §1): .env, the TOML file, `${NAME}` expansion, aliases,
 * environment variables and flags, in that order of precedence, then validates the whole.
 * The only reader of the process environment is the caller passing `env` in (main.ts via src/config.ts).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parse as parseDotenv } from "dotenv";
import { AppError } from "../errors.js";
import { expandEnv } from "./env-expand.js";
import { describeIssue } from "./issues.js";
import { environmentOverrides, type Override } from "./overrides.js";
import { configSchema, type Config } from "./schema.js";
import { ALIASES, applyAliases } from "./sections.js";
import { parseTomlDocument, TomlSyntaxError, type TomlDocument } from "./toml.js";

export interface LoadOptions {
  /** `--conf`, which wins over ACTIVE_CALL_CONF. */
  confPath?: string;
  /** Flag overrides, applied last. */
  overrides?: Override[];
  /** The process environment (not yet merged with .env). */
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or undefined when only built-in defaults (and overrides) apply. */
  file: string | undefined;
  /** The process environment merged over ./.env, for `${NAME}` in playbooks. */
  env: Readonly<Record<string, string>>;
  /** Secret values present in the config, for the log redactor. */
  secrets: string[];
}

/** A fatal configuration problem; `exitCode` is 1 for the file/environment and 2 for a bad flag. */
export class ConfigError extends AppError {
  constructor(
    readonly problems: string[],
    readonly exitCode: 1 | 2,
  ) {
    super(exitCode === 2 ? "USAGE" : "CONFIG_INVALID", problems.join("\n"), { details: { problems } });
    this.name = "ConfigError";
  }
}

const SECRET_KEY = /token|secret|password|api_key|apikey/i;

export async function loadConfig(options: LoadOptions): Promise<LoadedConfig> {
  const env = await mergedEnvironment(options.cwd, options.env);
  const file = configFile(options, env);
  const displayName = file === undefined ? "" : (options.confPath ?? env.ACTIVE_CALL_CONF ?? "config/active-call.toml");

  let raw: Record<string, unknown> = {};
  let doc: TomlDocument | undefined;
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new ConfigError([`${displayName}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], 1);
    }
    try {
      doc = parseTomlDocument(text);
    } catch (err) {
      if (err instanceof TomlSyntaxError) {
        throw new ConfigError([`${displayName}:${err.position.line}:${err.position.column}: TOML syntax error: ${err.message}`], 1);
      }
      throw err;
    }
    raw = doc.value;
  }

  // The position of a path, or of its nearest ancestor that the file spells out (a key the file omits, such
  // as a required one, is reported at its table's header).
  const where = (path: readonly PropertyKey[], atValue = false): string => {
    for (let n = path.length; doc && n > 0; n--) {
      const sub = path.slice(0, n);
      const p = atValue && n === path.length ? doc.valueAt(sub) : doc.keyAt(sub);
      if (p) return `${displayName}:${p.line}:${p.column}`;
    }
    return displayName || "config";
  };

  const problems: string[] = [];
  raw = expandStrings(raw, [], (path, name) => {
    problems.push(`${where(path, true)}: ${describePath(path)}: environment variable ${name} is not set; use \${${name}:-value} to give a default`);
  }, env) as Record<string, unknown>;

  // Aliases of the playbook sections under [defaults]; renames remember the spelling the user wrote.
  const renames = new Map<string, PropertyKey[]>();
  const defaults = raw.defaults;
  if (isTable(defaults)) {
    for (const [section, aliases] of Object.entries(ALIASES)) {
      const value = defaults[section];
      if (!isTable(value)) continue;
      const { value: renamed, conflicts, renamed: map } = applyAliases(value, aliases);
      defaults[section] = renamed;
      for (const { alias, canonical } of conflicts) {
        problems.push(`${where(["defaults", section, alias])}: ${section}.${alias} and ${section}.${canonical} are both set in [defaults.${section}]; keep one`);
      }
      for (const [canonical, alias] of map) renames.set(["defaults", section, canonical].join("."), ["defaults", section, alias]);
    }
  }
  // Overrides: environment variables, then flags. The last writer of a path is the one blamed for it.
  const sources = new Map<string, string>();
  let envOverrides: Override[];
  try {
    envOverrides = environmentOverrides(env);
  } catch (err) {
    throw new ConfigError([(err as Error).message], 1);
  }
  for (const o of [...envOverrides, ...(options.overrides ?? [])]) {
    setPath(raw, o.path, o.value);
    sources.set(o.path.join("."), o.source);
  }

  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success || problems.length) {
    let flagProblem = false;
    const messages: string[] = [...problems];
    for (const issue of result.error?.issues ?? []) {
      const describeKey = (path: PropertyKey[]) => describePath(renames.get(path.map(String).join(".")) ?? path);
      for (const text of describeIssue(issue, configSchema, describeKey)) {
        const key = text.path.map(String).join(".");
        const source = sources.get(key);
        if (source !== undefined) {
          if (source.startsWith("-")) flagProblem = true;
          messages.push(`${source}: ${text.message}`);
        } else {
          const located = renames.get(key) ?? text.path;
          messages.push(`${where(located, text.kind === "type")}: ${text.message}`);
        }
      }
    }
    throw new ConfigError(sortByPosition(messages), flagProblem ? 2 : 1);
  }
  if (!result.success) throw new ConfigError(["config: invalid"], 1); // unreachable: narrows the type

  return { config: result.data, file, env, secrets: collectSecrets(result.data) };
}

/** Orders `file:line:col: …` messages by position; messages about flags and variables come first. */
function sortByPosition(messages: string[]): string[] {
  const key = (m: string) => {
    const p = /^[^:]*:(\d+):(\d+): /.exec(m);
    return p ? Number(p[1]) * 10000 + Number(p[2]) : -1;
  };
  return messages.map((m, i) => ({ m, i, k: key(m) })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.m);
}

/** Where the config comes from: --conf, ACTIVE_CALL_CONF, or ./config/active-call.toml when it exists. */
function configFile(options: LoadOptions, env: Record<string, string>): string | undefined {
  const explicit = options.confPath ?? env.ACTIVE_CALL_CONF;
  if (explicit !== undefined && explicit !== "") return resolve(options.cwd, explicit);
  const implicit = resolve(options.cwd, "config/active-call.toml");
  return existsSync(implicit) ? implicit : undefined;
}

/** ./.env under the process environment: a variable already set is never overridden. */
async function mergedEnvironment(cwd: string, env: LoadOptions["env"]): Promise<Record<string, string>> {
  const merged: Record<string, string> = {};
  try {
    Object.assign(merged, parseDotenv(await readFile(resolve(cwd, ".env"))));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new ConfigError([`.env: cannot read: ${String(err)}`], 1);
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  return merged;
}

/** `esl_password in [freeswitch]`, `caller in [[handler.rules]] #2`, `level at the top level`. */
export function describePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "the config";
  const key = String(path[path.length - 1]);
  const parents = path.slice(0, -1);
  if (parents.length === 0) return `"${key}"`;
  const arrayAt = parents.findIndex((p) => typeof p === "number");
  if (arrayAt >= 0) {
    const table = parents.slice(0, arrayAt).join(".");
    const rest = parents.slice(arrayAt + 1).map(String);
    const inner = [...rest, key].join(".");
    return `"${inner}" in [[${table}]] #${Number(parents[arrayAt]) + 1}`;
  }
  return `"${key}" in [${parents.join(".")}]`;
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isTable(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function expandStrings(
  value: unknown,
  path: PropertyKey[],
  onUnset: (path: PropertyKey[], name: string) => void,
  env: Record<string, string>,
): unknown {
  if (typeof value === "string") {
    const r = expandEnv(value, (name) => env[name]);
    if (r.ok) return r.value;
    onUnset(path, r.unset.name);
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => expandStrings(v, [...path, i], onUnset, env));
  if (isTable(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandStrings(v, [...path, k], onUnset, env);
    return out;
  }
  return value;
}

function collectSecrets(config: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, key: string) => {
    if (typeof v === "string") {
      if (SECRET_KEY.test(key) && v.length >= 4) found.add(v);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (isTable(v)) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(config, "");
  // The built-in ESL password is public knowledge, not a secret worth scrubbing from every log line.
  found.delete("ClueCon");
  return [...found];
}

/** Replaces the values of secret keys with "***" (for --print-config and the API). */
export function maskSecrets<T>(value: T): T {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === "string") return SECRET_KEY.test(key) && v !== "" ? "***" : v;
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (isTable(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(value, "") as T;
}
