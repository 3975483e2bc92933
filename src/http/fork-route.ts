/**
 * `GET /media/fork/:callId?token=<one-time token>`: the mod_audio_fork WebSocket (media-protocols.md §2.1).
 *
 * FreeSWITCH connects here for each forked call. The token is checked **before** the upgrade (route
 * `preValidation`): a missing, wrong, expired or already used token refuses the upgrade with 401 (FS then fires
 * `mod_audio_fork::connect_failed`, which the adapter handles), so no unauthenticated socket ever opens. A valid
 * token is consumed there and the upgraded socket is handed to the ForkRegistry's waiter (the adapter).
 *
 * The path is open in the API-token hook (auth.ts): the one-time token is the authentication. The subprotocol FS
 * offers (`audio.drachtio.org`, or MOD_AUDIO_FORK_SUBPROTOCOL_NAME) must be echoed in the 101: `ws` does that by
 * default (first offered protocol) when the websocket plugin has no `handleProtocols` option.
 *
 * Must be registered after @fastify/websocket (registerWsRoutes).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ForkRegistry, ForkSocket } from "../media/fork-registry.js";

export interface ForkRouteOptions {
  forks: ForkRegistry;
  log: Logger;
}

export const FORK_ROUTE = "/media/fork/:callId";

interface ForkParams {
  callId: string;
}

interface ForkQuery {
  token?: string;
}

export function registerForkRoute(app: FastifyInstance, o: ForkRouteOptions): void {
  const binders = new WeakMap<FastifyRequest, (socket: ForkSocket) => void>();
  app.get<{ Params: ForkParams; Querystring: ForkQuery }>(
    FORK_ROUTE,
    {
      websocket: true,
      schema: { hide: true },
      preValidation: async (req) => {
        const { callId } = req.params;
        const token = typeof req.query.token === "string" ? req.query.token : undefined;
        const bind = o.forks.take(callId, token);
        if (!bind) {
          o.log.warn({ callId, hasToken: token !== undefined }, "audio fork refused: no such call, or a wrong, expired or used token");
          throw new AppError("UNAUTHORIZED", "unknown call or invalid fork token");
        }
        binders.set(req, bind);
      },
    },
    (socket, req) => {
      const bind = binders.get(req);
      binders.delete(req);
      if (!bind) {
        socket.close(1008, "no fork expected");
        return;
      }
      o.log.debug({ callId: req.params.callId, protocol: socket.protocol }, "audio fork connected");
      bind(socket);
    },
  );
}
