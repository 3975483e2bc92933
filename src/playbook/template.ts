/**
 * `{{ }}` / `{% %}` templates (playbook.md §5): Jinja syntax as implemented by Nunjucks, autoescape off.
 *
 * - `checkTemplate` finds syntax errors with their offset in the template source, so the parser can place
 *   them at file:line:column. Nunjucks reports no position for several errors (an unclosed `{{`, an
 *   unclosed block), so delimiters and blocks are checked here first, with messages that say what to add.
 * - `templateNames` lists the free variables a template uses (for lint's undefined-variable warning).
 * - `compileTemplate` compiles once; `render` never throws: a missing variable renders as "" and is reported
 *   through a callback, a runtime error renders as "" and is reported too.
 */
import nunjucks from "nunjucks";

// ---------------------------------------------------------------------------------------------------------
// The shared environment

/** Set only during one synchronous render; receives the names looked up and not found. */
let onLookupMiss: ((name: string) => void) | undefined;

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });
env.addFilter("tojson", (value: unknown, spaces?: number) => JSON.stringify(value, null, spaces));

// Nunjucks resolves a top-level name from the frame, then the render context, then `env.globals` when the
// name is `in` it. A proxy that claims every name sees exactly the lookups that found nothing.
{
  const internal = env as unknown as { globals: Record<string, unknown> };
  internal.globals = new Proxy(internal.globals, {
    has: () => true,
    get(target, name) {
      if (typeof name === "string" && !(name in target)) {
        onLookupMiss?.(name);
        return undefined;
      }
      return Reflect.get(target, name);
    },
  });
}

/** Names the template engine itself provides (Nunjucks globals). */
export const ENGINE_GLOBALS: ReadonlySet<string> = new Set(["range", "cycler", "joiner"]);

// ---------------------------------------------------------------------------------------------------------
// Nunjucks' parser (not in @types/nunjucks: see nunjucks/src/parser.js and nodes.js)

interface NjNode {
  typename: string;
  fields: string[];
  lineno: number;
  colno: number;
  value?: unknown;
  [field: string]: unknown;
}

const njParser = (nunjucks as unknown as { parser: { parse(src: string, extensions?: unknown, opts?: unknown): NjNode } }).parser;
const njFilters = (env as unknown as { filters: Record<string, unknown> }).filters;

/** Converts Nunjucks' 0-based line/column to an offset; built once per source (a body can be 1 MiB). */
function offsets(source: string): (line0: number, col0: number) => number {
  const starts = [0];
  for (let i = source.indexOf("\n"); i >= 0; i = source.indexOf("\n", i + 1)) starts.push(i + 1);
  return (line0, col0) => Math.min((starts[line0] ?? source.length) + col0, source.length);
}

// ---------------------------------------------------------------------------------------------------------
// Syntax check

export interface TemplateProblem {
  message: string;
  /** Offset in the template source. */
  offset: number;
}

interface Tag {
  kind: "{{" | "{%";
  start: number;
  inner: string;
}

const BLOCKS: Record<string, string> = {
  if: "endif",
  for: "endfor",
  macro: "endmacro",
  call: "endcall",
  filter: "endfilter",
  block: "endblock",
  switch: "endswitch",
  set: "endset",
};
const RAW = /\{%-?\s*(raw|verbatim)\s*-?%\}/y;
const UNSUPPORTED = new Set(["include", "import", "from", "extends"]);

const showTag = (t: Tag) => {
  const inner = t.inner.replace(/^-|-$/g, "").trim().replace(/\s+/g, " ");
  return `${t.kind} ${inner.length > 40 ? `${inner.slice(0, 40)}…` : inner} ${t.kind === "{{" ? "}}" : "%}"}`;
};
const tagName = (t: Tag) => /^-?\s*([A-Za-z_]\w*)/.exec(t.inner)?.[1] ?? "";

/** Splits the source into tags, checking that every `{{`, `{%`, `{#` is closed. */
function scanTags(source: string): Tag[] | TemplateProblem {
  const tags: Tag[] = [];
  const opener = /\{[{%#]/g;
  let i = 0;
  for (;;) {
    opener.lastIndex = i;
    const found = opener.exec(source);
    if (!found) return tags;
    const start = found.index;
    const kind = source.slice(start, start + 2);
    if (kind === "{#") {
      const close = source.indexOf("#}", start + 2);
      if (close < 0) return { offset: start, message: `expected "#}" to close the comment "{#"` };
      i = close + 2;
      continue;
    }
    const closer = kind === "{{" ? "}}" : "%}";
    let j = start + 2;
    let quote: string | undefined;
    let end = -1;
    while (j < source.length) {
      const c = source[j] as string;
      if (quote) {
        j += c === "\\" ? 2 : 1;
        if (c === quote) quote = undefined;
        continue;
      }
      if (c === '"' || c === "'") quote = c;
      else if (source.startsWith(closer, j)) {
        end = j;
        break;
      } else if (source.startsWith("{{", j) || source.startsWith("{%", j)) break;
      j++;
    }
    if (end < 0) {
      const head = /^\{[{%]-?\s*[\w.]*/.exec(source.slice(start))?.[0] ?? kind;
      return { offset: start, message: `expected "${closer}" to close "${head.slice(0, 40)}"` };
    }
    const tag: Tag = { kind: kind as Tag["kind"], start, inner: source.slice(start + 2, end) };
    i = end + 2;
    RAW.lastIndex = start;
    const raw = RAW.exec(source);
    if (raw) {
      const endRaw = new RegExp(`\\{%-?\\s*end${raw[1]}\\s*-?%\\}`, "g");
      endRaw.lastIndex = i;
      if (!endRaw.exec(source)) return { offset: start, message: `"${showTag(tag)}" is never closed; add "{% end${raw[1]} %}"` };
      i = endRaw.lastIndex;
      continue;
    }
    tags.push(tag);
  }
}

/** Checks that blocks open and close in order; names the tag to add or remove. */
function checkBlocks(tags: Tag[]): TemplateProblem | undefined {
  const stack: Tag[] = [];
  for (const tag of tags) {
    if (tag.kind !== "{%") continue;
    const name = tagName(tag);
    if (UNSUPPORTED.has(name)) return { offset: tag.start, message: `"{% ${name} %}" is not supported in playbooks` };
    if (name in BLOCKS && !(name === "set" && tag.inner.includes("="))) stack.push(tag);
    else if (name.startsWith("end")) {
      const open = stack.pop();
      if (!open) return { offset: tag.start, message: `"${showTag(tag)}" has no opening "{% ${name.slice(3)} %}"` };
      const expected = BLOCKS[tagName(open)];
      if (expected !== name) {
        return { offset: tag.start, message: `"${showTag(tag)}" does not close "${showTag(open)}"; expected "{% ${expected} %}"` };
      }
    }
  }
  const open = stack.pop();
  return open && { offset: open.start, message: `"${showTag(open)}" is never closed; add "{% ${BLOCKS[tagName(open)]} %}"` };
}

const cleanMessage = (m: string) =>
  m
    .replace(/^\([^)]*\)\s*/, "")
    .replace(/\[Line \d+, Column \d+\]\s*/, "")
    .replace(/^\s*(Error: )?/, "")
    .replace(/\s+/g, " ")
    .trim();

function parseTree(source: string): NjNode | TemplateProblem {
  try {
    return njParser.parse(source);
  } catch (err) {
    const e = err as { message?: string; lineno?: number; colno?: number };
    const offset = e.lineno && e.colno ? offsets(source)(e.lineno - 1, e.colno - 1) : 0;
    return { offset, message: cleanMessage(e.message ?? String(err)) };
  }
}

const isProblem = (x: unknown): x is TemplateProblem => typeof x === "object" && x !== null && "message" in x && "offset" in x;

/** The first syntax error of a template, or undefined when it compiles. */
export function checkTemplate(source: string): TemplateProblem | undefined {
  if (!/\{[{%#]/.test(source)) return undefined;
  const tags = scanTags(source);
  if (isProblem(tags)) return tags;
  const blocks = checkBlocks(tags);
  if (blocks) return blocks;
  const tree = parseTree(source);
  if (isProblem(tree)) return tree;
  let unknown: TemplateProblem | undefined;
  walk(tree, (node) => {
    if (!unknown && node.typename === "Filter") {
      const name = (node.name as NjNode).value as string;
      if (!(name in njFilters)) unknown = { offset: offsets(source)(node.lineno, node.colno), message: `unknown filter "${name}"` };
    }
  });
  if (unknown) return unknown;
  try {
    new nunjucks.Template(source, env, "playbook", true);
  } catch (err) {
    return { offset: 0, message: cleanMessage((err as Error).message) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Variables a template uses

export interface NameUse {
  name: string;
  /** Offset in the template source. */
  offset: number;
  /** Used only where a missing value is expected: `| default(…)`, an `if` test, `is defined`. */
  guarded: boolean;
}

function walk(node: unknown, visit: (n: NjNode) => void): void {
  if (!node || typeof node !== "object") return;
  const n = node as NjNode;
  if (typeof n.typename !== "string") return;
  visit(n);
  for (const f of n.fields ?? []) {
    const child = n[f];
    if (Array.isArray(child)) child.forEach((c) => walk(c, visit));
    else walk(child, visit);
  }
}

const PASS_GUARD = new Set(["And", "Or", "Not", "Group", "Compare", "CompareOperand", "In"]);

/** Free variables of a template (names it reads that it does not set itself), in source order. */
export function templateNames(source: string): NameUse[] {
  if (!/\{[{%]/.test(source)) return [];
  const tree = parseTree(source);
  if (isProblem(tree)) return [];
  const uses: NameUse[] = [];
  const offsetAt = offsets(source);
  const locals = new Set<string>(["loop"]);
  const bind = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(bind);
    const node = n as NjNode | undefined;
    if (node?.typename === "Symbol") locals.add(String(node.value));
    else if (node && (node.typename === "Array" || node.typename === "NodeList")) (node.children as unknown[]).forEach(bind);
  };
  const visit = (n: unknown, guarded: boolean): void => {
    const node = n as NjNode | undefined;
    if (!node || typeof node !== "object" || typeof node.typename !== "string") return;
    const kids = (field: string, g: boolean) => {
      const c = node[field];
      if (Array.isArray(c)) c.forEach((x) => visit(x, g));
      else visit(c, g);
    };
    switch (node.typename) {
      case "Symbol":
        uses.push({ name: String(node.value), offset: offsetAt(node.lineno, node.colno), guarded });
        return;
      case "Filter": {
        const name = String((node.name as NjNode).value);
        const [first, ...rest] = ((node.args as NjNode).children as unknown[]) ?? [];
        visit(first, guarded || name === "default" || name === "d");
        rest.forEach((x) => visit(x, false));
        return;
      }
      case "Is":
        visit(node.left, true);
        return;
      case "If":
      case "InlineIf":
        visit(node.cond, true);
        kids("body", false);
        kids("else_", false);
        return;
      case "Set":
        bind(node.targets);
        kids("value", false);
        kids("body", false);
        return;
      case "For":
        bind(node.name);
        kids("arr", false);
        kids("body", false);
        kids("else_", false);
        return;
      case "Macro":
      case "Caller":
        bind(node.name);
        for (const arg of ((node.args as NjNode).children as NjNode[]) ?? []) {
          if (arg.typename !== "KeywordArgs") bind(arg);
          else {
            for (const p of arg.children as NjNode[]) {
              bind(p.key);
              visit(p.value, false);
            }
          }
        }
        kids("body", false);
        return;
      case "Pair":
        visit(node.value, false);
        return;
      case "LookupVal":
        visit(node.target, guarded);
        visit(node.val, false);
        return;
      default:
        for (const f of node.fields ?? []) kids(f, PASS_GUARD.has(node.typename) ? guarded : false);
    }
  };
  visit(tree, false);
  return uses.filter((u) => !locals.has(u.name) && !ENGINE_GLOBALS.has(u.name));
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

export interface RenderHooks {
  /** A variable the template reads unguarded was not set; it rendered as "". Called once per name. */
  onMissing?: (name: string) => void;
  /** Rendering failed (e.g. calling something that is not a function); the result is "". */
  onError?: (error: Error) => void;
}

export class CompiledTemplate {
  private readonly template: nunjucks.Template | undefined;
  /** Names worth reporting when missing: read somewhere without a guard. */
  private readonly reportable: ReadonlySet<string>;

  /** Throws TemplateSyntaxError when the source does not compile. */
  constructor(readonly source: string) {
    if (!/\{[{%#]/.test(source)) {
      this.reportable = new Set();
      return;
    }
    const problem = checkTemplate(source);
    if (problem) throw new TemplateSyntaxError(problem);
    this.template = new nunjucks.Template(source, env, "playbook", true);
    this.reportable = new Set(templateNames(source).filter((u) => !u.guarded).map((u) => u.name));
  }

  render(variables: Readonly<Record<string, unknown>>, hooks: RenderHooks = {}): string {
    if (!this.template) return this.source;
    const missing = new Set<string>();
    const previous = onLookupMiss;
    onLookupMiss = (name) => {
      if (this.reportable.has(name)) missing.add(name);
    };
    try {
      return this.template.render({ ...variables });
    } catch (err) {
      hooks.onError?.(err instanceof Error ? err : new Error(String(err)));
      return "";
    } finally {
      onLookupMiss = previous;
      for (const name of missing) hooks.onMissing?.(name);
    }
  }
}

export class TemplateSyntaxError extends Error {
  constructor(readonly problem: TemplateProblem) {
    super(problem.message);
    this.name = "TemplateSyntaxError";
  }
}

/**
 * The templates of one playbook, compiled once and shared by its calls. Sources not seen at load time
 * (e.g. text from an API client) are compiled on first use; a source with a syntax error renders as itself.
 */
export class TemplateSet {
  private readonly compiled = new Map<string, CompiledTemplate>();

  /** Compiles and keeps `source`; throws TemplateSyntaxError. */
  add(source: string): CompiledTemplate {
    let t = this.compiled.get(source);
    if (!t) {
      t = new CompiledTemplate(source);
      this.compiled.set(source, t);
    }
    return t;
  }

  has(source: string): boolean {
    return this.compiled.has(source);
  }

  get size(): number {
    return this.compiled.size;
  }

  render(source: string, variables: Readonly<Record<string, unknown>>, hooks: RenderHooks = {}): string {
    let t = this.compiled.get(source);
    if (!t) {
      try {
        t = this.add(source);
      } catch (err) {
        hooks.onError?.(err as Error);
        return source;
      }
    }
    return t.render(variables, hooks);
  }
}
