/**
 * `invite`/`accept` options (ws-call-api.md §3.1 CallOption) and the commands the call itself handles
 * (§3.2-3.3, §3.9-3.11). The pipeline sections (asr, tts, llm, ...) use the playbook front-matter schema, so an
 * option is checked exactly like the same key in a playbook; a bad value names the field.
 */
import { z } from "zod";
import { PLAYBOOK_NAME } from "../config.js";
import { AppError } from "../errors.js";
import { normaliseAliases } from "../playbook/aliases.js";
import { frontMatterSchema, type FrontMatter } from "../playbook/schema.js";

/** The front-matter sections a call option may override. */
export const OVERRIDABLE = ["asr", "tts", "vad", "llm", "realtime", "eou", "interruption", "ambiance", "recorder", "denoise", "followup"] as const;
export type Overridable = (typeof OVERRIDABLE)[number];

const variables = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const stringMap = z.record(z.string(), z.string());
const codec = z.enum(["pcm", "pcmu", "pcma", "g722", "opus"]);

const callOptionSchema = z.looseObject({
  codec: codec.optional(),
  sampleRate: z.number().int().positive().optional(),
  outputCodec: codec.optional(),
  outputSampleRate: z.number().int().positive().optional(),
  ptime: z.union([z.literal(10), z.literal(20), z.literal(40), z.literal(60)]).optional(),
  sendSilence: z.boolean().optional(),
  playbook: z.string().regex(PLAYBOOK_NAME, "must be a playbook file name such as support.md").optional(),
  extra: variables.optional(),
  variables: variables.optional(),
  caller: z.string().max(256).optional(),
  callee: z.string().max(256).optional(),
  timeoutMs: z.number().int().min(1000).max(600_000).optional(),
  sip: z
    .looseObject({ headers: stringMap.optional(), hangupHeaders: stringMap.optional(), hangup_headers: stringMap.optional() })
    .optional(),
  subscribe: z.boolean().optional(),
  inactivityTimeoutMs: z.number().int().min(0).optional(),
  inactivityTimeout: z.number().min(0).optional(),
  // asr, tts, ... are objects checked against the front-matter schema below.
  ...Object.fromEntries(OVERRIDABLE.map((k) => [k, z.record(z.string(), z.unknown()).optional()])),
});

export interface CallOption {
  codec?: "pcm" | "pcmu" | "pcma" | "g722" | "opus";
  sampleRate?: number;
  outputCodec?: "pcm" | "pcmu" | "pcma" | "g722" | "opus";
  outputSampleRate?: number;
  ptime?: 10 | 20 | 40 | 60;
  sendSilence?: boolean;
  playbook?: string;
  /** `extra` and `variables` merged (`variables` wins). */
  variables: Record<string, string | number | boolean>;
  caller?: string;
  callee?: string;
  timeoutMs?: number;
  sip?: { headers?: Record<string, string>; hangupHeaders?: Record<string, string> };
  subscribe?: boolean;
  /** `inactivityTimeoutMs`, or `inactivityTimeout` seconds converted. */
  inactivityTimeoutMs?: number;
  /** Pipeline sections, validated and with aliases renamed (the front-matter schema). */
  settings: Partial<Pick<FrontMatter, Overridable>>;
}

type Field = { path: string; message: string };

function badRequest(fields: Field[]): AppError {
  const first = fields[0];
  const message = first ? `${first.path}: ${first.message}` : "invalid option";
  return new AppError("BAD_REQUEST", `invalid call option ${message}`, { details: { fields } });
}

const issuePath = (prefix: string, path: readonly PropertyKey[]): string => [prefix, ...path.map(String)].filter((p) => p !== "").join(".");

/** Validates `invite.option`; BAD_REQUEST naming the field (`option.sampleRate`, `option.tts.speed` ...). */
export function parseCallOption(raw: unknown): CallOption {
  if (raw === undefined || raw === null) return { variables: {}, settings: {} };
  const parsed = callOptionSchema.safeParse(raw);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => ({ path: issuePath("option", i.path), message: i.message }));
    // A playbook name outside the rule is INVALID_NAME, as everywhere a playbook is named (ws-call-api §7.1).
    const name = (raw as { playbook?: unknown }).playbook;
    if (typeof name === "string" && fields.some((f) => f.path === "option.playbook")) {
      throw new AppError("INVALID_NAME", `invalid playbook name ${JSON.stringify(name)} in option.playbook: use letters, digits, "_", "-", "." and end in .md`, { details: { fields } });
    }
    throw badRequest(fields);
  }
  const o = parsed.data as z.output<typeof callOptionSchema> & Record<Overridable, Record<string, unknown> | undefined>;

  const sections: Record<string, unknown> = {};
  for (const k of OVERRIDABLE) if (o[k] !== undefined) sections[k] = o[k];
  let settings: Partial<Pick<FrontMatter, Overridable>> = {};
  if (Object.keys(sections).length > 0) {
    const { value, problems } = normaliseAliases(sections);
    if (problems.length > 0) throw badRequest(problems.map((p) => ({ path: issuePath("option", p.path), message: p.message })));
    const checked = frontMatterSchema.safeParse(value);
    if (!checked.success) throw badRequest(checked.error.issues.map((i) => ({ path: issuePath("option", i.path), message: i.message })));
    settings = checked.data;
  }
  const hangupHeaders = o.sip?.hangupHeaders ?? o.sip?.hangup_headers;
  const option: CallOption = { variables: { ...o.extra, ...o.variables }, settings };
  if (o.codec !== undefined) option.codec = o.codec;
  if (o.sampleRate !== undefined) option.sampleRate = o.sampleRate;
  if (o.outputCodec !== undefined) option.outputCodec = o.outputCodec;
  if (o.outputSampleRate !== undefined) option.outputSampleRate = o.outputSampleRate;
  if (o.ptime !== undefined) option.ptime = o.ptime;
  if (o.sendSilence !== undefined) option.sendSilence = o.sendSilence;
  if (o.playbook !== undefined) option.playbook = o.playbook;
  if (o.caller !== undefined) option.caller = o.caller;
  if (o.callee !== undefined) option.callee = o.callee;
  if (o.timeoutMs !== undefined) option.timeoutMs = o.timeoutMs;
  if (o.subscribe !== undefined) option.subscribe = o.subscribe;
  if (o.sip) {
    option.sip = {};
    if (o.sip.headers) option.sip.headers = o.sip.headers;
    if (hangupHeaders) option.sip.hangupHeaders = hangupHeaders;
  }
  if (o.inactivityTimeoutMs !== undefined) option.inactivityTimeoutMs = o.inactivityTimeoutMs;
  else if (o.inactivityTimeout !== undefined) option.inactivityTimeoutMs = Math.round(o.inactivityTimeout * 1000);
  return option;
}

/** Overlays option sections on playbook settings field by field (the option wins). */
export function mergeSettings(base: FrontMatter, over: Partial<Pick<FrontMatter, Overridable>>): FrontMatter {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && typeof b === "object" && !Array.isArray(b) && v && typeof v === "object" && !Array.isArray(v) ? { ...b, ...v } : v;
  }
  return out as FrontMatter;
}

// ------------------------------------------------------------------------------------------------ call commands

const DTMF_DIGITS = /^[0-9*#A-Dw]+$/;

export const rejectCommand = z.looseObject({
  reason: z.string().max(256).optional(),
  code: z.number().int().min(400).max(699).optional(),
});

export const referCommand = z.looseObject({
  callee: z.string().min(1).max(512).optional(),
  target: z.string().min(1).max(512).optional(),
  options: z.looseObject({ headers: stringMap.optional(), timeoutMs: z.number().int().positive().optional(), timeout: z.number().positive().optional() }).optional(),
});

export const transferCommand = z.looseObject({
  target: z.string().min(1).max(512),
  context: z.string().max(128).optional(),
  mode: z.enum(["dialplan", "refer"]).optional(),
  headers: stringMap.optional(),
});

export const dtmfCommand = z.looseObject({
  digits: z.string().regex(DTMF_DIGITS, "digits may contain only 0-9, *, #, A-D and w").max(64),
  durationMs: z.number().int().min(40).max(500).optional(),
  gapMs: z.number().int().min(20).max(1000).optional(),
});

/** Parses a call-level command's fields; BAD_REQUEST naming the field. */
export function parseFields<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) throw badRequest(r.error.issues.map((i) => ({ path: issuePath("", i.path), message: i.message })));
  return r.data;
}

/** Every command name of ws-call-api §3; anything else is UNKNOWN_COMMAND. */
export const COMMANDS = new Set([
  "invite",
  "accept",
  "reject",
  "ringing",
  "tts",
  "play",
  "interrupt",
  "pause",
  "resume",
  "hangup",
  "refer",
  "transfer",
  "dtmf",
  "mute",
  "unmute",
  "history",
]);

export const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
