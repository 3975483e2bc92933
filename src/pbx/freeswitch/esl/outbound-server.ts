/**
 * The outbound Event Socket server (media-protocols.md §1.1, §1.3): FreeSWITCH's dialplan `socket host:port async
 * full` connects here, once per call. We send `connect`; its reply is the channel data (URL-decoded here).
 */
import net from "node:net";
import { AppError } from "../../../errors.js";
import type { Logger } from "../../../log.js";
import { EslConnection } from "./connection.js";
import type { EslHeaders } from "./parser.js";

export interface OutboundSession {
  connection: EslConnection;
  /** The `connect` reply, URL-decoded. */
  channel: EslHeaders;
  uuid: string;
}

export interface EslOutboundServerOptions {
  /** CIDRs (or single addresses) allowed to connect; others are closed at once. Empty/undefined = anyone. */
  allow?: string[];
  log?: Logger;
  onSession: (s: OutboundSession) => void;
  /** Reply timeout for commands on the sessions' connections. */
  apiTimeoutMs?: number;
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`. */
function normalizeAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m?.[1] ?? addr;
}

export function buildAllowList(allow: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of allow) {
    const [addrRaw, prefixRaw, extra] = entry.trim().split("/");
    const addr = normalizeAddress(addrRaw ?? "");
    const type = net.isIPv4(addr) ? "ipv4" : net.isIPv6(addr) ? "ipv6" : undefined;
    const max = type === "ipv4" ? 32 : 128;
    const prefix = prefixRaw === undefined ? max : Number(prefixRaw);
    if (type === undefined || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new AppError("CONFIG_INVALID", `invalid CIDR ${JSON.stringify(entry)} in the outbound ESL allow list`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

export function isAllowed(list: net.BlockList, remote: string | undefined): boolean {
  if (remote === undefined) return false;
  const addr = normalizeAddress(remote);
  if (net.isIPv4(addr)) return list.check(addr, "ipv4");
  if (net.isIPv6(addr)) return list.check(addr, "ipv6");
  return false;
}

export class EslOutboundServer {
  private readonly server: net.Server;
  private readonly allow: net.BlockList | undefined;
  private readonly log: Logger | undefined;
  private readonly connections = new Set<EslConnection>();

  constructor(private readonly o: EslOutboundServerOptions) {
    this.log = o.log;
    this.allow = o.allow && o.allow.length > 0 ? buildAllowList(o.allow) : undefined;
    this.server = net.createServer((socket) => this.onSocket(socket));
  }

  listen(host: string, port: number): Promise<{ port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        this.server.on("error", (err) => this.log?.error({ err }, "outbound ESL server error"));
        const address = this.server.address();
        resolve({ port: typeof address === "object" && address ? address.port : port });
      });
    });
  }

  /** Stops listening and closes the sessions still open (`exit`). */
  async close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    await Promise.all([...this.connections].map((c) => c.close().catch(() => undefined)));
    await stopped;
  }

  private onSocket(socket: net.Socket): void {
    const remote = socket.remoteAddress;
    if (this.allow && !isAllowed(this.allow, remote)) {
      this.log?.warn({ remote }, "outbound ESL connection from a non-allowed address closed");
      socket.destroy();
      return;
    }
    const opts: { log?: Logger; apiTimeoutMs?: number } = {};
    if (this.log) opts.log = this.log;
    if (this.o.apiTimeoutMs !== undefined) opts.apiTimeoutMs = this.o.apiTimeoutMs;
    const connection = new EslConnection(socket, opts);
    this.connections.add(connection);
    connection.events.once("close", () => this.connections.delete(connection));
    void this.handshake(connection, remote);
  }

  private async handshake(connection: EslConnection, remote: string | undefined): Promise<void> {
    let channel: EslHeaders;
    try {
      channel = await connection.command("connect");
    } catch (err) {
      this.log?.warn({ err, remote }, "outbound ESL connect failed");
      connection.destroy();
      return;
    }
    const uuid = channel.get("Unique-ID") ?? channel.get("Channel-Unique-ID") ?? channel.get("Caller-Unique-ID");
    const text = channel.get("Reply-Text") ?? "";
    if (!uuid || !text.startsWith("+OK")) {
      this.log?.warn({ remote, replyText: text }, "outbound ESL connect reply without a channel");
      await connection.close();
      return;
    }
    try {
      this.o.onSession({ connection, channel, uuid });
    } catch (err) {
      this.log?.error({ err, uuid }, "outbound ESL session handler threw");
      await connection.close();
    }
  }
}
