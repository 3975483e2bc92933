/**
 * The ElevenLabs text-to-speech WebSocket ("stream-input") wire protocol, as documented in their AsyncAPI spec:
 *
 *   GET {base}/v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=pcm_16000&inactivity_timeout=…
 *   header `xi-api-key: <key>` (the key never goes into a message body, so a logged frame never holds it)
 *
 *   client → server  {"text":" ", "voice_settings"?: {...}}       first message: a single space
 *                    {"text":"Hello there. ", "flush"?: true}     text, ending with a space; flush forces generation
 *                    {"text":""}                                   end of input: the rest is generated, then isFinal
 *   server → client  {"audio":"<base64>", "isFinal": null|false, "normalizedAlignment": {...}|null, ...}
 *                    {"isFinal": true}                             all audio sent; the server then closes (1000)
 *                    {"message":"…", "error":"quota_exceeded", "code":1008}   an error, followed by close 1008
 *
 * Errors: a refused handshake (HTTP 401/403), an error message, or a close with 1008 (policy violation) and a
 * reason. Authentication and quota failures are not worth retrying and name the config key to fix.
 */
import { muLawDecode } from "../../audio/index.js";
import type { AppError } from "../../errors.js";
import { providerError } from "../retry.js";

export const ELEVENLABS_DEFAULT_BASE_URL = "wss://api.elevenlabs.io";
export const ELEVENLABS_PROVIDER = "elevenlabs";
/** Where the user fixes a rejected key (named in every auth/quota error). */
export const API_KEY_SETTING = "[providers.elevenlabs] api_key";

export const OUTPUT_FORMATS = ["pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "ulaw_8000"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The format asked for a requested output rate: the same rate when offered, else the nearest rate above it. */
export function formatForRate(rate: number): OutputFormat {
  if (rate <= 8000) return "pcm_8000";
  if (rate <= 16000) return "pcm_16000";
  if (rate <= 22050) return "pcm_22050";
  if (rate <= 24000) return "pcm_24000";
  return "pcm_44100";
}

export function rateOfFormat(format: OutputFormat): number {
  return Number(format.slice(format.indexOf("_") + 1));
}

export interface StreamEndpoint {
  /** ws(s)://host[:port][/prefix]; an http(s) URL is turned into ws(s). */
  baseUrl: string;
  voiceId: string;
  modelId: string;
  outputFormat: OutputFormat;
  /** Seconds the server waits for more text before it closes the socket (its default is 20). */
  inactivityTimeoutS?: number | undefined;
  languageCode?: string | undefined;
}

/** The socket URL (it carries no secret, so it is safe in logs and errors). */
export function streamInputUrl(e: StreamEndpoint): string {
  const base = (e.baseUrl || ELEVENLABS_DEFAULT_BASE_URL).replace(/^http(s?):/, "ws$1:").replace(/\/+$/, "");
  const url = new URL(`${base}/v1/text-to-speech/${encodeURIComponent(e.voiceId)}/stream-input`);
  url.searchParams.set("model_id", e.modelId);
  url.searchParams.set("output_format", e.outputFormat);
  if (e.inactivityTimeoutS !== undefined) url.searchParams.set("inactivity_timeout", String(e.inactivityTimeoutS));
  if (e.languageCode) url.searchParams.set("language_code", e.languageCode);
  return url.toString();
}

export interface VoiceSettings {
  stability: number;
  similarity_boost: number;
  speed?: number | undefined;
}

/** The first message. Voice settings may only be given here (the server rejects a change later on). */
export function initMessage(voiceSettings?: VoiceSettings): string {
  return JSON.stringify(voiceSettings ? { text: " ", voice_settings: voiceSettings } : { text: " " });
}

export function textMessage(text: string, flush: boolean): string {
  return JSON.stringify(flush ? { text, flush: true } : { text });
}

export const END_OF_INPUT = JSON.stringify({ text: "" });

/** ElevenLabs' speed range (0.7–1.2); the playbook's wider `tts.speed` is clamped into it. */
export function clampSpeed(speed: number): number {
  return Math.min(1.2, Math.max(0.7, speed));
}

export type ServerMessage =
  | { type: "audio"; pcm: Int16Array }
  | { type: "final" }
  | { type: "error"; error: AppError }
  | { type: "other" };

/**
 * Decodes one server message. Audio is decoded to PCM16 samples at the format's rate (one array per message,
 * i.e. per chunk of generated speech, not per 20 ms frame).
 */
export function parseServerMessage(data: string, format: OutputFormat): ServerMessage {
  let raw: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(data);
    if (v === null || typeof v !== "object") return { type: "other" };
    raw = v as Record<string, unknown>;
  } catch {
    return { type: "other" };
  }
  if (typeof raw.error === "string" || (raw.error !== undefined && raw.error !== null)) {
    const code = typeof raw.error === "string" ? raw.error : "error";
    const message = typeof raw.message === "string" ? raw.message : code;
    return { type: "error", error: serverError(code, message) };
  }
  if (typeof raw.audio === "string" && raw.audio !== "") {
    const bytes = Buffer.from(raw.audio, "base64");
    return { type: "audio", pcm: format === "ulaw_8000" ? muLawDecode(bytes) : pcm16le(bytes) };
  }
  if (raw.isFinal === true) return { type: "final" };
  return { type: "other" };
}

function pcm16le(bytes: Buffer): Int16Array {
  const pcm = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
  return pcm;
}

type Kind = "unauthorized" | "quota_exceeded" | "input_timeout" | "other";

/** The vendor's error codes (and, for a bare close, its reason text) sorted into what the user must do. */
function kindOf(code: string, text: string): Kind {
  if (/api_key|unauthori[sz]ed|authenticat|invalid_?key/i.test(code)) return "unauthorized";
  if (/quota|credit|payment|insufficient/i.test(code)) return "quota_exceeded";
  if (/input_timeout/i.test(code)) return "input_timeout";
  if (/api key|unauthori[sz]ed|authenticat/i.test(text)) return "unauthorized";
  if (/quota|credits/i.test(text)) return "quota_exceeded";
  return "other";
}

/** An error the server reported (error message or close reason). The text is the vendor's: it holds no key. */
export function serverError(code: string, message: string, status?: number): AppError {
  const kind = kindOf(code, message);
  const details = { reason: kind, vendorCode: code };
  if (kind === "unauthorized") {
    return providerError(ELEVENLABS_PROVIDER, `elevenlabs: the API key was rejected (${message}); check ${API_KEY_SETTING} (env ELEVENLABS_API_KEY)`, {
      status,
      retryable: false,
      details: { ...details, key: API_KEY_SETTING },
    });
  }
  if (kind === "quota_exceeded") {
    return providerError(ELEVENLABS_PROVIDER, `elevenlabs: quota exceeded (${message}); top up the account of ${API_KEY_SETTING} or use another key`, {
      status,
      retryable: false,
      details: { ...details, key: API_KEY_SETTING },
    });
  }
  if (kind === "input_timeout") {
    return providerError(ELEVENLABS_PROVIDER, `elevenlabs: the server stopped waiting for text (${message})`, { status, retryable: false, details });
  }
  return providerError(ELEVENLABS_PROVIDER, `elevenlabs: ${message}`, { status, details });
}

/** A refused handshake. 401/403 are a bad key; 429 and 5xx may be retried. */
export function handshakeError(status: number): AppError {
  if (status === 401 || status === 403) return serverError("invalid_api_key", `HTTP ${status} on connect`, status);
  const retryable = status === 408 || status === 429 || status >= 500;
  return providerError(ELEVENLABS_PROVIDER, `elevenlabs: HTTP ${status} on connect`, { status, retryable });
}

/** A close the provider did not ask for and that no error message explained. */
export function closeError(code: number, reason: string): AppError {
  if (code === 1008) return serverError("policy_violation", reason || "policy violation");
  return providerError(ELEVENLABS_PROVIDER, `elevenlabs: socket closed (${code}${reason ? ` ${reason}` : ""}) before the audio was complete`, {
    retryable: code === 1006 || code === 1011 || code === 1012 || code === 1013,
    details: { closeCode: code },
  });
}
