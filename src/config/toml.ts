/**
 * TOML parsing that remembers where every key and value sits, so that config errors can name file:line:column.
 * toml-eslint-parser gives the AST with positions; its static evaluation gives the plain value.
 */
import { getStaticTOMLValue, parseTOML } from "toml-eslint-parser";
import type { AST } from "toml-eslint-parser";

export interface Position {
  line: number;
  /** 1-based */
  column: number;
}

export interface TomlDocument {
  value: Record<string, unknown>;
  /** Position of the key (or table header) at a path such as ["handler", "rules", 0, "caller"]. */
  keyAt(path: readonly PropertyKey[]): Position | undefined;
  /** Position of the value at a path; falls back to the key's position. */
  valueAt(path: readonly PropertyKey[]): Position | undefined;
}

export class TomlSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: Position,
  ) {
    super(message);
    this.name = "TomlSyntaxError";
  }
}

const pathKey = (path: readonly PropertyKey[]) => path.map(String).join("\u0000");
const pos = (node: AST.TOMLNode): Position => ({ line: node.loc.start.line, column: node.loc.start.column + 1 });

export function parseTomlDocument(text: string): TomlDocument {
  let ast: AST.TOMLProgram;
  try {
    ast = parseTOML(text);
  } catch (err) {
    const e = err as { message?: string; lineNumber?: number; column?: number };
    throw new TomlSyntaxError(e.message ?? String(err), { line: e.lineNumber ?? 1, column: (e.column ?? 0) + 1 });
  }
  const keys = new Map<string, Position>();
  const values = new Map<string, Position>();

  const visitValue = (node: AST.TOMLContentNode, path: PropertyKey[]) => {
    values.set(pathKey(path), pos(node));
    if (node.type === "TOMLInlineTable") {
      for (const kv of node.body) visitKeyValue(kv, path);
    } else if (node.type === "TOMLArray") {
      node.elements.forEach((el, i) => visitValue(el, [...path, i]));
    }
  };
  const visitKeyValue = (kv: AST.TOMLKeyValue, prefix: PropertyKey[]) => {
    const path = [...prefix];
    for (const k of kv.key.keys) {
      path.push(k.type === "TOMLBare" ? k.name : k.value);
      if (!keys.has(pathKey(path))) keys.set(pathKey(path), pos(k));
    }
    visitValue(kv.value, path);
  };

  const top = ast.body[0];
  if (top) {
    for (const node of top.body) {
      if (node.type === "TOMLKeyValue") {
        visitKeyValue(node, []);
      } else {
        const tablePath = node.resolvedKey as PropertyKey[];
        // Every prefix of a header is "declared" at the header, unless an earlier line declared it.
        for (let i = 1; i <= tablePath.length; i++) {
          const prefix = pathKey(tablePath.slice(0, i));
          if (!keys.has(prefix)) keys.set(prefix, pos(node));
        }
        for (const kv of node.body) visitKeyValue(kv, tablePath);
      }
    }
  }

  const value = getStaticTOMLValue(ast) as Record<string, unknown>;
  return {
    value,
    keyAt: (path) => keys.get(pathKey(path)),
    valueAt: (path) => values.get(pathKey(path)) ?? keys.get(pathKey(path)),
  };
}
