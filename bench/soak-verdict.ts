/**
 * The pure parts of `npm run soak` (bench/soak.ts): the least-squares fit of memory against time, the verdict on
 * growth, the accounting of calls, events and post-call hooks, and the SVG chart. No I/O, no clock.
 */

/** One sample of the controller process. */
export interface SoakSample {
  /** Seconds since the soak started. */
  t: number;
  /** V8 heap in use, MB: after a full GC when the soak could ask for one (the fitted value). */
  heapUsedMb: number;
  /** Heap in use as /metrics reported it, before that GC (MB). */
  rawHeapUsedMb?: number;
  /** How long that GC took (ms). */
  gcMs?: number;
  rssMb: number;
  /** Live calls the controller reported (`active_call_calls_active`). */
  liveCalls: number;
  /** Controller CPU since the previous sample, % of one core. */
  cpuPct: number;
  /** Event-loop lag the controller reported (ms). */
  lagMs: number;
  /** `load` while calls run; `drain` after the last call ended. */
  phase: "load" | "drain";
}

export interface Fit {
  /** Per second of `t`. */
  slope: number;
  intercept: number;
}

/** Ordinary least squares y = intercept + slope·x. Needs two distinct x; a single point gives slope 0. */
export function linearFit(xs: readonly number[], ys: readonly number[]): Fit {
  if (xs.length !== ys.length) throw new Error(`linearFit: ${xs.length} x but ${ys.length} y`);
  const n = xs.length;
  if (n === 0) return { slope: 0, intercept: 0 };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    sxx += dx * dx;
    sxy += dx * ((ys[i] as number) - my);
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

export interface GrowthFigures {
  /** Least-squares slope over the measured window, MB per minute. */
  slopeMbPerMin: number;
  /** Last minus first value of the measured window, MB. */
  growthMb: number;
  first: number;
  last: number;
  max: number;
}

export interface VerdictOptions {
  /** Fraction of the load samples skipped as warm-up (0.2 = the first 20 %). */
  warmupFraction: number;
  maxHeapSlopeMbPerMin: number;
  maxRssSlopeMbPerMin: number;
  /** Fewer measured samples than this cannot give a verdict on growth (FAIL). Default 4. */
  minSamples?: number;
}

/** What was counted over the whole soak (see {@link account}). */
export interface Accounting {
  callsStarted: number;
  callsAnswered: number;
  callsEnded: number;
  hooksReceived: number;
  /** Calls whose hook never came. */
  missingHooks: string[];
  /** Call ids with more than one hook. */
  duplicateHooks: string[];
  /** Hooks for a call id the soak never started. */
  strayHooks: string[];
  /** Calls that were started but never answered or never got their hangup event. */
  lostCalls: string[];
  /**
   * Calls with a second trackEnd for one playId (no trackStart in between), or a second trackStart without a
   * trackEnd between. A lone trackEnd of a playId never started is allowed: a dropped queued utterance (ws-call-api §3.6).
   */
  unbalancedTracks: string[];
  /** Calls whose hangup came while a track was started and never got its trackEnd. */
  openAtHangup: string[];
  /** Calls that never got the greeting's trackStart. */
  noGreeting: string[];
  /** `error` events received, over all calls. */
  errorEvents: number;
  /** Sessions the controller still listed as live after the soak. */
  leftoverSessions: number;
}

export interface Verdict {
  pass: boolean;
  heap: GrowthFigures;
  rss: GrowthFigures;
  /** Samples the fit used (after the warm-up). */
  measured: number;
  /** Why it failed; empty when it passed. */
  reasons: string[];
}

function growth(ts: readonly number[], ys: readonly number[]): GrowthFigures {
  const fit = linearFit(ts, ys);
  const first = ys[0] ?? 0;
  const last = ys[ys.length - 1] ?? 0;
  return { slopeMbPerMin: fit.slope * 60, growthMb: last - first, first, last, max: ys.length ? Math.max(...ys) : 0 };
}

/** The load samples the fit uses: the ones after the warm-up. */
export function measuredWindow(samples: readonly SoakSample[], warmupFraction: number): SoakSample[] {
  const load = samples.filter((s) => s.phase === "load");
  return load.slice(Math.floor(load.length * Math.min(Math.max(warmupFraction, 0), 0.9)));
}

/** Heap and RSS growth after the warm-up, and the verdict: slopes under their limits and nothing lost. */
export function verdict(samples: readonly SoakSample[], acc: Accounting, opts: VerdictOptions): Verdict {
  const window = measuredWindow(samples, opts.warmupFraction);
  const ts = window.map((s) => s.t);
  const heap = growth(ts, window.map((s) => s.heapUsedMb));
  const rss = growth(ts, window.map((s) => s.rssMb));
  const reasons: string[] = [];
  const minSamples = opts.minSamples ?? 4;
  if (window.length < minSamples) reasons.push(`only ${window.length} samples after the warm-up (at least ${minSamples} are needed): run longer or sample more often`);
  if (heap.slopeMbPerMin > opts.maxHeapSlopeMbPerMin) reasons.push(`heap grows ${heap.slopeMbPerMin.toFixed(2)} MB/min (limit ${opts.maxHeapSlopeMbPerMin})`);
  if (rss.slopeMbPerMin > opts.maxRssSlopeMbPerMin) reasons.push(`RSS grows ${rss.slopeMbPerMin.toFixed(2)} MB/min (limit ${opts.maxRssSlopeMbPerMin})`);
  reasons.push(...lossReasons(acc));
  return { pass: reasons.length === 0, heap, rss, measured: window.length, reasons };
}

function lossReasons(acc: Accounting): string[] {
  const out: string[] = [];
  const few = (ids: readonly string[]) => ids.slice(0, 5).join(", ") + (ids.length > 5 ? ", ..." : "");
  if (acc.callsStarted === 0) out.push("no call was started");
  if (acc.lostCalls.length) out.push(`${acc.lostCalls.length} calls lost (no answer or no hangup event): ${few(acc.lostCalls)}`);
  if (acc.missingHooks.length) out.push(`${acc.missingHooks.length} post-call hooks missing: ${few(acc.missingHooks)}`);
  if (acc.duplicateHooks.length) out.push(`${acc.duplicateHooks.length} calls got more than one hook: ${few(acc.duplicateHooks)}`);
  if (acc.strayHooks.length) out.push(`${acc.strayHooks.length} hooks for unknown calls: ${few(acc.strayHooks)}`);
  if (acc.unbalancedTracks.length) out.push(`${acc.unbalancedTracks.length} calls with a second trackEnd (or trackStart) for one playId: ${few(acc.unbalancedTracks)}`);
  if (acc.openAtHangup.length) out.push(`${acc.openAtHangup.length} calls hung up with a started track that never got its trackEnd: ${few(acc.openAtHangup)}`);
  if (acc.noGreeting.length) out.push(`${acc.noGreeting.length} calls never started the greeting: ${few(acc.noGreeting)}`);
  if (acc.errorEvents) out.push(`${acc.errorEvents} error events`);
  if (acc.leftoverSessions) out.push(`${acc.leftoverSessions} sessions still live after the soak`);
  return out;
}

/** What the soak saw of one call, from its client. */
export interface CallRecord {
  id: string;
  /** Event names in arrival order. */
  events: readonly string[];
  /** For trackStart/trackEnd events, their playId, in the same order as those events. */
  tracks: ReadonlyArray<{ event: "trackStart" | "trackEnd"; playId: string; reason?: string }>;
}

/** Counts calls, events and hooks. `hooks` are the callIds of the hooks received, in arrival order. */
export function account(calls: readonly CallRecord[], hooks: readonly string[], leftoverSessions = 0): Accounting {
  const hookCount = new Map<string, number>();
  for (const id of hooks) hookCount.set(id, (hookCount.get(id) ?? 0) + 1);
  const known = new Set(calls.map((c) => c.id));
  const acc: Accounting = {
    callsStarted: calls.length,
    callsAnswered: 0,
    callsEnded: 0,
    hooksReceived: hooks.length,
    missingHooks: [],
    duplicateHooks: [],
    strayHooks: [...hookCount.keys()].filter((id) => !known.has(id)),
    lostCalls: [],
    unbalancedTracks: [],
    openAtHangup: [],
    noGreeting: [],
    errorEvents: 0,
    leftoverSessions,
  };
  for (const c of calls) {
    const answered = c.events.includes("answer");
    const ended = c.events.includes("hangup");
    if (answered) acc.callsAnswered++;
    if (ended) acc.callsEnded++;
    if (!answered || !ended) acc.lostCalls.push(c.id);
    acc.errorEvents += c.events.filter((e) => e === "error").length;
    const n = hookCount.get(c.id) ?? 0;
    if (n === 0) acc.missingHooks.push(c.id);
    if (n > 1) acc.duplicateHooks.push(c.id);
    // Per playId: "open" after its trackStart, "ended" after its trackEnd.
    const state = new Map<string, "open" | "ended">();
    let balanced = true;
    for (const t of c.tracks) {
      const now = state.get(t.playId);
      if (t.event === "trackStart") {
        if (now === "open") balanced = false;
        state.set(t.playId, "open");
      } else {
        if (now === "ended") balanced = false;
        state.set(t.playId, "ended");
      }
    }
    if (!balanced) acc.unbalancedTracks.push(c.id);
    if ([...state.values()].includes("open")) acc.openAtHangup.push(c.id);
    if (!c.tracks.some((t) => t.event === "trackStart" && t.playId === "greeting")) acc.noGreeting.push(c.id);
  }
  return acc;
}

// ------------------------------------------------------------------------------------------------ the chart

export interface SvgOptions {
  title: string;
  width?: number;
  height?: number;
  /** Seconds at which the warm-up ends (a dashed line). */
  warmupEndT?: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A tick step of 1, 2 or 5 × 10^k giving about `target` ticks over `span`. */
export function niceStep(span: number, target = 6): number {
  if (!(span > 0)) return 1;
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

/**
 * A line chart of heap used and RSS (MB) against time (min): axes with ticks and labels, one polyline per
 * series (one point per sample, `data-series` names it), a legend and the warm-up marker.
 */
export function renderSvg(samples: readonly SoakSample[], opts: SvgOptions): string {
  const W = opts.width ?? 900;
  const H = opts.height ?? 480;
  const m = { left: 70, right: 20, top: 50, bottom: 55 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const ts = samples.map((s) => s.t / 60);
  const all = samples.flatMap((s) => [s.heapUsedMb, s.rssMb]);
  const tMax = Math.max(ts.length ? Math.max(...ts) : 0, 1 / 60);
  const yStep = niceStep(Math.max(all.length ? Math.max(...all) : 0, 1));
  const yMax = Math.ceil(Math.max(all.length ? Math.max(...all) : 0, 1) / yStep) * yStep;
  const x = (t: number) => m.left + (t / tMax) * pw;
  const y = (v: number) => m.top + ph - (v / yMax) * ph;
  const f = (n: number) => n.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  // Grid, ticks and labels.
  for (let v = 0; v <= yMax + yStep / 2; v += yStep) {
    out.push(`<line x1="${m.left}" y1="${f(y(v))}" x2="${m.left + pw}" y2="${f(y(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${+v.toFixed(6)}</text>`);
  }
  const tStep = niceStep(tMax);
  for (let t = 0; t <= tMax + tStep / 1000; t += tStep) {
    out.push(`<line x1="${f(x(t))}" y1="${m.top + ph}" x2="${f(x(t))}" y2="${m.top + ph + 5}" stroke="black"/>`);
    out.push(`<text x="${f(x(t))}" y="${m.top + ph + 18}" text-anchor="middle">${+t.toFixed(6)}</text>`);
  }
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="black"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="black"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">time (min)</text>`);
  out.push(`<text x="18" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">MB</text>`);
  if (opts.warmupEndT !== undefined) {
    const wx = f(x(opts.warmupEndT / 60));
    out.push(`<line x1="${wx}" y1="${m.top}" x2="${wx}" y2="${m.top + ph}" stroke="#888" stroke-dasharray="4 4"/>`);
    out.push(`<text x="${wx}" y="${m.top - 4}" text-anchor="middle" fill="#888">warm-up</text>`);
  }
  const series: Array<{ name: string; color: string; value: (s: SoakSample) => number }> = [
    { name: "heap", color: "#1f77b4", value: (s) => s.heapUsedMb },
    { name: "rss", color: "#d62728", value: (s) => s.rssMb },
  ];
  series.forEach((s, i) => {
    const pts = samples.map((p, k) => `${f(x(ts[k] as number))},${f(y(s.value(p)))}`).join(" ");
    out.push(`<polyline data-series="${s.name}" fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`);
    const ly = m.top + 12 + i * 16;
    out.push(`<line x1="${m.left + 12}" y1="${ly - 4}" x2="${m.left + 32}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + 38}" y="${ly}">${s.name === "heap" ? "heap used after GC (MB)" : "RSS (MB)"}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
