/**
 * The front matter, from text to validated value: `${ENV}` expansion, YAML, aliases, schema. Every problem is
 * reported at its place in the original file through `FrontLocator`.
 */
import type { Document } from "yaml";
import type { EnvLookup } from "../config/env-expand.js";
import { normaliseAliases, Renames, type Path } from "./aliases.js";
import type { DiagnosticList } from "./diagnostics.js";
import { expandWithPositions } from "./env.js";
import { describeFrontIssues } from "./front-issues.js";
import { frontMatterSchema, type FrontMatter } from "./schema.js";
import type { Parts } from "./source.js";
import { locate, parseFrontYaml, scalarCharOffset } from "./yaml-front.js";

/** Finds keys and values of the front matter in the file, by canonical path. */
export class FrontLocator {
  constructor(
    private readonly doc: Document.Parsed | undefined,
    private readonly expanded: string,
    private readonly toSource: (offset: number) => number,
    private readonly base: number,
    readonly renames: Renames,
  ) {}

  private file(expandedOffset: number): number {
    return this.base + this.toSource(expandedOffset);
  }

  /** Whether the author wrote this path. */
  has(path: Path): boolean {
    return this.doc !== undefined && locate(this.doc, this.renames.authored(path)) !== undefined;
  }

  /**
   * File offset of the key or value at `path`. A path the file does not spell out (a missing field) falls back
   * to the nearest enclosing key, and finally to line 1.
   */
  at(path: Path, prefer: "key" | "value" = "value"): number {
    if (!this.doc) return 0;
    const authored = this.renames.authored(path);
    for (let n = authored.length; n > 0; n--) {
      const found = locate(this.doc, authored.slice(0, n));
      if (!found) continue;
      const range = n === authored.length && prefer === "value" ? (found.value ?? found.key) : (found.key ?? found.value);
      if (range) return this.file(range[0]);
    }
    return 0;
  }

  /** File offset of character `index` of the string value at `path` (for template errors inside it). */
  charAt(path: Path, index: number): number {
    if (!this.doc) return 0;
    const found = locate(this.doc, this.renames.authored(path));
    const inner = scalarCharOffset(this.expanded, found?.node, index);
    return inner === undefined ? this.at(path) : this.file(inner);
  }
}

export interface FrontResult {
  /** Aliases renamed, not validated; {} when the YAML could not be read. For best-effort cross-checks. */
  raw: Record<string, unknown>;
  /** The validated front matter; undefined when it has errors. */
  value: FrontMatter | undefined;
  /** False when the YAML could not be read as a mapping (then `raw` is {} and cross-checks are skipped). */
  read: boolean;
  loc: FrontLocator;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function readFrontMatter(text: string, parts: Parts, env: EnvLookup, diags: DiagnosticList): FrontResult {
  const source = text.slice(parts.frontStart, parts.frontEnd);
  const expansion = expandWithPositions(source, env);
  for (const { name, offset } of expansion.unset) {
    diags.add(
      parts.frontStart + offset,
      "env",
      `environment variable ${name} is not set; use \${${name}:-value} to give a default`,
    );
  }

  const yaml = parseFrontYaml(expansion.text);
  const fail = (renames = new Renames()): FrontResult => ({
    raw: {},
    value: undefined,
    read: false,
    loc: new FrontLocator(yaml.doc, expansion.text, expansion.toSource, parts.frontStart, renames),
  });
  for (const e of yaml.errors) diags.add(parts.frontStart + expansion.toSource(e.offset), "yaml", e.message);
  if (yaml.errors.length) return fail();

  const loaded = yaml.value ?? {};
  if (!isMap(loaded)) {
    const what = Array.isArray(loaded) ? "a list" : `the value ${JSON.stringify(loaded)}`;
    const at = yaml.doc.contents?.range?.[0] ?? 0;
    diags.add(parts.frontStart + expansion.toSource(at), "front-matter", `the front matter must be a YAML mapping of keys to values, got ${what}`);
    return fail();
  }

  const { value: raw, renames, problems } = normaliseAliases(loaded);
  const loc = new FrontLocator(yaml.doc, expansion.text, expansion.toSource, parts.frontStart, renames);
  // Alias problems carry the authored path already: locate it without renaming.
  const authoredLoc = new FrontLocator(yaml.doc, expansion.text, expansion.toSource, parts.frontStart, new Renames());
  for (const p of problems) diags.add(authoredLoc.at(p.path, "key"), p.code, p.message);

  const result = frontMatterSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const d of describeFrontIssues(result.error.issues, frontMatterSchema, renames)) diags.add(loc.at(d.path, d.at), d.code, d.message);
  }
  return { raw, value: result.success && problems.length === 0 ? result.data : undefined, read: true, loc };
}
