/**
 * RtpPortPool: the UDP ports of the Asterisk externalMedia RTP legs (`[asterisk] rtp_port_min/max`).
 *
 * One even port per call for RTP, the next odd one for RTCP (read and discarded), as RTP convention and Asterisk's
 * RTCP-to-port+1 expect. Ports are handed out round-robin (a just-released port is the last to be reused, so late
 * packets of an ended call do not land in a new one). `bind` skips ports that fail to bind (another process holds
 * them: EADDRINUSE) and tries the next; when every free pair has failed, or none is free, it throws
 * AppError CAPACITY.
 */

import { createSocket } from "node:dgram";
import type { Socket } from "node:dgram";
import { AppError } from "../errors.js";

export interface RtpSocketPair {
  port: number;
  rtp: Socket;
  rtcp: Socket;
}

export class RtpPortPool {
  readonly min: number;
  readonly max: number;
  private readonly ports: number[] = [];
  private readonly used = new Set<number>();
  private cursor = 0;

  constructor(min: number, max: number) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new RangeError(`invalid RTP port range ${min}-${max}`);
    }
    this.min = min;
    this.max = max;
    // The pair (even, even + 1) must fit in the range.
    for (let p = min % 2 === 0 ? min : min + 1; p + 1 <= max; p += 2) this.ports.push(p);
    if (this.ports.length === 0) throw new RangeError(`RTP port range ${min}-${max} holds no even/odd port pair`);
  }

  /** Pairs in the range. */
  get size(): number {
    return this.ports.length;
  }

  /** Pairs handed out and not yet released. */
  get inUse(): number {
    return this.used.size;
  }

  /** Reserves the next free even port (without binding). Throws AppError CAPACITY when none is free. */
  acquire(): number {
    for (let i = 0; i < this.ports.length; i++) {
      const p = this.ports[(this.cursor + i) % this.ports.length] as number;
      if (this.used.has(p)) continue;
      this.cursor = (this.cursor + i + 1) % this.ports.length;
      this.used.add(p);
      return p;
    }
    throw new AppError("CAPACITY", `no free RTP port in ${this.min}-${this.max}`, { details: { min: this.min, max: this.max } });
  }

  release(port: number): void {
    this.used.delete(port);
  }

  /**
   * Reserves a port and binds RTP on it and RTCP on port + 1 at `ip`. A pair that fails to bind is released and
   * the next one is tried (each free pair at most once). Throws AppError CAPACITY when none could be bound.
   */
  async bind(ip: string): Promise<RtpSocketPair> {
    const tried = new Set<number>();
    let lastError: unknown;
    for (;;) {
      let port: number;
      try {
        port = this.acquire();
      } catch (err) {
        throw lastError === undefined ? err : new AppError("CAPACITY", `no RTP port could be bound in ${this.min}-${this.max}`, { cause: lastError });
      }
      if (tried.has(port)) {
        this.release(port);
        throw new AppError("CAPACITY", `no RTP port could be bound in ${this.min}-${this.max}`, { cause: lastError });
      }
      tried.add(port);
      const type = ip.includes(":") ? "udp6" : "udp4";
      const rtp = createSocket({ type });
      const rtcp = createSocket({ type });
      try {
        await bindSocket(rtp, ip, port);
        await bindSocket(rtcp, ip, port + 1);
        return { port, rtp, rtcp };
      } catch (err) {
        lastError = err;
        closeQuietly(rtp);
        closeQuietly(rtcp);
        this.release(port);
        const code = (err as NodeJS.ErrnoException).code;
        // Only "someone else has it" is worth trying another port for; a bad address fails every port.
        if (code !== "EADDRINUSE" && code !== "EACCES") throw new AppError("INTERNAL", `cannot bind RTP on ${ip}:${port}`, { cause: err });
      }
    }
  }
}

function bindSocket(socket: Socket, ip: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once("error", onError);
    socket.bind({ address: ip, port, exclusive: true }, () => {
      socket.removeListener("error", onError);
      resolve();
    });
  });
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // not bound / already closed
  }
}
