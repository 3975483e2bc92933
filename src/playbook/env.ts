/**
 * `${NAME}` expansion of the front matter text before YAML parsing (playbook.md §1), keeping a map from
 * offsets in the expanded text back to offsets in the original, so that YAML and schema errors point at what
 * the author wrote even when a value changed length.
 */
import { expandEnv, type EnvLookup } from "../config/env-expand.js";

// The same tokens as config/env-expand.ts; each one is expanded by `expandEnv` itself, so the rules for
// defaults, empty values and `$${` live in one place.
const TOKEN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g;

interface Edit {
  srcStart: number;
  srcEnd: number;
  outStart: number;
  outEnd: number;
}

export interface Expansion {
  text: string;
  /** Variables that are unset and have no default, with the offset of their `$` in the original text. */
  unset: { name: string; offset: number }[];
  /** Original offset of an offset in `text`. Inside an expanded value it is the `$` of its token. */
  toSource(offset: number): number;
}

export function expandWithPositions(source: string, lookup: EnvLookup): Expansion {
  const edits: Edit[] = [];
  const unset: Expansion["unset"] = [];
  let out = "";
  let last = 0;
  for (const m of source.matchAll(TOKEN)) {
    const start = m.index;
    const r = expandEnv(m[0], lookup);
    let value: string;
    if (r.ok) value = r.value;
    else {
      // Reported; the token stays as written, so YAML and the schema do not add errors about an empty value.
      unset.push({ name: r.unset.name, offset: start });
      value = m[0];
    }
    out += source.slice(last, start);
    const outStart = out.length;
    out += value;
    edits.push({ srcStart: start, srcEnd: start + m[0].length, outStart, outEnd: out.length });
    last = start + m[0].length;
  }
  out += source.slice(last);

  const toSource = (offset: number): number => {
    let lo = 0;
    let hi = edits.length - 1;
    let found: Edit | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = edits[mid] as Edit;
      if (e.outStart <= offset) {
        found = e;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (!found) return offset;
    if (offset < found.outEnd) return found.srcStart;
    return found.srcEnd + (offset - found.outEnd);
  };
  return { text: out, unset, toSource };
}
