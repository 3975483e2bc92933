/**
 * The body (playbook.md §3): HTML comments, scene sections, scene tags on their own lines, and reply tags in
 * prompt text. Works on a copy of the file in which comments are blanked with spaces, so every offset found
 * here is an offset in the file.
 */
import type { DiagnosticList } from "./diagnostics.js";
import { parseTagAt, REPLY_TAGS, type Tag } from "./tags.js";

export const SCENE_HEADER = /^# Scene:\s*([A-Za-z0-9_-]+)\s*$/;
const LOOKS_LIKE_HEADER = /^\s*#+\s*scene\s*:(.*)$/i;
const SCENE_ID = /^[A-Za-z0-9_-]+$/;

export interface BodySection {
  kind: "preamble" | "scene";
  /** Scene id; "" for the preamble. */
  id: string;
  /** Offset of the header line (of the first line for the preamble and the implicit `default` scene). */
  offset: number;
  /** Offset of the text after the header line. */
  contentStart: number;
  /**
   * The section's text with comments and scene-tag lines blanked by spaces: same length and line breaks as the
   * file, so an offset in it plus `contentStart` is a file offset. Used for template checks.
   */
  checkText: string;
  /** The prompt as a template source: scene tags, comment-only lines and comments removed. */
  prompt: string;
  sceneTags: Tag[];
  /** Reply tags (§4.2) written inside prompt lines. */
  inlineTags: Tag[];
}

export interface Body {
  preamble?: BodySection;
  scenes: BodySection[];
}

/** `text` with every character of `<!-- … -->` (line breaks excepted) replaced by a space, from `from` on. */
function blankComments(text: string, from: number, diags: DiagnosticList): { masked: string; inComment: (offset: number) => boolean } {
  const mask = new Uint8Array(text.length);
  const chunks: string[] = [text.slice(0, from)];
  let i = from;
  for (;;) {
    const open = text.indexOf("<!--", i);
    if (open < 0) break;
    let close = text.indexOf("-->", open + 4);
    if (close < 0) {
      diags.add(open, "tag", 'unclosed HTML comment "<!--"; add "-->"');
      close = text.length - 3;
    }
    const end = Math.min(close + 3, text.length);
    chunks.push(text.slice(i, open), text.slice(open, end).replace(/[^\n\r]/g, " "));
    mask.fill(1, open, end);
    i = end;
  }
  chunks.push(text.slice(i));
  return { masked: chunks.join(""), inComment: (o) => mask[o] === 1 };
}

interface Line {
  start: number;
  /** Without the line break (and without a trailing \r). */
  text: string;
}

function linesOf(text: string, from: number): Line[] {
  const out: Line[] = [];
  let start = from;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const end = nl < 0 ? text.length : nl;
    out.push({ start, text: text.slice(start, end).replace(/\r$/, "") });
    if (nl < 0) break;
    start = nl + 1;
  }
  return out;
}

/** A header-like line that is not a header: what is wrong with it. */
function headerProblem(line: string): string | undefined {
  const m = LOOKS_LIKE_HEADER.exec(line);
  if (!m) return undefined;
  const id = (m[1] ?? "").trim();
  const shown = `"${line.trim()}" is not a scene header`;
  if (id === "") return `${shown}: the scene id is missing; write "# Scene: <id>"`;
  if (!SCENE_ID.test(id)) return `${shown}: a scene id may only contain letters, digits, "_" and "-"`;
  return `${shown}; use "# Scene: ${id}"`;
}

const SCENE_TAG_START = /^\s*<(dtmf|play|followup)(?=[\s/>])/;
const REPLY_TAG = new RegExp(`<(${Object.keys(REPLY_TAGS).join("|")})(?=[\\s/>])`, "g");

export function parseBody(text: string, bodyStart: number, diags: DiagnosticList): Body {
  const { masked, inComment } = blankComments(text, bodyStart, diags);
  const lines = linesOf(masked, bodyStart);

  // Sections: split at headers; report look-alikes and duplicates.
  const raws: RawSection[] = [];
  let current: RawSection = { kind: "preamble", id: "", offset: lines[0]?.start ?? bodyStart, lines: [] };
  const seen = new Map<string, number>();
  for (const line of lines) {
    const header = SCENE_HEADER.exec(line.text);
    if (header) {
      raws.push(current);
      const id = header[1] as string;
      const first = seen.get(id);
      if (first !== undefined) diags.add(line.start, "duplicate-scene", `scene "${id}" is already defined at line ${first}`);
      else seen.set(id, diags.positionOf(line.start).line);
      current = { kind: "scene", id, offset: line.start, lines: [] };
      continue;
    }
    const problem = headerProblem(line.text);
    if (problem) diags.add(line.start, "scene-header", problem);
    current.lines.push(line);
  }
  raws.push(current);

  const sections = raws.map((r) => buildSection(r, text, masked, inComment, diags));
  const [first, ...rest] = sections;
  if (rest.length === 0 && first) {
    // No header: the whole body is the scene "default".
    return { scenes: [{ ...first, kind: "scene", id: "default" }] };
  }
  return { preamble: first, scenes: rest };
}

interface RawSection {
  kind: BodySection["kind"];
  id: string;
  offset: number;
  lines: Line[];
}

/** A section's tags, prompt text and template-check text. */
function buildSection(
  r: RawSection,
  original: string,
  maskedText: string,
  commented: (o: number) => boolean,
  d: DiagnosticList,
): BodySection {
  const contentStart = r.kind === "scene" ? (r.lines[0]?.start ?? lineEnd(maskedText, r.offset)) : r.offset;
  const contentEnd = r.lines.length ? lineEnd(maskedText, (r.lines.at(-1) as Line).start) : contentStart;
  const blanked: Line[] = [];
  const sceneTags: Tag[] = [];
  const inlineTags: Tag[] = [];
  const promptLines: string[] = [];
  for (const line of r.lines) {
    const sceneTag = sceneTagOn(line, d);
    if (sceneTag) {
      sceneTags.push(sceneTag);
      blanked.push(line);
      continue;
    }
    if (sceneTag === null) continue; // a malformed scene tag, already reported
    for (const m of line.text.matchAll(REPLY_TAG)) {
      const parsed = parseTagAt(line.text, m.index);
      if (parsed.ok) inlineTags.push(shift(parsed.tag, line.start));
    }
    // The prompt keeps what is not a comment; a line that was only a comment disappears.
    const originalLine = original.slice(line.start, line.start + line.text.length);
    let kept = "";
    let hadComment = false;
    for (let i = 0; i < originalLine.length; i++) {
      if (commented(line.start + i)) hadComment = true;
      else kept += originalLine[i];
    }
    if (hadComment && kept.trim() === "") continue;
    promptLines.push(kept.trimEnd());
  }
  // Scene-tag lines become spaces: templates are checked on the rest, at unchanged offsets.
  const parts: string[] = [];
  let at = contentStart;
  for (const line of blanked) {
    parts.push(maskedText.slice(at, line.start), " ".repeat(line.text.length));
    at = line.start + line.text.length;
  }
  parts.push(maskedText.slice(at, contentEnd));
  return {
    kind: r.kind,
    id: r.id,
    offset: r.offset,
    contentStart,
    checkText: parts.join(""),
    prompt: tidy(promptLines),
    sceneTags,
    inlineTags,
  };
}

/**
 * The scene tag standing alone on this line; undefined when the line is prompt text; null when it starts like a
 * scene tag but is malformed (reported).
 */
function sceneTagOn(line: Line, diags: DiagnosticList): Tag | undefined | null {
  const m = SCENE_TAG_START.exec(line.text);
  if (!m) return undefined;
  const at = line.text.indexOf("<");
  const parsed = parseTagAt(line.text, at);
  if (!parsed.ok) {
    diags.add(line.start + parsed.offset, "tag", `malformed <${m[1]}> tag: ${parsed.message}`);
    return null;
  }
  const rest = line.text.slice(parsed.tag.end);
  if (rest.trim() !== "") return undefined; // followed by text: it stays in the prompt (§3.2)
  if (!parsed.tag.selfClosing) {
    diags.add(line.start + at, "tag", `<${parsed.tag.name}> must be self-closing: <${parsed.tag.name} … />`);
    return null;
  }
  return shift(parsed.tag, line.start);
}

function shift(tag: Tag, by: number): Tag {
  return {
    ...tag,
    start: tag.start + by,
    end: tag.end + by,
    attrs: tag.attrs.map((a) => ({ ...a, nameOffset: a.nameOffset + by, valueOffset: a.valueOffset + by })),
  };
}

/** Drops leading and trailing blank lines and folds runs of blank lines (left by removed tags) into one. */
function tidy(lines: string[]): string {
  return lines
    .join("\n")
    .replace(/\n[ \t]*(\n[ \t]*)+\n/g, "\n\n")
    .replace(/^\s*\n/, "")
    .trim();
}

function lineEnd(text: string, start: number): number {
  const nl = text.indexOf("\n", start);
  return nl < 0 ? text.length : nl + 1;
}
