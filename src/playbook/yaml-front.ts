/**
 * The front matter as YAML 1.2 (core schema): its value, its syntax errors, and where each key and value is,
 * as offsets into the (expanded) front matter text.
 */
import { isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Scalar } from "yaml";

export type Range = readonly [start: number, end: number];

export interface YamlProblem {
  offset: number;
  message: string;
}

export interface FrontYaml {
  doc: Document.Parsed;
  /** undefined when the text has no content (an empty front matter). */
  value: unknown;
  errors: YamlProblem[];
}

export function parseFrontYaml(text: string): FrontYaml {
  const doc = parseDocument(text, { version: "1.2", schema: "core", uniqueKeys: true, prettyErrors: false });
  const errors: YamlProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const offset = e.pos[0];
    if (e.code === "DUPLICATE_KEY") errors.push({ offset, message: `duplicate key ${quoteKeyAt(text, offset)}` });
    else errors.push({ offset, message: yamlMessage(e.message) });
  }
  // `1` and `"1"` are different YAML keys but the same key once loaded: report them as duplicates too.
  const loaded: YamlProblem[] = [];
  collectLoadedDuplicates(doc, doc.contents, loaded);
  for (const d of loaded) if (!errors.some((e) => e.offset === d.offset)) errors.push(d);
  let value: unknown;
  if (errors.length === 0 && doc.contents !== null) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // yaml refuses alias chains that expand exponentially ("billion laughs").
      errors.push({ offset: firstAliasOffset(doc), message: `YAML: ${(err as Error).message}` });
    }
  }
  return { doc, value, errors };
}

function firstAliasOffset(doc: Document.Parsed): number {
  let offset = 0;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

/** yaml's messages may carry a source excerpt after a newline; keep the first sentence. */
const yamlMessage = (m: string): string => `YAML: ${(m.split("\n")[0] ?? m).replace(/:$/, "")}`;

function quoteKeyAt(text: string, offset: number): string {
  const m = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:\n#]*?)\s*:/.exec(text.slice(offset));
  const raw = (m?.[1] ?? text.slice(offset, offset + 20)).trim();
  return /^["']/.test(raw) ? raw : JSON.stringify(raw);
}

function collectLoadedDuplicates(doc: Document.Parsed, node: unknown, out: YamlProblem[], seen = new Set<unknown>()): void {
  if (seen.has(node)) return;
  seen.add(node);
  if (isMap(node)) {
    const keys = new Map<string, number>();
    for (const pair of node.items) {
      if (isScalar(pair.key)) {
        const name = String(pair.key.value);
        if (keys.has(name)) out.push({ offset: pair.key.range?.[0] ?? 0, message: `duplicate key "${name}"` });
        else keys.set(name, pair.key.range?.[0] ?? 0);
      }
      collectLoadedDuplicates(doc, pair.value, out, seen);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) collectLoadedDuplicates(doc, item, out, seen);
  }
}

export interface Located {
  /** The key of a map entry (absent for sequence items and the root). */
  key?: Range;
  /** The value node (absent for a key with no value, e.g. `llm:`). */
  value?: Range;
  /** The value node itself, for scalar details (quoting, block style). */
  node?: Node;
}

const rangeOf = (n: { range?: readonly [number, number, number] | null } | null | undefined): Range | undefined =>
  n?.range ? [n.range[0], n.range[1]] : undefined;

/** Finds the key and value at `path`; aliases (`*anchor`) are followed to the anchored node. */
export function locate(doc: Document.Parsed, path: readonly PropertyKey[]): Located | undefined {
  let node: unknown = doc.contents;
  let found: Located = { value: rangeOf(doc.contents as Node | null) };
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String((p.key as Scalar).value) === String(seg));
      if (!pair) return undefined;
      node = pair.value;
      found = { key: rangeOf(pair.key as Scalar), value: rangeOf(pair.value as Node | null) };
    } else if (isSeq(node) && typeof seg === "number") {
      const item: unknown = node.items[seg];
      if (item === undefined) return undefined;
      node = item;
      found = { value: rangeOf(item as Node) };
    } else return undefined;
  }
  if (isAlias(node)) node = node.resolve(doc);
  found.node = (node ?? undefined) as Node | undefined;
  return found;
}

/**
 * The offset of character `index` of a string scalar's value in the text, for template errors inside it.
 * Exact for plain and quoted one-line scalars without escapes and for literal blocks; otherwise the value's start.
 */
export function scalarCharOffset(text: string, node: Node | undefined, index: number): number | undefined {
  if (!node || !isScalar(node) || !node.range) return undefined;
  const start = node.range[0];
  const raw = text.slice(start, node.range[1]);
  const value = String(node.value);
  switch (node.type) {
    case "PLAIN":
      return value.includes("\n") ? start : start + index;
    case "QUOTE_DOUBLE":
    case "QUOTE_SINGLE":
      return value.includes("\n") || raw.length !== value.length + 2 ? start : start + 1 + index;
    case "BLOCK_LITERAL": {
      const before = value.slice(0, index);
      const lineNo = before.split("\n").length - 1;
      const col = index - (before.lastIndexOf("\n") + 1);
      const lines = raw.split("\n");
      let offset = start + (lines[0]?.length ?? 0) + 1;
      const indent = /^ */.exec(lines.slice(1).find((l) => l.trim() !== "") ?? "")?.[0].length ?? 0;
      // Skip to the content line `lineNo` (blank lines inside the block count as lines).
      for (let i = 1; i <= lineNo && i < lines.length; i++) offset += (lines[i]?.length ?? 0) + 1;
      return offset + indent + col;
    }
    default:
      return start;
  }
}
