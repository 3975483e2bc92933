/**
 * Caller frame lag: how long a caller frame waited between the leg receiving the wire data that completed it
 * (`AudioFrame.receivedAtMs`, set by PacedLeg) and the conversation having run it through VAD (ConversationCore's
 * caller loop). One process-wide histogram, like the event-loop delay monitor: preallocated counters, `record` is a
 * few arithmetic operations and no allocation, so it can run on every frame. Read by /metrics
 * (`active_call_caller_frame_lag_seconds`) and by bench/load.
 *
 * Buckets: 0.1 ms wide below 50 ms, 10 ms wide from 50 ms to 2 s, and one overflow bucket.
 */

const FINE_MS = 0.1;
const FINE_END_MS = 50;
const COARSE_MS = 10;
const COARSE_END_MS = 2000;
const FINE = Math.round(FINE_END_MS / FINE_MS);
const COARSE = Math.round((COARSE_END_MS - FINE_END_MS) / COARSE_MS);

/** Upper edge (ms) of every bucket but the overflow one, ascending. */
export const FRAME_LAG_BUCKET_EDGES_MS: readonly number[] = Object.freeze([
  ...Array.from({ length: FINE }, (_, i) => +((i + 1) * FINE_MS).toFixed(1)),
  ...Array.from({ length: COARSE }, (_, i) => FINE_END_MS + (i + 1) * COARSE_MS),
]);

export interface LagSnapshot {
  /** Per-bucket counts (not cumulative); the last entry is the overflow bucket (> 2 s). */
  counts: number[];
  /** Upper edges in ms, one fewer than `counts`. */
  edgesMs: readonly number[];
  count: number;
  sumMs: number;
  maxMs: number;
}

export class LagHistogram {
  private readonly counts = new Float64Array(FINE + COARSE + 1);
  private n = 0;
  private sum = 0;
  private max = 0;

  record(ms: number): void {
    const v = ms > 0 ? ms : 0;
    const i = v < FINE_END_MS ? Math.floor(v / FINE_MS) : v < COARSE_END_MS ? FINE + Math.floor((v - FINE_END_MS) / COARSE_MS) : FINE + COARSE;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.n++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** A copy of the counters (allocates; for scrapes and benchmarks, never per frame). */
  snapshot(): LagSnapshot {
    return { counts: Array.from(this.counts), edgesMs: FRAME_LAG_BUCKET_EDGES_MS, count: this.n, sumMs: this.sum, maxMs: this.max };
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.sum = 0;
    this.max = 0;
  }
}

/** The process's caller frame lag (every call, every leg built on PacedLeg). */
export const callerFrameLag = new LagHistogram();
