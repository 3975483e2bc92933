/**
 * The WebSocket endpoints of ws-call-api.md: `/call` (a call whose audio rides on the socket), `/call/pbx` and
 * its alias `/call/sip` (control of a call the controller holds), and `/media/twilio` (Twilio Media Streams).
 * This module is only the transport: frames in and out, size limits, pings, close codes. Calls themselves are
 * CallSessions from the CallManager.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import fastifyWebsocket from "@fastify/websocket";
import type { WebSocket, RawData } from "ws";
import { z } from "zod";
import { AppError, isAppError } from "../errors.js";
import type { Logger } from "../log.js";
import { ID_PATTERN, parseCallOption, type CallOption } from "../call/call-option.js";
import type { OriginateBody } from "./call-routes.js";
import { CallManager } from "../call/manager.js";
import type { CallClientPort, CallSession, WireEvent } from "../call/session.js";
import type { InboundRouter } from "../call/router.js";
import { checkWireFormat, defaultWireRate, type WireCodec } from "../media/wire-codec.js";
import { WsCallLeg, type WsPtime } from "../media/ws-call-leg.js";
import { TwilioLeg, isTwilioMulaw, parseTwilioMessage, type TwilioStart } from "../media/twilio-leg.js";
import type { Playbook } from "../playbook/types.js";
import { describeWebSocket } from "./openapi.js";
import { presentedToken, tokenMatches } from "./auth.js";

export const TEXT_LIMIT_BYTES = 64 * 1024;
/** `/call`: no invite/accept within this long closes 4408. */
export const INVITE_TIMEOUT_MS = 30_000;
/** Twilio: the `start` (with its token, when the URL had none) is due within this long. */
export const TWILIO_START_TIMEOUT_MS = 10_000;
/** Above this much unsent data, agent audio frames and non-essential events are dropped (§4 last paragraph). */
const SEND_HIGH_WATER_BYTES = 1 << 20;
/** Events never dropped by the send buffer. */
const ESSENTIAL = new Set(["hangup", "answer", "reject", "error", "trackStart", "trackEnd", "incoming"]);

export interface WsRoutesOptions {
  calls: CallManager;
  router?: InboundRouter | undefined;
  log: Logger;
  /** `[http] token` ("" = none). */
  token: string;
  maxBinaryBytes: number;
  leadMs: number;
  twilio: { enabled: boolean; leadMs: number };
  /** Interval default of `ping` (seconds). */
  pingSeconds?: number;
  /** `/call` without invite/accept is closed 4408 after this long (default INVITE_TIMEOUT_MS; tests shorten it). */
  inviteTimeoutMs?: number;
  /** Places an outbound call through a PBX (`/call/pbx` `invite` of an unknown id); absent = PBX_UNAVAILABLE. */
  originate?: ((request: OriginateBody) => Promise<{ id: string }>) | undefined;
}

interface CallQuery {
  id?: string;
  dump?: string;
  ping?: string;
  serverSideTrack?: string;
  hangupOnClose?: string;
  playbook?: string;
  token?: string;
}

const bool = (v: string | undefined, dflt: boolean): boolean => (v === undefined ? dflt : v === "true" || v === "1" ? true : v === "false" || v === "0" ? false : dflt);

export async function registerWsRoutes(app: FastifyInstance, o: WsRoutesOptions): Promise<void> {
  // An upgrade refused with an HTTP answer (401 from the token check, 404...) never becomes a WebSocket, and
  // nothing else would close its connection: without this each refusal would hold a socket open for good.
  app.addHook("onResponse", async (request) => {
    if (request.headers.upgrade !== undefined && !request.raw.socket.destroyed) request.raw.socket.destroy();
  });
  await app.register(fastifyWebsocket, {
    // ws closes with 1009 by itself above maxPayload; text messages get the smaller limit checked below.
    options: {
      maxPayload: Math.max(o.maxBinaryBytes, TEXT_LIMIT_BYTES),
      // Echo the first offered subprotocol: FreeSWITCH's libwebsockets client (mod_audio_fork offers
      // "audio.drachtio.org") drops a connection whose 101 does not name it. Clients that offer none get none.
      handleProtocols: (protocols: Set<string>) => protocols.values().next().value ?? false,
    },
    // A socket error is the client's (oversized frame, bad framing): ws has already sent its close frame (1009,
    // 1002...); it is logged at debug, and only a socket still open is closed, with 1011.
    errorHandler: (err, socket, request) => {
      request.log.debug({ err }, "websocket error");
      if (socket.readyState === socket.OPEN) socket.close(1011, "internal error");
    },
  });

  const common = {
    token: z.string().optional().describe("API token, for clients that cannot set an Authorization header"),
    ping: z.coerce.number().int().min(0).optional().describe("seconds between WebSocket pings (default 20; 0 = off)"),
    dump: z.enum(["true", "false", "1", "0"]).optional().describe("write the call's events and commands to <paths.dumps>/<id>.events.jsonl"),
  };
  describeWebSocket(
    app,
    "/call",
    "A call whose audio rides on this WebSocket: JSON commands and events, binary audio frames",
    z.object({ id: z.string().optional().describe("call id (default s.<uuid>); an id from POST /api/playbook/run picks up its playbook"), serverSideTrack: z.string().optional(), ...common }),
  );
  const pbxQuery = z.object({ id: z.string().describe("the call to control"), hangupOnClose: z.enum(["true", "false", "1", "0"]).optional(), ...common });
  describeWebSocket(app, "/call/pbx", "Control a call the controller holds (parked inbound, PBX, Twilio); audio stays on the PBX side", pbxQuery);
  describeWebSocket(app, "/call/sip", "Alias of /call/pbx", pbxQuery);
  if (o.twilio.enabled) {
    describeWebSocket(app, "/media/twilio", "Twilio Media Streams (bidirectional <Connect><Stream>): µ-law 8 kHz", z.object({ token: z.string().optional(), playbook: z.string().optional() }));
  }

  app.get("/call", { websocket: true, schema: { hide: true } }, (socket, req) => handleCall(socket, req, o));
  const pbx = (socket: WebSocket, req: FastifyRequest) => handlePbx(socket, req, o);
  app.get("/call/pbx", { websocket: true, schema: { hide: true } }, pbx);
  app.get("/call/sip", { websocket: true, schema: { hide: true } }, pbx);
  app.get("/call/webrtc", async () => {
    throw new AppError("NOT_FOUND", "WebRTC ends at the PBX: /call/webrtc is not served");
  });
  if (o.twilio.enabled) app.get("/media/twilio", { websocket: true, schema: { hide: true } }, (socket, req) => handleTwilio(socket, req, o));
}

// ------------------------------------------------------------------------------------------------ shared

/** The client port of a socket: JSON events with the send-buffer policy, and close. */
function portOf(socket: WebSocket): CallClientPort {
  return {
    send(e: WireEvent) {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > SEND_HIGH_WATER_BYTES && !ESSENTIAL.has(e.event)) return;
      socket.send(JSON.stringify(e));
    },
    close(code, reason) {
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
    },
  };
}

/** RFC 3339 pings every `seconds`; no pong for two intervals terminates the socket (a close like any other). */
function keepAlive(socket: WebSocket, seconds: number): void {
  if (!(seconds > 0)) return;
  let missed = 0;
  socket.on("pong", () => (missed = 0));
  const timer = setInterval(() => {
    if (++missed > 2) {
      socket.terminate();
      return;
    }
    if (socket.readyState === socket.OPEN) socket.ping(new Date().toISOString());
  }, seconds * 1000);
  timer.unref();
  socket.on("close", () => clearInterval(timer));
}

function parseText(data: RawData): { ok: true; value: unknown } | { ok: false; tooBig: boolean; message: string } {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
  if (buf.length > TEXT_LIMIT_BYTES) return { ok: false, tooBig: true, message: "text message over 64 KiB" };
  try {
    return { ok: true, value: JSON.parse(buf.toString("utf8")) };
  } catch {
    return { ok: false, tooBig: false, message: "the message is not valid JSON" };
  }
}

function asBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/**
 * Binary frames over `[http] max_ws_message_bytes` close 1009 (§1.3). ws enforces only the larger of the two
 * limits (maxPayload), so a binary limit below 64 KiB is checked here. True when the socket was closed.
 */
function binaryTooBig(socket: WebSocket, data: RawData, maxBinaryBytes: number): boolean {
  const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
  if (size <= maxBinaryBytes) return false;
  socket.close(1009, "binary message over max_ws_message_bytes");
  return true;
}

function query(req: FastifyRequest): CallQuery {
  return (req.query ?? {}) as CallQuery;
}

/** Feeds text frames to the call as commands (errors as events; the connection stays) and checks sizes. */
function onText(socket: WebSocket, call: CallSession, data: RawData): void {
  const parsed = parseText(data);
  if (!parsed.ok) {
    if (parsed.tooBig) socket.close(1009, parsed.message);
    else call.reportError("BAD_COMMAND", parsed.message, "command");
    return;
  }
  void call.command(parsed.value, "client");
}

// ------------------------------------------------------------------------------------------------ /call

function negotiate(option: CallOption): { codec: WireCodec; sampleRate: number; outputCodec: WireCodec; outputSampleRate: number; ptime: WsPtime; sendSilence: boolean } {
  const bad = (field: string, error: string) => new AppError("BAD_REQUEST", error, { details: { fields: [{ path: `option.${field}`, message: error }] } });
  const input = checkWireFormat({ codec: option.codec ?? "pcm", sampleRate: option.sampleRate });
  if (!input.ok) throw bad(input.field, input.error);
  const outCodec = option.outputCodec ?? input.format.codec;
  const outRate = option.outputSampleRate ?? (outCodec === input.format.codec ? input.format.sampleRate : isKnown(outCodec) ? defaultWireRate(outCodec) : undefined);
  const output = checkWireFormat({ codec: outCodec, sampleRate: outRate }, { codec: "outputCodec", sampleRate: "outputSampleRate" });
  if (!output.ok) throw bad(output.field, output.error);
  return {
    codec: input.format.codec,
    sampleRate: input.format.sampleRate,
    outputCodec: output.format.codec,
    outputSampleRate: output.format.sampleRate,
    ptime: option.ptime ?? 20,
    sendSilence: option.sendSilence ?? false,
  };
}

function isKnown(codec: string): codec is WireCodec {
  return codec === "pcm" || codec === "pcmu" || codec === "pcma" || codec === "g722";
}

function handleCall(socket: WebSocket, req: FastifyRequest, o: WsRoutesOptions): void {
  const q = query(req);
  if (q.id !== undefined && !ID_PATTERN.test(q.id)) {
    socket.close(4400, "invalid id");
    return;
  }
  const id = q.id ?? CallManager.newWebSocketId();
  if (o.calls.getLive(id)) {
    socket.close(4409, "call id already live");
    return;
  }
  const pending = q.id !== undefined ? o.calls.takePending(q.id) : undefined;
  let leg: WsCallLeg | undefined;
  let call: CallSession;
  try {
    call = o.calls.create({
      id,
      callType: "websocket",
      direction: "inbound",
      dump: q.dump === undefined ? undefined : bool(q.dump, true),
      agentTrackId: q.serverSideTrack,
      plan: pending ? { playbook: pending.playbook, variables: pending.variables } : undefined,
      legFactory: (option) => {
        const m = negotiate(option);
        leg = new WsCallLeg({
          id,
          ...m,
          leadMs: o.leadMs,
          send: (frame) => {
            // Audio is dropped first when the client cannot keep up.
            if (socket.readyState === socket.OPEN && socket.bufferedAmount <= SEND_HIGH_WATER_BYTES) socket.send(frame);
          },
          log: o.log,
        });
        return { leg, media: { leg: "websocket", codec: m.codec, sampleRate: m.sampleRate, outputCodec: m.outputCodec, outputSampleRate: m.outputSampleRate, ptime: m.ptime } };
      },
    });
  } catch (err) {
    const e = isAppError(err) ? err : new AppError("INTERNAL", String(err));
    socket.send(JSON.stringify({ event: "error", trackId: id, timestamp: Date.now(), sender: "command", error: e.message, code: e.code }));
    socket.close(e.code === "ALREADY_ATTACHED" ? 4409 : e.code === "CAPACITY" ? 1013 : 1011, e.code);
    return;
  }
  const port = portOf(socket);
  call.attach(port);
  keepAlive(socket, q.ping === undefined ? (o.pingSeconds ?? 20) : Number(q.ping));
  const inviteTimer = setTimeout(() => {
    if (call.state === "pending") {
      port.close(4408, "no invite in time");
    }
  }, o.inviteTimeoutMs ?? INVITE_TIMEOUT_MS);
  inviteTimer.unref();

  let warnedEarlyAudio = false;
  socket.on("message", (data, isBinary) => {
    if (!isBinary) {
      onText(socket, call, data);
      return;
    }
    if (binaryTooBig(socket, data, o.maxBinaryBytes)) return;
    if (leg && call.state === "active") {
      leg.pushCallerBytes(asBuffer(data));
    } else if (!warnedEarlyAudio) {
      warnedEarlyAudio = true;
      call.reportError("INVALID_STATE", "audio before answer is dropped; send invite first");
    }
  });
  socket.on("close", () => {
    clearTimeout(inviteTimer);
    call.detach(port, { reason: "caller", initiator: "caller" });
  });
  socket.on("error", (err) => o.log.debug({ err, callId: id }, "call socket error"));
}

// ------------------------------------------------------------------------------------------------ /call/pbx

function handlePbx(socket: WebSocket, req: FastifyRequest, o: WsRoutesOptions): void {
  const q = query(req);
  if (q.id !== undefined && !ID_PATTERN.test(q.id)) {
    socket.close(4400, "invalid id");
    return;
  }
  const call = q.id !== undefined ? o.calls.get(q.id) : undefined;
  if (!call) {
    // No such call: only an `invite` may come first, and it originates the call through the PBX (§3.1).
    const onFirst = (data: RawData, isBinary: boolean): void => {
      if (isBinary && binaryTooBig(socket, data, o.maxBinaryBytes)) return;
      const parsed = isBinary ? undefined : parseText(data);
      if (parsed && !parsed.ok && parsed.tooBig) {
        socket.close(1009, parsed.message);
        return;
      }
      const first = parsed?.ok ? (parsed.value as { command?: unknown; option?: unknown; requestId?: unknown }) : undefined;
      if (first?.command === "invite") {
        void originateFor(socket, o, q, first).catch((err: unknown) => {
          const e = isAppError(err) ? err : new AppError("INTERNAL", String(err));
          socket.send(JSON.stringify({ event: "error", timestamp: Date.now(), sender: "pbx", code: e.code, error: e.message, ...(typeof first.requestId === "string" ? { requestId: first.requestId } : {}) }));
          socket.close(1000, e.code);
        });
        return;
      }
      if (first?.command === "accept") socket.send(JSON.stringify({ event: "reject", timestamp: Date.now(), reason: "no pending call", code: 481 }));
      socket.close(4404, "no such call");
    };
    socket.once("message", onFirst);
    return;
  }
  attachPbxClient(socket, call, o, q, true);
}

/** `/call/pbx` `invite` for a call that does not exist: originate it and make this socket its controller. */
async function originateFor(socket: WebSocket, o: WsRoutesOptions, q: CallQuery, first: { option?: unknown }): Promise<void> {
  if (!o.originate) throw new AppError("PBX_UNAVAILABLE", "no PBX is enabled or connected to originate the call");
  const option = parseCallOption(first.option);
  if (option.callee === undefined) throw new AppError("BAD_REQUEST", "option.callee is required to originate", { details: { fields: [{ path: "option.callee", message: "required" }] } });
  const { id } = await o.originate({
    to: option.callee,
    ...(option.caller !== undefined ? { from: option.caller } : {}),
    ...(option.playbook !== undefined ? { playbook: option.playbook } : {}),
    variables: option.variables,
    timeoutMs: option.timeoutMs ?? 30_000,
    ...(option.sip?.headers ? { headers: option.sip.headers } : {}),
    ...(q.id !== undefined ? { id: q.id } : {}),
  });
  const call = o.calls.get(id);
  if (!call) throw new AppError("INTERNAL", `originated call ${id} is not registered`);
  if (socket.readyState !== socket.OPEN) {
    call.hangup({ reason: "client", initiator: "client", detail: "controlling socket closed while dialling" });
    return;
  }
  attachPbxClient(socket, call, o, q, false);
}

/** Makes `socket` the controlling client of `call` (one at a time: 4409 otherwise). */
function attachPbxClient(socket: WebSocket, call: CallSession, o: WsRoutesOptions, q: CallQuery, announce: boolean): void {
  if (!call.live) {
    socket.close(4410, "call ended");
    return;
  }
  const port = portOf(socket);
  try {
    call.attach(port);
  } catch {
    socket.close(4409, "call already has a controlling client");
    return;
  }
  keepAlive(socket, q.ping === undefined ? (o.pingSeconds ?? 20) : Number(q.ping));
  if (announce) call.emit({
    event: "incoming",
    trackId: call.id,
    caller: call.caller,
    callee: call.callee,
    direction: call.direction,
    callType: call.callType,
    state: call.state,
    headers: {},
    variables: call.variables,
  });
  let warnedAudio = false;
  socket.on("message", (data, isBinary) => {
    if (!isBinary) return onText(socket, call, data);
    if (binaryTooBig(socket, data, o.maxBinaryBytes)) return;
    if (!warnedAudio) {
      warnedAudio = true;
      call.reportError("UNSUPPORTED", "audio is not accepted on /call/pbx: the call's audio stays on the PBX side");
    }
  });
  const hangupOnClose = bool(q.hangupOnClose, true);
  socket.on("close", () => call.detach(port, hangupOnClose ? { reason: "client", initiator: "client" } : undefined));
  socket.on("error", (err) => o.log.debug({ err, callId: call.id }, "pbx control socket error"));
}

// ------------------------------------------------------------------------------------------------ /media/twilio

function handleTwilio(socket: WebSocket, req: FastifyRequest, o: WsRoutesOptions): void {
  const q = query(req);
  // The token may be in the URL, or (providers that cannot add a query) in the start's customParameters.
  const urlAuthorized = o.token === "" || tokenMatches(o.token, presentedToken(req.headers.authorization, req.url));
  let leg: TwilioLeg | undefined;
  let call: CallSession | undefined;
  const startTimer = setTimeout(() => {
    if (!call) socket.close(1008, "no start in time");
  }, TWILIO_START_TIMEOUT_MS);
  startTimer.unref();

  const start = async (msg: TwilioStart): Promise<void> => {
    clearTimeout(startTimer);
    const params = msg.start.customParameters;
    if (!urlAuthorized && !tokenMatches(o.token, params.token)) {
      socket.close(1008, "authentication failed");
      return;
    }
    if (!isTwilioMulaw(msg.start.mediaFormat)) {
      socket.close(1003, "media format must be audio/x-mulaw 8000 Hz mono");
      return;
    }
    const streamSid = msg.start.streamSid || msg.streamSid;
    const id = `tw.${streamSid}`;
    const variables: Record<string, string> = Object.fromEntries(Object.entries(params).filter(([k]) => k !== "token"));
    try {
      call = o.calls.create({ id, callType: "twilio", direction: "inbound", caller: params.from ?? "", callee: params.to ?? "", plan: { variables } });
    } catch (err) {
      o.log.warn({ err, streamSid }, "twilio stream refused");
      socket.close(isAppError(err) && err.code === "CAPACITY" ? 1013 : 1011, isAppError(err) ? err.code : "INTERNAL");
      return;
    }
    const session = call;
    leg = new TwilioLeg({
      id,
      streamSid,
      leadMs: o.twilio.leadMs,
      send: (text) => {
        if (socket.readyState === socket.OPEN) socket.send(text);
      },
      log: o.log,
    });
    void session.ended.then(() => {
      if (socket.readyState === socket.OPEN) socket.close(1000, "call ended");
    });
    const playbook = await choosePlaybook(o, params, q.playbook, session, variables);
    if (playbook === "rejected") {
      session.hangup({ reason: "rejected", initiator: "system", detail: "no playbook for this stream" });
      return;
    }
    await session.startWith(leg, { leg: "twilio", codec: "pcmu", sampleRate: 8000 }, playbook);
  };

  socket.on("message", (data, isBinary) => {
    if (isBinary) {
      binaryTooBig(socket, data, o.maxBinaryBytes); // Twilio sends text only; binary frames are ignored
      return;
    }
    const buf = asBuffer(data);
    if (buf.length > TEXT_LIMIT_BYTES) {
      socket.close(1009, "message too big");
      return;
    }
    const msg = parseTwilioMessage(buf.toString("utf8"));
    if ("error" in msg) {
      o.log.debug({ error: msg.error }, "twilio message ignored");
      return;
    }
    switch (msg.event) {
      case "connected":
        return;
      case "start":
        if (!call) void start(msg).catch((err: unknown) => o.log.error({ err }, "twilio start failed"));
        return;
      case "stop":
        call?.hangup({ reason: "caller", initiator: "caller" });
        return;
      default:
        leg?.handleMessage(msg);
    }
  });
  socket.on("close", () => {
    clearTimeout(startTimer);
    call?.hangup({ reason: "caller", initiator: "caller" });
  });
  socket.on("error", (err) => o.log.debug({ err }, "twilio socket error"));
}

/** §6 `start`: customParameters.playbook, query playbook, then the router ([twilio] playbook, rules, default). */
async function choosePlaybook(
  o: WsRoutesOptions,
  params: Record<string, string>,
  queryPlaybook: string | undefined,
  call: CallSession,
  variables: Record<string, string>,
): Promise<Playbook | undefined | "rejected"> {
  const named = params.playbook ?? queryPlaybook;
  const playbooks = o.calls.deps.playbooks;
  if (named !== undefined) {
    try {
      return await playbooks.load(named);
    } catch (err) {
      call.reportFailure("playbook", err); // PLAYBOOK_NOT_FOUND, INVALID_NAME or PLAYBOOK_INVALID, as the store says
      return "rejected";
    }
  }
  if (!o.router) return "rejected";
  const decision = await o.router.route({
    callId: call.id,
    callType: "twilio",
    direction: "inbound",
    caller: call.caller,
    callee: call.callee,
    createdAt: new Date(call.createdAt).toISOString(),
    headers: {},
    variables,
    attachUrl: `/call/pbx?id=${call.id}`,
  });
  if (decision.action === "playbook") {
    Object.assign(call.variables, decision.variables);
    return decision.playbook;
  }
  if (decision.action === "attach") return undefined;
  return "rejected";
}
