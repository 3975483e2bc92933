/**
 * The state of a control connection to the PBX (ESL inbound, the ARI events socket) and when to try again.
 *
 * Why two lanes: an exponential backoff up to `reconnect_max_ms` left the controller 3.6 s (ESL) and 4.0 s (ARI)
 * behind a PBX that was back, because the PBX came back in the middle of a long step. While the PBX simply does
 * not accept connections (refused, reset, unreachable) an attempt costs one refused TCP connect, so it is retried
 * every `fastMs` (jittered): the controller is back within about `fastMs` of the PBX listening again, however long
 * the outage. A failure after the PBX accepted the connection (authentication, an HTTP status, a timeout) is not
 * an outage: hammering would not help, so those back off exponentially from `minMs` to `maxMs`, jitter kept.
 *
 * The status (state, since, attempts, the last error, how many times it came back) feeds /health and /metrics.
 */

export type LinkState = "connecting" | "connected" | "down" | "stopped";

export interface LinkError {
  message: string;
  /** Our AppError code, or the socket's (ECONNREFUSED, …). */
  code?: string;
  /** ISO time of the failure. */
  at: string;
}

export interface LinkStatus {
  state: LinkState;
  connected: boolean;
  /** ISO time the current state began. */
  since: string;
  /** Failed attempts since the link was last up. */
  attempts: number;
  /** Times the link came back after it had been up. */
  reconnects: number;
  lastError?: LinkError;
}

export interface ReconnectOptions {
  minMs: number;
  maxMs: number;
  /** Retry period while the PBX refuses connections (default 250 ms). */
  fastMs?: number;
  /** Jitter source (tests). */
  random?: () => number;
  /** False: every failure backs off, the behaviour before the fast lane (the reconnect bench's reference). */
  fastLane?: boolean;
  /** Wall clock (tests). */
  now?: () => number;
}

/** Socket errors that mean "nobody listens there (yet)": the fast lane. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED", "EADDRNOTAVAIL"]);

/** The first `code` of the error or one of its causes. */
function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") out.push(code);
  }
  return out;
}

/** Whether the failure was the PBX not accepting the connection at all (so a retry is one cheap refused connect). */
export function isUnreachable(err: unknown): boolean {
  return codes(err).some((c) => UNREACHABLE.has(c));
}

export class ReconnectPolicy {
  private stateNow: LinkState = "connecting";
  private sinceMs: number;
  private failures = 0;
  private backoffStep = 0;
  private comebacks = 0;
  private everUp = false;
  private last: LinkError | undefined;
  private readonly fastMs: number;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly o: ReconnectOptions) {
    this.fastMs = o.fastMs ?? 250;
    this.random = o.random ?? Math.random;
    this.now = o.now ?? Date.now;
    this.sinceMs = this.now();
  }

  get state(): LinkState {
    return this.stateNow;
  }

  /** The link is up: the backoff starts again from the bottom. */
  up(): void {
    if (this.everUp && this.stateNow !== "connected") this.comebacks++;
    this.everUp = true;
    this.failures = 0;
    this.backoffStep = 0;
    this.set("connected");
  }

  /**
   * An attempt failed, or the link was lost (`err` undefined for a plain close): the ms to wait before the next
   * attempt. A lost link is retried on the fast lane first: the PBX is most likely restarting.
   */
  failed(err?: unknown): number {
    if (err !== undefined) this.last = { message: err instanceof Error ? err.message : String(err), ...this.codeOf(err), at: new Date(this.now()).toISOString() };
    const wasUp = this.stateNow === "connected";
    if (!wasUp) this.failures++;
    this.set("down");
    if (this.o.fastLane !== false && (wasUp || err === undefined || isUnreachable(err))) return this.jitter(this.fastMs, 0.25);
    const step = Math.min(this.o.maxMs, this.o.minMs * 2 ** Math.min(this.backoffStep++, 20));
    // 50–100 % of the step, never below the minimum.
    return Math.max(this.o.minMs, Math.round(step * (0.5 + this.random() * 0.5)));
  }

  /** An attempt is under way. */
  connecting(): void {
    if (this.stateNow !== "connecting") this.set("connecting");
  }

  stopped(): void {
    this.set("stopped");
  }

  status(): LinkStatus {
    return {
      state: this.stateNow,
      connected: this.stateNow === "connected",
      since: new Date(this.sinceMs).toISOString(),
      attempts: this.failures,
      reconnects: this.comebacks,
      ...(this.last ? { lastError: { ...this.last } } : {}),
    };
  }

  private codeOf(err: unknown): { code?: string } {
    const c = codes(err);
    // The socket's code says more than our wrapper's (ECONNREFUSED rather than PBX_UNAVAILABLE).
    const code = c.find((x) => /^E[A-Z]+$/.test(x)) ?? c[0];
    return code ? { code } : {};
  }

  private set(s: LinkState): void {
    if (this.stateNow === s) return;
    // `since` marks the link going up or down; "connecting" between two failures is the same outage.
    if (this.stateNow === "connected" || s === "connected" || s === "stopped") this.sinceMs = this.now();
    this.stateNow = s;
  }

  /** `ms` ± `spread` (a fraction), so a fleet of controllers does not retry in step. */
  private jitter(ms: number, spread: number): number {
    return Math.max(1, Math.round(ms * (1 - spread + this.random() * 2 * spread)));
  }
}
