/**
 * The pure parts of `npm run bench:load` / `bench:latency`: percentiles, the controller's frame-lag histogram
 * (media/frame-lag.ts snapshots), late and missing agent frames at a peer's clock, the verdict line and the chart.
 * No I/O, no clock.
 */

/** The p-th percentile (0-100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

export interface LagCounts {
  counts: readonly number[];
  edgesMs: readonly number[];
  count: number;
  maxMs: number;
}

/** `b - a` of two snapshots of one histogram (a window); `maxMs` is the later snapshot's (a bound, not exact). */
export function lagDelta(a: LagCounts, b: LagCounts): LagCounts {
  return { counts: b.counts.map((c, i) => c - (a.counts[i] ?? 0)), edgesMs: b.edgesMs, count: b.count - a.count, maxMs: b.maxMs };
}

/** The p-th percentile of a bucketed histogram: the upper edge of the bucket holding that rank (Infinity in the overflow). */
export function histPercentile(h: LagCounts, p: number): number {
  if (h.count <= 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * h.count));
  let cum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    cum += h.counts[i] as number;
    if (cum >= rank) return h.edgesMs[i] ?? Infinity;
  }
  return Infinity;
}

export interface GapReport {
  frames: number;
  utterances: number;
  /** Gaps between consecutive frames of one utterance longer than 1.5 frame periods. */
  late: number;
  /** Frames an utterance should have had by its span (first to last arrival) but did not get. */
  missing: number;
  maxGapMs: number;
}

/**
 * Late and missing agent frames at a peer's clock. `arrivals` are receive times (ms, ascending) of agent frames of
 * `periodMs` each; a gap of `boundaryMs` or more starts a new utterance (agent replies are seconds apart).
 */
export function frameGaps(arrivals: readonly number[], periodMs: number, boundaryMs = 1000): GapReport {
  const r: GapReport = { frames: arrivals.length, utterances: 0, late: 0, missing: 0, maxGapMs: 0 };
  let start = 0;
  const close = (from: number, to: number) => {
    // frames from index `from` to `to` inclusive form one utterance
    r.utterances++;
    const span = (arrivals[to] as number) - (arrivals[from] as number);
    r.missing += Math.max(0, Math.round(span / periodMs) + 1 - (to - from + 1));
  };
  for (let i = 1; i < arrivals.length; i++) {
    const gap = (arrivals[i] as number) - (arrivals[i - 1] as number);
    if (gap >= boundaryMs) {
      close(start, i - 1);
      start = i;
      continue;
    }
    if (gap > 1.5 * periodMs) r.late++;
    if (gap > r.maxGapMs) r.maxGapMs = gap;
  }
  if (arrivals.length > 0) close(start, arrivals.length - 1);
  return r;
}

export function addGaps(a: GapReport, b: GapReport): GapReport {
  return { frames: a.frames + b.frames, utterances: a.utterances + b.utterances, late: a.late + b.late, missing: a.missing + b.missing, maxGapMs: Math.max(a.maxGapMs, b.maxGapMs) };
}

export interface LoadStep {
  n: number;
  answered: number;
  cpuPct: number;
  lagP50Ms: number;
  lagP99Ms: number;
  loopDelayP99Ms: number;
  rssMbPerCall: number;
  late: number;
  missing: number;
  agentFrames: number;
  /** Why the ramp stopped at this step, if it did. */
  fellOver?: string;
}

/** The last line: the largest N with p99 frame lag <= 20 ms and no late or missing frames (every call answered). */
export function verdictLine(steps: readonly LoadStep[], lagLimitMs = 20): string {
  const ok = steps.filter((s) => !s.fellOver && s.answered === s.n && s.lagP99Ms <= lagLimitMs && s.late === 0 && s.missing === 0 && s.agentFrames > 0);
  const best = ok.reduce<number | undefined>((m, s) => (m === undefined || s.n > m ? s.n : m), undefined);
  return best === undefined
    ? `largest N with p99 frame lag <= ${lagLimitMs} ms and no late frames: none of ${steps.map((s) => s.n).join(", ")}`
    : `largest N with p99 frame lag <= ${lagLimitMs} ms and no late frames: ${best}`;
}

/** A text histogram of `values` on `edges` (upper bounds, ms), one line per bucket. */
export function textHistogram(values: readonly number[], edges: readonly number[], width = 40): string {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of values) {
    let i = edges.findIndex((e) => v <= e);
    if (i < 0) i = edges.length;
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const max = Math.max(1, ...counts);
  return counts
    .map((c, i) => `${(i < edges.length ? `<= ${edges[i]} ms` : `> ${edges[edges.length - 1]} ms`).padStart(12)} ${String(c).padStart(6)} ${"#".repeat(Math.round((c / max) * width))}`)
    .join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Lag p50/p99 (ms, left axis) and controller CPU (% of one core, right axis) against N. */
export function renderLoadSvg(steps: readonly LoadStep[], title: string): string {
  const W = 800;
  const H = 420;
  const m = { l: 60, r: 60, t: 40, b: 50 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const nMax = Math.max(1, ...steps.map((s) => s.n));
  const lagMax = Math.max(25, ...steps.map((s) => (Number.isFinite(s.lagP99Ms) ? s.lagP99Ms : 0)));
  const cpuMax = Math.max(100, ...steps.map((s) => s.cpuPct));
  const x = (n: number) => m.l + (n / nMax) * pw;
  const yL = (v: number) => m.t + ph - (Math.min(v, lagMax) / lagMax) * ph;
  const yC = (v: number) => m.t + ph - (v / cpuMax) * ph;
  const line = (name: string, color: string, pts: string) => `<polyline data-series="${name}" fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`;
  const pts = (f: (s: LoadStep) => number) => steps.map((s) => `${x(s.n).toFixed(1)},${f(s).toFixed(1)}`).join(" ");
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="black"/>`,
    `<line x1="${m.l + pw}" y1="${m.t}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${yL(20).toFixed(1)}" x2="${m.l + pw}" y2="${yL(20).toFixed(1)}" stroke="#888" stroke-dasharray="4 4"/>`,
    `<text x="${m.l + 4}" y="${(yL(20) - 4).toFixed(1)}" fill="#888">20 ms</text>`,
    `<text x="${m.l + pw / 2}" y="${H - 12}" text-anchor="middle">concurrent calls (N)</text>`,
    `<text x="14" y="${m.t + ph / 2}" transform="rotate(-90 14 ${m.t + ph / 2})" text-anchor="middle">frame lag (ms, max ${lagMax.toFixed(0)})</text>`,
    `<text x="${W - 14}" y="${m.t + ph / 2}" transform="rotate(90 ${W - 14} ${m.t + ph / 2})" text-anchor="middle">controller CPU (% of a core)</text>`,
    ...steps.map((s) => `<text x="${x(s.n).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${s.n}</text>`),
    line("lag-p50", "#1f77b4", pts((s) => yL(s.lagP50Ms))),
    line("lag-p99", "#d62728", pts((s) => yL(s.lagP99Ms))),
    line("cpu", "#2ca02c", pts((s) => yC(s.cpuPct))),
    `<text x="${m.l + 10}" y="${m.t + 14}" fill="#1f77b4">lag p50</text><text x="${m.l + 70}" y="${m.t + 14}" fill="#d62728">lag p99</text><text x="${m.l + 130}" y="${m.t + 14}" fill="#2ca02c">CPU</text>`,
    "</svg>",
  ];
  return out.join("\n") + "\n";
}

/**
 * Controller-added latency of each agent turn: from a `silence` decision (controller clock, ms) to the first agent
 * frame received after it (peer clock, same machine), for turns where the agent was quiet for `quietMs` before
 * the decision and answered within `withinMs`.
 */
export function turnLatencies(silences: readonly number[], arrivals: readonly number[], quietMs = 200, withinMs = 2000): number[] {
  const out: number[] = [];
  for (const t of silences) {
    const i = arrivals.findIndex((a) => a >= t);
    if (i < 0) continue;
    const prev = i > 0 ? (arrivals[i - 1] as number) : -Infinity;
    const first = arrivals[i] as number;
    if (t - prev >= quietMs && first - t <= withinMs) out.push(first - t);
  }
  return out;
}

/**
 * Barge-in decided (controller clock) -> agent audio stopped at the peer: the arrival of the last agent frame of
 * the burst that follows the decision (frames closer than `gapMs`), 0 when none came after it.
 */
export function bargeInStops(decisions: readonly number[], arrivals: readonly number[], gapMs = 200): number[] {
  return decisions.map((t) => {
    let i = arrivals.findIndex((a) => a >= t);
    if (i < 0 || (arrivals[i] as number) - t >= gapMs) return 0;
    while (i + 1 < arrivals.length && (arrivals[i + 1] as number) - (arrivals[i] as number) < gapMs) i++;
    return (arrivals[i] as number) - t;
  });
}
