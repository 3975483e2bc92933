/**
 * PlayoutMarks: the playout ledger of legs whose far end confirms what it played (media-protocols.md §0):
 * mod_audio_fork `mark` -> `playout`/`cleared`, chan_websocket `MARK_MEDIA` -> `MEDIA_MARK_PROCESSED`.
 *
 * The leg sends an end mark behind each utterance's last frame; the pacer's trackEnd for that utterance is held
 * until the mark is answered, so trackEnd means "the caller heard it", not "we sent it". A mark unanswered
 * `timeoutMs` after its audio should have played means the far end does not do marks (an old module, a missing
 * setting): marks go off for the call and the pacer's clock is the ledger again. On a clear, held utterances are
 * reported as played as far as they were sent, and cut ones get no end mark.
 */
import type { Logger } from "../log.js";
import type { MediaClock, TimerHandle } from "./clock.js";
import type { ClearResult, TrackEndEvent } from "./pacer.js";

/** At most this many marks wait for a reply; more are skipped (their utterances end on the pacer's clock). */
export const MAX_OUTSTANDING_MARKS = 30;

export interface PlayoutMarksOptions {
  clock: MediaClock;
  /** The leg's media time (pacer clock). */
  now: () => number;
  enabled: boolean;
  /** How long after its audio should have played a mark may stay unanswered. */
  timeoutMs: number;
  /** Audio the far end buffers before playing it (added to each mark's deadline). */
  slackMs?: number;
  /** Wire name of the `seq`-th mark, for `playId`. */
  name: (playId: string, seq: number) => string;
  /** Sends a mark on the wire. */
  send: (name: string) => void;
  /** Emits a trackEnd that was held (or released by a clear or the close). */
  emit: (e: TrackEndEvent) => void;
  /** No reply came in time: marks are off for the call from now on. */
  onDisabled: (mark: string) => void;
  log?: Logger | undefined;
  legId: string;
  /** Log prefix ("audio fork", "chan_websocket"). */
  label: string;
}

interface PendingMark {
  playId: string;
  timer: TimerHandle | undefined;
}

export class PlayoutMarks {
  /** Marks not sent because MAX_OUTSTANDING_MARKS were outstanding. */
  skipped = 0;
  private on: boolean;
  private seq = 0;
  private readonly pending = new Map<string, PendingMark>();
  /** Utterances that already have their end mark (or must get none: cut by a clear). */
  private readonly marked = new Set<string>();
  /** trackEnds waiting for their utterance's end mark to be answered. */
  private readonly held = new Map<string, TrackEndEvent>();

  constructor(private readonly o: PlayoutMarksOptions) {
    this.on = o.enabled;
  }

  get enabled(): boolean {
    return this.on;
  }

  /** Marks sent and not answered yet. */
  get pendingNames(): string[] {
    return [...this.pending.keys()];
  }

  has(name: string): boolean {
    return this.pending.has(name);
  }

  /** `playId`'s last frame went out; its audio ends at media time `playsAtMs`: mark it, once. */
  markEnd(playId: string, playsAtMs: number): void {
    if (!this.on || this.marked.has(playId)) return;
    this.marked.add(playId);
    if (this.pending.size >= MAX_OUTSTANDING_MARKS) {
      this.skipped++;
      this.o.log?.debug({ legId: this.o.legId, playId }, `${this.o.label}: ${MAX_OUTSTANDING_MARKS} marks outstanding, mark skipped`);
      return;
    }
    const name = this.o.name(playId, ++this.seq);
    const mark: PendingMark = { playId, timer: undefined };
    this.pending.set(name, mark);
    mark.timer = this.arm(name, Math.max(0, playsAtMs - this.o.now()) + (this.o.slackMs ?? 0) + this.o.timeoutMs);
    this.o.send(name);
  }

  /**
   * The pacer ended an utterance. A finished one whose end mark is unanswered is held (true); one whose audio
   * was all sent before `endPlay` gets its mark now, behind its audio.
   */
  hold(e: TrackEndEvent, closed: boolean): boolean {
    if (e.reason === "finished" && !closed) this.markEnd(e.playId, this.o.now());
    this.marked.delete(e.playId);
    if (e.reason !== "finished" || !this.on || closed || !this.pendingFor(e.playId)) return false;
    this.held.set(e.playId, e);
    return true;
  }

  /** The far end answered mark `name`; the held trackEnd goes once its utterance has no mark pending. */
  answered(name: string): { playId: string } | undefined {
    const m = this.pending.get(name);
    if (!m) return undefined;
    this.pending.delete(name);
    if (m.timer) this.o.clock.clearTimer(m.timer);
    if (!this.pendingFor(m.playId)) this.release(m.playId);
    return { playId: m.playId };
  }

  /**
   * The leg was cleared: held utterances (all sent, not yet confirmed) go into `result` as played as far as sent
   * and their trackEnds are emitted; cut utterances get no end mark. `dropPending`: the far end discards marks on
   * a flush without answering them (chan_websocket), so they are forgotten.
   */
  cleared(result: ClearResult, dropPending: boolean): void {
    const held = [...this.held.values()];
    this.held.clear();
    for (const e of held) result.plays.unshift({ playId: e.playId, playedMs: e.playedMs, totalMs: e.totalMs, started: true, interrupted: false });
    if (dropPending) this.dropPending();
    for (const e of held) this.o.emit(e);
    for (const p of result.plays) if (p.interrupted) this.marked.add(p.playId);
  }

  /** Gives every pending mark a new deadline `delayMs` from now (after a flush, or behind a far-end backlog). */
  rearm(delayMs: number): void {
    for (const [name, m] of this.pending) {
      if (m.timer) this.o.clock.clearTimer(m.timer);
      m.timer = this.arm(name, delayMs);
    }
  }

  /** The leg closes: timers stop and held trackEnds are emitted. */
  close(): void {
    this.dropPending();
    this.marked.clear();
    const held = [...this.held.values()];
    this.held.clear();
    for (const e of held) this.o.emit(e);
  }

  private pendingFor(playId: string): boolean {
    for (const m of this.pending.values()) if (m.playId === playId) return true;
    return false;
  }

  private release(playId: string): void {
    const e = this.held.get(playId);
    if (!e) return;
    this.held.delete(playId);
    this.o.emit({ ...e, atMs: this.o.now() });
  }

  private dropPending(): void {
    for (const m of this.pending.values()) if (m.timer) this.o.clock.clearTimer(m.timer);
    this.pending.clear();
  }

  private arm(name: string, delayMs: number): TimerHandle {
    return this.o.clock.setTimer(() => {
      const m = this.pending.get(name);
      if (!m) return;
      m.timer = undefined;
      if (!this.on) return;
      this.on = false;
      // No confirmation will come: the pacer's clock is the ledger again.
      for (const playId of [...this.held.keys()]) this.release(playId);
      this.o.onDisabled(name);
    }, delayMs);
  }
}
