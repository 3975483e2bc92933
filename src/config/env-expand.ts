/**
 * `${NAME}` / `${NAME:-default}` expansion (config.md §1, playbook.md §1). `$${` is a literal `${`.
 * Shared by the TOML config (string values) and playbook front matter (raw text).
 */

export type EnvLookup = (name: string) => string | undefined;

export interface UnsetVariable {
  name: string;
  /** Offset of the `$` in the input string. */
  offset: number;
}

export type ExpandResult = { ok: true; value: string } | { ok: false; unset: UnsetVariable };

const PATTERN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function expandEnv(input: string, lookup: EnvLookup): ExpandResult {
  if (!input.includes("${")) return { ok: true, value: input };
  let unset: UnsetVariable | undefined;
  const value = input.replace(PATTERN, (match, name: string | undefined, fallback: string | undefined, offset: number) => {
    if (match === "$${") return "${";
    const found = lookup(name as string);
    if (found !== undefined && found !== "") return found;
    if (fallback !== undefined) return fallback;
    if (found !== undefined) return found;
    unset ??= { name: name as string, offset };
    return "";
  });
  return unset ? { ok: false, unset } : { ok: true, value };
}
