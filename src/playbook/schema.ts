/**
 * The front matter schema (playbook.md §2), after aliases were renamed to their canonical names (aliases.ts).
 * The pipeline sections are the config's (config/sections.ts); the rest is playbook-only. Every object is
 * strict. Checks that have their own diagnostic code (§8) add issues with `params.code`.
 */
import { z } from "zod";
import { fileNameProblem } from "../util/paths.js";
import { expects } from "../config/issues.js";
import {
  asrSection,
  BUILTIN_TOOLS,
  interruptionSection,
  llmSection,
  realtimeSection,
  regexString,
  ttsSection,
  vadSection,
} from "../config/sections.js";

const ms = (min = 0) => expects(z.number().int().min(min), `an integer number of milliseconds (≥ ${min})`);
const int = (min: number, max?: number) =>
  expects(
    max === undefined ? z.number().int().min(min) : z.number().int().min(min).max(max),
    max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`,
  );
const unit = expects(z.number().min(0).max(1), "a number from 0 to 1");
const stringMap = z.record(z.string(), z.string());

/** An http(s) URL that may contain `{{ }}` templates; a URL starting with a template is checked when rendered. */
export function templatedUrlProblem(value: string): string | undefined {
  if (/^\s*\{[{%]/.test(value)) return undefined;
  const filled = value.replace(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g, "x");
  try {
    const u = new URL(filled);
    return u.protocol === "http:" || u.protocol === "https:" ? undefined : "must be an http(s) URL";
  } catch {
    return "must be an http(s) URL";
  }
}

const httpUrl = (code?: "tool") =>
  z.string().superRefine((value, ctx) => {
    const problem = templatedUrlProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: value, ...(code ? { params: { code } } : {}) });
  });

// ---- 2.6 eou ----
export const eouSchema = z.strictObject({ type: z.enum(["vad", "early"]), silenceMs: ms(), maxWaitMs: ms() }).partial();

// ---- 2.8 greeting ----
export const greetingObject = z.strictObject({
  text: z.string().optional(),
  play: z.string().optional(),
  interruptible: z.boolean().optional(),
  generate: z.boolean().optional(),
});
export const greetingSchema = expects(
  z.union([z.string(), z.literal(false), greetingObject]),
  "a string, false, or a mapping with text, play, interruptible, generate",
);

// ---- 2.9 dtmf ----
export const DTMF_KEYS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "A", "B", "C", "D"] as const;
export const DTMF_ACTIONS = ["goto", "refer", "transfer", "hangup", "collect"] as const;
/** The fields each action needs (playbook.md §2.9). */
export const DTMF_REQUIRED: Record<(typeof DTMF_ACTIONS)[number], readonly string[]> = {
  goto: ["scene"],
  refer: ["target"],
  transfer: ["target"],
  hangup: [],
  collect: ["collector", "var"],
};

export const dtmfAction = z
  .strictObject({
    action: z.enum(DTMF_ACTIONS),
    scene: z.string().optional(),
    target: z.string().optional(),
    context: z.string().optional(),
    collector: z.string().optional(),
    var: z.string().optional(),
    say: z.string().optional(),
  })
  .superRefine((a, ctx) => {
    for (const field of DTMF_REQUIRED[a.action]) {
      if (a[field as keyof typeof a] === undefined || a[field as keyof typeof a] === "") {
        ctx.addIssue({ code: "custom", path: [], message: `needs "${field}" for action "${a.action}"`, params: { code: "dtmf", missing: field } });
      }
    }
  });

// ---- 2.10 dtmfCollectors ----
export const COLLECTOR_NAME = /^[A-Za-z0-9_-]+$/;
export const collectorSchema = z
  .strictObject({
    description: z.string(),
    digits: int(1, 64).optional(),
    minDigits: int(1, 64).optional(),
    maxDigits: int(1, 64).optional(),
    finishKey: z.enum(["#", "*", ""]).optional(),
    timeoutMs: ms().optional(),
    interDigitTimeoutMs: ms().optional(),
    validation: z.strictObject({ pattern: regexString, errorMessage: z.string().optional() }).optional(),
    retryTimes: int(0, 10).optional(),
    interruptible: z.boolean().optional(),
    prompt: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.digits !== undefined && (c.minDigits !== undefined || c.maxDigits !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["digits"], message: "cannot be combined with minDigits/maxDigits; keep one", input: c.digits });
    }
    if (c.minDigits !== undefined && c.maxDigits !== undefined && c.minDigits > c.maxDigits) {
      ctx.addIssue({ code: "custom", path: ["minDigits"], message: `must not exceed maxDigits (${c.maxDigits})`, input: c.minDigits });
    }
  });

// ---- 2.11 followup ----
export const followupSchema = z.strictObject({
  timeout: ms(100),
  max: int(0),
  text: z.string().optional(),
  goodbye: z.string().optional(),
});

// ---- 2.12 ambiance, recorder, denoise ----
export const ambianceSchema = z.strictObject({
  path: z.string(),
  normalLevel: unit.optional(),
  duckLevel: unit.optional(),
  transitionSpeed: unit.optional(),
  enabled: z.boolean().optional(),
});
export const recorderSchema = z
  .strictObject({
    recorderFile: z.string().superRefine((s, ctx) => {
      const problem = fileNameProblem(s);
      // The diagnostic prefixes the field and the value: `recorder.recorderFile "<value>" <message>`.
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.startsWith("leaves") ? 'must be a file name without ".."' : `must be a file name inside the recordings folder; it ${problem}` });
    }),
    samplerate: z.union([z.literal(8000), z.literal(16000)]),
    stereo: z.boolean(),
  })
  .partial();
export const denoiseSchema = expects(
  z.union([z.boolean(), z.strictObject({ enabled: z.boolean().optional(), type: z.literal("rnnoise").optional() })]),
  'true, false, or {enabled, type: "rnnoise"}',
);

// ---- 2.13 posthook ----
export const SUMMARY_KINDS = ["short", "detailed", "intent", "json"] as const;
export const posthookSchema = z.strictObject({
  url: httpUrl(),
  method: z.enum(["POST", "PUT"]).optional(),
  headers: stringMap.optional(),
  summary: z.string().optional(),
  summaryModel: z.string().optional(),
  includeHistory: z.boolean().optional(),
  includeVariables: z.boolean().optional(),
  timeoutMs: ms().optional(),
});

// ---- 2.14 tools, httpAllow ----
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Names a custom tool may not take: the built-ins, and the alias models may use for transfer_call. */
export const RESERVED_TOOL_NAMES: readonly string[] = [...BUILTIN_TOOLS, "refer_call"];

const toolName = z.string().superRefine((name, ctx) => {
  if (!TOOL_NAME.test(name)) {
    ctx.addIssue({ code: "custom", message: 'must be 1-64 letters, digits, "_" or "-"', input: name, params: { code: "tool" } });
  } else if (RESERVED_TOOL_NAMES.includes(name)) {
    ctx.addIssue({ code: "custom", message: "clashes with a built-in tool; choose another name", input: name, params: { code: "tool" } });
  }
});

/** The tool's JSON Schema, checked by converting it (the same conversion validates the model's arguments). */
export const toolParameters = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  if (schema.type !== "object") {
    ctx.addIssue({ code: "custom", message: 'must be a JSON Schema with type "object"', params: { code: "tool" } });
    return;
  }
  try {
    z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `is not a valid JSON Schema (${(err as Error).message})`, params: { code: "tool" } });
  }
});

export const toolSchema = z.strictObject({
  name: toolName,
  description: z.string(),
  parameters: toolParameters.optional(),
  http: z.strictObject({
    url: httpUrl("tool"),
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]).optional(),
    headers: stringMap.optional(),
    query: stringMap.optional(),
    body: expects(z.union([z.string(), z.record(z.string(), z.unknown())]), "a string or a mapping").optional(),
    timeoutMs: ms().optional(),
  }),
  filler: z.string().optional(),
  fillerAfterMs: ms().optional(),
  resultMaxChars: int(1).optional(),
  setVars: stringMap.optional(),
});

// ---- 2.15 sip ----
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
export const sipSchema = z
  .strictObject({
    extractHeaders: z.array(expects(z.string().regex(HEADER_NAME), "a SIP header name such as X-Customer-Id")),
    hangupHeaders: stringMap,
    headers: stringMap,
  })
  .partial();

// ---- 5 variables ----
export const variableValue = expects(z.union([z.string(), z.number(), z.boolean()]), "a string, number or true/false");

export const frontMatterSchema = z
  .strictObject({
    asr: asrSection,
    tts: ttsSection,
    llm: llmSection.omit({ greeting: true }),
    realtime: realtimeSection,
    vad: vadSection,
    eou: eouSchema,
    interruption: interruptionSection,
    greeting: greetingSchema,
    dtmf: z.record(z.string(), dtmfAction),
    dtmfCollectors: z.record(z.string(), collectorSchema),
    followup: followupSchema,
    ambiance: ambianceSchema,
    recorder: recorderSchema,
    denoise: denoiseSchema,
    posthook: posthookSchema,
    tools: z.array(toolSchema),
    httpAllow: z.array(expects(z.url({ protocol: /^https?$/ }), "an http(s) URL prefix such as https://api.example.com/")),
    variables: z.record(z.string(), variableValue),
    sip: sipSchema,
    initialScene: z.string(),
  })
  .partial();

/** The validated front matter, canonical names only. Absent sections fall back to the config at call time. */
export type FrontMatter = z.output<typeof frontMatterSchema>;
export type DtmfAction = z.output<typeof dtmfAction>;
export type Collector = z.output<typeof collectorSchema>;
export type Followup = z.output<typeof followupSchema>;
export type Tool = z.output<typeof toolSchema>;
export type Greeting = z.output<typeof greetingSchema>;
