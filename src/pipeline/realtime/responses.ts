/**
 * The model's responses as the Realtime conversation asks for them (media-protocols.md §5.4): one
 * `response.create` in flight at a time (a second one would be refused), the rest queued in order; a record of
 * each response from `response.created` to `response.done`; and the session protection a non-interruptible
 * response needs.
 *
 * Protection: a non-interruptible response (greeting with `interruptible: false`, collector prompts, `say`,
 * goodbye) must not be cut by the server either. While one is requested or active, the session's turn detection
 * runs with `interrupt_response: false` (the server does not cancel it on caller speech) and `create_response:
 * false` (the caller's words are still committed and transcribed, but answered only after it: `owedAnswer`).
 * Each `session.update` remembers the protection it carries until the server's `session.updated` acknowledges
 * it, so a caller turn is judged by the state the server applied to it, not the one we last asked for.
 */
import type { RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import type { CreateRequest, Response } from "./types.js";

export interface ResponsesHost {
  /** `turnDetection: local`: the server never cuts or answers on its own, so nothing needs protecting. */
  readonly local: boolean;
  session(): RealtimeSession | undefined;
  ended(): boolean;
  /** A terminal action is waiting for the playout: no new answers. */
  ending(): boolean;
  /** The session's turn detection as configured (unprotected). */
  turnDetection(): NonNullable<RealtimeSessionConfig["turnDetection"]>;
  /** A response was asked for or started: the follow-up countdown stops. */
  busy(): void;
}

export class Responses {
  private readonly byId = new Map<string, Response>();
  private current: Response | undefined;
  private asked: CreateRequest | undefined;
  private readonly queued: CreateRequest[] = [];
  /** The session's turn detection is in "protected" mode (no server cut, no server response) for a non-interruptible response. */
  private protectedTurn = false;
  /** The protection each `session.update` not yet acknowledged carries, oldest first. */
  private readonly updateStates: boolean[] = [];
  /** The protection in force on the server as of the last `session.updated` received. */
  private serverProtected = false;
  /** The caller ended a turn while protected: we ask for its answer once the protected response is done. */
  private owedAnswer = false;

  constructor(private readonly h: ResponsesHost) {}

  /** The response being generated (`response.created` came, `response.done` not yet). */
  get active(): Response | undefined {
    return this.current;
  }

  /** A response.create was sent and its response.created has not come yet. */
  get requested(): CreateRequest | undefined {
    return this.asked;
  }

  /** A response is asked for, being generated or waiting in the queue. */
  get pending(): boolean {
    return this.current !== undefined || this.asked !== undefined || this.queued.length > 0;
  }

  get(id: string): Response | undefined {
    return this.byId.get(id);
  }

  /** `response.create`, or queued while a response is active (§5.4: a second one would be refused). */
  request(req: CreateRequest): void {
    if (this.h.ended()) return;
    const session = this.h.session();
    if (this.current || this.asked || !session) {
      this.queued.push(req);
      return;
    }
    this.asked = req;
    this.h.busy();
    this.syncProtection();
    session.createResponse(req.instructions !== undefined ? { instructions: req.instructions } : {});
  }

  /** `response.created`: the record of the response, with what its request asked for. */
  started(id: string): void {
    const req = this.asked ?? {};
    this.asked = undefined;
    const r: Response = {
      id,
      cancelled: false,
      done: false,
      pendingTools: 0,
      hadTools: false,
      sceneChanged: false,
      terminal: undefined,
      autoHangup: req.autoHangup === true,
      continued: false,
      playId: req.playId,
      items: 0,
      interruptible: req.interruptible !== false,
      collecting: false,
    };
    this.byId.set(id, r);
    this.current = r;
    this.h.busy();
  }

  /** `response.done`: it is no longer the active one; its record, if it had one. */
  finished(id: string): Response | undefined {
    if (this.current?.id === id) this.current = undefined;
    return this.byId.get(id);
  }

  /** After a `response.done`: the next queued request goes out, protection follows, an owed answer is asked for. */
  settle(): void {
    if (!this.current && !this.asked) {
      const next = this.queued.shift();
      if (next) this.request(next);
    }
    this.syncProtection();
    if (this.owedAnswer && !this.protectedTurn) {
      this.owedAnswer = false;
      this.answer();
    }
  }

  /** §5.4 pitfall: our create raced the server's own response; it goes first in the queue again. */
  refused(): void {
    if (!this.asked) return;
    this.queued.unshift(this.asked);
    this.asked = undefined;
  }

  /** Barge-in: the active response, if still generating, is cancelled. */
  cancel(r: Response | undefined): void {
    if (!r || r.done) return;
    r.cancelled = true;
    this.h.session()?.cancelResponse();
  }

  /** Caller barge-in: what was queued to answer is dropped; fixed non-interruptible speech (a collector prompt, a goodbye) stays. */
  dropQueuedAnswers(): void {
    const keep = this.queued.filter((q) => q.interruptible === false);
    this.queued.length = 0;
    this.queued.push(...keep);
  }

  /**
   * The socket dropped: every response is over and every request lost. `lost` hears the playId of each fixed text
   * that will never be spoken now (a collector waiting for its prompt's end starts its timer).
   */
  dropped(lost: (playId: string) => void): void {
    for (const r of this.byId.values()) r.done = true;
    for (const req of [...(this.asked ? [this.asked] : []), ...this.queued]) if (req.playId !== undefined) lost(req.playId);
    this.current = undefined;
    this.asked = undefined;
    this.queued.length = 0;
    this.protectedTurn = false; // the new session starts from the full set-up
    this.owedAnswer = false;
  }

  /** A session is attached: the provider sent the full set-up on connect (never protected). */
  attached(): void {
    this.updateStates.length = 0;
    this.updateStates.push(false);
    this.serverProtected = false;
  }

  /** `session.updated`: the oldest update in flight is in force. */
  acknowledged(): void {
    this.serverProtected = this.updateStates.shift() ?? this.serverProtected;
  }

  /**
   * The caller's turn ended. If the server ran protected (create_response off for a non-interruptible response) it
   * did not answer it, so we ask for the answer once that response is done, or at once when it already is. Server
   * events are ordered with its `session.updated`s, so `serverProtected` is the state this turn saw.
   */
  turnEnded(): void {
    if (!this.serverProtected) return;
    if (this.protectedTurn) this.owedAnswer = true;
    else this.answer();
  }

  /** Something caller speech may not cut is being generated (a request not started yet does not count). */
  uninterruptible(): boolean {
    const a = this.current;
    return a !== undefined && !a.done && !a.cancelled && !a.interruptible;
  }

  /** `session.update`, remembering the protection it carries until the server acknowledges it. */
  updateSession(config: RealtimeSessionConfig): void {
    const session = this.h.session();
    if (!session) return;
    this.updateStates.push(this.protectedTurn);
    session.updateSession(config);
  }

  /** The model answers the caller's turn, unless something else is already coming or the call is ending. */
  private answer(): void {
    if (!this.current && !this.asked && !this.h.ending()) this.request({});
  }

  /**
   * Protection on while a non-interruptible response is requested or active, off otherwise. Sent before the
   * `response.create` on the same socket, so the server applies it first.
   */
  private syncProtection(): void {
    if (this.h.local || !this.h.session()) return;
    const want = (this.current !== undefined && !this.current.interruptible) || this.asked?.interruptible === false;
    if (want === this.protectedTurn) return;
    this.protectedTurn = want;
    const td = this.h.turnDetection();
    this.updateSession({ turnDetection: want ? { ...td, interruptResponse: false, createResponse: false } : td });
  }
}
