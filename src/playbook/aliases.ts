/**
 * Compatibility aliases of the front matter (playbook.md §2.15), renamed to canonical names before validation.
 * Each rename is remembered, so that later diagnostics name and point at the key the author wrote.
 */
import { ALIASES, applyAliases, type Alias } from "../config/sections.js";

const seconds = (v: unknown) => (typeof v === "number" ? Math.round(v * 1000) : v);

interface Site {
  /** Where the aliased keys live; `*` matches every key of a map. */
  at: readonly string[];
  aliases: readonly Alias[];
}

const SITES: readonly Site[] = [
  {
    at: [],
    aliases: [
      { alias: "followUp", canonical: "followup" },
      { alias: "extra", canonical: "variables" },
    ],
  },
  ...Object.entries(ALIASES).map(([section, aliases]) => ({ at: [section], aliases })),
  { at: ["realtime", "turnDetection"], aliases: snake(["prefixPaddingMs", "silenceDurationMs", "idleTimeoutMs"]) },
  { at: ["followup"], aliases: [{ alias: "maxCount", canonical: "max" }] },
  { at: ["posthook"], aliases: [{ alias: "include_history", canonical: "includeHistory" }] },
  {
    at: ["sip"],
    aliases: [
      { alias: "extract_headers", canonical: "extractHeaders" },
      { alias: "hangup_headers", canonical: "hangupHeaders" },
    ],
  },
  {
    at: ["dtmfCollectors", "*"],
    aliases: [
      { alias: "timeout", canonical: "timeoutMs", convert: seconds },
      { alias: "interDigitTimeout", canonical: "interDigitTimeoutMs", convert: seconds },
      { alias: "retries", canonical: "retryTimes" },
    ],
  },
  {
    at: ["recorder"],
    aliases: [
      { alias: "file", canonical: "recorderFile" },
      { alias: "path", canonical: "recorderFile" },
      { alias: "sampleRate", canonical: "samplerate" },
    ],
  },
];

function snake(names: string[]): Alias[] {
  return names.map((canonical) => ({ alias: canonical.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), canonical }));
}

export type Path = readonly PropertyKey[];

export interface AliasProblem {
  code: "alias-conflict" | "unknown-key" | "type";
  /** Authored path of the key to point at. */
  path: Path;
  message: string;
}

/** Maps canonical paths back to what the author wrote. */
export class Renames {
  private readonly map = new Map<string, Path>();

  set(canonical: Path, authored: Path): void {
    this.map.set(keyOf(canonical), authored);
  }

  /** The authored path of a canonical one: the longest renamed prefix is replaced. */
  authored(path: Path): Path {
    for (let n = path.length; n > 0; n--) {
      const hit = this.map.get(keyOf(path.slice(0, n)));
      if (hit) return [...hit, ...path.slice(n)];
    }
    return path;
  }
}

const keyOf = (path: Path) => path.map(String).join("\u0000");
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Renders a path the way the author sees it: `llm.temperature`, `tools[0].http.url`, `dtmf["1"].scene`. */
export function showPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out || "the front matter";
}

/**
 * Renames aliases in place of a copy. Returns the normalised value, the renames, and the problems:
 * both names of a pair set, `llm.greeting` with a top-level `greeting`, keys of `realtime.extra` that are
 * not aliases.
 */
export function normaliseAliases(raw: Record<string, unknown>): { value: Record<string, unknown>; renames: Renames; problems: AliasProblem[] } {
  const renames = new Renames();
  const problems: AliasProblem[] = [];
  const root: Record<string, unknown> = { ...raw };

  const visit = (obj: Record<string, unknown>, rest: readonly string[], canonical: PropertyKey[], aliases: readonly Alias[]): void => {
    if (rest.length === 0) {
      const { value, conflicts, renamed } = applyAliases(obj, aliases);
      const authoredParent = renames.authored(canonical);
      for (const { alias, canonical: other } of conflicts) {
        problems.push({
          code: "alias-conflict",
          path: [...authoredParent, alias],
          message: `${showPath([...authoredParent, other])} and ${showPath([...authoredParent, alias])} are both set; keep one`,
        });
      }
      for (const [to, from] of renamed) renames.set([...canonical, to], [...authoredParent, from]);
      replaceContents(obj, value);
      return;
    }
    const [head, ...tail] = rest as [string, ...string[]];
    const keys = head === "*" ? Object.keys(obj) : [head];
    for (const key of keys) {
      const child = obj[key];
      if (!isMap(child)) continue;
      const copy = { ...child };
      obj[key] = copy;
      visit(copy, tail, [...canonical, key], aliases);
    }
  };
  for (const site of SITES) visit(root, site.at, [], site.aliases);

  liftLlmGreeting(root, renames, problems);
  liftRealtimeExtra(root, renames, problems);
  return { value: root, renames, problems };
}

function replaceContents(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const k of Object.keys(target)) delete target[k];
  Object.assign(target, source);
}

/** `llm.greeting` is the top-level greeting text written inside `llm`. */
function liftLlmGreeting(root: Record<string, unknown>, renames: Renames, problems: AliasProblem[]): void {
  const llm = root.llm;
  if (!isMap(llm) || !("greeting" in llm)) return;
  const { greeting, ...rest } = llm;
  root.llm = rest;
  if ("greeting" in root) {
    problems.push({ code: "alias-conflict", path: ["llm", "greeting"], message: "greeting and llm.greeting are both set; keep one" });
    return;
  }
  root.greeting = greeting;
  renames.set(["greeting"], ["llm", "greeting"]);
}

/** `realtime.extra.voice` / `extra.instructions` are `realtime.voice` / `realtime.instructions`. */
function liftRealtimeExtra(root: Record<string, unknown>, renames: Renames, problems: AliasProblem[]): void {
  const rt = root.realtime;
  if (!isMap(rt) || !("extra" in rt)) return;
  const { extra, ...rest } = rt;
  root.realtime = rest;
  if (!isMap(extra)) {
    problems.push({ code: "type", path: ["realtime", "extra"], message: "realtime.extra must be a mapping with voice and/or instructions" });
    return;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (key !== "voice" && key !== "instructions") {
      problems.push({
        code: "unknown-key",
        path: ["realtime", "extra", key],
        message: `unknown key "${key}" in realtime.extra; it accepts voice and instructions`,
      });
    } else if (key in rest) {
      problems.push({
        code: "alias-conflict",
        path: ["realtime", "extra", key],
        message: `realtime.${key} and realtime.extra.${key} are both set; keep one`,
      });
    } else {
      rest[key] = value;
      renames.set(["realtime", key], ["realtime", "extra", key]);
    }
  }
}
