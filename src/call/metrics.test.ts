import { afterEach, describe, expect, it } from "vitest";
import { CALL_METRIC_NAMES, CallMetrics } from "./metrics.js";

const made: CallMetrics[] = [];
const metrics = () => {
  const m = new CallMetrics();
  made.push(m);
  return m;
};
afterEach(() => made.splice(0).forEach((m) => m.close()));

describe("CallMetrics", () => {
  it("exports every metric of §7.5 with its type, plus prefixed default process metrics", async () => {
    const text = await metrics().text();
    for (const name of CALL_METRIC_NAMES) expect(text).toContain(`# HELP ${name} `);
    expect(text).toContain("# TYPE active_call_calls_active gauge");
    expect(text).toContain("# TYPE active_call_calls_total counter");
    expect(text).toContain("# TYPE active_call_call_duration_seconds histogram");
    expect(text).toContain("# TYPE active_call_turn_latency_seconds histogram");
    expect(text).toContain("# TYPE active_call_provider_ttfb_seconds histogram");
    expect(text).toContain("# TYPE active_call_event_loop_lag_seconds gauge");
    expect(text).toMatch(/^active_call_event_loop_lag_seconds \d/m);
    expect(text).toContain("active_call_process_cpu_user_seconds_total");
    expect(text).toContain("active_call_nodejs_heap_size_total_bytes");
  });

  it("records calls, turns, barge-ins, providers, hooks, PBX state and drops with the spec's labels", async () => {
    const m = metrics();
    m.callStarted("websocket");
    m.callStarted("websocket");
    m.callEnded({ type: "websocket", direction: "inbound", reason: "client", durationMs: 12_000 });
    m.turnLatency("eou", 180);
    m.turnLatency("first_audio", 640);
    m.bargeIn("vad");
    m.falseInterruption();
    m.eouSpeculation("hit");
    m.eouSpeculation("miss");
    m.providerTtfb("llm", "openai", 150);
    m.providerRequest("llm", "openai", "ok");
    m.posthookDelivery("retry");
    m.setPosthookSpooled(3);
    m.setPbxConnected("freeswitch", true);
    m.setPbxConnected("asterisk", false);
    m.mediaFramesDropped("audioFork", "in", 4);
    const text = await m.text();
    expect(text).toContain('active_call_calls_active{type="websocket"} 1');
    expect(text).toContain('active_call_calls_total{type="websocket",direction="inbound",reason="client"} 1');
    expect(text).toContain('active_call_call_duration_seconds_sum{type="websocket"} 12');
    expect(text).toContain('active_call_turn_latency_seconds_sum{stage="eou"} 0.18');
    expect(text).toContain('active_call_turn_latency_seconds_count{stage="first_audio"} 1');
    expect(text).toContain('active_call_barge_in_total{strategy="vad"} 1');
    expect(text).toMatch(/^active_call_false_interruptions_total 1$/m);
    expect(text).toContain('active_call_eou_speculation_total{outcome="miss"} 1');
    expect(text).toContain('active_call_provider_ttfb_seconds_sum{kind="llm",provider="openai"} 0.15');
    expect(text).toContain('active_call_provider_requests_total{kind="llm",provider="openai",outcome="ok"} 1');
    expect(text).toContain('active_call_posthook_deliveries_total{outcome="retry"} 1');
    expect(text).toMatch(/^active_call_posthook_spooled 3$/m);
    expect(text).toContain('active_call_pbx_connected{pbx="freeswitch"} 1');
    expect(text).toContain('active_call_pbx_connected{pbx="asterisk"} 0');
    expect(text).toContain('active_call_media_frames_dropped_total{leg="audioFork",direction="in"} 4');
  });

  it("follows each PBX link at every scrape: up or down, how often it came back, failed attempts, the last failure", async () => {
    const m = metrics();
    let fs = { connected: true, reconnects: 0, attempts: 0 } as { connected: boolean; reconnects: number; attempts: number; lastError?: { at: string } };
    m.watchPbx(() => ({ freeswitch: fs }));
    expect(await m.text()).toContain('active_call_pbx_connected{pbx="freeswitch"} 1');
    expect(await m.text()).not.toContain("active_call_pbx_last_error_timestamp_seconds{");
    fs = { connected: false, reconnects: 2, attempts: 7, lastError: { at: "2026-12-07T10:00:00.000Z" } };
    const text = await m.text();
    expect(text).toContain('active_call_pbx_connected{pbx="freeswitch"} 0');
    expect(text).toContain('active_call_pbx_reconnects{pbx="freeswitch"} 2');
    expect(text).toContain('active_call_pbx_connect_failures{pbx="freeswitch"} 7');
    expect(text).toContain(`active_call_pbx_last_error_timestamp_seconds{pbx="freeswitch"} ${Date.parse("2026-12-07T10:00:00.000Z") / 1000}`);
  });

  it("keeps instances independent and serves the 0.0.4 text format", async () => {
    const a = metrics();
    const b = metrics();
    a.callStarted("pbx");
    expect(await b.text()).not.toContain('active_call_calls_active{type="pbx"}');
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
