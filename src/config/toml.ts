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

/**
 * Deeper than any configuration needs. Checked (iteratively) before anything walks the tree recursively: the
 * walks here and in loadConfig would otherwise overflow the stack (a RangeError, not a named config error).
 */
export const MAX_NESTING = 64;

/** Throws TomlSyntaxError at the first array, inline table or key nested deeper than MAX_NESTING. */
function checkNesting(top: AST.TOMLTopLevelTable): void {
  const stack: [AST.TOMLNode, number][] = [];
  const tooDeep = (node: AST.TOMLNode, depth: number): void => {
    if (depth > MAX_NESTING) throw new TomlSyntaxError(`arrays, tables and keys nested deeper than ${MAX_NESTING} levels`, pos(node));
  };
  for (const node of top.body) {
    if (node.type === "TOMLKeyValue") {
      stack.push([node, 0]);
    } else {
      const depth = node.resolvedKey.length;
      tooDeep(node, depth);
      for (const kv of node.body) stack.push([kv, depth]);
    }
  }
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (node.type === "TOMLKeyValue") {
      const d = depth + node.key.keys.length;
      tooDeep(node, d);
      stack.push([node.value, d]);
    } else if (node.type === "TOMLArray") {
      tooDeep(node, depth + 1);
      for (const el of node.elements) stack.push([el, depth + 1]);
    } else if (node.type === "TOMLInlineTable") {
      tooDeep(node, depth + 1);
      for (const kv of node.body) stack.push([kv, depth + 1]);
    }
  }
}


export function parseTomlDocument(text: string): TomlDocument {
  let ast: AST.TOMLProgram;
  try {
    ast = parseTOML(text);
  } catch (err) {
    const e = err as { message?: string; lineNumber?: number; column?: number };
    // The parser recurses per nesting level: a stack overflow there is the same problem checkNesting names.
    const message = err instanceof RangeError ? `arrays or tables nested too deeply (at most ${MAX_NESTING} levels)` : (e.message ?? String(err));
    throw new TomlSyntaxError(message, { line: e.lineNumber ?? 1, column: (e.column ?? 0) + 1 });
  }
  const first = ast.body[0];
  if (first) checkNesting(first);
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
