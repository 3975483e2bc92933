/**
 * Markdown playbook -> validated `Playbook` plus diagnostics (playbook.md). Used when a playbook is loaded,
 * saved through the API, and by `active-call lint`. A playbook with any error is not returned.
 */
import { basename } from "node:path";
import { z } from "zod";
import { parseBody } from "./body.js";
import { DiagnosticList, type Diagnostic } from "./diagnostics.js";
import { readFrontMatter } from "./front.js";
import { checkFrontMatter } from "./front-checks.js";
import type { ParseOptions } from "./options.js";
import { analyseScenes, type SceneAnalysis } from "./scenes.js";
import { frontMatterSchema, type FrontMatter } from "./schema.js";
import { decodePlaybook, LineIndex, splitFrontMatter } from "./source.js";
import { checkTemplateSites, frontTemplateSites } from "./template-sites.js";
import { TemplateSet } from "./template.js";
import type { DtmfAction, GreetingPlan, Playbook, Scene } from "./types.js";
import { BUILTIN_VARIABLES } from "./variables.js";

export interface ParseResult {
  /** Present when there is no error (warnings allowed). */
  playbook?: Playbook;
  /** Sorted by position. */
  diagnostics: Diagnostic[];
}

/** Each front matter section validated on its own, so one bad section does not hide the checks of the others. */
function validSections(raw: Record<string, unknown>): FrontMatter {
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(frontMatterSchema.shape)) {
    if (!(key in raw)) continue;
    const r = schema.safeParse(raw[key]);
    if (r.success) out[key] = r.data;
  }
  return out as FrontMatter;
}

export function parsePlaybook(input: string | Uint8Array, opts: ParseOptions): ParseResult {
  const decoded = decodePlaybook(input);
  if (!decoded.ok) {
    const { line, column } = decoded.position;
    return { diagnostics: [{ file: opts.file, line, column, severity: "error", code: "front-matter", message: decoded.message }] };
  }
  const text = decoded.text;
  const lines = new LineIndex(text);
  const diags = new DiagnosticList(opts.file, (o) => lines.positionAt(o));

  const split = splitFrontMatter(text);
  if (!split.ok) {
    diags.add(split.offset, "front-matter", split.message);
    return { diagnostics: diags.sorted() };
  }
  const env = opts.env ?? {};
  const front = readFrontMatter(text, split.parts, (name) => env[name], diags);
  const fm = front.value ?? validSections(front.raw);
  checkFrontMatter({ fm, raw: front.raw, loc: front.loc, opts, diags });

  const body = parseBody(text, split.parts.bodyStart, diags);
  const scenes = analyseScenes({ body, fm, raw: front.raw, frontRead: front.read, loc: front.loc, opts, diags });

  const known = new Set<string>([...BUILTIN_VARIABLES, ...scenes.setNames]);
  const frontSites = frontTemplateSites(fm, front.loc);
  checkTemplateSites([...frontSites, ...scenes.templateSites], known, diags);

  if (diags.errorCount > 0 || !front.value || scenes.initialScene === undefined) return { diagnostics: diags.sorted() };
  const playbook = build(front.value, scenes, frontSites.map((s) => s.source), opts, lines, diags);
  return diags.errorCount > 0 ? { diagnostics: diags.sorted() } : { playbook, diagnostics: diags.sorted() };
}

/** Assembles the runtime view and compiles every template once. */
function build(
  fm: FrontMatter,
  analysis: SceneAnalysis,
  frontTemplates: readonly string[],
  opts: ParseOptions,
  lines: LineIndex,
  diags: DiagnosticList,
): Playbook {
  const settings: FrontMatter = fm.vad?.type === "silero" ? { ...fm, vad: { ...fm.vad, type: "tinysilero" } } : fm;
  const globalDtmf: Record<string, DtmfAction> = Object.fromEntries(analysis.globalKeys.map((k) => [k.key, k.action]));
  const preamblePlays = analysis.preamble?.settings.plays ?? [];
  const preambleFollowup = analysis.preamble?.settings.followup;

  const scenes = new Map<string, Scene>();
  for (const { section, settings: tags } of analysis.scenes) {
    scenes.set(section.id, {
      id: section.id,
      line: lines.positionAt(section.offset).line,
      prompt: section.prompt,
      dtmf: { ...globalDtmf, ...Object.fromEntries(tags.keys.map((k) => [k.key, k.action])) },
      plays: [...preamblePlays, ...tags.plays].map(({ file, interruptible }) => ({ file, interruptible })),
      followup: tags.followup ?? preambleFollowup ?? fm.followup,
    });
  }

  const greeting = greetingPlan(fm.greeting);
  const templates = new TemplateSet();
  const sources = new Set<string>([
    analysis.preamble?.section.prompt ?? "",
    ...[...scenes.values()].map((s) => s.prompt),
    ...frontTemplates,
    ...[analysis.preamble, ...analysis.scenes].flatMap((s) => s?.settings.templates.map((t) => t.source) ?? []),
  ]);
  for (const source of sources) {
    try {
      templates.add(source);
    } catch (err) {
      // The checked text (comments blanked) compiled, so this is rare: a template spanning a removed comment.
      diags.add(0, "template", `a template does not compile once comments are removed: ${(err as Error).message}`);
    }
  }

  return {
    name: basename(opts.file),
    file: opts.file,
    settings,
    pipeline: fm.realtime ? "realtime" : "serial",
    greeting,
    preamble: analysis.preamble?.section.prompt ?? "",
    scenes,
    initialScene: analysis.initialScene as string,
    dtmf: globalDtmf,
    collectors: fm.dtmfCollectors ?? {},
    tools: fm.tools ?? [],
    toolArguments: new Map(
      (fm.tools ?? []).map((t) => [t.name, z.fromJSONSchema((t.parameters ?? { type: "object", properties: {} }) as Parameters<typeof z.fromJSONSchema>[0])]),
    ),
    playFiles: [...new Set([...(greeting && greeting.play ? [greeting.play] : []), ...analysis.playFiles])],
    variables: fm.variables ?? {},
    templates,
  };
}

function greetingPlan(g: FrontMatter["greeting"]): GreetingPlan | false {
  if (g === false) return false;
  if (g === undefined) return { interruptible: true, generate: true };
  if (typeof g === "string") return { text: g, interruptible: true, generate: false };
  return {
    ...(g.text !== undefined ? { text: g.text } : {}),
    ...(g.play !== undefined ? { play: g.play } : {}),
    interruptible: g.interruptible ?? true,
    generate: g.generate ?? (g.text === undefined && g.play === undefined),
  };
}
