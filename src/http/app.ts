/**
 * The fastify application, built by a factory so tests can drive it with `inject` and main.ts can listen.
 * Errors leave as the body of ws-call-api.md §7.3, whatever threw them. Routes declare zod schemas
 * (fastify-type-provider-zod); the OpenAPI 3.1 document at `/openapi.json` is generated from them.
 */
import type { LinkStatus } from "../pbx/reconnect.js";
import fastifyCors from "@fastify/cors";
import fastifyRateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { CallMetrics } from "../call/metrics.js";
import { AppError, toAppError } from "../errors.js";
import type { Logger } from "../log.js";
import { isOpenPath, presentedToken, tokenMatches } from "./auth.js";
import { registerDocsRoute } from "./docs-page.js";
import { registerMetricsRoute } from "./metrics-route.js";
import { registerOpenApi, registerOpenApiRoute } from "./openapi.js";
import { registerPlaybookRoutes, type PlaybookRoutesOptions } from "./playbook-routes.js";

export interface HttpAppOptions {
  log: Logger;
  version: string;
  /** Empty = no authentication. */
  token: string;
  bodyLimitBytes: number;
  trustProxy: boolean;
  /** `[http] cors_origins`: exact origins allowed, or `"*"`. Empty/absent = no CORS headers. */
  corsOrigins?: readonly string[];
  /** `[http] rate_limit_per_min` per client address; 0/absent = off. `/health`, `/ready` and `/media/fork/*` are exempt. */
  rateLimitPerMin?: number;
  /** Serves `GET /metrics` when given. */
  metrics?: CallMetrics;
  /** Serves the `/api/playbooks` routes when given. */
  playbooks?: PlaybookRoutesOptions;
  /** `[http] console`: the web console at `/` is registered elsewhere (call routes); accepted here for completeness. */
  console?: boolean;
  /** For `uptimeMs`; injectable for tests. */
  now?: () => number;
  /** Each enabled PBX's connection state (/health, /ready). */
  pbxStatus?: () => Record<string, LinkStatus>;
}

/** Longest path parameter accepted (find-my-way's default is 100, below the 128 of a call id). */
export const MAX_PARAM_LENGTH = 256;

/** Where a failing value was: `body.to`, `query.limit`, `params.name`. */
interface FieldProblem {
  path: string;
  message: string;
}

const CONTEXT_NAMES: Record<string, string> = { querystring: "query", body: "body", params: "params", headers: "headers" };

function validationFields(validation: unknown, context: string | undefined): FieldProblem[] {
  if (!Array.isArray(validation)) return [];
  const prefix = CONTEXT_NAMES[context ?? ""] ?? context ?? "";
  return validation.map((v: { instancePath?: string; message?: string; params?: { missingProperty?: string } }) => {
    const segments = (v.instancePath ?? "").split("/").filter((s) => s !== "");
    if (v.params?.missingProperty) segments.push(v.params.missingProperty);
    return { path: [prefix, ...segments].filter((s) => s !== "").join("."), message: v.message ?? "invalid" };
  });
}

export async function buildHttpApp(options: HttpAppOptions): Promise<FastifyInstance> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const app = Fastify({
    // Fastify's own lines (per request, "Server listening") only at debug: main logs the listener itself.
    loggerInstance: options.log.child({ component: "http" }, { level: options.log.isLevelEnabled("debug") || !options.log.isLevelEnabled("warn") ? options.log.level : "warn" }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    // Idle keep-alive sockets must not hold the process open on shutdown.
    forceCloseConnections: "idle",
    // Path parameters: call ids (≤ 128) and playbook names (≤ 131) fit; longer ones are refused below, before routing.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A malformed URL or an over-long path parameter is answered before any route or hook: in the §7.3 body too.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const code = (error as { code?: string }).code;
      const message = code === "FST_ERR_MAX_PARAM_LENGTH" ? `a path parameter is longer than ${MAX_PARAM_LENGTH} characters` : code === "FST_ERR_BAD_URL" ? "the URL is not valid (bad percent-encoding)" : "bad request";
      void reply.status(400).type("application/json; charset=utf-8").send(new AppError("BAD_REQUEST", message, { details: { fields: [{ path: "url", message }] } }).toBody());
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // CORS first, so that even a 401 or 429 carries the headers a browser needs to read it.
  const origins = options.corsOrigins ?? [];
  if (origins.length > 0) {
    await app.register(fastifyCors, {
      origin: origins.includes("*") ? "*" : [...origins],
      methods: ["GET", "HEAD", "PUT", "POST", "DELETE"],
      exposedHeaders: ["Retry-After", "Content-Length"],
      maxAge: 600,
    });
  }

  const rate = options.rateLimitPerMin ?? 0;
  if (rate > 0) {
    await app.register(fastifyRateLimit, {
      global: true,
      max: rate,
      timeWindow: 60_000,
      allowList: (request) => isOpenPath(request.url.split("?")[0] as string),
      errorResponseBuilder: (_request, context) =>
        new AppError("RATE_LIMITED", `more than ${context.max} requests per minute; retry in ${context.after}`, {
          details: { limitPerMin: context.max, retryAfterSeconds: Math.ceil(context.ttl / 1000) },
        }),
    });
  }

  if (options.token !== "") {
    const token = options.token;
    app.addHook("onRequest", async (request) => {
      // A CORS preflight carries no credentials by design; @fastify/cors answers it.
      if (origins.length > 0 && request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) return;
      if (isOpenPath(request.url.split("?")[0] as string)) return;
      if (!tokenMatches(token, presentedToken(request.headers.authorization, request.url))) {
        throw new AppError("UNAUTHORIZED", "missing or wrong API token");
      }
    });
  }

  await registerOpenApi(app, { version: options.version });

  app.setErrorHandler((error, request, reply) => {
    let appError: AppError;
    const fastifyError = error as { statusCode?: number; validation?: unknown; validationContext?: string; code?: string; message: string };
    if (error instanceof AppError) appError = error;
    else if (fastifyError.validation) {
      const fields = validationFields(fastifyError.validation, fastifyError.validationContext);
      const first = fields[0];
      const message = first ? `invalid request: ${first.path || "value"}: ${first.message}${fields.length > 1 ? ` (and ${fields.length - 1} more)` : ""}` : "invalid request";
      appError = new AppError("BAD_REQUEST", message, { details: { fields } });
    } else if (fastifyError.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      // Named like every other request fault (BAD_REQUEST, §7.4), with the limit that was exceeded.
      const message = `request body over the ${options.bodyLimitBytes}-byte limit ([http] body_limit_bytes)`;
      appError = new AppError("BAD_REQUEST", message, { details: { fields: [{ path: "body", message }], limitBytes: options.bodyLimitBytes } });
    } else if (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500) {
      appError = new AppError("BAD_REQUEST", fastifyError.message, { details: { fields: [] } });
    } else appError = toAppError(error);
    if (appError.code === "INTERNAL") request.log.error({ err: error, url: request.url }, "request failed");
    void reply.status(appError.httpStatus).type("application/json; charset=utf-8").send(appError.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`);
    void reply.status(404).send(err.toBody());
  });

  app.get("/health", { schema: { summary: "Liveness", tags: ["meta"] } }, async () => {
    const pbx = Object.entries(options.pbxStatus?.() ?? {});
    return {
      status: "ok",
      version: options.version,
      uptimeMs: Math.max(0, Math.round(now() - startedAt)),
      ...(pbx.length > 0 ? { pbx: Object.fromEntries(pbx.map(([k, v]) => [k, pbxHealth(v)])) } : {}),
    };
  });

  // 503 while an enabled PBX is disconnected: a load balancer then sends new calls elsewhere.
  app.get("/ready", { schema: { summary: "Readiness", tags: ["meta"] } }, async (_req, reply) => {
    const pbx = options.pbxStatus?.() ?? {};
    const degraded = Object.values(pbx).some((p) => !p.connected);
    if (degraded) void reply.code(503);
    return { status: degraded ? "degraded" : "ready", ...pbx };
  });

  registerOpenApiRoute(app);
  registerDocsRoute(app);
  if (options.metrics) registerMetricsRoute(app, options.metrics);
  if (options.playbooks) registerPlaybookRoutes(app, options.playbooks);

  return app;
}

/**
 * One PBX link in /health: `connected` or `reconnecting` since when (ws-call-api §7), and while it is down how many
 * attempts failed and the last error, so an operator sees why without reading the log.
 */
function pbxHealth(v: LinkStatus): Record<string, unknown> {
  return {
    state: v.connected ? "connected" : "reconnecting",
    since: v.since,
    reconnects: v.reconnects,
    ...(v.connected ? {} : { attempts: v.attempts }),
    ...(v.lastError ? { lastError: v.lastError } : {}),
  };
}
