/**
 * Scenes and their references (playbook.md §3, §8): scene tags, reply tags in prompt text, key scopes,
 * scene and collector names, sound files, `<http>` without `httpAllow`, reachability and empty scenes.
 */
import type { BodySection, Body } from "./body.js";
import type { DiagnosticList } from "./diagnostics.js";
import { resolveSoundFile } from "./files.js";
import type { FrontLocator } from "./front.js";
import type { ParseOptions } from "./options.js";
import { checkAttributes, readSceneTags, type KeyBinding, type SceneTagSettings } from "./scene-tags.js";
import type { FrontMatter } from "./schema.js";
import type { TemplateSite } from "./template-sites.js";
import { attrOf, REPLY_TAGS, SCENE_TAGS, showTag, type Tag } from "./tags.js";

export interface AnalysedSection {
  section: BodySection;
  settings: SceneTagSettings;
}

export interface SceneAnalysis {
  preamble?: AnalysedSection;
  scenes: AnalysedSection[];
  /** Global key bindings: front matter `dtmf`, then the preamble's tags. */
  globalKeys: KeyBinding[];
  initialScene: string | undefined;
  /** Variables the playbook itself sets (`<set_var>`, collectors, tool `setVars`). */
  setNames: Set<string>;
  templateSites: TemplateSite[];
  playFiles: string[];
}

export interface SceneContext {
  body: Body;
  /** The valid sections of the front matter. */
  fm: FrontMatter;
  /** The front matter as written; {} when it could not be read (then checks that need it are skipped). */
  raw: Record<string, unknown>;
  frontRead: boolean;
  loc: FrontLocator;
  opts: ParseOptions;
  diags: DiagnosticList;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function analyseScenes(ctx: SceneContext): SceneAnalysis {
  const { body, fm, loc, diags } = ctx;
  const analyse = (section: BodySection): AnalysedSection => ({ section, settings: readSceneTags(section.sceneTags, SCENE_TAGS, diags) });
  const preamble = body.preamble && analyse(body.preamble);
  const scenes = body.scenes.map(analyse);
  const all = [...(preamble ? [preamble] : []), ...scenes];
  const sceneIds = scenes.map((s) => s.section.id);
  const sceneSet = new Set(sceneIds);
  const sceneList = `scenes: ${sceneIds.join(", ")}`;

  for (const { section } of all) for (const tag of section.inlineTags) checkReplyTag(tag, diags);

  // Key scopes: the global one (front matter + preamble), and each scene's own.
  const frontKeys: KeyBinding[] = Object.entries(fm.dtmf ?? {}).map(([key, action]) => ({ key, action, offset: loc.at(["dtmf", key], "key") }));
  const globalKeys = uniqueKeys([...frontKeys, ...(preamble?.settings.keys ?? [])], diags);
  for (const s of scenes) s.settings.keys = uniqueKeys(s.settings.keys, diags);

  // Scene references.
  let initialScene = sceneIds[0];
  if (fm.initialScene !== undefined) {
    if (sceneSet.has(fm.initialScene)) initialScene = fm.initialScene;
    else {
      diags.add(loc.at(["initialScene"]), "unknown-scene", `initialScene "${fm.initialScene}" names no scene; ${sceneList}`);
      initialScene = undefined;
    }
  }
  for (const [key, action] of Object.entries(fm.dtmf ?? {})) {
    if (action.action === "goto" && action.scene && !sceneSet.has(action.scene)) {
      diags.add(loc.at(["dtmf", key, "scene"]), "unknown-scene", `dtmf["${key}"].scene "${action.scene}" names no scene; ${sceneList}`);
    }
  }
  for (const { section } of all) {
    for (const tag of section.sceneTags) {
      const scene = attrOf(tag, "scene");
      if (tag.name === "dtmf" && attrOf(tag, "action")?.value === "goto" && scene && !isTemplate(scene.value) && !sceneSet.has(scene.value)) {
        diags.add(tag.start, "unknown-scene", `${showTag(tag, "scene")} names no scene; ${sceneList}`);
      }
    }
    for (const tag of section.inlineTags) {
      const scene = attrOf(tag, "scene");
      if (tag.name === "goto" && scene && !isTemplate(scene.value) && !sceneSet.has(scene.value)) {
        diags.add(tag.start, "unknown-scene", `${showTag(tag, "scene")} names no scene; ${sceneList}`);
      }
    }
  }

  if (ctx.frontRead) {
    checkCollectorReferences(ctx, all);
    checkHttp(ctx, all);
  }
  const playFiles = checkPlayFiles(ctx, all);
  if (initialScene !== undefined) warnUnreachable(scenes, initialScene, globalKeys, preamble, diags);
  for (const s of scenes) {
    if (s.section.prompt.trim() === "") diags.warn(s.section.offset, "empty-scene", `scene "${s.section.id}" has no prompt text`);
  }

  return {
    preamble,
    scenes,
    globalKeys,
    initialScene,
    setNames: setNames(fm, all, globalKeys),
    templateSites: bodyTemplateSites(all),
    playFiles,
  };
}

const isTemplate = (s: string) => /\{[{%]/.test(s);

/** Reply tags in prompt text are instructions to the model; their attributes must still be right. */
function checkReplyTag(tag: Tag, diags: DiagnosticList): void {
  const spec = REPLY_TAGS[tag.name];
  if (!spec) return;
  checkAttributes(tag, spec, diags);
  if (tag.name === "set_var") {
    const key = attrOf(tag, "key");
    const name = attrOf(tag, "name");
    if (!key && !name) diags.add(tag.start, "tag", '<set_var> is missing the required attribute "key"');
    else if (key && name) diags.add(name.nameOffset, "alias-conflict", "<set_var> sets both key and name; keep one");
  }
}

/** Drops bindings of a key already bound in the same scope, reporting where it was bound first. */
function uniqueKeys(bindings: KeyBinding[], diags: DiagnosticList): KeyBinding[] {
  const first = new Map<string, KeyBinding>();
  for (const b of bindings) {
    const earlier = first.get(b.key);
    if (earlier) diags.add(b.offset, "dtmf", `key "${b.key}" is already mapped at line ${diags.positionOf(earlier.offset).line}`);
    else first.set(b.key, b);
  }
  return [...first.values()];
}

function checkCollectorReferences({ fm, raw, loc, diags }: SceneContext, all: AnalysedSection[]): void {
  const names = isMap(raw.dtmfCollectors) ? Object.keys(raw.dtmfCollectors) : [];
  const known = new Set(names);
  const list = names.length ? `collectors: ${names.join(", ")}` : "no dtmfCollectors are defined";
  for (const [key, action] of Object.entries(fm.dtmf ?? {})) {
    if (action.action === "collect" && action.collector && !known.has(action.collector)) {
      diags.add(loc.at(["dtmf", key, "collector"]), "unknown-collector", `dtmf["${key}"].collector "${action.collector}" names no collector; ${list}`);
    }
  }
  for (const { section } of all) {
    for (const tag of section.sceneTags) {
      const c = attrOf(tag, "collector");
      if (tag.name === "dtmf" && attrOf(tag, "action")?.value === "collect" && c && !known.has(c.value)) {
        diags.add(tag.start, "unknown-collector", `${showTag(tag, "collector")} names no collector; ${list}`);
      }
    }
    for (const tag of section.inlineTags) {
      const type = attrOf(tag, "type");
      if (tag.name === "collect" && type && !isTemplate(type.value) && !known.has(type.value)) {
        diags.add(tag.start, "unknown-collector", `${showTag(tag, "type")} names no collector; ${list}`);
      }
    }
  }
}

function checkHttp({ raw, diags }: SceneContext, all: AnalysedSection[]): void {
  if (Array.isArray(raw.httpAllow) && raw.httpAllow.length > 0) return;
  for (const { section } of all) {
    for (const m of section.checkText.matchAll(/<http(?=[\s/>])/g)) {
      diags.warn(section.contentStart + m.index, "http-disabled", "the prompt mentions <http>, but httpAllow is empty, so the tag is disabled");
    }
  }
}

function checkPlayFiles({ opts, diags }: SceneContext, all: AnalysedSection[]): string[] {
  const files: string[] = [];
  const check = (file: string, offset: number) => {
    const r = opts.resolveSound ? opts.resolveSound(file) : resolveSoundFile(file, opts.soundsDir);
    if (!r.ok) diags.add(offset, "file", `file "${file}" ${r.problem}`);
    else if (!files.includes(file)) files.push(file);
  };
  for (const { section, settings } of all) {
    for (const p of settings.plays) check(p.file, p.offset);
    for (const tag of section.inlineTags) {
      const file = attrOf(tag, "file");
      if (tag.name === "play" && file) check(file.value, file.valueOffset);
    }
  }
  return files;
}

/** Scenes no trigger leads to from the initial scene: key actions and `<goto>` tags, global or per scene. */
function warnUnreachable(
  scenes: AnalysedSection[],
  initial: string,
  globalKeys: KeyBinding[],
  preamble: AnalysedSection | undefined,
  diags: DiagnosticList,
): void {
  const targets = (keys: KeyBinding[], section: BodySection | undefined) => [
    ...keys.filter((k) => k.action.action === "goto").map((k) => k.action.scene as string),
    ...(section?.inlineTags ?? []).filter((t) => t.name === "goto").map((t) => attrOf(t, "scene")?.value ?? ""),
  ];
  const everywhere = targets(globalKeys, preamble?.section);
  const byId = new Map(scenes.map((s) => [s.section.id, s]));
  const reached = new Set<string>([initial]);
  const queue = [initial];
  while (queue.length) {
    const id = queue.pop() as string;
    const scene = byId.get(id);
    for (const next of [...everywhere, ...targets(scene?.settings.keys ?? [], scene?.section)]) {
      if (!reached.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  for (const s of scenes) {
    if (!reached.has(s.section.id)) diags.warn(s.section.offset, "unreachable-scene", `scene "${s.section.id}" is never entered`);
  }
}

function setNames(fm: FrontMatter, all: AnalysedSection[], globalKeys: KeyBinding[]): Set<string> {
  const names = new Set<string>(Object.keys(fm.variables ?? {}));
  for (const tool of fm.tools ?? []) for (const k of Object.keys(tool.setVars ?? {})) names.add(k);
  const keys = [...globalKeys, ...all.flatMap((s) => s.settings.keys)];
  for (const k of keys) if (k.action.action === "collect" && k.action.var) names.add(k.action.var);
  for (const { section } of all) {
    for (const tag of section.inlineTags) {
      const name = tag.name === "set_var" ? (attrOf(tag, "key") ?? attrOf(tag, "name")) : tag.name === "collect" ? attrOf(tag, "var") : undefined;
      if (name) names.add(name.value);
    }
  }
  return names;
}

function bodyTemplateSites(all: AnalysedSection[]): TemplateSite[] {
  const sites: TemplateSite[] = [];
  for (const { section, settings } of all) {
    sites.push({ source: section.checkText, offsetAt: (i) => section.contentStart + i });
    for (const t of settings.templates) sites.push({ source: t.source, offsetAt: (i) => t.offset + i });
  }
  return sites;
}
