/**
 * Turns schema issues into one-line messages that say where the problem is and what was expected.
 * Shared by the config loader and (later) playbook diagnostics.
 */
import { z } from "zod";
import { suggest } from "../util/suggest.js";

type AnySchema = z.core.$ZodType;

/**
 * What a field expects, in words ("an integer number of milliseconds (≥ 100)"). A schema registered here gets
 * one message for every way its value can be wrong (type, range, format), instead of zod's piecemeal ones.
 */
export const expectations = z.registry<{ expects: string }>();

/** Registers `schema` with the wording of what it expects and returns it, for use inline in a schema. */
export function expects<T extends AnySchema>(schema: T, text: string): T {
  expectations.add(schema, { expects: text });
  return schema;
}

/** Walks wrappers (default, optional, transform, ...) down to the schema that validates values. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema; schema?: AnySchema };
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return s;
  }
}

const typeOf = (s: AnySchema): string => (s._zod.def as { type: string }).type;

/** The branch of a union that can hold a key of this kind (an object or record for names, an array for indexes). */
function containerBranch(s: AnySchema, key: PropertyKey | undefined): AnySchema {
  if (typeOf(s) !== "union") return s;
  const options = (s._zod.def as unknown as { options: AnySchema[] }).options.map(unwrap);
  const wanted = typeof key === "number" ? ["array"] : ["object", "record"];
  return options.find((o) => wanted.includes(typeOf(o))) ?? s;
}

/**
 * The schema found at `path` inside `root`, or undefined. A union is entered through its branch that can hold
 * the next key; the schema at the end of the path is returned as it is (a union stays a union).
 */
export function schemaAt(root: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  let s: AnySchema | undefined = unwrap(root);
  for (const key of path) {
    if (!s) return undefined;
    const def = containerBranch(s, key)._zod.def as {
      type: string;
      shape?: Record<string, AnySchema>;
      element?: AnySchema;
      valueType?: AnySchema;
    };
    if (def.type === "object") s = def.shape?.[String(key)];
    else if (def.type === "array") s = def.element;
    else if (def.type === "record") s = def.valueType;
    else return undefined;
    s = s && unwrap(s);
  }
  return s;
}

/** Keys an object schema knows at `path` (through a union, its object branch). */
export function knownKeys(root: AnySchema, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(root, path);
  const def = s && (containerBranch(s, "")._zod.def as { type?: string; shape?: Record<string, unknown> });
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

const show = (v: unknown): string => {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}`;
  if (Array.isArray(v)) return "a list";
  if (v !== null && typeof v === "object") return "a table";
  return String(v);
};

const article = (expected: string): string => {
  const names: Record<string, string> = {
    string: "a string",
    number: "a number",
    int: "an integer",
    boolean: "true or false",
    array: "a list",
    object: "a table",
    record: "a table",
  };
  return names[expected] ?? expected;
};

export interface IssueText {
  /** Path of the key the message is about (for unknown keys: including the unknown key). */
  path: PropertyKey[];
  /** What is wrong, without the location. */
  message: string;
  kind: "unknown-key" | "type" | "required";
}

/** Collects the literal values a union accepts, when all its branches are literals or enums. */
function unionValues(issue: z.core.$ZodIssueInvalidUnion): unknown[] | undefined {
  const values: unknown[] = [];
  for (const branch of issue.errors) {
    for (const sub of branch) {
      if (sub.code !== "invalid_value" || sub.path.length > 0) return undefined;
      values.push(...sub.values);
    }
  }
  return values.length ? values : undefined;
}

/** The registered expectation of the field at `path`, if any. */
function expectedAt(root: AnySchema, path: readonly PropertyKey[]): string | undefined {
  const schema = schemaAt(root, path);
  return schema ? expectations.get(schema)?.expects : undefined;
}

/**
 * Describes one issue. `describeKey(path)` renders a key path the way the file's author sees it
 * (e.g. `esl_password in [freeswitch]`).
 */
export function describeIssue(
  issue: z.core.$ZodIssue,
  root: AnySchema,
  describeKey: (path: PropertyKey[]) => string,
): IssueText[] {
  const path = issue.path as PropertyKey[];
  const input = (issue as { input?: unknown }).input;
  const expected = issue.code === "unrecognized_keys" || input === undefined ? undefined : expectedAt(root, path);
  if (expected !== undefined) {
    return [{ path, kind: "type", message: `${describeKey(path)} must be ${expected}, got ${show(input)}` }];
  }
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const hint = suggest(key, knownKeys(root, path));
        return {
          path: [...path, key],
          kind: "unknown-key" as const,
          message: `unknown key ${describeKey([...path, key])}${hint ? `; did you mean "${hint}"?` : ""}`,
        };
      });
    case "invalid_type":
      if (input === undefined) {
        return [{ path, kind: "required", message: `${describeKey(path)} is required` }];
      }
      return [{ path, kind: "type", message: `${describeKey(path)} must be ${article(issue.expected)}, got ${show(input)}` }];
    case "invalid_value":
      return [
        {
          path,
          kind: "type",
          message: `${describeKey(path)} must be ${issue.values.length === 1 ? "" : "one of "}${issue.values.map(show).join(", ")}; got ${show(input)}`,
        },
      ];
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const op = issue.code === "too_small" ? (issue.inclusive === false ? ">" : "≥") : issue.inclusive === false ? "<" : "≤";
      const what = issue.origin === "string" ? "length" : issue.origin === "array" ? "number of items" : "value";
      const msg =
        issue.origin === "number" || issue.origin === "int" || issue.origin === "bigint"
          ? `${describeKey(path)} must be ${op} ${bound}, got ${show(input)}`
          : `${describeKey(path)} ${what} must be ${op} ${bound}`;
      return [{ path, kind: "type", message: msg }];
    }
    case "invalid_union": {
      const values = unionValues(issue);
      const message = values
        ? `${describeKey(path)} must be one of ${values.map(show).join(", ")}; got ${show(input)}`
        : `${describeKey(path)} has an invalid value ${show(input)}`;
      return [{ path, kind: "type", message }];
    }
    default:
      // Refinements on a whole table report the table as input: say what is wrong, not "got a table".
      return [{ path, kind: "type", message: `${describeKey(path)} ${issue.message}${input === undefined || typeof input === "object" ? "" : `, got ${show(input)}`}` }];
  }
}
