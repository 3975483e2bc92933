/**
 * HTTP requests made for the model (playbook.md §2.14): the playbook's custom tools, and `http_request` /
 * `<http>` for URLs under `httpAllow`. Failures never throw: they become `{"error": …}` results for the model
 * (TOOL_ERROR semantics), and a non-2xx status is a result like any other.
 */
import { AppError } from "../../errors.js";
import type { Tool } from "../types.js";
import { deadline } from "../../util/deadline.js";

export const DEFAULT_HTTP_TIMEOUT_MS = 5000;
export const DEFAULT_RESULT_MAX_CHARS = 4000;

export interface HttpDeps {
  fetch: typeof fetch;
  /** Renders a template with extra local names (`args`). */
  render: (source: string, local: Record<string, unknown>) => string;
  /** Aborted when the runner stops. */
  signal: AbortSignal;
}

export interface HttpOutcome {
  ok: boolean;
  /** What the model receives: `{"status", "body"}` or `{"error"}`. */
  content: string;
  status?: number;
  /** Parsed JSON body, or the text (for `setVars`). */
  result?: unknown;
  error?: AppError;
}

interface RequestSpec {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  resultMaxChars: number;
}

const errorOutcome = (err: AppError): HttpOutcome => ({ ok: false, content: JSON.stringify({ error: err.message }), error: err });

async function send(spec: RequestSpec, deps: HttpDeps): Promise<HttpOutcome> {
  const limit = deadline(spec.timeoutMs, deps.signal);
  const signal = limit.signal;
  let res: Response;
  let text: string;
  try {
    res = await deps.fetch(spec.url, {
      method: spec.method,
      headers: spec.headers,
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      redirect: spec.method === "GET" ? "follow" : "manual",
      signal,
    });
    text = await res.text();
  } catch (err) {
    const timedOut = limit.timedOut;
    const message = timedOut ? `no response within ${spec.timeoutMs} ms` : `request failed: ${(err as Error).message}`;
    return errorOutcome(new AppError("TOOL_ERROR", message, { cause: err, details: { url: spec.url } }));
  } finally {
    limit.clear();
  }
  let parsed: unknown = text;
  try {
    parsed = text === "" ? "" : JSON.parse(text);
  } catch {
    // Plain text.
  }
  let body: unknown = parsed;
  const shown = typeof parsed === "string" ? parsed : JSON.stringify(parsed);
  if (shown.length > spec.resultMaxChars) body = shown.slice(0, spec.resultMaxChars);
  return { ok: res.status >= 200 && res.status < 300, status: res.status, content: JSON.stringify({ status: res.status, body }), result: parsed };
}

const encodeArgs = (args: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(Object.entries(args).map(([k, v]) => [k, encodeURIComponent(typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))]));

function renderDeep(value: unknown, render: (s: string) => string): unknown {
  if (typeof value === "string") return render(value);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, render));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, render)]));
  return value;
}

/** Runs a custom tool with arguments already validated against its schema. */
export async function runHttpTool(tool: Tool, args: Record<string, unknown>, deps: HttpDeps): Promise<HttpOutcome> {
  const method = tool.http.method ?? "GET";
  const render = (s: string) => deps.render(s, { args });
  let url: URL;
  try {
    url = new URL(deps.render(tool.http.url, { args: encodeArgs(args) }));
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not an http(s) URL");
  } catch (err) {
    return errorOutcome(new AppError("TOOL_ERROR", `invalid URL: ${(err as Error).message}`, { cause: err }));
  }
  for (const [k, v] of Object.entries(tool.http.query ?? {})) url.searchParams.append(k, render(v));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(tool.http.headers ?? {})) headers[k] = render(v);
  let body: string | undefined;
  if (tool.http.body !== undefined) {
    if (typeof tool.http.body === "string") body = render(tool.http.body);
    else {
      body = JSON.stringify(renderDeep(tool.http.body, render));
      headers["content-type"] ??= "application/json";
    }
  } else if (method === "POST" || method === "PUT" || method === "PATCH") {
    body = JSON.stringify(args);
    headers["content-type"] ??= "application/json";
  }
  return send(
    {
      url: url.toString(),
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      timeoutMs: tool.http.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS,
      resultMaxChars: tool.resultMaxChars ?? DEFAULT_RESULT_MAX_CHARS,
    },
    deps,
  );
}

/** True when `url` starts with one of the `httpAllow` prefixes. */
export const isAllowedUrl = (url: string, allow: readonly string[]): boolean => allow.some((prefix) => url.startsWith(prefix));

/** `http_request` and `<http>`: only for URLs under `httpAllow`. */
export async function runHttpRequest(
  req: { url: string; method?: string | undefined; body?: unknown },
  allow: readonly string[],
  deps: HttpDeps,
): Promise<HttpOutcome> {
  if (!isAllowedUrl(req.url, allow)) {
    return errorOutcome(new AppError("TOOL_ERROR", `URL not allowed by httpAllow: ${req.url}`));
  }
  const method = (req.method ?? "GET").toUpperCase();
  if (!["GET", "POST", "PUT"].includes(method)) return errorOutcome(new AppError("TOOL_ERROR", `method not allowed: ${method}`));
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (req.body !== undefined && req.body !== "" && method !== "GET") {
    body = typeof req.body === "string" ? req.body : JSON.stringify(req.body);
    headers["content-type"] = typeof req.body === "string" && !/^\s*[[{]/.test(req.body) ? "text/plain" : "application/json";
  }
  return send({ url: req.url, method, headers, ...(body !== undefined ? { body } : {}), timeoutMs: DEFAULT_HTTP_TIMEOUT_MS, resultMaxChars: DEFAULT_RESULT_MAX_CHARS }, deps);
}
