/**
 * The Stasis application against the ARI simulator, without the call layer: what a caller entering the
 * application is handed over as (§3.3/§3.4), that our own media channels never become calls (§3.9), and what a
 * reconnect does with channels that entered the application meanwhile.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AriSim } from "../../../test/sim/asterisk/ari-sim.js";
import { asteriskMediaFactory } from "../../../test/sim/asterisk/media-peers.js";
import { sleep, until, useCleanups } from "../../../test/wait.js";
import { configSchema } from "../../config.js";
import { createLogger } from "../../log.js";
import { AsteriskAdapter, dialEndpoint, type AsteriskHandover } from "./adapter.js";

const log = createLogger({ level: "error", format: "json", redactPersonal: false, secrets: [], tty: false, noColor: true });
const cleanup = useCleanups();

function config(url: string, extra: Record<string, unknown> = {}) {
  const min = 46000 + 2 * Math.floor(Math.random() * 4000);
  return configSchema.parse({ asterisk: { enabled: true, ari_url: url, ari_password: "pw", app: "active-call", rtp_bind_ip: "127.0.0.1", rtp_port_min: min, rtp_port_max: min + 20, reconnect_min_ms: 20, reconnect_max_ms: 50, ...extra } }).asterisk;
}

async function start(extra: Record<string, unknown> = {}): Promise<{ sim: AriSim; adapter: AsteriskAdapter; handovers: AsteriskHandover[] }> {
  const sim = await AriSim.start({ user: "active-call", password: "pw", media: asteriskMediaFactory(), lateEventsMs: 30 });
  cleanup(() => sim.close());
  const handovers: AsteriskHandover[] = [];
  const adapter = new AsteriskAdapter({ config: config(sim.url, extra), log, onCall: (h) => handovers.push(h) });
  await adapter.start();
  cleanup(() => adapter.stop());
  await until("the events socket", () => adapter.status().connected && sim.eventsConnections() === 1, 5000, 10);
  return { sim, adapter, handovers };
}

describe("AsteriskAdapter (Stasis application)", () => {
  it("hands a caller over with its number, extension, Stasis arguments and X- headers", async () => {
    const { sim, handovers } = await start();
    const call = await sim.placeCall({ caller: "+15551230000", callerName: "Ada L", exten: "9000", args: ["playbook=support.md", "did=5551000", "media=websocket"], headers: { "X-Ticket": "T-42", "X-Lang": "en" } });
    await until("the handover", () => handovers.length === 1, 5000, 10);
    const h = handovers[0] as AsteriskHandover;
    expect(h.incoming).toMatchObject({
      callId: call.id,
      callType: "asterisk",
      direction: "inbound",
      caller: "+15551230000",
      callerName: "Ada L",
      callee: "9000",
      pbxPlaybook: "support.md",
      variables: { did: "5551000" },
      headers: { "X-Ticket": "T-42", "X-Lang": "en" },
      attachUrl: `/call/pbx?id=${encodeURIComponent(call.id)}`,
    });
    expect(h.control.mediaMode).toBe("websocket");
    // Nothing is answered before the call layer decides.
    expect(sim.rest.some((r) => r.path.endsWith("/answer"))).toBe(false);
  });

  it("a bare Stasis argument ending in .md names the playbook; a call without X- headers has none", async () => {
    const { sim, handovers } = await start();
    await sim.placeCall({ caller: "100", exten: "9001", args: ["sales.md"] });
    await until("the handover", () => handovers.length === 1, 5000, 10);
    expect(handovers[0]?.incoming.pbxPlaybook).toBe("sales.md");
    expect(handovers[0]?.incoming.headers).toEqual({});
    // Only variables that exist are read: Asterisk answers 500 for PJSIP_HEADERS(X-) here (live fact 6).
    expect(sim.rest.filter((r) => r.status >= 500)).toEqual([]);
  });

  it("the externalMedia channel's own StasisStart is not a call (§3.9), and media starts in the bridge", async () => {
    const { sim, handovers } = await start();
    const call = await sim.placeCall({ caller: "100", exten: "9000", args: ["playbook=hello.md"] });
    await until("the handover", () => handovers.length === 1, 5000, 10);
    const h = handovers[0] as AsteriskHandover;
    await h.control.answer();
    const media = await h.startMedia();
    expect(media.media).toEqual({ leg: "rtp", codec: "PCMU", sampleRate: 8000 });
    await sim.waitForEvent((ev) => ev.type === "StasisStart" && (ev.channel as { id?: string }).id === `ac-${call.id}-m`);
    await sleep(100);
    expect(handovers.length).toBe(1);
    expect(sim.bridge(`ac-${call.id}`)?.channels).toEqual(expect.arrayContaining([call.id, `ac-${call.id}-m`]));
    await media.leg.close();
    await until("the clean-up", () => sim.bridge(`ac-${call.id}`)?.destroyed === true, 5000, 10);
    expect(sim.channel(`ac-${call.id}-m`)?.destroyed).toBe(true);
  });

  it("after an events-socket outage, a caller that entered the application meanwhile is adopted", async () => {
    const { sim, handovers } = await start();
    sim.dropEvents();
    const waiting = await sim.placeCall({ caller: "200", exten: "9000", args: ["playbook=hello.md", "vip=yes"], app: "active-call" });
    await until("the adoption", () => handovers.length === 1, 10_000, 10);
    expect(handovers[0]?.incoming).toMatchObject({ callId: waiting.id, caller: "200", pbxPlaybook: "hello.md", variables: { vip: "yes" } });
  });

  it("the caller hanging up reports the Q.850 cause of the hangup request, not the soft flags of our own DELETE", async () => {
    const { sim, handovers } = await start();
    const call = await sim.placeCall({ caller: "100", exten: "9000" });
    await until("the handover", () => handovers.length === 1, 5000, 10);
    const ended: { cause: string; initiator: string }[] = [];
    handovers[0]?.control.events.on("hangup", (e) => ended.push(e));
    call.hangup(17);
    await until("the hangup", () => ended.length === 1, 5000, 10);
    expect(ended[0]).toMatchObject({ cause: "USER_BUSY", initiator: "caller" });
  });
});

describe("dialEndpoint", () => {
  const c = config("http://127.0.0.1:8088", { default_endpoint: "carrier", dial_template: "PJSIP/{to}@upstream" });
  it("uses the template for bare numbers, the default endpoint for SIP URIs, and a technology as given", () => {
    expect(dialEndpoint("7001", c)).toBe("PJSIP/7001@upstream");
    expect(dialEndpoint("sip:bob@example.com", c)).toBe("PJSIP/carrier/sip:bob@example.com");
    expect(dialEndpoint("Local/100@default", c)).toBe("Local/100@default");
    expect(() => dialEndpoint("1 2", c)).toThrow(/cannot be dialled/);
    expect(() => dialEndpoint("sip:bob@example.com", config("http://x:1"))).toThrow(/default_endpoint/);
  });
});

describe("the externalMedia format over RTP (live-2026-12-06 fact 4)", () => {
  /** Starts an adapter whose log lines are kept; places one call and starts its media. */
  async function callWith(asterisk: Record<string, unknown>): Promise<{ format: string | undefined; lines: Record<string, unknown>[]; heard: number }> {
    const lines: Record<string, unknown>[] = [];
    const keep = createLogger({ level: "info", format: "json", redactPersonal: false, destination: new Writable({ write: (c: Buffer, _e, done) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), done()) }) });
    const sim = await AriSim.start({ user: "active-call", password: "pw", media: asteriskMediaFactory(), lateEventsMs: 20 });
    cleanup(() => sim.close());
    const handovers: AsteriskHandover[] = [];
    const adapter = new AsteriskAdapter({ config: config(sim.url, asterisk), log: keep, onCall: (h) => handovers.push(h) });
    await adapter.start();
    cleanup(() => adapter.stop());
    await until("the events socket", () => adapter.status().connected && sim.eventsConnections() === 1, 5000, 10);
    const call = await sim.placeCall({ caller: "100", exten: "9000", args: ["playbook=hello.md"] });
    await until("the handover", () => handovers.length === 1, 5000, 10);
    const h = handovers[0] as AsteriskHandover;
    await h.control.answer();
    const { leg } = await h.startMedia();
    const tone = new Int16Array(leg.agentRate / 5).map((_, i) => Math.round(8000 * Math.sin(i / 3)));
    leg.write("t", tone);
    leg.endPlay("t");
    await sleep(400);
    const peer = call.media();
    return { format: sim.rest.find((r) => r.path === "/ari/channels/externalMedia")?.query.format, lines, heard: peer?.agentAudio().pcm.length ?? 0 };
  }

  it("unset, RTP takes ulaw, says nothing, and the caller hears the agent", async () => {
    const r = await callWith({ media: "rtp" });
    expect(r.format).toBe("ulaw");
    expect(r.heard).toBeGreaterThan(0);
    expect(r.lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
  });

  it("slin16 asked for over RTP: a start-up warning says why, ulaw is used, and the caller hears the agent", async () => {
    const r = await callWith({ media: "rtp", format: "slin16" });
    expect(r.format).toBe("ulaw");
    expect(r.heard).toBeGreaterThan(0);
    const warnings = r.lines.filter((l) => l.level === "warn");
    expect(warnings.map((w) => w.msg)).toEqual([expect.stringMatching(/^Asterisk drops slin16 RTP .* media = "rtp" uses format "ulaw"/)]);
  });

  it("slin over RTP (static PT 11) is kept; chan_websocket keeps slin16", async () => {
    expect((await callWith({ media: "rtp", format: "slin" })).format).toBe("slin");
    expect((await callWith({ media: "websocket" })).format).toBe("slin16");
  });
});
