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
 * Message sizes are bounded here, per fork, whatever the WebSocket server's shared maxPayload (which follows
 * `[http] max_ws_message_bytes` for /call): FS sends 20 ms of L16 per binary frame (640 bytes at 16 kHz, 1920 at
 * 48 kHz, a few frames when it batches), and small JSON text frames. A frame over the limit closes the fork with
 * 1009 and a log line naming the limit; it never reaches the leg.
 *
 * Must be registered after @fastify/websocket (registerWsRoutes).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ForkRegistry, ForkSocket } from "../media/fork-registry.js";

export interface ForkRouteOptions {
  forks: ForkRegistry;
  log: Logger;
}

export const FORK_ROUTE = "/media/fork/:callId";
/** Largest binary (audio) frame accepted from mod_audio_fork: about 0.7 s of 48 kHz L16, 1 s of 32 kHz. */
export const FORK_MAX_BINARY_BYTES = 64 * 1024;
/** Largest text (JSON metadata/event) frame accepted from mod_audio_fork. */
export const FORK_MAX_TEXT_BYTES = 16 * 1024;

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
      bind(guarded(socket, req.params.callId, o.log));
    },
  );
}

const sizeOf = (data: Buffer | ArrayBuffer | Buffer[]): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;

/** The socket as the registry's waiter sees it: messages over the fork's limits are not passed on but close it (1009). */
function guarded(socket: WebSocket, callId: string, log: Logger): ForkSocket {
  let refused = false;
  return {
    send: (data) => socket.send(data),
    close: (code, reason) => socket.close(code, reason),
    on(event: "message" | "close", listener: (...args: never[]) => void): unknown {
      if (event === "close") return socket.on("close", listener as (code: number, reason: Buffer) => void);
      const onMessage = listener as (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void;
      return socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        const limit = isBinary ? FORK_MAX_BINARY_BYTES : FORK_MAX_TEXT_BYTES;
        const bytes = sizeOf(data);
        if (bytes <= limit && !refused) return onMessage(data, isBinary);
        if (refused) return;
        refused = true;
        log.warn({ callId, bytes, limitBytes: limit, binary: isBinary }, "audio fork message over the limit; closing 1009");
        socket.close(1009, `${isBinary ? "binary" : "text"} message over ${limit} bytes`);
      });
    },
  } as ForkSocket;
}
