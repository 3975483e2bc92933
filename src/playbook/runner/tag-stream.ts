/**
 * Tags in the streamed reply (playbook.md §4.2), parsed while the text streams in deltas split at any
 * character:
 *
 * - A `<` followed by a known tag name (and then a space, `/` or `>`) is held back until its `>` arrives
 *   (outside quotes), or until 200 characters have passed, in which case the `<` is spoken as text and the
 *   rest is scanned again. A partial tag is never emitted as text.
 * - Any other `<…>` is plain text (`3 < 5`, `<b>`); a closing `</hangup>` of a known tag is dropped.
 * - A known tag that does not parse (`<goto scene=x>`) is dropped with an `error` item.
 * - `end()` flushes what is held as text.
 *
 * `ReplyParser` adds the compatibility JSON replies: a reply whose first non-blank character is `{`, or that
 * starts with a ```` ```json ```` fence, is buffered whole; `{text, tools}` becomes text then tag items.
 */
import { parseTagAt, REPLY_TAGS } from "../tags.js";

export type ReplyItem =
  | { type: "text"; text: string }
  | { type: "tag"; name: string; attrs: Record<string, string>; raw: string }
  | { type: "error"; message: string; raw: string };

export const REPLY_TAG_NAMES: readonly string[] = Object.keys(REPLY_TAGS);
export const MAX_TAG_CHARS = 200;

const NAME_CHAR = /[A-Za-z0-9_-]/;

type Head = "text" | "wait" | { tag: string; closing: boolean };

/** What the text at `<` is: plain text, undecided (more input needed), or the start of a known tag. */
function classify(s: string, final: boolean): Head {
  let i = 1;
  const closing = s[1] === "/";
  if (closing) i = 2;
  let j = i;
  while (j < s.length && NAME_CHAR.test(s[j] as string)) j++;
  const name = s.slice(i, j);
  if (j === s.length) {
    // The name may still grow.
    if (final) return "text";
    return REPLY_TAG_NAMES.some((n) => n.startsWith(name)) ? "wait" : "text";
  }
  if (!REPLY_TAG_NAMES.includes(name)) return "text";
  const next = s[j] as string;
  if (closing) return next === ">" ? { tag: name, closing } : "text";
  return /[\s/>]/.test(next) ? { tag: name, closing } : "text";
}

/** Index of the `>` closing the tag at 0, outside quotes; -1 when it has not arrived. */
function tagEnd(s: string): number {
  let quote: string | undefined;
  for (let i = 1; i < s.length; i++) {
    const c = s[i] as string;
    if (quote) {
      if (c === quote || c === "\n") quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ">") return i;
  }
  return -1;
}

export class TagStream {
  private held = "";

  /** Feeds one delta; returns the items now certain, in order. */
  push(delta: string): ReplyItem[] {
    this.held += delta;
    return this.drain(false);
  }

  /** The reply ended: everything held is flushed (an unfinished tag as text). */
  end(): ReplyItem[] {
    const out = this.drain(true);
    if (this.held) out.push({ type: "text", text: this.held });
    this.held = "";
    return merge(out);
  }

  private drain(final: boolean): ReplyItem[] {
    const out: ReplyItem[] = [];
    let s = this.held;
    let text = "";
    for (;;) {
      const lt = s.indexOf("<");
      if (lt < 0) {
        text += s;
        s = "";
        break;
      }
      text += s.slice(0, lt);
      s = s.slice(lt);
      const head = classify(s, final);
      if (head === "text") {
        text += "<";
        s = s.slice(1);
        continue;
      }
      if (head === "wait") break;
      const end = tagEnd(s);
      if (end < 0 || end >= MAX_TAG_CHARS) {
        if (end < 0 && s.length < MAX_TAG_CHARS && !final) break;
        // Too long to be a tag (or never closed): the `<` is text.
        text += "<";
        s = s.slice(1);
        continue;
      }
      if (text) out.push({ type: "text", text });
      text = "";
      const raw = s.slice(0, end + 1);
      s = s.slice(end + 1);
      if (head.closing) continue;
      const parsed = parseTagAt(raw, 0);
      if (!parsed.ok || parsed.tag.end !== raw.length) {
        out.push({ type: "error", message: parsed.ok ? `malformed <${head.tag}> tag` : parsed.message, raw });
        continue;
      }
      const attrs: Record<string, string> = {};
      for (const a of parsed.tag.attrs) attrs[a.name] = a.value;
      out.push({ type: "tag", name: parsed.tag.name, attrs, raw });
    }
    if (text) out.push({ type: "text", text });
    this.held = s;
    return out;
  }
}

/** Joins adjacent text items. */
export function merge(items: ReplyItem[]): ReplyItem[] {
  const out: ReplyItem[] = [];
  for (const item of items) {
    const last = out.at(-1);
    if (item.type === "text" && last?.type === "text") last.text += item.text;
    else if (item.type !== "text" || item.text !== "") out.push(item.type === "text" ? { ...item } : item);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ JSON replies

const FENCE = "```json";

/** Tag items for the `tools` of a compatibility JSON reply; unknown names become errors. */
function jsonTools(tools: unknown): ReplyItem[] {
  if (!Array.isArray(tools)) return [];
  const out: ReplyItem[] = [];
  const str = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? undefined : typeof v === "object" ? JSON.stringify(v) : String(v));
  for (const t of tools) {
    if (typeof t !== "object" || t === null) continue;
    const o = t as Record<string, unknown>;
    const pick = (...keys: string[]) => {
      const attrs: Record<string, string> = {};
      for (const k of keys) {
        const v = str(o[k]);
        if (v !== undefined) attrs[k] = v;
      }
      return attrs;
    };
    const raw = JSON.stringify(o);
    switch (o.name) {
      case "hangup":
        out.push({ type: "tag", name: "hangup", attrs: pick("reason"), raw });
        break;
      case "refer": {
        const to = str(o.callee ?? o.to ?? o.target);
        out.push(to ? { type: "tag", name: "refer", attrs: { to }, raw } : { type: "error", message: "refer needs callee", raw });
        break;
      }
      case "goto":
        out.push({ type: "tag", name: "goto", attrs: pick("scene"), raw });
        break;
      case "set_var":
        out.push({ type: "tag", name: "set_var", attrs: pick("key", "value"), raw });
        break;
      case "http":
        out.push({ type: "tag", name: "http", attrs: pick("url", "method", "body"), raw });
        break;
      default:
        out.push({ type: "error", message: `unknown tool "${String(o.name)}" in a JSON reply`, raw });
    }
  }
  return out;
}

/** Parses a whole compatibility JSON reply, or undefined when it is not one. */
export function parseJsonReply(whole: string): ReplyItem[] | undefined {
  let body = whole.trim();
  if (body.startsWith(FENCE)) body = body.slice(FENCE.length).replace(/```\s*$/, "").trim();
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  const out: ReplyItem[] = [];
  if (typeof o.text === "string" && o.text !== "") {
    // Tags inside `text` are honoured as well.
    const tags = new TagStream();
    out.push(...tags.push(o.text), ...tags.end());
  }
  out.push(...jsonTools(o.tools));
  return merge(out);
}

/** One reply: decides between tag mode and JSON mode from its first non-blank characters. */
export class ReplyParser {
  private mode: "detect" | "tags" | "json" = "detect";
  private buffer = "";
  private readonly tags = new TagStream();

  push(delta: string): ReplyItem[] {
    if (this.mode === "tags") return this.tags.push(delta);
    this.buffer += delta;
    if (this.mode === "json") return [];
    const head = this.buffer.trimStart();
    if (head === "") return [];
    if (head.startsWith("{") || head.startsWith(FENCE)) {
      this.mode = "json";
      return [];
    }
    if (FENCE.startsWith(head)) return [];
    this.mode = "tags";
    const all = this.buffer;
    this.buffer = "";
    return this.tags.push(all);
  }

  end(): ReplyItem[] {
    if (this.mode === "tags") return this.tags.end();
    const whole = this.buffer;
    this.buffer = "";
    if (this.mode === "json") {
      const parsed = parseJsonReply(whole);
      if (parsed) return parsed;
    }
    return [...this.tags.push(whole), ...this.tags.end()];
  }
}
