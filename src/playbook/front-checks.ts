/**
 * Front matter rules that span fields or need the surroundings (config, environment, sounds folder):
 * DTMF keys, collector names, tool names, built-in variables, provider credentials, the pipeline, files.
 */
import type { DiagnosticList } from "./diagnostics.js";
import { resolveSoundFile } from "./files.js";
import type { FrontLocator } from "./front.js";
import type { ParseOptions } from "./options.js";
import { DTMF_KEY_LIST, isDtmfKey } from "./scene-tags.js";
import { COLLECTOR_NAME, type FrontMatter } from "./schema.js";
import { isBuiltinVariable } from "./variables.js";

export interface FrontCheckContext {
  /** The sections of the front matter that are valid (each validated on its own). */
  fm: FrontMatter;
  /** The front matter as written (aliases renamed), for keys of sections that failed validation. */
  raw: Record<string, unknown>;
  loc: FrontLocator;
  opts: ParseOptions;
  diags: DiagnosticList;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function checkFrontMatter(ctx: FrontCheckContext): void {
  checkDtmfKeys(ctx);
  checkCollectorNames(ctx);
  checkToolNames(ctx);
  checkVariables(ctx);
  checkTurnTiming(ctx);
  checkProviders(ctx);
  checkPipeline(ctx);
  checkFrontFiles(ctx);
}

function checkDtmfKeys({ raw, loc, diags }: FrontCheckContext): void {
  if (!isMap(raw.dtmf)) return;
  for (const key of Object.keys(raw.dtmf)) {
    if (isDtmfKey(key)) continue;
    const upper = key.toUpperCase();
    diags.add(
      loc.at(["dtmf", key], "key"),
      "dtmf",
      `dtmf key "${key}" is not a key; keys are ${DTMF_KEY_LIST}${isDtmfKey(upper) ? `; did you mean "${upper}"?` : ""}`,
    );
  }
}

function checkCollectorNames({ raw, loc, diags }: FrontCheckContext): void {
  if (!isMap(raw.dtmfCollectors)) return;
  for (const name of Object.keys(raw.dtmfCollectors)) {
    if (!COLLECTOR_NAME.test(name)) {
      diags.add(loc.at(["dtmfCollectors", name], "key"), "type", `collector name "${name}" may only contain letters, digits, "_" and "-"`);
    }
  }
}

/** Names must be unique; checked on the tools as written, so that it also runs when another tool is invalid. */
function checkToolNames({ raw, loc, diags }: FrontCheckContext): void {
  if (!Array.isArray(raw.tools)) return;
  const first = new Map<string, number>();
  raw.tools.forEach((tool: unknown, i) => {
    const name = isMap(tool) ? tool.name : undefined;
    if (typeof name !== "string") return;
    const at = first.get(name);
    if (at === undefined) first.set(name, i);
    else diags.add(loc.at(["tools", i, "name"]), "tool", `tools[${i}].name "${name}" is already the name of tools[${at}]`);
  });
}

function checkVariables({ fm, loc, diags }: FrontCheckContext): void {
  for (const name of Object.keys(fm.variables ?? {})) {
    if (isBuiltinVariable(name)) {
      diags.add(loc.at(["variables", name], "key"), "type", `variables.${name} is a built-in variable and cannot be set`);
    }
  }
}

/** The turn ends after `eou.silenceMs`, which cannot be shorter than the VAD silence that ends a segment. */
function checkTurnTiming({ fm, loc, diags, opts }: FrontCheckContext): void {
  const silenceMs = fm.eou?.silenceMs;
  if (silenceMs === undefined) return;
  const minSilenceMs = fm.vad?.minSilenceMs ?? opts.config?.defaults?.vad?.minSilenceMs ?? 100;
  if (silenceMs < minSilenceMs) {
    diags.add(loc.at(["eou", "silenceMs"]), "type", `eou.silenceMs must be ≥ vad.minSilenceMs (${minSilenceMs}), got ${silenceMs}`);
  }
}

type VendorSection = "asr" | "tts" | "llm" | "realtime";

function checkProviders({ fm, loc, diags, opts }: FrontCheckContext): void {
  const env = opts.env ?? {};
  const config = opts.config ?? {};
  const severity = opts.missingCredentials ?? "error";
  // The realtime pipeline ignores asr/tts; its llm is used only for the summary, when the playbook sets one.
  const sections: VendorSection[] = fm.realtime ? ["realtime", ...(fm.llm ? (["llm"] as const) : [])] : ["asr", "tts", "llm"];
  for (const section of sections) {
    const own = fm[section] as { provider?: string; apiKey?: string; baseUrl?: string } | undefined;
    const def = config.defaults?.[section];
    const provider = own?.provider ?? def?.provider ?? (section === "realtime" ? undefined : "auto");
    const where = loc.has([section, "provider"]) ? loc.at([section, "provider"]) : loc.has([section]) ? loc.at([section], "key") : 0;
    const missing: string[] = [];
    if (provider === "openai") {
      if (!(own?.apiKey || def?.apiKey || config.providers?.openai?.api_key || env.OPENAI_API_KEY)) {
        missing.push(`an API key: set ${section}.apiKey, [providers.openai] api_key or OPENAI_API_KEY`);
      }
    } else if (provider === "azure") {
      if (!(own?.apiKey || def?.apiKey || config.providers?.azure?.api_key || env.AZURE_OPENAI_API_KEY)) {
        missing.push(`an API key: set ${section}.apiKey, [providers.azure] api_key or AZURE_OPENAI_API_KEY`);
      }
      if (!(own?.baseUrl || def?.baseUrl || config.providers?.azure?.endpoint || env.AZURE_OPENAI_ENDPOINT)) {
        missing.push(`an endpoint: set ${section}.baseUrl, [providers.azure] endpoint or AZURE_OPENAI_ENDPOINT`);
      }
    }
    for (const what of missing) diags.add(where, "provider", `${section}.provider "${provider}" needs ${what}`, severity);
  }
}

function checkPipeline({ fm, loc, diags, opts }: FrontCheckContext): void {
  const defaults = opts.config?.defaults;
  // Without a config the built-in default LLM (`auto`) applies; a config may leave [defaults.llm] out.
  if (!fm.realtime && !fm.llm && defaults !== undefined && defaults.llm === undefined) {
    diags.add(0, "pipeline", "no LLM: set llm (or [defaults.llm] in the config), or realtime for a speech-to-speech model");
  }
  const vadType = fm.vad?.type ?? defaults?.vad?.type;
  if (vadType === "none") {
    const where = loc.has(["vad", "type"]) ? loc.at(["vad", "type"]) : 0;
    if (!fm.realtime) {
      diags.add(where, "pipeline", 'vad.type "none" needs realtime: the serial pipeline cannot find turns without a VAD');
    } else if (fm.realtime.turnDetection?.type === "local") {
      diags.add(where, "pipeline", 'vad.type "none" cannot be used with realtime.turnDetection.type "local", which needs the VAD');
    }
  }
}

function checkFrontFiles({ fm, loc, diags, opts }: FrontCheckContext): void {
  const check = (path: readonly (string | number)[], file: string | undefined) => {
    if (file === undefined) return;
    const r = opts.resolveSound ? opts.resolveSound(file) : resolveSoundFile(file, opts.soundsDir);
    if (!r.ok) diags.add(loc.at(path), "file", `${path.join(".")} "${file}" ${r.problem}`);
  };
  if (typeof fm.greeting === "object") check(["greeting", "play"], fm.greeting.play);
  check(["ambiance", "path"], fm.ambiance?.path);
}
