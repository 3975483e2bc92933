/**
 * Authoring tags in the body (playbook.md §3.2, §4.2): `<name attr="value" …/>` with attributes in any order,
 * either quote style, and the five XML entities decoded. Offsets are kept for every attribute so that
 * diagnostics point at the attribute name or value.
 */

export interface TagAttr {
  name: string;
  value: string;
  nameOffset: number;
  valueOffset: number;
}

export interface Tag {
  name: string;
  attrs: TagAttr[];
  start: number;
  /** Offset after the closing `>`. */
  end: number;
  selfClosing: boolean;
}

export type TagParse = { ok: true; tag: Tag } | { ok: false; message: string; offset: number };

export interface TagSpec {
  attrs: readonly string[];
  required: readonly string[];
}

/** Tags that configure a scene when they stand alone on a line (§3.2). */
export const SCENE_TAGS: Readonly<Record<string, TagSpec>> = {
  dtmf: { attrs: ["digit", "action", "scene", "target", "context", "collector", "var", "say"], required: ["digit", "action"] },
  play: { attrs: ["file", "interruptible"], required: ["file"] },
  followup: { attrs: ["timeout", "max", "maxCount", "text", "goodbye"], required: ["timeout", "max"] },
};

/** Tags the model writes in its replies (§4.2); in prompt text they are instructions, checked by lint. */
export const REPLY_TAGS: Readonly<Record<string, TagSpec>> = {
  hangup: { attrs: ["reason"], required: [] },
  refer: { attrs: ["to"], required: ["to"] },
  transfer: { attrs: ["to", "context"], required: ["to"] },
  goto: { attrs: ["scene"], required: ["scene"] },
  play: { attrs: ["file", "interruptible"], required: ["file"] },
  set_var: { attrs: ["key", "name", "value"], required: ["value"] },
  collect: { attrs: ["type", "var", "prompt"], required: ["type", "var"] },
  http: { attrs: ["url", "method", "body"], required: ["url"] },
};

const ENTITIES: Record<string, string> = { quot: '"', apos: "'", amp: "&", lt: "<", gt: ">" };
export const decodeEntities = (s: string): string => s.replace(/&(quot|apos|amp|lt|gt);/g, (_, e: string) => ENTITIES[e] ?? "");

const NAME = /[A-Za-z_][A-Za-z0-9_-]*/y;
const SPACE = /\s*/y;

/** Parses the tag starting at `text[start] === "<"`. */
export function parseTagAt(text: string, start: number): TagParse {
  let i = start + 1;
  const name = (() => {
    NAME.lastIndex = i;
    const m = NAME.exec(text);
    return m?.[0];
  })();
  if (!name) return { ok: false, message: "expected a tag name after <", offset: start };
  i += name.length;
  const attrs: TagAttr[] = [];
  for (;;) {
    SPACE.lastIndex = i;
    const gap = (SPACE.exec(text)?.[0] ?? "").length;
    i += gap;
    if (text.startsWith("/>", i)) return { ok: true, tag: { name, attrs, start, end: i + 2, selfClosing: true } };
    if (text[i] === ">") return { ok: true, tag: { name, attrs, start, end: i + 1, selfClosing: false } };
    if (i >= text.length || text[i] === "\n") return { ok: false, message: `expected "/>" to close <${name}`, offset: start };
    if (gap === 0) return { ok: false, message: `expected a space before the attribute in <${name}>`, offset: i };
    NAME.lastIndex = i;
    const attr = NAME.exec(text)?.[0];
    if (!attr) return { ok: false, message: `unexpected "${text[i]}" in <${name}>; attributes are written name="value"`, offset: i };
    const nameOffset = i;
    i += attr.length;
    SPACE.lastIndex = i;
    i += (SPACE.exec(text)?.[0] ?? "").length;
    if (text[i] !== "=") return { ok: false, message: `attribute "${attr}" of <${name}> needs a value: ${attr}="…"`, offset: nameOffset };
    i++;
    SPACE.lastIndex = i;
    i += (SPACE.exec(text)?.[0] ?? "").length;
    const quote = text[i];
    if (quote !== '"' && quote !== "'") return { ok: false, message: `the value of "${attr}" in <${name}> must be quoted`, offset: i };
    const close = text.indexOf(quote, i + 1);
    const newline = text.indexOf("\n", i + 1);
    if (close < 0 || (newline >= 0 && newline < close)) {
      return { ok: false, message: `the value of "${attr}" in <${name}> has no closing ${quote}`, offset: i };
    }
    attrs.push({ name: attr, value: decodeEntities(text.slice(i + 1, close)), nameOffset, valueOffset: i + 1 });
    i = close + 1;
  }
}

/** How a tag is quoted in messages: whole when it has one attribute (`<goto scene="x"/>`), else `<collect type="x">`. */
export function showTag(tag: Tag, attr: string): string {
  const a = tag.attrs.find((x) => x.name === attr);
  const shown = a ? ` ${a.name}="${a.value}"` : "";
  return tag.attrs.length === 1 && a ? `<${tag.name}${shown}/>` : `<${tag.name}${shown}>`;
}

export const attrOf = (tag: Tag, name: string): TagAttr | undefined => tag.attrs.find((a) => a.name === name);
