/**
 * `active-call lint <file|dir>... [--json] [--strict] [--conf <path>]` (config.md §3.2): checks playbooks
 * without running them. Missing provider keys are warnings here, since lint often runs where keys are absent.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatDiagnostic, type Diagnostic } from "./diagnostics.js";
import type { PlaybookConfig } from "./options.js";
import { parsePlaybook } from "./parse.js";

export interface LintOptions {
  json?: boolean;
  strict?: boolean;
  /** Paths (sounds folder), providers and defaults; absent = built-in defaults. */
  config?: PlaybookConfig;
  env?: Readonly<Record<string, string | undefined>>;
  /** Base of relative paths, the sounds folder included. */
  cwd?: string;
}

export interface LintResult {
  /** For stdout: the diagnostics and the summary line, or the JSON array. */
  output: string;
  /** For stderr: unreadable files and usage problems. */
  errors: string;
  /** 0 = no errors (with `strict`, no warnings either); 1 = errors; 2 = usage error or unreadable file. */
  exitCode: 0 | 1 | 2;
}

const errnoText = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/** A directory stands for the `*.md` files directly inside it, in name order. */
async function expand(path: string, cwd: string, problems: string[]): Promise<string[]> {
  let info;
  try {
    info = await stat(resolve(cwd, path));
  } catch (err) {
    problems.push(`${path}: cannot read: ${errnoText(err)}`);
    return [];
  }
  if (!info.isDirectory()) return [path];
  try {
    const entries = await readdir(resolve(cwd, path), { withFileTypes: true });
    const names = entries.filter((e) => !e.name.startsWith(".") && e.name.endsWith(".md") && !e.isDirectory()).map((e) => e.name);
    return names.sort().map((name) => join(path, name));
  } catch (err) {
    problems.push(`${path}: cannot read the directory: ${errnoText(err)}`);
    return [];
  }
}

export async function lintFiles(paths: readonly string[], opts: LintOptions = {}): Promise<LintResult> {
  if (paths.length === 0) return { output: "", errors: `${LINT_USAGE}\n`, exitCode: 2 };
  const cwd = opts.cwd ?? process.cwd();
  const problems: string[] = [];
  const files: string[] = [];
  for (const p of paths) files.push(...(await expand(p, cwd, problems)));

  const soundsDir = resolve(cwd, opts.config?.paths?.sounds ?? "./sounds");
  const diagnostics: Diagnostic[] = [];
  let linted = 0;
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(resolve(cwd, file));
    } catch (err) {
      problems.push(`${file}: cannot read: ${errnoText(err)}`);
      continue;
    }
    linted++;
    const result = parsePlaybook(bytes, { file, env: opts.env ?? {}, soundsDir, config: opts.config, missingCredentials: "warning" });
    diagnostics.push(...result.diagnostics);
  }

  const errors = diagnostics.filter((d) => d.severity === "error").length;
  const warnings = diagnostics.length - errors;
  const output = opts.json
    ? `${JSON.stringify(diagnostics, null, 2)}\n`
    : [...diagnostics.map(formatDiagnostic), `${linted} files, ${errors} errors, ${warnings} warnings`].join("\n") + "\n";
  const exitCode = problems.length > 0 ? 2 : errors > 0 || (opts.strict && warnings > 0) ? 1 : 0;
  return { output, errors: problems.map((p) => `${p}\n`).join(""), exitCode };
}

export const LINT_USAGE = "Usage: active-call lint <file|dir>... [--json] [--strict] [--conf <path>]";

const LINT_HELP = `${LINT_USAGE}

Checks playbooks (front matter, scenes, tags, templates, files) without running them.
A directory means every *.md file directly inside it.

  --json          print a JSON array of {file, line, column, severity, code, message}
  --strict        warnings fail too (exit code 1)
  --conf <path>   config file: sounds folder, providers and defaults

Exit codes: 0 = no errors, 1 = errors (or warnings with --strict), 2 = usage error or unreadable file.
`;

export interface LintIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** The loaded configuration (the caller handles `--conf`). */
  config?: PlaybookConfig;
}

/**
 * The `lint` subcommand: `argv` is what follows `lint`. `--conf` is accepted and left to the caller, who loads
 * the configuration before calling this. Returns the exit code.
 */
export async function runLintCommand(argv: readonly string[], io: LintIo): Promise<0 | 1 | 2> {
  let values: { json?: boolean; strict?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: { json: { type: "boolean" }, strict: { type: "boolean" }, conf: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    io.stderr.write(`active-call lint: ${(err as Error).message}\n${LINT_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(LINT_HELP);
    return 0;
  }
  if (positionals.length === 0) {
    io.stderr.write(`active-call lint: give at least one playbook file or directory\n${LINT_USAGE}\n`);
    return 2;
  }
  const result = await lintFiles(positionals, { json: values.json, strict: values.strict, config: io.config, env: io.env, cwd: io.cwd });
  if (result.errors) io.stderr.write(result.errors);
  io.stdout.write(result.output);
  return result.exitCode;
}
