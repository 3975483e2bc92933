/**
 * Deepgram wire details shared by the ASR (listen v1 WebSocket) and TTS (speak v1 REST) providers: URLs, the
 * `Authorization: Token <key>` header, and errors that name the config key to fix. The key only ever goes into
 * request headers; no message or detail here contains it.
 */
import { AppError } from "../../errors.js";
import { isRetryableStatus, providerError } from "../retry.js";

export const DEEPGRAM_DEFAULT_BASE_URL = "https://api.deepgram.com";

export interface DeepgramEndpoint {
  /** `https://api.deepgram.com`, or a self-hosted / test server (http(s); the WebSocket URL is derived). */
  baseUrl: string;
  apiKey: string;
  /** Handshake / first byte limit. */
  timeoutMs: number;
}

export function authHeaders(e: DeepgramEndpoint): Record<string, string> {
  return { authorization: `Token ${e.apiKey}` };
}

/** `{base}/v1/<path>?<query>` with http->ws for the WebSocket endpoints. */
export function deepgramUrl(e: DeepgramEndpoint, path: string, query: Record<string, string | number | boolean | undefined>, ws = false): string {
  const url = new URL(e.baseUrl.replace(/\/+$/, "") + path);
  if (ws) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  return url.toString();
}

/** An HTTP failure (REST status, or the status of a refused WebSocket upgrade) as a PROVIDER_ERROR. */
export function httpError(what: string, status: number, requestId?: string | undefined): AppError {
  const details = requestId ? { requestId } : {};
  if (status === 401 || status === 403) {
    return providerError("deepgram", `deepgram ${what}: HTTP ${status}, the API key was rejected: check [providers.deepgram] api_key (env DEEPGRAM_API_KEY)`, {
      status,
      retryable: false,
      details: { ...details, key: "providers.deepgram.api_key" },
    });
  }
  if (status === 402) return providerError("deepgram", `deepgram ${what}: HTTP 402, the Deepgram project has no credit left`, { status, retryable: false, details });
  return providerError("deepgram", `deepgram ${what}: HTTP ${status}`, { status, retryable: isRetryableStatus(status), details });
}

export function timeoutError(what: string, timeoutMs: number): AppError {
  return new AppError("TIMEOUT", `deepgram ${what}: no answer within ${timeoutMs} ms ([providers.deepgram] timeout_ms)`, {
    details: { provider: "deepgram", timeoutMs, key: "providers.deepgram.timeout_ms" },
  });
}

/** The close codes of the listen API (1008/1002 DATA-*, 1011 NET-*) as an error; 1000 is a normal end. */
export function closeError(code: number, reason: string): AppError {
  return providerError("deepgram", `deepgram asr: stream closed by the server (${code}${reason ? ` ${reason}` : ""})`, {
    retryable: code === 1011 || code === 1006,
    details: { closeCode: code, closeReason: reason },
  });
}
