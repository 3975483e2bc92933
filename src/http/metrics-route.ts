/** `GET /metrics`: Prometheus text format 0.0.4 (ws-call-api.md §7.5). */
import type { FastifyInstance } from "fastify";
import type { CallMetrics } from "../call/metrics.js";

export function registerMetricsRoute(app: FastifyInstance, metrics: CallMetrics): void {
  app.get("/metrics", { schema: { summary: "Prometheus metrics (text format 0.0.4)", tags: ["meta"] } }, async (_request, reply) => {
    const text = await metrics.text();
    void reply.type(metrics.contentType).header("cache-control", "no-store");
    return text;
  });
}
