/**
 * Schema issues of the front matter -> diagnostics with playbook.md §8 codes, worded with the keys the author
 * wrote (aliases included) and placed on the offending key (unknown key), value (wrong value) or the nearest
 * enclosing key (missing field).
 */
import type { z } from "zod";
import { describeIssue, knownKeys } from "../config/issues.js";
import { ASR_PROVIDERS, LLM_PROVIDERS, REALTIME_PROVIDERS, TTS_PROVIDERS, VAD_TYPES } from "../config/sections.js";
import { suggest } from "../util/suggest.js";
import { showPath, type Path, type Renames } from "./aliases.js";
import { isCode, type DiagnosticCode } from "./diagnostics.js";

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

/** Provider names by section; `auto` is a choice, not a provider, so it is not listed as available. */
export const PROVIDERS: Record<string, readonly string[]> = {
  asr: ASR_PROVIDERS,
  tts: TTS_PROVIDERS,
  llm: LLM_PROVIDERS,
  realtime: REALTIME_PROVIDERS,
  vad: VAD_TYPES,
};
const providerField = (path: Path): string | undefined => {
  if (path.length !== 2) return undefined;
  const [section, field] = path as [string, string];
  if (section === "vad") return field === "type" ? section : undefined;
  return field === "provider" && section in PROVIDERS ? section : undefined;
};

export interface Located {
  code: DiagnosticCode;
  message: string;
  /** Canonical path to point at, and whether at its key or its value. */
  path: Path;
  at: "key" | "value";
}

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(v));
const isScalar = (v: unknown) => v === null || (typeof v !== "object" && typeof v !== "function");

/** A union issue whose input matched the type of exactly one branch is that branch's issues. */
function flatten(issue: Issue): Issue[] {
  if (issue.code !== "invalid_union") return [issue];
  const fitting = issue.errors.filter(
    (branch) => !branch.some((i) => i.path.length === 0 && (i.code === "invalid_type" || i.code === "invalid_value")),
  );
  if (fitting.length !== 1) return [issue];
  return (fitting[0] as Issue[]).flatMap((i) => flatten({ ...i, path: [...issue.path, ...i.path] } as Issue));
}

export function describeFrontIssues(issues: readonly Issue[], root: AnySchema, renames: Renames): Located[] {
  const authored = (p: Path) => showPath(renames.authored(p));
  const out: Located[] = [];
  for (const issue of issues.flatMap(flatten)) {
    const path = issue.path as PropertyKey[];
    const input = (issue as { input?: unknown }).input;

    if (issue.code === "unrecognized_keys") {
      const where = path.length ? ` in ${authored(path)}` : " in the front matter";
      for (const key of issue.keys) {
        const hint = suggest(key, knownKeys(root, path));
        out.push({
          code: "unknown-key",
          path: [...path, key],
          at: "key",
          message: `unknown key "${key}"${where}${hint ? `; did you mean "${hint}"?` : ""}`,
        });
      }
      continue;
    }

    const section = providerField(path);
    if (section && issue.code === "invalid_value" && typeof input === "string") {
      const available = (PROVIDERS[section] ?? []).filter((p) => p !== "auto" && p !== "silero");
      out.push({
        code: "provider",
        path,
        at: "value",
        message: `${authored(path)} "${input}" is not available; available: ${available.join(", ")}`,
      });
      continue;
    }

    if (issue.code === "custom") {
      const params = issue.params as { code?: unknown; missing?: string } | undefined;
      const code = isCode(params?.code) ? params.code : "type";
      const value = isScalar(input) && input !== undefined ? ` ${show(input)}` : "";
      out.push({
        code,
        path,
        at: params?.missing ? "key" : "value",
        message: `${authored(path)}${params?.missing ? "" : value} ${issue.message}`,
      });
      continue;
    }

    for (const text of describeIssue(issue, root, (p) => authored(p))) {
      let message = text.message;
      if (issue.code === "invalid_value" && typeof input === "string") {
        const hint = suggest(input, issue.values.filter((v): v is string => typeof v === "string"));
        if (hint) message += `; did you mean "${hint}"?`;
      }
      if (text.kind === "required") out.push({ code: "required", path: text.path.slice(0, -1), at: "key", message });
      else out.push({ code: text.kind, path: text.path, at: text.kind === "unknown-key" ? "key" : "value", message });
    }
  }
  return out;
}
