/**
 * The root pino logger and per-call child loggers. Secrets never reach the output: values under secret-looking
 * keys are replaced, and known secret values (from the config) are scrubbed from every string, including
 * messages and error stacks. Caller and callee numbers are cut to their last 4 digits unless disabled.
 */
import { pino, type DestinationStream, type Logger } from "pino";
import pinoPretty from "pino-pretty";

export type { Logger } from "pino";

export interface LogOptions {
  level: "trace" | "debug" | "info" | "warn" | "error";
  /** Undefined = pretty on a TTY, json otherwise. */
  format?: "json" | "pretty" | undefined;
  /** Empty = stdout. */
  file?: string;
  redactPersonal: boolean;
  /** Secret values to scrub wherever they appear. */
  secrets?: readonly string[];
  tty?: boolean;
  noColor?: boolean;
  /** Where to write instead of stdout or `file` (tests). */
  destination?: DestinationStream;
}

const SECRET_KEY = /token|secret|password|passwd|api_?key|authorization|cookie/i;
const PERSONAL_KEY = /^(caller|callee|from|to|callerNumber|calleeNumber|ani|dnis)$/i;
const MASK = "***";
/** `?token=…` / `&token=…` (also `access_token=`) in a URL written into a log string. */
const TOKEN_PARAM = /([?&;](?:access_)?token=)[^&#\s"']+/gi;
const BEARER = /(\bBearer\s+)(?!\*\*\*)[^\s"',;]+/gi;

/** `+15551234567` -> `…4567`: enough to tell calls apart in a log, not enough to identify a person. */
export function redactNumber(value: string): string {
  return value.length <= 4 ? value : `…${value.slice(-4)}`;
}

/** Builds the function that makes a log record safe to write. */
export function makeRedactor(secrets: readonly string[], redactPersonal: boolean): (value: unknown) => unknown {
  // Longest first, so that a secret containing another is replaced whole.
  const known = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  const scrub = (s: string): string => {
    let out = s;
    for (const secret of known) if (out.includes(secret)) out = out.split(secret).join(MASK);
    // Tokens that are not config values (one-time audio fork tokens, a wrong token someone tried) in URLs and headers.
    if (out.includes("token=")) out = out.replace(TOKEN_PARAM, `$1${MASK}`);
    if (/bearer/i.test(out)) out = out.replace(BEARER, `$1${MASK}`);
    return out;
  };
  const walk = (value: unknown, key: string, depth: number): unknown => {
    if (typeof value === "string") {
      if (SECRET_KEY.test(key) && value !== "") return MASK;
      if (redactPersonal && PERSONAL_KEY.test(key)) return redactNumber(value);
      return scrub(value);
    }
    if (value === null || typeof value !== "object" || depth > 8) return value;
    if (value instanceof Error) {
      const e = value as Error & { code?: unknown; details?: unknown };
      const out: Record<string, unknown> = { type: e.name, message: scrub(e.message), stack: e.stack && scrub(e.stack) };
      if (e.code !== undefined) out.code = e.code;
      if (e.details !== undefined) out.details = walk(e.details, "details", depth + 1);
      if (e.cause !== undefined) out.cause = walk(e.cause, "cause", depth + 1);
      return out;
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, key, depth + 1));
    if (ArrayBuffer.isView(value)) return `<${value.byteLength} bytes>`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, k, depth + 1);
    return out;
  };
  return (value) => walk(value, "", 0);
}

export function createLogger(options: LogOptions): Logger {
  const redact = makeRedactor(options.secrets ?? [], options.redactPersonal);
  const pretty = options.format ? options.format === "pretty" : options.tty === true;
  let destination: DestinationStream;
  if (options.destination) {
    destination = options.destination;
  } else {
    const fileOrStdout = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination({ dest: 1, sync: false });
    destination = pretty
      ? pinoPretty({ colorize: !options.noColor && options.tty === true && !options.file, destination: fileOrStdout, sync: false })
      : fileOrStdout;
  }
  const logger = pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors are shaped (and scrubbed) by the redactor below; pino's serializer would re-wrap them.
      serializers: { err: (e: unknown) => e },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redact(obj) as Record<string, unknown>,
      },
      hooks: {
        // Messages are static by convention, but a message built from an error may still carry a secret.
        logMethod(args, method) {
          const safe = args.map((a) => (typeof a === "string" ? (redact(a) as string) : a));
          return method.apply(this, safe as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
  redactors.set(logger, redact);
  return logger;
}

/** Child bindings bypass pino's `formatters.log`, so callLogger redacts them with the root's redactor. */
const redactors = new WeakMap<Logger, (value: unknown) => unknown>();

/** A child logger for one call: every line carries `callId` (and any fields given, redacted like the rest). */
export function callLogger(root: Logger, callId: string, fields: Record<string, unknown> = {}): Logger {
  const redact = redactors.get(root) ?? makeRedactor([], true);
  const child = root.child(redact({ callId, ...fields }) as Record<string, unknown>);
  redactors.set(child, redact);
  return child;
}
