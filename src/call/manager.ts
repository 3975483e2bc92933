/**
 * The registry of calls: live ones by id, the last `[calls] ended_retention` ended ones, the capacity limit, the
 * pending playbooks of `POST /api/playbook/run`, and shutdown: `drain` (no new call; live ones may finish for up
 * to `[calls] shutdown_grace_ms`), then `shutdown` (the rest end with reason `shutdown`).
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../errors.js";
import type { Playbook } from "../playbook/types.js";
import { ID_PATTERN } from "./call-option.js";
import { CallSession, type CallDeps, type CallSessionOptions } from "./session.js";

type Variables = Record<string, string | number | boolean>;

export interface PendingRun {
  id: string;
  playbook: Playbook;
  variables: Variables;
  expiresAt: number;
}

export class CallManager {
  private readonly live = new Map<string, CallSession>();
  private readonly endedCalls: CallSession[] = [];
  private readonly pending = new Map<string, PendingRun>();
  private shuttingDown = false;

  constructor(readonly deps: CallDeps) {}

  private get now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** A new call id for `/call`: `s.<uuid>`. */
  static newWebSocketId(): string {
    return `s.${randomUUID()}`;
  }

  /**
   * Registers a new call. CAPACITY at `[calls] max_concurrent`, INVALID_STATE while shutting down, and the id
   * must not be live (ALREADY_ATTACHED: the transports map it to close 4409).
   */
  create(options: Omit<CallSessionOptions, "deps" | "dump" | "inactivityTimeoutMs"> & { dump?: boolean | undefined; inactivityTimeoutMs?: number }): CallSession {
    const cfg = this.deps.config.calls;
    if (this.shuttingDown) throw new AppError("CAPACITY", "the controller is shutting down");
    if (!ID_PATTERN.test(options.id)) throw new AppError("BAD_REQUEST", `invalid call id ${JSON.stringify(options.id.slice(0, 140))}`);
    if (this.live.has(options.id)) throw new AppError("ALREADY_ATTACHED", `call ${options.id} is already live`);
    if (cfg.max_concurrent > 0 && this.live.size >= cfg.max_concurrent) throw new AppError("CAPACITY", `${cfg.max_concurrent} calls are live ([calls] max_concurrent)`);
    const call = new CallSession({
      ...options,
      deps: this.deps,
      dump: options.dump ?? cfg.dump_events,
      inactivityTimeoutMs: options.inactivityTimeoutMs ?? (options.callType === "websocket" || options.callType === "twilio" ? cfg.inactivity_timeout_ms : 0),
    });
    this.live.set(call.id, call);
    void call.ended.then(() => this.retire(call));
    return call;
  }

  private retire(call: CallSession): void {
    if (this.live.get(call.id) === call) this.live.delete(call.id);
    this.endedCalls.unshift(call);
    const keep = this.deps.config.calls.ended_retention;
    if (this.endedCalls.length > keep) this.endedCalls.length = keep;
  }

  get(id: string): CallSession | undefined {
    return this.live.get(id) ?? this.endedCalls.find((c) => c.id === id);
  }

  getLive(id: string): CallSession | undefined {
    return this.live.get(id);
  }

  /** Newest first. */
  list(state: "live" | "ended" | "all", limit: number): CallSession[] {
    const live = [...this.live.values()].sort((a, b) => b.createdAt - a.createdAt);
    const pick = state === "live" ? live : state === "ended" ? this.endedCalls : [...live, ...this.endedCalls].sort((a, b) => b.createdAt - a.createdAt);
    return pick.slice(0, limit);
  }

  get liveCount(): number {
    return this.live.size;
  }

  // -------------------------------------------------------------------------------------- pending playbooks

  /** `POST /api/playbook/run`: remembers the playbook for the `/call?id=` that will come. */
  addPending(playbook: Playbook, variables: Variables): PendingRun {
    this.sweepPending();
    const id = CallManager.newWebSocketId();
    const run = { id, playbook, variables, expiresAt: this.now + this.deps.config.calls.pending_playbook_ttl_ms };
    this.pending.set(id, run);
    return run;
  }

  /** The pending run for `id`, removed (each is used once), or undefined when none or expired. */
  takePending(id: string): PendingRun | undefined {
    this.sweepPending();
    const run = this.pending.get(id);
    this.pending.delete(id);
    return run;
  }

  private sweepPending(): void {
    const now = this.now;
    for (const [id, run] of this.pending) if (run.expiresAt <= now) this.pending.delete(id);
  }

  // -------------------------------------------------------------------------------------- shutdown

  /**
   * The first step of a graceful stop: takes no new call (CAPACITY) and waits, at most `graceMs`, for the live
   * calls to end by themselves. Resolves at once when none is live.
   */
  async drain(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => {
      timer = setTimeout(r, graceMs);
      timer.unref();
    });
    // Calls created just before the drain began are in `live` too; loop in case one retires while we wait.
    while (this.live.size > 0) {
      const calls = [...this.live.values()];
      const done = await Promise.race([Promise.all(calls.map((c) => c.ended)).then(() => true), deadline.then(() => false)]);
      if (!done) break;
    }
    clearTimeout(timer);
  }

  /** Ends every live call (reason `shutdown`) and waits for them, at most `[calls] shutdown_grace_ms`. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const calls = [...this.live.values()];
    for (const c of calls) c.hangup({ reason: "shutdown", initiator: "system" });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(calls.map((c) => c.ended)),
      new Promise((r) => {
        timer = setTimeout(r, this.deps.config.calls.shutdown_grace_ms);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}
