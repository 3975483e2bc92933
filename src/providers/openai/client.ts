/**
 * The `openai` SDK client, set up for our failure policy: the SDK's own retries are off (maxRetries 0) and
 * our loop (retry.ts) retries connection errors, 408, 429 and 5xx before any output. Azure OpenAI uses the SDK's
 * AzureOpenAI client: `{endpoint}/openai/deployments/{deployment}/<path>?api-version=<v>` with an `api-key` header.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, AzureOpenAI } from "openai";
import { AppError } from "../../errors.js";
import { isRetryableStatus, parseRetryAfter, providerError, type Failure, type RetryPolicy } from "../retry.js";

export interface OpenAiEndpoint {
  /** `openai` covers api.openai.com and every compatible server; `azure` an Azure OpenAI resource. */
  flavor: "openai" | "azure";
  /** openai: the API base URL (…/v1); azure: the resource endpoint (https://<resource>.openai.azure.com). */
  baseUrl: string;
  apiKey: string;
  organization?: string | undefined;
  project?: string | undefined;
  /** azure only. */
  apiVersion?: string | undefined;
}

export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1";

/** The SDK must never give up before our own timers do; ours bound the first byte and every later gap. */
const SDK_TIMEOUT_MS = 10 * 60 * 1000;

export function createOpenAiClient(endpoint: OpenAiEndpoint): OpenAI {
  if (endpoint.flavor === "azure") {
    return new AzureOpenAI({
      endpoint: endpoint.baseUrl.replace(/\/+$/, ""),
      apiKey: endpoint.apiKey,
      apiVersion: endpoint.apiVersion ?? "2024-10-21",
      maxRetries: 0,
      timeout: SDK_TIMEOUT_MS,
    });
  }
  return new OpenAI({
    baseURL: endpoint.baseUrl.replace(/\/+$/, "") || OPENAI_DEFAULT_BASE_URL,
    apiKey: endpoint.apiKey,
    organization: endpoint.organization || null,
    project: endpoint.project || null,
    maxRetries: 0,
    timeout: SDK_TIMEOUT_MS,
  });
}

/** True when the URL is OpenAI's own API (which prefers `max_completion_tokens`). */
export function isOpenAiHost(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname === "api.openai.com";
  } catch {
    return false;
  }
}

/** Maps an SDK (or network) error to our failure, with the retry decision of media-protocols.md §5. */
export function classifyOpenAiError(provider: string, err: unknown): Failure {
  if (err instanceof AppError) return { error: err, retryable: false };
  if (err instanceof APIUserAbortError) return { error: providerError(provider, "request aborted", { cause: err, retryable: false }), retryable: false };
  if (err instanceof APIConnectionTimeoutError) {
    return { error: new AppError("TIMEOUT", `${provider}: request timed out`, { cause: err, details: { provider } }), retryable: true };
  }
  if (err instanceof APIConnectionError) {
    return { error: providerError(provider, `${provider}: connection failed (${causeMessage(err)})`, { cause: err }), retryable: true };
  }
  if (err instanceof APIError && typeof err.status === "number") {
    const status = err.status;
    const retryable = isRetryableStatus(status);
    const headers = err.headers as Headers | undefined;
    return {
      error: providerError(provider, `${provider}: HTTP ${err.message}`, { status, cause: err, retryable }),
      retryable,
      retryAfterMs: headers ? parseRetryAfter((name) => headers.get(name)) : undefined,
    };
  }
  // A body that broke off (socket reset mid-stream), a malformed chunk: not the SDK's classification.
  const message = err instanceof Error ? err.message : String(err);
  return { error: providerError(provider, `${provider}: ${message}`, { cause: err }), retryable: isConnectionReset(err) };
}

function causeMessage(err: Error): string {
  const cause = err.cause as { message?: string; code?: string } | undefined;
  return cause?.code ?? cause?.message ?? err.message;
}

function isConnectionReset(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ECONNRESET" || code === "ECONNREFUSED" || code === "EPIPE" || code === "UND_ERR_SOCKET") return true;
    if (e.message === "terminated" || e.message === "fetch failed") return true;
  }
  return false;
}

export interface OpenAiProviderOptions {
  client: OpenAI;
  /** Name in errors and logs: "openai" or "azure". */
  provider: string;
  /** The base URL the client talks to (decides `max_tokens` vs `max_completion_tokens`). */
  baseUrl: string;
  policy: RetryPolicy;
}
