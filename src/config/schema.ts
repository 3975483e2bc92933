/**
 * The schema of the TOML configuration (spec/config.md §2) with its built-in defaults.
 * Section and key names are snake_case; `[defaults.*]` tables are playbook sections (camelCase).
 * Every object is strict: an unknown key is an error.
 */
import { z } from "zod";
import { asrSection, interruptionSection, llmSection, realtimeSection, ttsSection, vadSection } from "./sections.js";

/** `host:port`, `[v6]:port`; the port must be 0–65535. */
export const hostPort = z.string().refine((s) => parseHostPort(s) !== undefined, {
  message: 'must be "host:port" (IPv6 as "[::1]:port")',
});

export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

/** A `host:port` value the schema already validated (listen addresses), split. */
export function requireHostPort(s: string): { host: string; port: number } {
  const hp = parseHostPort(s);
  if (!hp) throw new Error(`${JSON.stringify(s)} is not host:port`);
  return hp;
}

const url = (protocols: string[]) =>
  z.string().refine(
    (s) => {
      if (s === "") return true;
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL (${protocols.map((p) => p.replace(":", "")).join(", ")}) or empty` },
  );
const ms = z.number().int().min(0);
const count = z.number().int().min(0);
const port = z.number().int().min(1).max(65535);
const cidr = z.string().regex(/^[0-9A-Fa-f:.]+\/\d{1,3}$/, "must be a CIDR such as 127.0.0.1/32");
// Each table may be absent: `prefault` parses `{}` so that the defaults inside apply.
const table = <T extends z.core.$ZodLooseShape>(shape: T) => z.strictObject(shape).prefault({} as never);

const http = table({
  addr: hostPort.default("0.0.0.0:8080"),
  token: z.string().default(""),
  cors_origins: z.array(z.string()).default([]),
  public_url: url(["http:", "https:"]).default(""),
  max_ws_message_bytes: z.number().int().min(1024).default(262144),
  body_limit_bytes: z.number().int().min(1024).default(1048576),
  console: z.boolean().default(true),
  trust_proxy: z.boolean().default(false),
  rate_limit_per_min: count.default(600),
});

const log = table({
  level: z.enum(["trace", "debug", "info", "warn", "error"]).default("info"),
  /** Absent = pretty on a TTY, json otherwise; decided by the logger. */
  format: z.enum(["json", "pretty"]).optional(),
  file: z.string().default(""),
  redact_personal: z.boolean().default(true),
  timezone: z.string().refine((tz) => tz === "" || isTimeZone(tz), { message: "must be an IANA time zone such as Europe/Berlin" }).default(""),
});

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const paths = table({
  playbooks: z.string().min(1).default("./playbooks"),
  sounds: z.string().min(1).default("./sounds"),
  recordings: z.string().min(1).default("./data/recordings"),
  dumps: z.string().min(1).default("./data/dumps"),
  spool: z.string().min(1).default("./data/spool"),
  cache: z.string().min(1).default("./data/cache"),
});

const calls = table({
  max_concurrent: count.default(0),
  accept_timeout_ms: ms.default(60000),
  pending_playbook_ttl_ms: ms.default(60000),
  inactivity_timeout_ms: ms.default(50000),
  dump_events: z.boolean().default(true),
  ended_retention: count.default(200),
  ws_output_lead_ms: ms.default(40),
  shutdown_grace_ms: ms.default(10000),
  on_provider_error: z.enum(["continue", "hangup"]).default("continue"),
});

export const PLAYBOOK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.md$/;
const playbookName = z.string().regex(PLAYBOOK_NAME, "must be a playbook file name such as support.md");

const regex = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: "must be a valid JavaScript regular expression" },
);

const handlerRule = z.strictObject({
  caller: regex.optional(),
  callee: regex.optional(),
  call_type: z.enum(["freeswitch", "asterisk", "twilio"]).optional(),
  playbook: playbookName,
  variables: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

const handler = table({
  type: z.enum(["playbook", "webhook"]).default("playbook"),
  default: z.union([z.literal(""), playbookName]).default(""),
  url: url(["http:", "https:"]).default(""),
  method: z.enum(["POST", "PUT"]).default("POST"),
  timeout_ms: ms.default(5000),
  headers: z.record(z.string(), z.string()).default({}),
  secret: z.string().default(""),
  max_reply_bytes: z.number().int().min(1).default(1048576),
  rules: z.array(handlerRule).default([]),
}).refine((h) => h.type !== "webhook" || h.url !== "", { message: 'must not be empty when type is "webhook"', path: ["url"] });

const freeswitch = table({
  enabled: z.boolean().default(false),
  esl_host: z.string().min(1).default("127.0.0.1"),
  esl_port: port.default(8021),
  esl_password: z.string().default("ClueCon"),
  esl_inbound: z.boolean().default(true),
  outbound_listen: z.union([z.literal(""), hostPort]).default("127.0.0.1:8084"),
  outbound_allow: z.array(cidr).default(["127.0.0.1/32", "::1/128"]),
  audio_fork_url: url(["ws:", "wss:"]).default("ws://127.0.0.1:8080/media/fork"),
  fork_sample_rate: z.union([z.literal(8000), z.literal(16000)]).default(16000),
  playback: z.enum(["stream", "file"]).default("stream"),
  playback_sample_rate: z.number().int().min(8000).max(48000).default(16000),
  use_marks: z.boolean().default(true),
  dial_template: z.string().default("user/{to}"),
  sip_profile: z.string().default("internal"),
  transfer_context: z.string().default("default"),
  caller_id_number: z.string().default("0000000000"),
  caller_id_name: z.string().default("active-call"),
  api_timeout_ms: ms.default(5000),
  reconnect_min_ms: ms.default(250),
  reconnect_max_ms: ms.default(5000),
});

const asterisk = table({
  enabled: z.boolean().default(false),
  ari_url: url(["http:", "https:"]).default("http://127.0.0.1:8088"),
  ari_user: z.string().default("active-call"),
  ari_password: z.string().default(""),
  app: z.string().min(1).default("active-call"),
  media: z.enum(["rtp", "websocket", "audiosocket"]).default("rtp"),
  // Unset: ulaw for media = "rtp" (Asterisk drops slin16 RTP from externalMedia), slin16 otherwise (pbx/asterisk/media.ts).
  format: z.enum(["slin16", "slin", "ulaw", "alaw"]).optional(),
  rtp_bind_ip: z.string().default("0.0.0.0"),
  rtp_advertise_ip: z.string().default("127.0.0.1"),
  rtp_port_min: port.default(40000),
  rtp_port_max: port.default(40999),
  audiosocket_listen: hostPort.default("0.0.0.0:9093"),
  audiosocket_advertise: hostPort.default("127.0.0.1:9093"),
  websocket_control: z.enum(["plain", "json"]).default("plain"),
  websocket_lead_ms: ms.default(200),
  audiosocket_lead_ms: ms.default(40),
  dial_template: z.string().default("PJSIP/{to}"),
  default_endpoint: z.string().default(""),
  transfer_context: z.string().default("default"),
  caller_id: z.string().default(""),
  api_timeout_ms: ms.default(5000),
  reconnect_min_ms: ms.default(250),
  reconnect_max_ms: ms.default(5000),
})
  .refine((a) => !a.enabled || a.ari_password !== "", {
    message: "is required when [asterisk] enabled = true (set ACTIVE_CALL_ARI_PASSWORD)",
    path: ["ari_password"],
  })
  .refine((a) => a.media !== "audiosocket" || a.format === undefined || a.format === "slin16" || a.format === "slin", {
    message: 'media "audiosocket" accepts only format "slin16" or "slin"',
    path: ["format"],
  })
  .refine((a) => a.rtp_port_min <= a.rtp_port_max, { message: "must not exceed rtp_port_max", path: ["rtp_port_min"] });

const twilio = table({
  enabled: z.boolean().default(true),
  playbook: z.union([z.literal(""), playbookName]).default(""),
  lead_ms: ms.default(100),
});

const defaults = table({
  asr: asrSection.prefault({}).transform((s) => ({ provider: "auto" as const, model: "gpt-4o-mini-transcribe", ...s })),
  tts: ttsSection.prefault({}).transform((s) => ({ provider: "auto" as const, model: "gpt-4o-mini-tts", voice: "alloy", ...s })),
  llm: llmSection.prefault({}).transform((s) => ({ provider: "auto" as const, model: "gpt-4o-mini", ...s })),
  vad: vadSection.prefault({}).transform((s) => ({
    type: "tinysilero" as const,
    threshold: 0.5,
    minSpeechMs: 250,
    minSilenceMs: 100,
    speechPadMs: 30,
    ...s,
  })),
  interruption: interruptionSection.prefault({}).transform((s) => ({
    fillerWords: {
      en: ["uh", "um", "er", "ah", "hmm", "mm", "mhm", "uh-huh"],
      zh: ["嗯", "啊", "哦", "额"],
    } as string[] | Record<string, string[]>,
    ...s,
  })),
  realtime: realtimeSection.prefault({}).transform((s) => ({ model: "gpt-realtime", voice: "alloy", ...s })),
});

const providers = table({
  openai: table({
    base_url: url(["http:", "https:"]).default("https://api.openai.com/v1"),
    api_key: z.string().default(""),
    organization: z.string().default(""),
    project: z.string().default(""),
    timeout_ms: ms.default(30000),
    max_retries: count.default(2),
  }),
  azure: table({
    endpoint: url(["http:", "https:"]).default(""),
    api_key: z.string().default(""),
    api_version: z.string().default("2024-10-21"),
  }),
  deepgram: table({
    base_url: url(["http:", "https:"]).default("https://api.deepgram.com"),
    api_key: z.string().default(""),
    timeout_ms: ms.default(10000),
    max_retries: count.default(2),
    asr_model: z.string().min(1).default("nova-3"),
    tts_model: z.string().min(1).default("aura-2-thalia-en"),
    endpointing_ms: ms.default(300),
  }),
  espeak: table({
    binary: z.string().min(1).default("espeak-ng"),
    voice: z.string().default("en-us"),
    rate_wpm: z.number().int().min(80).max(500).default(175),
  }),
  flite: table({
    binary: z.string().min(1).default("flite"),
    voice: z.string().default("slt"),
  }),
  elevenlabs: table({
    api_key: z.string().default(""),
    /** The stream-input WebSocket's origin; tests point it at a local simulator. */
    base_url: url(["ws:", "wss:", "http:", "https:"]).default("wss://api.elevenlabs.io"),
    timeout_ms: ms.default(10000),
    max_retries: count.default(2),
    voice_id: z.string().min(1).default("JBFqnCBsd6RMkjVDRZzb"),
    model_id: z.string().min(1).default("eleven_flash_v2_5"),
    /** auto: PCM at the rate the call asks for; ulaw_8000 suits a G.711 leg. */
    output_format: z.enum(["auto", "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "ulaw_8000"]).default("auto"),
  }),
  pocketsphinx: table({
    hmm: z.string().default("/usr/share/pocketsphinx/model/en-us/en-us"),
    lm: z.string().default("/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"),
    dict: z.string().default("/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"),
  }),
});

const recorder = table({
  enabled: z.boolean().default(false),
  file: z.string().min(1).default("{id}.wav"),
  samplerate: z.union([z.literal(8000), z.literal(16000)]).default(16000),
  stereo: z.boolean().default(true),
});

const posthook = table({
  url: url(["http:", "https:"]).default(""),
  retries: count.default(8),
  backoff_initial_ms: ms.default(1000),
  backoff_max_ms: ms.default(300000),
  timeout_ms: ms.default(10000),
  concurrency: z.number().int().min(1).default(4),
  secret: z.string().default(""),
});

const metrics = table({
  enabled: z.boolean().default(true),
  default_metrics: z.boolean().default(true),
});

export const configSchema = z.strictObject({
  http,
  log,
  paths,
  calls,
  handler,
  freeswitch,
  asterisk,
  twilio,
  defaults,
  providers,
  recorder,
  posthook,
  metrics,
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
