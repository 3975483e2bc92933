/**
 * The fastify application, built by a factory so tests can drive it with `inject` and main.ts can listen.
 * Errors leave as the body of ws-call-api.md §7.3, whatever threw them.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { AppError, toAppError } from "../errors.js";
import type { Logger } from "../log.js";
import { isOpenPath, presentedToken, tokenMatches } from "./auth.js";

export interface HttpAppOptions {
  log: Logger;
  version: string;
  /** Empty = no authentication. */
  token: string;
  bodyLimitBytes: number;
  trustProxy: boolean;
  /** For `uptimeMs`; injectable for tests. */
  now?: () => number;
}

export async function buildHttpApp(options: HttpAppOptions): Promise<FastifyInstance> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const app = Fastify({
    // Fastify's own lines (per request, "Server listening") only at debug: main logs the listener itself.
    loggerInstance: options.log.child({ component: "http" }, { level: options.log.isLevelEnabled("debug") ? options.log.level : "warn" }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    // Idle keep-alive sockets must not hold the process open on shutdown.
    forceCloseConnections: "idle",
  });

  if (options.token !== "") {
    const token = options.token;
    app.addHook("onRequest", async (request) => {
      if (isOpenPath(request.url.split("?")[0] as string)) return;
      if (!tokenMatches(token, presentedToken(request.headers.authorization, request.url))) {
        throw new AppError("UNAUTHORIZED", "missing or wrong API token");
      }
    });
  }

  app.setErrorHandler((error, request, reply) => {
    let appError: AppError;
    const fastifyError = error as { statusCode?: number; validation?: unknown; code?: string; message: string };
    if (error instanceof AppError) appError = error;
    else if (fastifyError.validation || (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500)) {
      appError = new AppError("BAD_REQUEST", fastifyError.message, { details: { fields: fastifyError.validation ?? [] } });
    } else appError = toAppError(error);
    if (appError.code === "INTERNAL") request.log.error({ err: error, url: request.url }, "request failed");
    void reply.status(appError.httpStatus).send(appError.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`);
    void reply.status(404).send(err.toBody());
  });

  app.get("/health", async () => ({
    status: "ok",
    version: options.version,
    uptimeMs: Math.max(0, Math.round(now() - startedAt)),
  }));

  // No PBX adapter exists yet, so nothing can be disconnected: ready as soon as we listen.
  app.get("/ready", async () => ({ status: "ready" }));

  return app;
}
