/**
 * REST control of calls (ws-call-api.md §7.1): list and inspect calls, hang up, speak or play into a live call,
 * any command, the recording and the event dump (or live Server-Sent Events), playbooks started for a browser
 * session, and the compatibility routes `/list` and `/kill/{id}`. Every route declares its zod schema, so it is
 * validated and listed in /openapi.json.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { PLAYBOOK_NAME } from "../config.js";
import { MAX_PLAYBOOK_BYTES } from "../playbook/index.js";
import { AppError, ERROR_CODES } from "../errors.js";
import type { CallManager } from "../call/manager.js";
import type { CallSession } from "../call/session.js";

const idParam = z.object({ id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, "not a call id") });
const variables = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const anyObject = z.record(z.string(), z.unknown());

const ttsBody = z.looseObject({
  text: z.string().max(20_000),
  playId: z.string().optional(),
  streaming: z.boolean().optional(),
  endOfStream: z.boolean().optional(),
  speaker: z.string().optional(),
  option: anyObject.optional(),
  autoHangup: z.boolean().optional(),
  waitInputTimeout: z.number().int().min(0).max(600_000).optional(),
  interruptible: z.boolean().optional(),
  queue: z.boolean().optional(),
  base64: z.boolean().optional(),
  cacheKey: z.string().optional(),
});
const playBody = z.looseObject({
  url: z.string().min(1),
  playId: z.string().optional(),
  autoHangup: z.boolean().optional(),
  waitInputTimeout: z.number().int().min(0).max(600_000).optional(),
  interruptible: z.boolean().optional(),
  queue: z.boolean().optional(),
  loop: z.number().int().min(0).optional(),
});
const hangupBody = z
  .object({ reason: z.string().max(256).optional(), headers: z.record(z.string(), z.string()).optional(), afterPlayout: z.boolean().optional() })
  // `curl -X POST …/hangup` sends no body at all (null here): that is a plain hangup.
  .nullish();

export interface CallRoutesOptions {
  calls: CallManager;
  /** Places an outbound call through a PBX; absent = no PBX can (PBX_UNAVAILABLE). */
  originate?: ((request: OriginateBody) => Promise<{ id: string }>) | undefined;
}

export const originateBody = z
  .object({
    to: z.string().min(1).max(256),
    from: z.string().max(64).optional(),
    fromName: z.string().max(64).optional(),
    playbook: z.string().optional(),
    content: z.string().max(MAX_PLAYBOOK_BYTES).optional(),
    variables: variables.optional(),
    pbx: z.enum(["freeswitch", "asterisk"]).optional(),
    timeoutMs: z.number().int().min(1000).max(600_000).default(30_000),
    headers: z.record(z.string(), z.string()).optional(),
    id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/).optional(),
  })
  .refine((b) => b.playbook === undefined || b.content === undefined, { message: "give at most one of playbook and content" });
export type OriginateBody = z.output<typeof originateBody>;

function liveCall(calls: CallManager, id: string): CallSession {
  const call = calls.getLive(id);
  if (call) return call;
  if (calls.get(id)) throw new AppError("INVALID_STATE", `call ${id} has ended`);
  throw new AppError("CALL_NOT_FOUND", `no live call with id ${id}`);
}

export function registerCallRoutes(app: FastifyInstance, o: CallRoutesOptions): void {
  const { calls } = o;

  app.get(
    "/api/calls",
    {
      schema: {
        summary: "List calls, newest first",
        tags: ["calls"],
        querystring: z.object({ state: z.enum(["live", "ended", "all"]).default("live"), limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      },
    },
    async (req) => {
      const q = req.query as { state: "live" | "ended" | "all"; limit: number };
      return { calls: calls.list(q.state, q.limit).map((c) => c.summary()) };
    },
  );

  app.get(
    "/api/calls/:id",
    { schema: { summary: "One call in detail", tags: ["calls"], params: idParam, querystring: z.object({ include: z.string().optional() }) } },
    async (req) => {
      const { id } = req.params as { id: string };
      const call = calls.get(id);
      if (!call) throw new AppError("CALL_NOT_FOUND", `no call with id ${id}`);
      return call.detail((req.query as { include?: string }).include?.split(",").includes("variables") ?? false);
    },
  );

  app.post("/api/calls", { schema: { summary: "Originate an outbound call through the PBX", tags: ["calls"], body: originateBody } }, async (req, reply) => {
    const body = req.body as OriginateBody;
    // The name rule is checked first (400 INVALID_NAME), whatever the PBX state; loading it checks the real path.
    if (body.playbook !== undefined && !PLAYBOOK_NAME.test(body.playbook)) {
      throw new AppError("INVALID_NAME", `invalid playbook name ${JSON.stringify(body.playbook)}: use letters, digits, "_", "-", "." and end in .md`);
    }
    if (!o.originate) throw new AppError("PBX_UNAVAILABLE", "no PBX is enabled or connected to originate calls");
    const { id } = await o.originate(body);
    reply.code(201);
    return { id, state: "dialing" };
  });

  const hangup = async (id: string, body: z.infer<typeof hangupBody>) => {
    const call = liveCall(calls, id);
    if (body?.headers) await call.command({ command: "hangup", initiator: "client", headers: body.headers, ...(body.reason !== undefined ? { reason: body.reason } : {}), ...(body.afterPlayout ? { afterPlayout: true } : {}) }, "rest");
    else call.hangup({ reason: "client", initiator: "client", detail: body?.reason, ...(body?.afterPlayout ? { afterPlayout: true } : {}) });
    return { id, state: "ending" };
  };
  app.post("/api/calls/:id/hangup", { schema: { summary: "Hang up a call", tags: ["calls"], params: idParam, body: hangupBody } }, async (req, reply) => {
    reply.code(202);
    return hangup((req.params as { id: string }).id, req.body as z.infer<typeof hangupBody>);
  });
  app.delete("/api/calls/:id", { schema: { summary: "Hang up a call (same as POST …/hangup)", tags: ["calls"], params: idParam } }, async (req, reply) => {
    reply.code(202);
    return hangup((req.params as { id: string }).id, undefined);
  });

  app.post(
    "/api/calls/:id/transfer",
    {
      schema: {
        summary: "Transfer a call",
        tags: ["calls"],
        params: idParam,
        body: z.object({ target: z.string().min(1), mode: z.enum(["dialplan", "refer"]).optional(), context: z.string().optional(), headers: z.record(z.string(), z.string()).optional() }),
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      await runCommand(liveCall(calls, id), { command: "transfer", ...(req.body as object) });
      reply.code(202);
      return { id };
    },
  );

  app.post("/api/calls/:id/tts", { schema: { summary: "Speak text into a live call", tags: ["calls"], params: idParam, body: ttsBody } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const body = req.body as z.infer<typeof ttsBody>;
    const playId = body.playId ?? crypto.randomUUID();
    await runCommand(liveCall(calls, id), { ...body, command: "tts", playId });
    reply.code(202);
    return { id, playId };
  });

  app.post("/api/calls/:id/play", { schema: { summary: "Play a sound file or URL into a live call", tags: ["calls"], params: idParam, body: playBody } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const body = req.body as z.infer<typeof playBody>;
    const playId = body.playId ?? body.url;
    await runCommand(liveCall(calls, id), { ...body, command: "play", playId });
    reply.code(202);
    return { id, playId };
  });

  app.post(
    "/api/calls/:id/commands",
    { schema: { summary: "Send any command of the WebSocket API to a call", tags: ["calls"], params: idParam, body: z.looseObject({ command: z.string() }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      await runCommand(liveCall(calls, id), req.body);
      reply.code(202);
      return { id };
    },
  );

  app.get("/api/calls/:id/recording", { schema: { summary: "The call's recording (WAV)", tags: ["calls"], params: idParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const call = calls.get(id);
    if (!call) throw new AppError("CALL_NOT_FOUND", `no call with id ${id}`);
    if (!call.recording) throw new AppError("NOT_FOUND", `call ${id} was not recorded (or its recording is not finished)`);
    const size = (await stat(call.recording.path)).size;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    void reply.header("Accept-Ranges", "bytes").type("audio/wav");
    if (range && (range[1] !== "" || range[2] !== "")) {
      const start = range[1] === "" ? Math.max(0, size - Number(range[2])) : Number(range[1]);
      const end = range[1] !== "" && range[2] !== "" ? Math.min(size - 1, Number(range[2])) : size - 1;
      if (start > end || start >= size) {
        void reply.code(416).header("Content-Range", `bytes */${size}`);
        return reply.send();
      }
      void reply.code(206).header("Content-Range", `bytes ${start}-${end}/${size}`).header("Content-Length", end - start + 1);
      return reply.send(createReadStream(call.recording.path, { start, end }));
    }
    void reply.header("Content-Length", size);
    return reply.send(createReadStream(call.recording.path));
  });

  app.get("/api/calls/:id/events", { schema: { summary: "Live events (text/event-stream) or the JSONL dump", tags: ["calls"], params: idParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const call = calls.get(id);
    if (!call) throw new AppError("CALL_NOT_FOUND", `no call with id ${id}`);
    if ((req.headers.accept ?? "").includes("text/event-stream")) {
      if (!call.live) throw new AppError("INVALID_STATE", `call ${id} has ended; fetch the dump without Accept: text/event-stream`);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
      // Send the status and headers now: a client waits for them before reading, and the first event may be far off.
      res.flushHeaders();
      const remove = call.subscribe((e) => {
        res.write(`event: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`);
        if (e.event === "hangup") res.end();
      });
      req.raw.on("close", remove);
      return reply;
    }
    const path = call.dumpPath;
    if (!path) throw new AppError("NOT_FOUND", `call ${id} was not dumped`);
    try {
      await stat(path);
    } catch {
      throw new AppError("NOT_FOUND", `the dump of call ${id} is gone`);
    }
    return reply.type("application/x-ndjson").send(createReadStream(path));
  });

  app.post(
    "/api/playbook/run",
    {
      schema: {
        summary: "Prepare a playbook for a browser session; open wsUrl and send invite",
        tags: ["playbooks"],
        body: z
          // The name rule is checked by the store, which answers 400 INVALID_NAME (§7.1), not BAD_REQUEST.
          .object({ playbook: z.string().optional(), content: z.string().max(MAX_PLAYBOOK_BYTES).optional(), variables: variables.optional() })
          .refine((b) => (b.playbook === undefined) !== (b.content === undefined), { message: "give exactly one of playbook and content" }),
      },
    },
    async (req, reply) => {
      const body = req.body as { playbook?: string; content?: string; variables?: Record<string, string | number | boolean> };
      const pb = body.playbook !== undefined ? await calls.deps.playbooks.load(body.playbook) : await calls.deps.playbooks.parseContent(body.content as string, "inline.md");
      const run = calls.addPending(pb, body.variables ?? {});
      reply.code(201);
      return { id: run.id, sessionId: run.id, wsUrl: `/call?id=${run.id}`, expiresAt: new Date(run.expiresAt).toISOString() };
    },
  );

  // Compatibility with restsend/active-call.
  app.get("/list", { schema: { summary: "Compatibility: live calls", tags: ["compat"] } }, async () => ({
    active_calls: calls.list("live", 1000).map((c) => ({
      id: c.id,
      callType: c.callType,
      option: { caller: c.caller, callee: c.callee, ...(c.playbook ? { playbook: c.playbook.name } : {}) },
      ringTime: new Date(c.createdAt).toISOString(),
      startTime: c.answeredAt === undefined ? null : new Date(c.answeredAt).toISOString(),
    })),
  }));
  app.get("/kill/:id", { schema: { summary: "Compatibility: hang up a call", tags: ["compat"], params: idParam } }, async (req) => {
    const { id } = req.params as { id: string };
    const call = calls.getLive(id);
    if (!call) return { status: "not_found", id };
    call.hangup({ reason: "client", initiator: "client" });
    return { status: "killed", id };
  });
}

/** A command refusal whose code has no HTTP status of its own (WebSocket-only codes): answered with 400. */
class RefusedCommand extends AppError {
  override get httpStatus(): number {
    return 400;
  }
}

/**
 * Runs a command for REST: a command the call refuses answers with its error code (409, 422, 400) instead of
 * an `error` event that the REST caller would never see.
 */
async function runCommand(call: CallSession, command: unknown): Promise<void> {
  const failure = await call.command(command, "rest");
  if (failure) {
    const code = failure.code as ConstructorParameters<typeof AppError>[0];
    const options = failure.details ? { details: failure.details as Record<string, unknown> } : {};
    // Codes of the catalogue without an HTTP status (UNKNOWN_COMMAND, BAD_COMMAND, …) are the client's fault: 400, not 500.
    throw ERROR_CODES[code].http === undefined ? new RefusedCommand(code, failure.error as string, options) : new AppError(code, failure.error as string, options);
  }
}

