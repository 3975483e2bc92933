/**
 * Scene tags (playbook.md §3.2) -> what they configure: key actions, files to play on entry, a follow-up.
 * Attribute problems are reported at the attribute; a missing attribute at the tag.
 */
import { describeIssue } from "../config/issues.js";
import { suggest } from "../util/suggest.js";
import type { DiagnosticList } from "./diagnostics.js";
import { DTMF_ACTIONS, DTMF_KEYS, dtmfAction, followupSchema, type DtmfAction, type Followup } from "./schema.js";
import { attrOf, showTag, type Tag, type TagAttr, type TagSpec } from "./tags.js";

export interface KeyBinding {
  key: string;
  action: DtmfAction;
  /** Offset of the tag or front matter key that defines it. */
  offset: number;
}

export interface PlayItem {
  file: string;
  interruptible: boolean;
}

export interface TagTemplate {
  source: string;
  /** Offset of the attribute value in the file. */
  offset: number;
}

export interface SceneTagSettings {
  keys: KeyBinding[];
  plays: (PlayItem & { offset: number })[];
  followup?: Followup;
  /** Attribute values that are templates (`say`, follow-up `text`/`goodbye`). */
  templates: TagTemplate[];
}

export const DTMF_KEY_LIST = "0-9, *, #, A-D";
export const isDtmfKey = (k: string): boolean => (DTMF_KEYS as readonly string[]).includes(k);

/** Unknown, duplicate and missing attributes (`tag`). Returns false when the tag cannot be used. */
export function checkAttributes(tag: Tag, spec: TagSpec, diags: DiagnosticList): boolean {
  let ok = true;
  const seen = new Set<string>();
  for (const a of tag.attrs) {
    if (!spec.attrs.includes(a.name)) {
      const hint = suggest(a.name, spec.attrs);
      diags.add(a.nameOffset, "tag", `<${tag.name}> has no attribute "${a.name}"${hint ? `; did you mean "${hint}"?` : `; attributes: ${spec.attrs.join(", ")}`}`);
      ok = false;
    } else if (seen.has(a.name)) {
      diags.add(a.nameOffset, "tag", `<${tag.name}> sets "${a.name}" twice`);
      ok = false;
    }
    seen.add(a.name);
  }
  for (const name of spec.required) {
    if (!seen.has(name)) {
      diags.add(tag.start, "tag", `<${tag.name}> is missing the required attribute "${name}"`);
      ok = false;
    }
  }
  return ok;
}

const attrMap = (tag: Tag) => Object.fromEntries(tag.attrs.map((a) => [a.name, a.value]));

export function readSceneTags(tags: readonly Tag[], specs: Readonly<Record<string, TagSpec>>, diags: DiagnosticList): SceneTagSettings {
  const out: SceneTagSettings = { keys: [], plays: [], templates: [] };
  let followupTag: Tag | undefined;
  for (const tag of tags) {
    const spec = specs[tag.name];
    if (!spec || !checkAttributes(tag, spec, diags)) continue;
    if (tag.name === "dtmf") readDtmf(tag, out, diags);
    else if (tag.name === "play") readPlay(tag, out, diags);
    else if (tag.name === "followup") {
      if (followupTag) diags.add(tag.start, "tag", `a second <followup> in one scene; the first is at line ${lineOf(diags, followupTag.start)}`);
      else {
        followupTag = tag;
        readFollowup(tag, out, diags);
      }
    }
  }
  return out;
}

const lineOf = (diags: DiagnosticList, offset: number) => diags.positionOf(offset).line;

function readDtmf(tag: Tag, out: SceneTagSettings, diags: DiagnosticList): void {
  const digit = attrOf(tag, "digit") as TagAttr;
  let ok = true;
  if (!isDtmfKey(digit.value)) {
    const upper = digit.value.toUpperCase();
    diags.add(digit.valueOffset, "dtmf", `<dtmf digit="${digit.value}"> is not a key; keys are ${DTMF_KEY_LIST}${isDtmfKey(upper) ? `; did you mean "${upper}"?` : ""}`);
    ok = false;
  }
  const { digit: _digit, ...fields } = attrMap(tag);
  const parsed = dtmfAction.safeParse(fields, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "");
      const attr = attrOf(tag, name);
      const params = (issue as { params?: { missing?: string } }).params;
      if (params?.missing) {
        diags.add(tag.start, "dtmf", `${showTag(tag, "action")} needs the attribute "${params.missing}"`);
      } else if (name === "action") {
        const hint = suggest(String(fields.action), DTMF_ACTIONS);
        diags.add(attr?.valueOffset ?? tag.start, "type", `<dtmf action="${fields.action}"> is not an action; actions: ${DTMF_ACTIONS.join(", ")}${hint ? `; did you mean "${hint}"?` : ""}`);
      } else {
        diags.add(attr?.valueOffset ?? tag.start, "type", `<dtmf ${name}="${fields[name] ?? ""}">: ${issue.message}`);
      }
    }
    ok = false;
  }
  const say = attrOf(tag, "say");
  if (say) out.templates.push({ source: say.value, offset: say.valueOffset });
  if (ok && parsed.success) out.keys.push({ key: digit.value, action: parsed.data, offset: tag.start });
}

function readPlay(tag: Tag, out: SceneTagSettings, diags: DiagnosticList): void {
  const file = attrOf(tag, "file") as TagAttr;
  const flag = attrOf(tag, "interruptible");
  if (flag && flag.value !== "true" && flag.value !== "false") {
    diags.add(flag.valueOffset, "type", `<play interruptible="${flag.value}"> must be "true" or "false"`);
    return;
  }
  out.plays.push({ file: file.value, interruptible: flag?.value === "true", offset: file.valueOffset });
}

function readFollowup(tag: Tag, out: SceneTagSettings, diags: DiagnosticList): void {
  const max = attrOf(tag, "max");
  const maxCount = attrOf(tag, "maxCount");
  if (max && maxCount) {
    diags.add(maxCount.nameOffset, "alias-conflict", "<followup> sets both max and maxCount; keep one");
    return;
  }
  const number = (a: TagAttr | undefined) => (a && /^\d+$/.test(a.value) ? Number(a.value) : a?.value);
  const value = {
    timeout: number(attrOf(tag, "timeout")),
    max: number(max ?? maxCount),
    text: attrOf(tag, "text")?.value,
    goodbye: attrOf(tag, "goodbye")?.value,
  };
  const parsed = followupSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "");
      const attr = name === "max" ? (max ?? maxCount) : attrOf(tag, name);
      for (const text of describeIssue(issue, followupSchema, () => `<followup ${attr?.name ?? name}>`)) {
        diags.add(attr?.valueOffset ?? tag.start, "type", text.message);
      }
    }
    return;
  }
  for (const name of ["text", "goodbye"]) {
    const a = attrOf(tag, name);
    if (a) out.templates.push({ source: a.value, offset: a.valueOffset });
  }
  out.followup = parsed.data;
}
