/**
 * AudioSocketServer: our TCP listener for Asterisk AudioSocket connections (externalMedia
 * `encapsulation=audiosocket transport=tcp`, media-protocols.md §3.7).
 *
 * Asterisk connects per channel and sends first a kind 0x01 message whose 16 raw bytes are the UUID we passed as
 * `data`: that maps the socket to its call. The ARI adapter calls `expect(uuid)` before creating the channel; the
 * connection whose UUID matches is handed over (paused, with any bytes already read past the UUID message in
 * `initial`), and the AudioSocketLeg takes it from there. A connection whose first message is not 0x01 with 16
 * bytes, whose UUID nobody expects, or that sends nothing for `helloTimeoutMs`, is closed.
 */

import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";

export const AUDIOSOCKET_KIND_UUID = 0x01;

export interface AudioSocketConnection {
  /** Lower-case, hyphenated. */
  uuid: string;
  /** Paused; the leg resumes it once its handlers are attached. */
  socket: Socket;
  /** Bytes read past the UUID message (the start of the audio stream). */
  initial: Buffer;
}

interface Waiter {
  resolve: (c: AudioSocketConnection) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case; undefined when `uuid` is not 32 hex digits. */
export function normalizeUuid(uuid: string): string | undefined {
  const hex = uuid.replace(/-/g, "").toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class AudioSocketServer {
  private readonly log: Logger | undefined;
  private readonly helloTimeoutMs: number;
  private server: Server | undefined;
  private readonly waiters = new Map<string, Waiter>();
  /** Connections that have not identified themselves yet. */
  private readonly pending = new Set<Socket>();

  constructor(o: { log?: Logger; helloTimeoutMs?: number } = {}) {
    this.log = o.log;
    this.helloTimeoutMs = o.helloTimeoutMs ?? 5000;
  }

  listen(host: string, port: number): Promise<{ port: number }> {
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.removeListener("error", reject);
        server.on("error", (err) => this.log?.error({ err }, "audiosocket: server error"));
        resolve({ port: (server.address() as AddressInfo).port });
      });
    });
  }

  /** Resolves with the connection that identifies itself as `uuid`; rejects with TIMEOUT after `timeoutMs`. */
  expect(uuid: string, timeoutMs: number): Promise<AudioSocketConnection> {
    const key = normalizeUuid(uuid);
    if (key === undefined) return Promise.reject(new AppError("BAD_REQUEST", `audiosocket: ${uuid} is not a UUID`));
    this.cancel(key);
    const promise = new Promise<AudioSocketConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new AppError("TIMEOUT", `audiosocket: Asterisk did not connect for ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
    // A caller that gave up (cancel, call ended) may no longer await it: no unhandled rejection.
    promise.catch(() => {});
    return promise;
  }

  /** Stops waiting for `uuid` (its promise rejects with INVALID_STATE). */
  cancel(uuid: string): void {
    const key = normalizeUuid(uuid) ?? uuid;
    const w = this.waiters.get(key);
    if (!w) return;
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.reject(new AppError("INVALID_STATE", `audiosocket: wait for ${key} cancelled`));
  }

  /** Stops listening; connections not handed over yet are closed, waiters rejected. Handed-over ones stay. */
  async close(): Promise<void> {
    for (const key of [...this.waiters.keys()]) this.cancel(key);
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    this.pending.add(socket);
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    const drop = (why: string): void => {
      this.log?.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, why }, "audiosocket: connection refused");
      cleanup();
      socket.destroy();
    };
    const timer = setTimeout(() => drop("no UUID message"), this.helloTimeoutMs);
    const onError = (err: Error): void => this.log?.debug({ err }, "audiosocket: connection error");
    const onClose = (): void => cleanup();
    const cleanup = (): void => {
      clearTimeout(timer);
      this.pending.delete(socket);
      socket.removeListener("data", onData);
      socket.removeListener("close", onClose);
      // onError stays: an error between the hand-over and the leg's own listener must not crash the process.
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length < 3) return;
      const kind = buf[0] as number;
      const length = buf.readUInt16BE(1);
      if (kind !== AUDIOSOCKET_KIND_UUID || length !== 16) return drop(`first message kind 0x${kind.toString(16)} length ${length}`);
      if (buf.length < 19) return;
      const uuid = normalizeUuid(buf.subarray(3, 19).toString("hex")) as string;
      const w = this.waiters.get(uuid);
      if (!w) return drop(`unexpected UUID ${uuid}`);
      this.waiters.delete(uuid);
      clearTimeout(w.timer);
      // Paused before the listener goes, so no byte is lost until the leg resumes the socket.
      socket.pause();
      cleanup();
      w.resolve({ uuid, socket, initial: Buffer.from(buf.subarray(19)) });
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  }
}
