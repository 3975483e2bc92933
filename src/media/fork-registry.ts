/**
 * ForkRegistry: one-time tokens that bind an incoming mod_audio_fork WebSocket to a call (media-protocols.md §2.1).
 *
 * The FreeSWITCH adapter calls `expect(callId)` before `uuid_audio_fork … start`, puts the token into the fork URL
 * (`<audio_fork_url>/<uuid>?token=<token>`) and awaits `connected`. The fork route calls `take(callId, token)`
 * when FS connects: a matching, unexpired token is consumed (single use) and yields the binder that hands the
 * socket to the waiting adapter. `connected` rejects with AppError("TIMEOUT") when nobody connects within the ttl,
 * and with AppError("INVALID_STATE") on `cancel` or when a new `expect` for the same call replaces it.
 */

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AppError } from "../errors.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";

/** What the fork leg and the adapter need of a WebSocket (the `ws` WebSocket satisfies it). */
export interface ForkSocket {
  send(data: Buffer | string): void;
  close(code?: number, reason?: string): void;
  on(event: "message", listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: "close", listener: (code: number, reason: Buffer) => void): unknown;
}

export interface ForkExpectation {
  token: string;
  /** Resolves with the socket FS opened for this call; rejects with AppError TIMEOUT / INVALID_STATE. */
  connected: Promise<ForkSocket>;
}

interface Pending {
  digest: Buffer;
  timer: TimerHandle;
  resolve: (socket: ForkSocket) => void;
  reject: (err: Error) => void;
}

export interface ForkRegistryOptions {
  clock?: MediaClock;
}

const digestOf = (token: string): Buffer => createHash("sha256").update(token).digest();

export class ForkRegistry {
  private readonly clock: MediaClock;
  private readonly pending = new Map<string, Pending>();

  constructor(options: ForkRegistryOptions = {}) {
    this.clock = options.clock ?? realClock;
  }

  /** Calls waiting for their fork. */
  get size(): number {
    return this.pending.size;
  }

  /** Issues a one-time token for `callId`, valid `ttlMs` (default 30 s). Replaces an earlier expectation. */
  expect(callId: string, ttlMs = 30_000): ForkExpectation {
    this.drop(callId, new AppError("INVALID_STATE", `audio fork of ${callId} was re-armed`));
    const token = randomBytes(24).toString("base64url");
    let resolve!: (socket: ForkSocket) => void;
    let reject!: (err: Error) => void;
    const connected = new Promise<ForkSocket>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Whoever stops waiting (cancel) must not produce an unhandled rejection; awaiters still see it.
    connected.catch(() => undefined);
    const timer = this.clock.setTimer(() => {
      this.drop(callId, new AppError("TIMEOUT", `audio fork of ${callId} did not connect within ${ttlMs} ms`));
    }, ttlMs);
    this.pending.set(callId, { digest: digestOf(token), timer, resolve, reject });
    return { token, connected };
  }

  /**
   * Consumes the token of `callId` (constant-time compare). Returns the binder to call with the socket, or
   * undefined when there is no such expectation, the token is wrong or missing, or it expired or was used.
   */
  take(callId: string, token: string | undefined): ((socket: ForkSocket) => void) | undefined {
    const p = this.pending.get(callId);
    if (!p || token === undefined) return undefined;
    if (!timingSafeEqual(p.digest, digestOf(token))) return undefined;
    this.pending.delete(callId);
    this.clock.clearTimer(p.timer);
    return (socket) => p.resolve(socket);
  }

  /** Stops waiting for the fork of `callId` (`connected` rejects with INVALID_STATE). */
  cancel(callId: string): void {
    this.drop(callId, new AppError("INVALID_STATE", `audio fork of ${callId} was cancelled`));
  }

  /** Cancels every expectation (shutdown). */
  cancelAll(): void {
    for (const id of [...this.pending.keys()]) this.cancel(id);
  }

  private drop(callId: string, err: AppError): void {
    const p = this.pending.get(callId);
    if (!p) return;
    this.pending.delete(callId);
    this.clock.clearTimer(p.timer);
    p.reject(err);
  }
}
