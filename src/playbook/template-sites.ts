/**
 * Every template of a playbook, with where it is in the file: front matter fields marked "template" in
 * playbook.md §2, scene prompts, and tag attributes. Each is checked for syntax (error) and for variables
 * that nothing defines (warning).
 */
import { suggest } from "../util/suggest.js";
import type { Path } from "./aliases.js";
import type { DiagnosticList } from "./diagnostics.js";
import type { FrontLocator } from "./front.js";
import type { FrontMatter } from "./schema.js";
import { checkTemplate, templateNames } from "./template.js";

export interface TemplateSite {
  source: string;
  /** File offset of character `index` of the source. */
  offsetAt(index: number): number;
  /** Names this template gets besides the call's variables (`args` for tool requests, `reason` at hangup…). */
  locals?: readonly string[];
}

/**
 * Front matter fields rendered as templates, as path patterns (`*` = any key or index, `**` = any depth),
 * with the names each one receives when rendered (§5 "When templates are rendered").
 */
const FRONT_TEMPLATES: readonly [pattern: string, locals?: readonly string[]][] = [
  ["asr.prompt"],
  ["tts.instructions"],
  ["llm.prompt"],
  ["llm.rules.*.reply", ["text"]],
  ["llm.fallback", ["text"]],
  ["realtime.instructions"],
  ["greeting"],
  ["greeting.text"],
  ["dtmf.*.say"],
  ["dtmfCollectors.*.prompt"],
  ["dtmfCollectors.*.validation.errorMessage"],
  ["followup.text"],
  ["followup.goodbye"],
  ["posthook.url"],
  ["posthook.headers.*"],
  ["posthook.summary"],
  ["tools.*.http.url", ["args"]],
  ["tools.*.http.headers.*", ["args"]],
  ["tools.*.http.query.*", ["args"]],
  ["tools.*.http.body.**", ["args"]], // a string body, or every string inside an object body
  ["tools.*.filler", ["args"]],
  ["tools.*.setVars.*", ["args", "result"]],
  ["sip.hangupHeaders.*", ["reason"]],
  ["sip.headers.*"],
];

/** The string values matching a pattern, with their paths. */
function stringsAt(value: unknown, pattern: readonly string[], path: PropertyKey[] = []): { path: Path; value: string }[] {
  if (pattern.length === 0) return typeof value === "string" ? [{ path, value }] : [];
  const [head, ...rest] = pattern as [string, ...string[]];
  if (value === null || typeof value !== "object") return head === "**" && typeof value === "string" ? [{ path, value }] : [];
  const entries: [PropertyKey, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (head === "**") return entries.flatMap(([k, v]) => stringsAt(v, pattern, [...path, k]));
  if (head === "*") return entries.flatMap(([k, v]) => stringsAt(v, rest, [...path, k]));
  return entries.filter(([k]) => k === head).flatMap(([k, v]) => stringsAt(v, rest, [...path, k]));
}

export function frontTemplateSites(fm: FrontMatter, loc: FrontLocator): TemplateSite[] {
  const sites: TemplateSite[] = [];
  for (const [pattern, locals] of FRONT_TEMPLATES) {
    for (const hit of stringsAt(fm, pattern.split("."))) {
      sites.push({ source: hit.value, offsetAt: (i) => loc.charAt(hit.path, i), locals });
    }
  }
  return sites;
}

/** Reports syntax errors (`template`) and, once per name and site, names nothing defines (`undefined-variable`). */
export function checkTemplateSites(sites: readonly TemplateSite[], known: ReadonlySet<string>, diags: DiagnosticList): void {
  for (const site of sites) {
    const problem = checkTemplate(site.source);
    if (problem) {
      diags.add(site.offsetAt(problem.offset), "template", problem.message);
      continue;
    }
    const reported = new Set<string>();
    for (const use of templateNames(site.source)) {
      if (known.has(use.name) || site.locals?.includes(use.name) || reported.has(use.name)) continue;
      reported.add(use.name);
      const hint = suggest(use.name, [...known, ...(site.locals ?? [])]);
      diags.warn(
        site.offsetAt(use.offset),
        "undefined-variable",
        `variable "${use.name}" is never defined in this playbook${hint ? `; did you mean "${hint}"?` : ""}`,
      );
    }
  }
}
