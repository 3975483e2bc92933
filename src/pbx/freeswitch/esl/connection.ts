/**
 * One Event Socket connection (inbound control or outbound per call), media-protocols.md §1.
 * Replies are matched FIFO per kind (each `api` one `api/response`, every other command one `command/reply`);
 * `bgapi` results are matched by our own `Job-UUID`, `execute` completions by `Application-UUID`.
 */
import net from "node:net";
import { randomUUID } from "node:crypto";
import { AppError } from "../../../errors.js";
import type { Logger } from "../../../log.js";
import { TypedEmitter } from "../../../media/emitter.js";
import { EslHeaders, EslParser, parseEvent, decodeUrlValue, type EslEvent, type EslMessage } from "./parser.js";

export type EslConnectionEvents = {
  event: [EslEvent];
  disconnectNotice: [{ disposition: string; lingerTime?: number; body: string }];
  close: [{ error?: Error }];
};

export interface EslConnectionOptions {
  log?: Logger;
  /** Timeout for each `api` / command reply. Default 30 s. */
  apiTimeoutMs?: number;
}

const DEFAULT_API_TIMEOUT_MS = 30_000;
/** Output the peer has not read yet above which the connection is considered dead. */
const MAX_WRITE_BUFFER = 8 * 1024 * 1024;

type ReplyKind = "api" | "command";

interface PendingReply {
  kind: ReplyKind;
  description: string;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve: (msg: EslMessage) => void;
  reject: (err: Error) => void;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (err: Error) => void;
}

function closedError(): AppError {
  return new AppError("PBX_ERROR", "ESL connection closed");
}

function assertLine(what: string, s: string): void {
  if (s.includes("\n") || s.includes("\r")) {
    throw new AppError("BAD_REQUEST", `ESL ${what} must not contain a line break`, {
      details: { fields: [{ path: what, message: "contains a line break" }] },
    });
  }
}

export class EslConnection {
  readonly events = new TypedEmitter<EslConnectionEvents>((err) => {
    this.log?.error({ err }, "ESL event listener threw");
  });

  private readonly log: Logger | undefined;
  private readonly apiTimeoutMs: number;
  private readonly parser = new EslParser();
  private readonly replies: Record<ReplyKind, PendingReply[]> = { api: [], command: [] };
  private readonly jobs = new Map<string, Waiter<string>>();
  private readonly executions = new Map<string, Waiter<EslEvent>>();
  private isClosed = false;
  private closeError: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly closedPromise: Promise<void>;
  private authRequested = false;
  private authWaiter: (() => void) | undefined;
  private parserErrors = 0;

  constructor(
    private readonly socket: net.Socket,
    options: EslConnectionOptions = {},
  ) {
    this.log = options.log;
    this.apiTimeoutMs = options.apiTimeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    socket.setNoDelay(true);
    this.closedPromise = new Promise<void>((resolve) => {
      socket.once("close", () => {
        this.finish();
        resolve();
      });
    });
    socket.on("error", (err) => {
      this.closeError ??= err;
      this.log?.debug({ err }, "ESL socket error");
    });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    if (socket.destroyed) queueMicrotask(() => this.finish());
  }

  /** Connects to FreeSWITCH (inbound mode) and authenticates. */
  static async connectInbound(o: {
    host: string;
    port: number;
    password: string;
    timeoutMs?: number;
    log?: Logger;
    apiTimeoutMs?: number;
  }): Promise<EslConnection> {
    assertLine("password", o.password);
    const timeoutMs = o.timeoutMs ?? 5000;
    const socket = net.connect({ host: o.host, port: o.port });
    const opts: EslConnectionOptions = {};
    if (o.log) opts.log = o.log;
    if (o.apiTimeoutMs !== undefined) opts.apiTimeoutMs = o.apiTimeoutMs;
    const conn = new EslConnection(socket, opts);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError("TIMEOUT", `ESL ${o.host}:${o.port}: no auth within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([
        timeout,
        new Promise<void>((resolve, reject) => {
          conn.onAuthRequest(resolve);
          conn.events.once("close", ({ error }) =>
            reject(
              new AppError("PBX_UNAVAILABLE", `ESL ${o.host}:${o.port}: ${error?.message ?? "connection closed before auth"}`, {
                cause: error,
              }),
            ),
          );
        }),
      ]);
      const reply = await Promise.race([timeout, conn.command(`auth ${o.password}`)]);
      const text = reply.get("Reply-Text") ?? "";
      if (!text.startsWith("+OK")) {
        throw new AppError("PBX_ERROR", `ESL authentication failed: ${text}`, { details: { pbxReply: text } });
      }
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Protocol errors seen by the parser so far. */
  get protocolErrors(): number {
    return this.parser.errors;
  }

  /** `api <command>`: resolves with the body text; the caller decides what `+OK` / `-ERR` mean. */
  async api(command: string): Promise<string> {
    assertLine("command", command);
    const msg = await this.send("api", `api ${command}\n\n`, `api ${command}`);
    return msg.body?.toString("utf8") ?? "";
  }

  /**
   * `bgapi <command>` with our own `Job-UUID`; resolves with the BACKGROUND_JOB body. The connection must be
   * subscribed to BACKGROUND_JOB. A `-ERR` immediate reply rejects with PBX_ERROR.
   */
  async bgapi(command: string, jobUuid: string = randomUUID()): Promise<string> {
    assertLine("command", command);
    assertLine("Job-UUID", jobUuid);
    if (this.isClosed) throw closedError();
    if (this.jobs.has(jobUuid)) throw new AppError("BAD_REQUEST", `Job-UUID ${jobUuid} already in use`);
    const result = new Promise<string>((resolve, reject) => this.jobs.set(jobUuid, { resolve, reject }));
    result.catch(() => undefined);
    try {
      const reply = await this.sendCommand(`bgapi ${command}\nJob-UUID: ${jobUuid}\n\n`, `bgapi ${command}`);
      const text = reply.headers.get("Reply-Text") ?? "";
      if (!text.startsWith("+OK")) {
        throw new AppError("PBX_ERROR", `bgapi ${command}: ${text}`, { details: { pbxReply: text } });
      }
    } catch (err) {
      this.jobs.delete(jobUuid);
      throw err;
    }
    return result;
  }

  /** Any other command; resolves with the reply headers (Reply-Text URL-decoded; all values for a `connect` reply). */
  async command(line: string, headers?: Record<string, string>): Promise<EslHeaders> {
    assertLine("command", line);
    let wire = `${line}\n`;
    if (headers) wire += serializeHeaders(headers);
    const msg = await this.sendCommand(`${wire}\n`, line);
    return decodeReply(msg.headers);
  }

  /** `sendmsg [<uuid>]` with the given headers in order; a body gets its `content-length`. */
  async sendmsg(uuid: string | undefined, headers: Record<string, string>, body?: string): Promise<EslHeaders> {
    const line = uuid === undefined || uuid === "" ? "sendmsg" : `sendmsg ${uuid}`;
    assertLine("command", line);
    let wire = `${line}\n${serializeHeaders(headers)}`;
    if (body !== undefined) {
      const bytes = Buffer.from(body, "utf8");
      wire += `content-length: ${bytes.length}\n\n`;
      const msg = await this.send("command", Buffer.concat([Buffer.from(wire, "utf8"), bytes]), line);
      return decodeReply(msg.headers);
    }
    const msg = await this.sendCommand(`${wire}\n`, line);
    return decodeReply(msg.headers);
  }

  /**
   * `sendmsg` + `call-command: execute`; resolves with the CHANNEL_EXECUTE_COMPLETE whose Application-UUID is our
   * `event-uuid` (the connection must receive CHANNEL_EXECUTE_COMPLETE: `myevents` or `event json …`).
   */
  async execute(
    app: string,
    arg: string | undefined,
    o: { uuid?: string; eventLock?: boolean; eventUuid?: string } = {},
  ): Promise<EslEvent> {
    const eventUuid = o.eventUuid ?? randomUUID();
    const headers: Record<string, string> = { "call-command": "execute", "execute-app-name": app };
    if (arg !== undefined) headers["execute-app-arg"] = arg;
    if (o.eventLock) headers["event-lock"] = "true";
    headers["event-uuid"] = eventUuid;
    // Validate before registering anything.
    for (const [k, v] of Object.entries(headers)) {
      assertLine(k, k);
      assertLine(k, v);
    }
    if (o.uuid !== undefined) assertLine("uuid", o.uuid);
    if (this.isClosed) throw closedError();
    if (this.executions.has(eventUuid)) throw new AppError("BAD_REQUEST", `event-uuid ${eventUuid} already in use`);
    const done = new Promise<EslEvent>((resolve, reject) => this.executions.set(eventUuid, { resolve, reject }));
    done.catch(() => undefined);
    try {
      const reply = await this.sendmsg(o.uuid, headers);
      const text = reply.get("Reply-Text") ?? "";
      if (!text.startsWith("+OK")) {
        throw new AppError("PBX_ERROR", `execute ${app}: ${text}`, { details: { pbxReply: text } });
      }
    } catch (err) {
      this.executions.delete(eventUuid);
      throw err;
    }
    return done;
  }

  /** `event json …`; CUSTOM subclasses (tokens with `::`) are put last, after `CUSTOM`. */
  async subscribe(events: string[]): Promise<void> {
    const names: string[] = [];
    const subclasses: string[] = [];
    let custom = false;
    for (const token of events.flatMap((e) => e.split(/\s+/)).filter((t) => t !== "")) {
      if (token === "CUSTOM") custom = true;
      else if (token.includes("::")) {
        if (!subclasses.includes(token)) subclasses.push(token);
      } else if (!names.includes(token)) names.push(token);
    }
    if (custom || subclasses.length > 0) names.push("CUSTOM", ...subclasses);
    const line = `event json ${names.join(" ")}`;
    const reply = await this.command(line);
    const text = reply.get("Reply-Text") ?? "";
    if (!text.startsWith("+OK")) {
      throw new AppError("PBX_ERROR", `${line}: ${text}`, { details: { pbxReply: text } });
    }
  }

  /** Sends `exit` when open (waits briefly for `+OK bye`), then ends the socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.isClosed && !this.socket.destroyed) {
        const bye = this.sendCommand("exit\n\n", "exit").catch(() => undefined);
        await Promise.race([bye, delay(1000)]);
        this.socket.end();
        await Promise.race([this.closedPromise, delay(2000)]);
      }
      if (!this.isClosed) this.destroy();
      await this.closedPromise;
    })();
    return this.closing;
  }

  /** Drops the connection at once. */
  destroy(error?: Error): void {
    if (error) this.closeError ??= error;
    this.socket.destroy();
  }

  // -------------------------------------------------------------------------------------------------------------

  private onAuthRequest(cb: () => void): void {
    if (this.authRequested) cb();
    else this.authWaiter = cb;
  }

  private sendCommand(wire: string, description: string): Promise<EslMessage> {
    return this.send("command", wire, description);
  }

  private send(kind: ReplyKind, wire: string | Buffer, description: string): Promise<EslMessage> {
    if (this.isClosed || this.socket.destroyed || !this.socket.writable) return Promise.reject(closedError());
    return new Promise<EslMessage>((resolve, reject) => {
      const entry: PendingReply = { kind, description, settled: false, timer: undefined, resolve, reject };
      if (this.apiTimeoutMs > 0 && Number.isFinite(this.apiTimeoutMs)) {
        entry.timer = setTimeout(() => {
          if (entry.settled) return;
          // The entry stays queued: its reply will still come and must be consumed in order.
          entry.settled = true;
          reject(new AppError("TIMEOUT", `ESL ${description}: no reply within ${this.apiTimeoutMs} ms`));
        }, this.apiTimeoutMs);
        entry.timer.unref?.();
      }
      this.replies[kind].push(entry);
      const ok = this.socket.write(wire);
      if (!ok && this.socket.writableLength > MAX_WRITE_BUFFER) {
        this.log?.warn({ buffered: this.socket.writableLength }, "ESL peer is not reading; dropping the connection");
        this.destroy(new AppError("PBX_ERROR", "ESL write buffer overflow"));
      }
    });
  }

  private onData(chunk: Buffer): void {
    let messages: EslMessage[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      // The parser does not throw; this is a last line of defence.
      this.log?.error({ err }, "ESL parser failure");
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.parser.errors !== this.parserErrors) {
      this.log?.warn({ errors: this.parser.errors, reason: this.parser.lastError }, "ESL protocol error: block skipped");
      this.parserErrors = this.parser.errors;
    }
    for (const msg of messages) {
      if (this.isClosed) return;
      this.dispatch(msg);
    }
  }

  private dispatch(msg: EslMessage): void {
    switch (msg.contentType) {
      case "auth/request":
        this.authRequested = true;
        this.authWaiter?.();
        this.authWaiter = undefined;
        return;
      case "api/response":
        this.settleReply("api", msg);
        return;
      case "command/reply":
        this.settleReply("command", msg);
        return;
      case "text/event-json":
      case "text/event-plain": {
        const ev = parseEvent(msg);
        if (!ev) {
          this.log?.warn({ contentType: msg.contentType }, "ESL: unparseable event dropped");
          return;
        }
        this.onEvent(ev);
        return;
      }
      case "text/disconnect-notice": {
        const notice: { disposition: string; lingerTime?: number; body: string } = {
          disposition: msg.headers.get("Content-Disposition") ?? "",
          body: msg.body?.toString("utf8") ?? "",
        };
        const linger = msg.headers.get("Linger-Time");
        if (linger !== undefined && /^-?\d+$/.test(linger.trim())) notice.lingerTime = Number(linger.trim());
        this.events.emit("disconnectNotice", notice);
        return;
      }
      case "text/rude-rejection": {
        const body = msg.body?.toString("utf8") ?? "";
        this.log?.error({ body }, "ESL connection rejected by FreeSWITCH (ACL)");
        this.destroy(new AppError("PBX_ERROR", `ESL rude rejection: ${body.trim()}`, { details: { pbxReply: body } }));
        return;
      }
      case "log/data":
        return;
      default:
        this.log?.debug({ contentType: msg.contentType }, "ESL: unexpected message ignored");
    }
  }

  private settleReply(kind: ReplyKind, msg: EslMessage): void {
    const entry = this.replies[kind].shift();
    if (!entry) {
      this.log?.warn({ kind }, "ESL reply without a pending command dropped");
      return;
    }
    if (entry.timer) clearTimeout(entry.timer);
    if (entry.settled) return;
    entry.settled = true;
    entry.resolve(msg);
  }

  private onEvent(ev: EslEvent): void {
    if (ev.name === "BACKGROUND_JOB") {
      const id = ev.headers["Job-UUID"];
      const job = id === undefined ? undefined : this.jobs.get(id);
      if (id !== undefined && job) {
        this.jobs.delete(id);
        job.resolve(ev.body ?? "");
      }
    } else if (ev.name === "CHANNEL_EXECUTE_COMPLETE") {
      const id = ev.headers["Application-UUID"];
      const waiter = id === undefined ? undefined : this.executions.get(id);
      if (id !== undefined && waiter) {
        this.executions.delete(id);
        waiter.resolve(ev);
      }
    }
    this.events.emit("event", ev);
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.authWaiter = undefined;
    for (const kind of ["api", "command"] as const) {
      for (const entry of this.replies[kind].splice(0)) {
        if (entry.timer) clearTimeout(entry.timer);
        if (entry.settled) continue;
        entry.settled = true;
        entry.reject(closedError());
      }
    }
    for (const w of this.jobs.values()) w.reject(closedError());
    this.jobs.clear();
    for (const w of this.executions.values()) w.reject(closedError());
    this.executions.clear();
    const payload: { error?: Error } = {};
    if (this.closeError) payload.error = this.closeError;
    this.events.emit("close", payload);
  }
}

function serializeHeaders(headers: Record<string, string>): string {
  let out = "";
  for (const [k, v] of Object.entries(headers)) {
    assertLine(`header ${k}`, k);
    assertLine(`header ${k}`, v);
    if (k === "" || k.includes(":")) throw new AppError("BAD_REQUEST", `invalid ESL header name ${JSON.stringify(k)}`);
    out += `${k}: ${v}\n`;
  }
  return out;
}

/** Reply-Text is URL-decoded; a serialized event (the outbound `connect` reply) has every value decoded. */
function decodeReply(headers: EslHeaders): EslHeaders {
  if (headers.has("Event-Name")) return headers.decoded();
  const text = headers.get("Reply-Text");
  if (text === undefined || !text.includes("%")) return headers;
  const decoded = decodeUrlValue(text);
  return new EslHeaders(headers.entries().map(([n, v]) => [n, n.toLowerCase() === "reply-text" ? decoded : v]));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
  });
}
