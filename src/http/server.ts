/**
 * The whole controller behind its HTTP port, from a validated config: playbook store, inbound router, post-call
 * hook delivery, the call registry, the fastify app with every route (REST, WebSocket, console). main.ts listens
 * on it; the end-to-end tests build exactly the same thing on port 0.
 */
import type { LinkStatus } from "../pbx/reconnect.js";
import { resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { conversationFactory } from "../call/conversation-factory.js";
import { CallManager } from "../call/manager.js";
import { CallMetrics } from "../call/metrics.js";
import { InboundRouter } from "../call/router.js";
import type { CallMetricsSink } from "../call/session.js";
import { PosthookDelivery } from "../playbook/posthook/delivery.js";
import { makeSummariser } from "../playbook/posthook/summary.js";
import { PlaybookStore } from "../playbook/store.js";
import { resolveLlm } from "../providers/registry.js";
import { buildHttpApp } from "./app.js";
import { registerCallRoutes } from "./call-routes.js";
import { makeOriginate } from "./originate.js";
import { registerWebConsole } from "./web-console.js";
import { registerWebPhone } from "./web-phone.js";
import { registerWsRoutes, type WsRoutesOptions } from "./ws-call.js";
import { registerForkRoute } from "./fork-route.js";
import { admitInbound } from "../call/inbound.js";
import { ForkRegistry } from "../media/fork-registry.js";
import { FreeswitchAdapter } from "../pbx/freeswitch/adapter.js";
import { AsteriskAdapter } from "../pbx/asterisk/adapter.js";

export interface ServerOptions {
  config: Config;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  version: string;
  /** Epoch ms for calls (tests). */
  now?: () => number;
  /** Transport timings tests shorten (invite timeout, default ping interval). */
  ws?: Pick<WsRoutesOptions, "inviteTimeoutMs" | "pingSeconds">;
}

export interface Server {
  app: FastifyInstance;
  calls: CallManager;
  router: InboundRouter;
  playbooks: PlaybookStore;
  posthooks: PosthookDelivery;
  metrics: CallMetrics | undefined;
  freeswitch: FreeswitchAdapter | undefined;
  asterisk: AsteriskAdapter | undefined;
  /** Starts the PBX adapters (after the HTTP server listens, so forks can connect). */
  start(): Promise<void>;
  /** Ends live calls (reason `shutdown`), closes the server, stops hook delivery (undelivered hooks stay spooled). */
  close(): Promise<void>;
}

export async function buildServer(o: ServerOptions): Promise<Server> {
  const { config, log } = o;
  const playbooks = new PlaybookStore({ dir: config.paths.playbooks, soundsDir: resolve(config.paths.sounds), env: o.env, config });
  const router = new InboundRouter({ handler: config.handler, twilioPlaybook: config.twilio.playbook, playbooks, log, userAgent: `active-call/${o.version}` });
  const metrics = config.metrics.enabled ? new CallMetrics({ defaultMetrics: config.metrics.default_metrics }) : undefined;
  const posthooks = new PosthookDelivery({
    spoolRoot: resolve(config.paths.spool),
    secret: config.posthook.secret,
    retries: config.posthook.retries,
    backoffInitialMs: config.posthook.backoff_initial_ms,
    backoffMaxMs: config.posthook.backoff_max_ms,
    concurrency: config.posthook.concurrency,
    userAgent: `active-call/${o.version}`,
    log,
    summarise: makeSummariser((model) => resolveLlm(model === undefined ? undefined : { model }, config)),
    ...(metrics
      ? {
          onOutcome: (outcome: "ok" | "retry" | "failed") => {
            metrics.posthookDelivery(outcome);
            metrics.setPosthookSpooled(posthooks.pending);
          },
        }
      : {}),
  });
  await posthooks.start();

  const calls = new CallManager({
    config,
    log,
    playbooks,
    posthooks,
    conversations: conversationFactory(config),
    metrics: metrics as CallMetricsSink | undefined,
    ...(o.now ? { now: o.now } : {}),
  });

  // FreeSWITCH (issue 8): the adapter hands calls over; the router decides; media comes on /media/fork/<uuid>.
  const forks = new ForkRegistry();
  const freeswitch = config.freeswitch.enabled
    ? new FreeswitchAdapter({
        config: config.freeswitch,
        forks,
        log,
        onCall: (h) =>
          void admitInbound(calls, router, h.incoming, { control: h.control, legFactory: () => h.startMedia() }).catch((err: unknown) => {
            log.error({ err, callId: h.incoming.callId }, "FreeSWITCH call could not be taken over");
            void h.control.reject(503, "Service Unavailable").catch(() => undefined);
          }),
      })
    : undefined;

  // Asterisk (issue 9): calls enter our Stasis application; media is the externalMedia channel of each call.
  const asterisk = config.asterisk.enabled
    ? new AsteriskAdapter({
        config: config.asterisk,
        log,
        onCall: (h) =>
          void admitInbound(calls, router, h.incoming, { control: h.control, legFactory: () => h.startMedia() }).catch((err: unknown) => {
            log.error({ err, callId: h.incoming.callId }, "Asterisk call could not be taken over");
            void h.control.reject(503, "Service Unavailable").catch(() => undefined);
          }),
      })
    : undefined;

  const pbxStatus = (): Record<string, LinkStatus> => ({
    ...(freeswitch ? { freeswitch: freeswitch.status() } : {}),
    ...(asterisk ? { asterisk: asterisk.status() } : {}),
  });
  metrics?.watchPbx(pbxStatus);

  const originate = makeOriginate({ calls, playbooks, freeswitch, asterisk, config });

  const app = await buildHttpApp({
    log,
    version: o.version,
    token: config.http.token,
    bodyLimitBytes: config.http.body_limit_bytes,
    trustProxy: config.http.trust_proxy,
    corsOrigins: config.http.cors_origins,
    rateLimitPerMin: config.http.rate_limit_per_min,
    ...(metrics ? { metrics } : {}),
    playbooks: { store: playbooks },
    console: config.http.console,
    pbxStatus,
  });
  await registerWsRoutes(app, {
    calls,
    router,
    log,
    token: config.http.token,
    maxBinaryBytes: config.http.max_ws_message_bytes,
    leadMs: config.calls.ws_output_lead_ms,
    twilio: { enabled: config.twilio.enabled, leadMs: config.twilio.lead_ms },
    originate,
    ...o.ws,
  });
  registerCallRoutes(app, {
    calls,
    originate,
  });
  registerForkRoute(app, { forks, log });
  if (config.http.console) {
    registerWebConsole(app);
    registerWebPhone(app);
  }

  return {
    app,
    calls,
    router,
    playbooks,
    posthooks,
    metrics,
    freeswitch,
    asterisk,
    async start() {
      await freeswitch?.start();
      await asterisk?.start();
    },
    async close() {
      await calls.shutdown();
      await freeswitch?.stop();
      await asterisk?.stop();
      forks.cancelAll();
      await app.close();
      await posthooks.stop();
    },
  };
}
