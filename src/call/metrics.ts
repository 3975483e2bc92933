/**
 * Prometheus metrics of ws-call-api.md §7.5, on a registry of their own (one per instance, never prom-client's
 * global one, so tests and several apps in one process stay independent). The call layer reports through the
 * methods below; labels are small fixed sets (call type, stage, vendor, ...), never per-call values.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { callerFrameLag } from "../media/frame-lag.js";

export const METRIC_PREFIX = "active_call_";

export type TurnStage = "eou" | "asr" | "llm_ttft" | "tts_ttfb" | "first_audio";
export type EouSpeculationOutcome = "hit" | "miss";
export type PosthookOutcome = "ok" | "retry" | "failed";
export type ProviderKind = "asr" | "llm" | "tts" | "realtime" | (string & {});

export interface CallEndedInfo {
  type: string;
  direction: "inbound" | "outbound" | (string & {});
  reason: string;
  /** Answer → hangup; omit (or leave undefined) for a call that was never answered. */
  durationMs?: number;
}

export interface CallMetricsOptions {
  /** Node process metrics (`active_call_process_*`, `active_call_nodejs_*`); default true. */
  defaultMetrics?: boolean;
}

/** Every histogram/gauge/counter name of §7.5, for tests and docs. */
/** What the metrics read of a PBX link (reconnect.ts LinkStatus). */
export interface PbxLinkView {
  connected: boolean;
  reconnects?: number;
  attempts?: number;
  lastError?: { at: string };
}

export const CALL_METRIC_NAMES = [
  "active_call_calls_active",
  "active_call_calls_total",
  "active_call_call_duration_seconds",
  "active_call_turn_latency_seconds",
  "active_call_barge_in_total",
  "active_call_false_interruptions_total",
  "active_call_eou_speculation_total",
  "active_call_provider_ttfb_seconds",
  "active_call_provider_requests_total",
  "active_call_posthook_deliveries_total",
  "active_call_posthook_spooled",
  "active_call_pbx_connected",
  "active_call_pbx_reconnects",
  "active_call_pbx_connect_failures",
  "active_call_pbx_last_error_timestamp_seconds",
  "active_call_media_frames_dropped_total",
  "active_call_event_loop_lag_seconds",
  "active_call_caller_frame_lag_seconds",
] as const;

const FRAME_LAG_EXPOSED_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000];

/** `active_call_caller_frame_lag_seconds`: caller frame received -> VAD decision, cumulative since start. */
function frameLagMetric() {
  const name = "active_call_caller_frame_lag_seconds";
  return {
    name,
    help: "Caller frame lag: wire data received -> the frame's VAD decision",
    type: "histogram",
    aggregator: "sum",
    get() {
      const s = callerFrameLag.snapshot();
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      let cum = 0;
      let edge = 0;
      for (const le of FRAME_LAG_EXPOSED_MS) {
        while (edge < s.edgesMs.length && (s.edgesMs[edge] as number) <= le + 1e-9) cum += s.counts[edge++] as number;
        values.push({ metricName: `${name}_bucket`, labels: { le: le / 1000 }, value: cum });
      }
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf" }, value: s.count });
      values.push({ metricName: `${name}_sum`, labels: {}, value: s.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: {}, value: s.count });
      return { name, help: this.help, type: "histogram", values, aggregator: "sum" };
    },
  };
}

const LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

const seconds = (ms: number) => Math.max(0, ms) / 1000;

/** Sampling period of the event-loop delay monitor. */
const LOOP_RESOLUTION_MS = 20;

export class CallMetrics {
  readonly registry: Registry;
  private readonly loopDelay: IntervalHistogram;

  private readonly callsActive: Gauge<"type">;
  private readonly callsTotal: Counter<"type" | "direction" | "reason">;
  private readonly callDuration: Histogram<"type">;
  private readonly turnLatencyHist: Histogram<"stage">;
  private readonly bargeInTotal: Counter<"strategy">;
  private readonly falseInterruptions: Counter;
  private readonly eouSpeculationTotal: Counter<"outcome">;
  private readonly providerTtfbHist: Histogram<"kind" | "provider">;
  private readonly providerRequests: Counter<"kind" | "provider" | "outcome">;
  private readonly posthookDeliveries: Counter<"outcome">;
  private readonly posthookSpooled: Gauge;
  private readonly pbxConnected: Gauge<"pbx">;
  /** Read at every scrape: the PBX adapters' connection state (set by the server once they exist). */
  private pbxStatus: (() => Record<string, PbxLinkView>) | undefined;
  private readonly framesDropped: Counter<"leg" | "direction">;

  constructor(options: CallMetricsOptions = {}) {
    const registers = [(this.registry = new Registry())];
    this.callsActive = new Gauge({ name: "active_call_calls_active", help: "Live calls", labelNames: ["type"], registers });
    this.callsTotal = new Counter({
      name: "active_call_calls_total",
      help: "Ended calls by hangup reason",
      labelNames: ["type", "direction", "reason"],
      registers,
    });
    this.callDuration = new Histogram({
      name: "active_call_call_duration_seconds",
      help: "Call duration, answer to hangup",
      labelNames: ["type"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.turnLatencyHist = new Histogram({
      name: "active_call_turn_latency_seconds",
      help: "Per-turn stage latency",
      labelNames: ["stage"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.bargeInTotal = new Counter({ name: "active_call_barge_in_total", help: "Barge-ins acted on", labelNames: ["strategy"], registers });
    this.falseInterruptions = new Counter({
      name: "active_call_false_interruptions_total",
      help: "Barge-ins that produced no words (agent resumed)",
      registers,
    });
    this.eouSpeculationTotal = new Counter({
      name: "active_call_eou_speculation_total",
      help: "Early end-of-turn replies kept (hit) or discarded (miss)",
      labelNames: ["outcome"],
      registers,
    });
    this.providerTtfbHist = new Histogram({
      name: "active_call_provider_ttfb_seconds",
      help: "ASR/LLM/TTS time to first byte",
      labelNames: ["kind", "provider"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.providerRequests = new Counter({
      name: "active_call_provider_requests_total",
      help: "Vendor calls",
      labelNames: ["kind", "provider", "outcome"],
      registers,
    });
    this.posthookDeliveries = new Counter({
      name: "active_call_posthook_deliveries_total",
      help: "Post-call hook deliveries",
      labelNames: ["outcome"],
      registers,
    });
    this.posthookSpooled = new Gauge({ name: "active_call_posthook_spooled", help: "Hooks waiting in the spool", registers });
    const readPbx = () => this.pbxStatus?.() ?? {};
    this.pbxConnected = new Gauge({
      name: "active_call_pbx_connected",
      help: "1 when the ESL/ARI connection is up",
      labelNames: ["pbx"],
      registers,
      collect() {
        for (const [pbx, s] of Object.entries(readPbx())) this.set({ pbx }, s.connected ? 1 : 0);
      },
    });
    const perPbx = (name: string, help: string, value: (s: PbxLinkView) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["pbx"],
        registers,
        collect() {
          for (const [pbx, s] of Object.entries(readPbx())) {
            const v = value(s);
            if (v !== undefined) this.set({ pbx }, v);
          }
        },
      });
    perPbx("active_call_pbx_reconnects", "Times the ESL/ARI connection came back after it had been up", (s) => s.reconnects);
    perPbx("active_call_pbx_connect_failures", "Failed ESL/ARI connection attempts since the connection was last up", (s) => s.attempts);
    perPbx("active_call_pbx_last_error_timestamp_seconds", "When the ESL/ARI connection last failed (unix seconds)", (s) =>
      s.lastError ? Date.parse(s.lastError.at) / 1000 : undefined,
    );
    this.framesDropped = new Counter({
      name: "active_call_media_frames_dropped_total",
      help: "Media frames dropped by overflow policies",
      labelNames: ["leg", "direction"],
      registers,
    });

    // Mean event-loop delay since the previous scrape. The histogram records each sampling timer's whole wait,
    // resolution included (an idle loop reads ~20 ms), so the resolution is taken off: lag is the lateness.
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loopDelay.enable();
    const loopDelay = this.loopDelay;
    new Gauge({
      name: "active_call_event_loop_lag_seconds",
      help: "Node event-loop lag (mean delay since the previous scrape)",
      registers,
      collect() {
        const mean = loopDelay.count > 0 ? loopDelay.mean : 0;
        this.set(Number.isFinite(mean) ? Math.max(0, mean / 1e6 - LOOP_RESOLUTION_MS) / 1000 : 0);
        loopDelay.reset();
      },
    });

    // Caller frame lag (media/frame-lag.ts): the process-wide preallocated histogram, exposed at scrape time on
    // coarser Prometheus buckets (a prom-client Histogram would hash labels on every frame).
    this.registry.registerMetric(frameLagMetric() as unknown as Parameters<Registry["registerMetric"]>[0]);

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** `text/plain; version=0.0.4; charset=utf-8`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops the event-loop monitor (the registry stays readable). */
  close(): void {
    this.loopDelay.disable();
  }

  callStarted(type: string): void {
    this.callsActive.inc({ type });
  }

  callEnded(info: CallEndedInfo): void {
    this.callsActive.dec({ type: info.type });
    this.callsTotal.inc({ type: info.type, direction: info.direction, reason: info.reason });
    if (info.durationMs !== undefined && Number.isFinite(info.durationMs)) this.callDuration.observe({ type: info.type }, seconds(info.durationMs));
  }

  turnLatency(stage: TurnStage, ms: number): void {
    if (Number.isFinite(ms)) this.turnLatencyHist.observe({ stage }, seconds(ms));
  }

  bargeIn(strategy: string): void {
    this.bargeInTotal.inc({ strategy });
  }

  falseInterruption(): void {
    this.falseInterruptions.inc();
  }

  eouSpeculation(outcome: EouSpeculationOutcome): void {
    this.eouSpeculationTotal.inc({ outcome });
  }

  providerTtfb(kind: ProviderKind, provider: string, ms: number): void {
    if (Number.isFinite(ms)) this.providerTtfbHist.observe({ kind, provider }, seconds(ms));
  }

  providerRequest(kind: ProviderKind, provider: string, outcome: string): void {
    this.providerRequests.inc({ kind, provider, outcome });
  }

  posthookDelivery(outcome: PosthookOutcome): void {
    this.posthookDeliveries.inc({ outcome });
  }

  setPosthookSpooled(n: number): void {
    this.posthookSpooled.set(n);
  }

  /** The gauge follows `status` at every scrape from now on. */
  watchPbx(status: () => Record<string, PbxLinkView>): void {
    this.pbxStatus = status;
  }

  setPbxConnected(pbx: string, up: boolean): void {
    this.pbxConnected.set({ pbx }, up ? 1 : 0);
  }

  mediaFramesDropped(leg: string, direction: string, n = 1): void {
    if (n > 0) this.framesDropped.inc({ leg, direction }, n);
  }
}
