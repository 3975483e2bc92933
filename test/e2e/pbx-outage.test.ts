/**
 * The PBX goes away mid-call and comes back, again and again: the FreeSWITCH and Asterisk simulators stop
 * listening (a connect is refused, as with the process down) and listen again on the same port. The controller
 * must reconnect every time, say why in /health and /metrics while the PBX is away, reattach the calls the PBX
 * kept (their keys still arrive, and the caller hears the agent: the simulators' caller side is the proof), and
 * end with `pbxLost` (event and post-call hook) the calls a PBX restart took. The reconnect delay is measured by
 * bench/reconnect.ts, not asserted here; reconnect.test.ts pins the retry policy itself.
 */
import { describe, expect, it } from "vitest";
import { AriSim } from "../sim/asterisk/ari-sim.js";
import { asteriskMediaFactory } from "../sim/asterisk/media-peers.js";
import { AUDIBLE_RMS, FreeSwitchSim } from "../sim/freeswitch/esl-sim.js";
import { startHttpReceiver } from "../sim/http-receiver.js";
import { until, useCleanups } from "../wait.js";
import { record, silence, startServer, type TestServer } from "./harness.js";

const cleanup = useCleanups();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Outage lengths (ms) from a fixed seed: short and long ones, in an order no test author picked. */
function outageLengths(n: number, seed = 7): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 150 + (x % 1600);
  });
}

async function health(server: TestServer): Promise<Record<string, Record<string, unknown>>> {
  return ((await (await fetch(`${server.baseUrl}/health`)).json()) as { pbx: Record<string, Record<string, unknown>> }).pbx;
}

async function hooksReceiver() {
  const receiver = await startHttpReceiver();
  cleanup(() => receiver.close());
  return { url: `${receiver.origin}/hook`, hooks: () => receiver.received.map((r) => JSON.parse(r.body) as Record<string, unknown>) };
}

describe("FreeSWITCH outages mid-call (ESL port down, then back)", () => {
  it("reconnects after each outage, reports it in /health and /metrics, keeps the surviving call audible; after a restart the call ends pbxLost with a hook", async () => {
    const { url, hooks } = await hooksReceiver();
    const sim = new FreeSwitchSim();
    await sim.start();
    cleanup(() => sim.close());
    // The production reconnect settings, not shortened for the test.
    const server = await startServer({ freeswitch: { enabled: true, esl_port: sim.eslPort, outbound_listen: "127.0.0.1:0" }, posthook: { url } });
    cleanup(() => server.stop());
    await until("the ESL connection", () => server.freeswitch?.status().connected === true);
    const uuid = sim.placeCall({ caller: "100", callee: "9000", variables: { active_call: "true", active_call_playbook: "hello.md" }, audio: silence(400), loopAudio: true });
    await until("the call", () => server.calls.get(uuid)?.state === "active");
    const events = record(server, uuid);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"), 20_000);

    const lengths = outageLengths(3);
    for (const [i, ms] of lengths.entries()) {
      await sim.outage();
      await until(`outage ${i + 1} seen`, () => server.freeswitch?.status().connected === false, 5000);
      await sleep(ms);
      const down = (await health(server)).freeswitch;
      expect(down).toMatchObject({ state: "reconnecting", reconnects: i });
      // The socket's own reason, not a generic one: a refused connect is what the fast retry keys on.
      expect(down?.lastError).toMatchObject({ code: "ECONNREFUSED" });
      expect(await (await fetch(`${server.baseUrl}/ready`)).status).toBe(503);
      await sim.restore();
      await until(`reconnect ${i + 1}`, () => server.freeswitch?.status().connected === true, 10_000);
      expect((await health(server)).freeswitch).toMatchObject({ state: "connected", reconnects: i + 1 });
      // The call was kept by FreeSWITCH and reattached: its keys arrive over the new connection.
      const digit = String(i + 1);
      sim.pressDtmf(uuid, digit);
      await until(`dtmf ${digit} after reconnect ${i + 1}`, () => events.some((e) => e.event === "dtmf" && e.digit === digit));
    }
    expect(server.calls.get(uuid)?.state).toBe("active");
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toContain(`active_call_pbx_reconnects{pbx="freeswitch"} ${lengths.length}`);
    expect(metrics).toContain('active_call_pbx_connected{pbx="freeswitch"} 1');

    // The caller hears the agent after the outages: speech sent now reaches the caller's side of the channel.
    const before = sim.heard(uuid).frames.filter((f) => f.rms > AUDIBLE_RMS).length;
    const said = await fetch(`${server.baseUrl}/api/calls/${uuid}/tts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "Still here after the outage." }) });
    expect(said.status, await said.clone().text()).toBeLessThan(300);
    await until("agent audio at the caller", () => sim.heard(uuid).frames.filter((f) => f.rms > AUDIBLE_RMS).length > before + 10, 20_000);

    // A FreeSWITCH restart: the channel is gone when the controller comes back.
    await sim.outage({ restart: true });
    await sleep(300);
    await sim.restore();
    await until("the pbxLost hangup", () => events.some((e) => e.event === "hangup"), 15_000);
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "pbxLost", initiator: "system" });
    await until("the hook", () => hooks().some((h) => h.callId === uuid), 15_000);
    expect(hooks().find((h) => h.callId === uuid)).toMatchObject({ hangupReason: "pbxLost" });
  }, 120_000);
});

describe("Asterisk outages mid-call (ARI port down, then back)", () => {
  it("reconnects after each outage, reports it in /health, keeps the surviving call (keys and agent audio); after a restart the call ends pbxLost with a hook", async () => {
    const { url, hooks } = await hooksReceiver();
    const sim = await AriSim.start({ user: "active-call", password: "pw", media: asteriskMediaFactory(), eventOrder: { seed: 3 }, lateEventsMs: 30 });
    cleanup(() => sim.close());
    const min = 44000 + 2 * Math.floor(Math.random() * 4000);
    const server = await startServer({
      asterisk: { enabled: true, ari_url: sim.url, ari_password: "pw", media: "rtp", rtp_bind_ip: "127.0.0.1", rtp_port_min: min, rtp_port_max: min + 100 },
      posthook: { url },
    });
    cleanup(() => server.stop());
    await until("the ARI events socket", () => server.asterisk?.status().connected === true && sim.eventsConnections() === 1);
    const call = await sim.placeCall({ caller: "100", exten: "9000", args: ["playbook=hello.md"] });
    await until("the call", () => server.calls.get(call.id)?.state === "active");
    const events = record(server, call.id);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"), 20_000);

    const lengths = outageLengths(3, 11);
    for (const [i, ms] of lengths.entries()) {
      await sim.outage();
      await until(`outage ${i + 1} seen`, () => server.asterisk?.status().connected === false, 5000);
      await sleep(ms);
      const down = (await health(server)).asterisk;
      expect(down).toMatchObject({ state: "reconnecting", reconnects: i });
      expect(down?.lastError).toMatchObject({ code: "ECONNREFUSED" });
      await sim.restore();
      await until(`reconnect ${i + 1}`, () => server.asterisk?.status().connected === true && sim.eventsConnections() === 1, 10_000);
      const digit = String(i + 1);
      call.pressDtmf(digit);
      await until(`dtmf ${digit} after reconnect ${i + 1}`, () => events.some((e) => e.event === "dtmf" && e.digit === digit));
    }
    expect(server.calls.get(call.id)?.state).toBe("active");
    expect((await health(server)).asterisk).toMatchObject({ state: "connected", reconnects: lengths.length });

    // The caller's side of the media still gets the agent: new speech reaches the RTP peer.
    const energy = () => {
      let e = 0;
      for (const s of call.media()?.agentAudio().pcm ?? new Int16Array(0)) e += s * s;
      return e;
    };
    const before = energy();
    const said = await fetch(`${server.baseUrl}/api/calls/${call.id}/tts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "Still here after the outage." }) });
    expect(said.status, await said.clone().text()).toBeLessThan(300);
    await until("agent audio at the caller", () => energy() > before, 20_000);

    await sim.outage({ restart: true });
    await sleep(300);
    await sim.restore();
    await until("the pbxLost hangup", () => events.some((e) => e.event === "hangup"), 15_000);
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "pbxLost" });
    await until("the hook", () => hooks().some((h) => h.callId === call.id), 15_000);
    expect(hooks().find((h) => h.callId === call.id)).toMatchObject({ hangupReason: "pbxLost" });
  }, 120_000);
});
