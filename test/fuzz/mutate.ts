/**
 * Input generators shared by the fuzz targets: structure-aware mutations of valid inputs (bytes, lines, JSON
 * values) and random chunk boundaries. Everything is a fast-check arbitrary, so a failure shrinks and replays
 * from its seed.
 */
import fc from "fast-check";

export type ByteOp =
  | { op: "flip"; at: number; value: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; len: number }
  | { op: "duplicate"; at: number; len: number }
  | { op: "splice"; at: number; len: number; bytes: Uint8Array };

/** Byte sequences that mean something to one of our wire formats (framing, escapes, multi-byte UTF-8). */
const TOKENS = [
  "\n", "\n\n", "\r\n", "\r\n\r\n", ":", ": ", "%", "%2", "%E2%82%AC", "%ZZ", "{", "}", "[", "]", '"', "\\", "\\u0000",
  "Content-Length: ", "Content-Length: 0\n", "Content-Length: 99999999999\n", "Content-Type: text/event-json\n",
  "Content-Type: text/event-plain\n", "Event-Name: CUSTOM\n", "\u00e9", "\u20ac", "\ud83d\ude00", "\u0000", "\ufeff",
  "---\n", "{{", "}}", "{%", "%}", "${", "#", "= ", "[[", "]]", "'''", '"""', "0x", "-", "1e999", "NaN", "null", "true",
].map((t) => Buffer.from(t, "utf8"));

const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.oneof(fc.uint8Array({ maxLength: 12 }), fc.constantFrom(...TOKENS).map((b) => new Uint8Array(b))),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("duplicate" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 512 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("splice" as const), at: fc.nat(), len: fc.integer({ min: 0, max: 8 }), bytes: fc.uint8Array({ maxLength: 8 }) }) },
);

export function applyByteOps(input: Uint8Array, ops: readonly ByteOp[]): Buffer {
  let b = Buffer.from(input);
  for (const o of ops) {
    const at = b.length === 0 ? 0 : o.at % (b.length + 1);
    switch (o.op) {
      case "flip":
        if (b.length > 0) b[at % b.length] = o.value;
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, at), o.bytes, b.subarray(at)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + o.len)]);
        break;
      case "duplicate":
        b = Buffer.concat([b.subarray(0, at + o.len), b.subarray(at, at + o.len), b.subarray(at + o.len)]);
        break;
      case "splice":
        b = Buffer.concat([b.subarray(0, at), o.bytes, b.subarray(at + o.len)]);
        break;
    }
  }
  return b;
}

/** A seed (or a window of a long one) with a few byte-level mutations. */
export function mutatedBytes(seeds: readonly Uint8Array[], opts: { window?: number; maxOps?: number } = {}): fc.Arbitrary<Buffer> {
  const window = opts.window ?? Infinity;
  return fc
    .tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.nat(), fc.array(byteOp, { maxLength: opts.maxOps ?? 6 }))
    .map(([i, start, ops]) => {
      const seed = seeds[i] as Uint8Array;
      const from = seed.length > window ? start % (seed.length - window + 1) : 0;
      return applyByteOps(seed.subarray(from, from + window), ops);
    });
}

/** The same as text (mutations may break UTF-8; the decoder then substitutes U+FFFD, as `toString` does in production). */
export function mutatedText(seeds: readonly string[], opts: { maxOps?: number } = {}): fc.Arbitrary<string> {
  return mutatedBytes(seeds.map((s) => Buffer.from(s, "utf8")), opts).map((b) => b.toString("utf8"));
}

/** Line-level edits for line-oriented formats (Markdown playbooks, TOML): drop, duplicate, swap, insert, indent. */
export function mutatedLines(seeds: readonly string[], snippets: readonly string[]): fc.Arbitrary<string> {
  const lineOp = fc.record({
    kind: fc.constantFrom("drop", "dup", "swap", "insert", "indent", "cut"),
    at: fc.nat(),
    to: fc.nat(),
    snippet: fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 40 })),
  });
  return fc.tuple(fc.constantFrom(...seeds), fc.array(lineOp, { maxLength: 6 })).map(([seed, ops]) => {
    const lines = seed.split("\n");
    for (const o of ops) {
      if (lines.length === 0) lines.push("");
      const i = o.at % lines.length;
      const j = o.to % lines.length;
      const line = lines[i] as string;
      switch (o.kind) {
        case "drop":
          lines.splice(i, 1);
          break;
        case "dup":
          lines.splice(i, 0, line);
          break;
        case "swap":
          lines[i] = lines[j] as string;
          lines[j] = line;
          break;
        case "insert":
          lines.splice(i, 0, o.snippet);
          break;
        case "indent":
          lines[i] = `${" ".repeat(1 + (o.to % 6))}${line}`;
          break;
        case "cut":
          lines[i] = line.slice(0, o.to % (line.length + 1)) + o.snippet;
          break;
      }
    }
    return lines.join("\n");
  });
}

/** Deeply nested JSON / TOML arrays and objects: stack depth is a classic parser crash. */
export function deepNesting(opts: { open: string; close: string; inner?: string; min?: number; max?: number }): fc.Arbitrary<string> {
  return fc.integer({ min: opts.min ?? 100, max: opts.max ?? 20_000 }).map((d) => opts.open.repeat(d) + (opts.inner ?? "") + opts.close.repeat(d));
}

type Json = unknown;

export type JsonOp = { kind: "delete" | "set" | "retype" | "nest" | "dupKey"; pick: number; value: Json; depth: number };

const jsonOp: fc.Arbitrary<JsonOp> = fc.record({
  kind: fc.constantFrom("delete", "set", "retype", "nest", "dupKey"),
  pick: fc.nat(),
  value: fc.jsonValue({ maxDepth: 3 }),
  // Shallow enough for JSON.stringify here; deeper nesting comes as text (`withDeepField`).
  depth: fc.integer({ min: 1, max: 300 }),
});

/** Every (container, key) inside `v`, depth first. */
function slots(v: Json, out: { parent: Record<string, Json> | Json[]; key: string | number }[] = []): typeof out {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push({ parent: v, key: i });
      slots(x, out);
    });
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      out.push({ parent: v as Record<string, Json>, key: k });
      slots(x, out);
    }
  }
  return out;
}

const RETYPE: Json[] = [null, 0, -1, 1.5, 1e308, "", "x", true, false, [], {}, "NaN", "-0", 2 ** 53 + 1];

/** A valid JSON message with fields deleted, replaced, re-typed, nested deeply or duplicated under a twin key. */
export function mutatedJson(seeds: readonly Json[]): fc.Arbitrary<Json> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(jsonOp, { maxLength: 4 })).map(([seed, ops]) => {
    const root = structuredClone(seed);
    for (const o of ops) {
      const all = slots(root);
      if (all.length === 0) break;
      const s = all[o.pick % all.length] as (typeof all)[number];
      const p = s.parent as Record<string | number, Json>;
      switch (o.kind) {
        case "delete":
          if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
          else delete p[s.key];
          break;
        case "set":
          p[s.key] = o.value;
          break;
        case "retype":
          p[s.key] = RETYPE[o.pick % RETYPE.length];
          break;
        case "nest": {
          let v: Json = o.value;
          for (let d = 0; d < o.depth; d++) v = d % 2 === 0 ? [v] : { k: v };
          p[s.key] = v;
          break;
        }
        case "dupKey":
          if (!Array.isArray(s.parent)) p[`${String(s.key)}_`] = p[s.key];
          break;
      }
    }
    return root;
  });
}

/** A JSON text: mutated structure, serialised, sometimes with byte damage on top. */
export function mutatedJsonText(seeds: readonly Json[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: mutatedJson(seeds).map((v) => JSON.stringify(v) ?? "null") },
    { weight: 1, arbitrary: fc.tuple(mutatedJson(seeds), fc.array(byteOp, { maxLength: 3 })).map(([v, ops]) => applyByteOps(Buffer.from(JSON.stringify(v) ?? "", "utf8"), ops).toString("utf8")) },
  );
}

/**
 * A seed object's JSON with one extra field nested 500-8000 levels deep, built as text (too deep to stringify;
 * JSON.stringify overflows the stack from about 2000-5000 levels, JSON.parse does not).
 */
export function withDeepField(seeds: readonly Json[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.constantFrom("[", '{"a":'), fc.integer({ min: 500, max: 8000 }), fc.constantFrom("deep", "event", "_body", "channel", "start", "media"))
    .map(([seed, open, depth, key]) => {
      const close = open === "[" ? "]" : "}";
      const text = JSON.stringify(seed) ?? "{}";
      const deep = `${open.repeat(depth)}1${close.repeat(depth)}`;
      return text.startsWith("{") ? `{${JSON.stringify(key)}:${deep}${text.length > 2 ? "," : ""}${text.slice(1)}` : deep;
    });
}

/** Random text: JSON-ish, arbitrary code points, lone surrogates. */
export const randomText: fc.Arbitrary<string> = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 100 }),
  fc.string({ maxLength: 200 }),
);

/** Cut points for splitting an input into chunks (taken modulo the input length, then sorted). */
export const cuts: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.nat(), { maxLength: 24 }),
  // Byte by byte, the worst case for a streaming parser.
  fc.constant<number[]>([-1]),
);

export function splitAt(input: Uint8Array, points: readonly number[]): Buffer[] {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (points.length === 1 && points[0] === -1) {
    // Byte by byte over the first 2 KiB (where framing starts), then odd-sized pieces: bounded cost per case.
    const out: Buffer[] = [];
    for (let i = 0; i < buf.length; i += i < 2048 ? 1 : 997) out.push(buf.subarray(i, i < 2048 ? i + 1 : i + 997));
    return out;
  }
  const at = [...new Set(points.map((p) => (buf.length === 0 ? 0 : p % (buf.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of at) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}
