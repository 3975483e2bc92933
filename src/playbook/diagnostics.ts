/**
 * Playbook diagnostics (playbook.md §8): one problem at one `file:line:column`, with a stable code.
 * Printed as `<file>:<line>:<column>: <severity>[<code>]: <message>`.
 */

export const DIAGNOSTIC_CODES = [
  "front-matter",
  "yaml",
  "env",
  "unknown-key",
  "type",
  "required",
  "alias-conflict",
  "provider",
  "pipeline",
  "scene-header",
  "duplicate-scene",
  "unknown-scene",
  "unknown-collector",
  "dtmf",
  "tag",
  "file",
  "template",
  "tool",
  "regex",
  "undefined-variable",
  "unreachable-scene",
  "empty-scene",
  "http-disabled",
] as const;

export type DiagnosticCode = (typeof DIAGNOSTIC_CODES)[number];
export type Severity = "error" | "warning";

export interface Diagnostic {
  file: string;
  /** 1-based line in the file, front matter included. */
  line: number;
  /** 1-based column (UTF-16 code units, as editors and LSP count). */
  column: number;
  severity: Severity;
  code: DiagnosticCode;
  message: string;
}

export interface Position {
  line: number;
  column: number;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity}[${d.code}]: ${d.message}`;
}

/** By position; diagnostics at the same place keep the order in which they were found. */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.line - b.d.line || a.d.column - b.d.column || a.i - b.i)
    .map((x) => x.d);
}

export const isCode = (s: unknown): s is DiagnosticCode => typeof s === "string" && (DIAGNOSTIC_CODES as readonly string[]).includes(s);

/** Collects diagnostics for one file; positions are file offsets, turned into line:column by `positionAt`. */
export class DiagnosticList {
  readonly items: Diagnostic[] = [];

  constructor(
    readonly file: string,
    private readonly positionAt: (offset: number) => Position,
  ) {}

  positionOf(offset: number): Position {
    return this.positionAt(offset);
  }

  add(offset: number, code: DiagnosticCode, message: string, severity: Severity = "error"): void {
    const { line, column } = this.positionAt(offset);
    this.items.push({ file: this.file, line, column, severity, code, message });
  }

  warn(offset: number, code: DiagnosticCode, message: string): void {
    this.add(offset, code, message, "warning");
  }

  get errorCount(): number {
    return this.items.filter((d) => d.severity === "error").length;
  }

  sorted(): Diagnostic[] {
    return sortDiagnostics(this.items);
  }
}
