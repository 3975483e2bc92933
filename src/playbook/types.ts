/**
 * A validated playbook, shaped for its users: the scene runner (scenes, keys, plays, follow-ups, templates),
 * the post-call hook (`settings.posthook`) and the inbound router (name, variables). Nothing in it needs
 * checking again; templates are compiled once and shared by every call that uses the playbook.
 */
import type { z } from "zod";
import type { PlayItem } from "./scene-tags.js";
import type { Collector, DtmfAction, FrontMatter, Followup, Tool } from "./schema.js";
import type { TemplateSet } from "./template.js";

export type { Collector, DtmfAction, FrontMatter, Followup, PlayItem, Tool };

export interface GreetingPlan {
  /** Template source spoken first. */
  text?: string;
  /** Sound file played before `text` (relative to the sounds folder). */
  play?: string;
  interruptible: boolean;
  /** The LLM writes the opening line (the call starts with a model turn). */
  generate: boolean;
}

export interface Scene {
  id: string;
  /** Line of the `# Scene:` header (of the first body line for the implicit `default` scene). */
  line: number;
  /** The scene prompt as a template source: tags and HTML comments removed. */
  prompt: string;
  /** Key actions in effect in this scene: the global map overlaid by the scene's own `<dtmf>` tags. */
  dtmf: Readonly<Record<string, DtmfAction>>;
  /** Files queued on entry, in order: the preamble's `<play>` tags, then the scene's. */
  plays: readonly PlayItem[];
  /** The follow-up in effect: the scene's `<followup>`, else the preamble's, else front matter `followup`. */
  followup: Followup | undefined;
}

export interface Playbook {
  /** File name, e.g. `support.md` (the `playbook` template variable). */
  name: string;
  /** Path as given to the parser, for messages. */
  file: string;
  /** The front matter, validated, aliases renamed to canonical names, `vad.type: silero` as `tinysilero`. */
  settings: FrontMatter;
  pipeline: "serial" | "realtime";
  /** `false`: say nothing and wait for the caller. */
  greeting: GreetingPlan | false;
  /** Text before the first scene header, prepended to every scene prompt (template source; may be ""). */
  preamble: string;
  /** Scenes in file order. */
  scenes: ReadonlyMap<string, Scene>;
  initialScene: string;
  /** Global key actions: front matter `dtmf` and the preamble's `<dtmf>` tags. */
  dtmf: Readonly<Record<string, DtmfAction>>;
  collectors: Readonly<Record<string, Collector>>;
  tools: readonly Tool[];
  /** Each custom tool's `parameters` as a schema, to validate the model's arguments before the request. */
  toolArguments: ReadonlyMap<string, z.ZodType>;
  /** Files the `play_audio` tool may play: every `<play file>` in the body and `greeting.play`. */
  playFiles: readonly string[];
  /** Front matter `variables`: the lowest layer of template variables. */
  variables: Readonly<Record<string, string | number | boolean>>;
  /** Every template of the playbook, compiled. Render with `templates.render(source, context, hooks)`. */
  templates: TemplateSet;
}
