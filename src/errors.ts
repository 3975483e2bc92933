/**
 * AppError and the one catalogue of error codes (spec/ws-call-api.md §7.4, plus the start-up codes).
 * Code that handles errors branches on `code`, never on message text.
 */

export interface ErrorCodeInfo {
  /** HTTP status for REST responses; undefined for codes that only appear in events or at start-up. */
  readonly http: number | undefined;
  readonly retryable: boolean;
  readonly meaning: string;
}

export const ERROR_CODES = {
  BAD_REQUEST: { http: 400, retryable: false, meaning: "schema violation; `details.fields` lists `{path, message}`" },
  INVALID_NAME: { http: 400, retryable: false, meaning: "playbook name or file path outside the rules" },
  UNAUTHORIZED: { http: 401, retryable: false, meaning: "missing or wrong token" },
  NOT_FOUND: { http: 404, retryable: false, meaning: "no such route" },
  CALL_NOT_FOUND: { http: 404, retryable: false, meaning: "no call with that id (live, or in the ended list)" },
  PLAYBOOK_NOT_FOUND: { http: 404, retryable: false, meaning: "no such playbook file" },
  INVALID_STATE: { http: 409, retryable: false, meaning: "command not allowed in the call's current state" },
  ALREADY_ATTACHED: { http: 409, retryable: false, meaning: "the call already has a controlling client" },
  PLAYBOOK_INVALID: { http: 422, retryable: false, meaning: "`details.errors` = `[Diagnostic]`" },
  UNSUPPORTED: { http: 422, retryable: false, meaning: "command not available for this call type or PBX" },
  CAPACITY: { http: 503, retryable: true, meaning: "`[calls] max_concurrent` reached" },
  PBX_UNAVAILABLE: { http: 503, retryable: true, meaning: "no PBX of that kind enabled or connected" },
  PBX_ERROR: { http: 502, retryable: true, meaning: "the PBX refused the operation (`details.pbxReply`)" },
  PROVIDER_ERROR: { http: 502, retryable: true, meaning: "ASR/TTS/LLM/Realtime vendor failed (`details.provider`, `details.status`)" },
  TIMEOUT: { http: 504, retryable: true, meaning: "a dependency did not answer in time" },
  INTERNAL: { http: 500, retryable: true, meaning: "bug; logged with a stack trace" },
  BAD_COMMAND: { http: undefined, retryable: false, meaning: "WebSocket only: unparseable or malformed command" },
  UNKNOWN_COMMAND: { http: undefined, retryable: false, meaning: "WebSocket only: unknown `command`" },
  AUDIO_FORMAT: { http: undefined, retryable: false, meaning: "undecodable caller audio" },
  PLAYBACK_ERROR: { http: undefined, retryable: false, meaning: "a `play` source could not be opened or decoded" },
  TOOL_ERROR: { http: undefined, retryable: true, meaning: "an HTTP tool failed (the result goes to the LLM as an error)" },
  WEBHOOK_FAILED: { http: undefined, retryable: true, meaning: "the handler webhook failed; the call was rejected" },
  RATE_LIMITED: { http: 429, retryable: true, meaning: "`[http] rate_limit_per_min` exceeded (`Retry-After` set)" },
  CONFIG_INVALID: { http: undefined, retryable: false, meaning: "start-up: the configuration file or environment is invalid (exit code 1)" },
  USAGE: { http: undefined, retryable: false, meaning: "command line: unknown flag or bad value (exit code 2)" },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  /** Overrides the catalogue's default (e.g. a 4xx from a vendor is not worth retrying). */
  retryable?: boolean;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.details = options.details ?? {};
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http ?? 500;
  }

  /** The REST error body of ws-call-api.md §7.3. */
  toBody(): { error: { code: ErrorCode; message: string; retryable: boolean; details: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, retryable: this.retryable, details: this.details } };
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/** Wraps anything thrown into an AppError, keeping AppErrors as they are. */
export function toAppError(value: unknown, fallback: ErrorCode = "INTERNAL"): AppError {
  if (value instanceof AppError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new AppError(fallback, message, { cause: value });
}
