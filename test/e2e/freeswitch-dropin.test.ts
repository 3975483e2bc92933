/**
 * The drop-in on a stock FreeSWITCH, as a live switch judges it (live-2026-12-06): the call's variables come from
 * routing it through the stock vanilla-conf dialplan with the project's freeswitch/ files included as FreeSWITCH
 * does, and the simulator is strict where the switch is (send_silence_when_idle latched by the park loop, fork
 * close before CHANNEL_HANGUP, events late and reordered under a seed). What counts is what the caller hears: the
 * simulator's caller-side playout clock, not what the controller sent.
 *
 * Every path of the drop-in (park DID, socket DID, a phone's 7700, originate) must carry agent audio to the caller
 * from the greeting on, log no warn or error in a normal call, and give each call its hook.
 */
import { describe, expect, it } from "vitest";
import { FreeSwitchSim } from "../sim/freeswitch/esl-sim.js";
import { startHttpReceiver, type HttpReceiver } from "../sim/http-receiver.js";
import { routeThroughDropIn, type DropInRoute } from "../sim/freeswitch/drop-in.js";
import { until, useCleanups } from "../wait.js";
import { record, silence, startServer, type TestServer } from "./harness.js";

const cleanup = useCleanups();
/** Seeds for the simulator's event order; FS_SIM_SEED pins one (to replay a failure). */
const SEEDS = process.env.FS_SIM_SEED !== undefined ? [Number(process.env.FS_SIM_SEED)] : [11, 23];

interface Rig {
  sim: FreeSwitchSim;
  server: TestServer;
  receiver: HttpReceiver;
}

async function setup(seed: number, extra: Record<string, unknown> = {}): Promise<Rig> {
  const receiver = await startHttpReceiver();
  cleanup(() => receiver.close());
  const sim = new FreeSwitchSim({ seed });
  await sim.start();
  cleanup(() => sim.close());
  const server = await startServer({
    freeswitch: { enabled: true, esl_port: sim.eslPort, outbound_listen: "127.0.0.1:0", reconnect_min_ms: 50, reconnect_max_ms: 200 },
    posthook: { url: `${receiver.origin}/hook` },
    ...extra,
  });
  cleanup(() => server.stop());
  await until("the ESL connection", () => server.freeswitch?.status().connected === true);
  return { sim, server, receiver };
}

/** Hands a routed call to the simulator the way the dialplan's final application does (park or socket). */
async function place(rig: Rig, route: DropInRoute, caller: string): Promise<string> {
  // A playbook the drop-in sets (7700) wins; the other numbers rely on [handler], which this test stands in for.
  const variables = { active_call_playbook: "hello.md", ...route.variables };
  const call = { caller, callee: route.destination, variables, audio: silence(400), loopAudio: true };
  if (route.app === "park") return rig.sim.placeCall(call);
  expect(route.app).toBe("socket");
  const [host, port] = (route.data.split(" ")[0] ?? "").split(":");
  // The drop-in names the controller's default outbound_listen; the test's controller listens on a free port.
  expect(`${host}:${port}`).toBe("127.0.0.1:8084");
  expect(route.data.split(" ").slice(1).join(" ")).toBe("async full");
  return rig.sim.connectOutbound("127.0.0.1", rig.server.freeswitch?.outboundPort ?? 0, { ...call, mode: "async full" });
}

/** The greeting reached the caller: audible frames on the simulator's RTP-side clock. */
async function expectGreetingHeard(rig: Rig, uuid: string): Promise<void> {
  await until("agent audio at the caller", () => (rig.sim.heard(uuid).frames.filter((f) => f.rms > 300).length ?? 0) >= 25, 20_000);
  const heard = rig.sim.heard(uuid);
  const answeredAt = (rig.sim.channel(uuid)?.answeredAt ?? 0) / 1000;
  // From the greeting on: the first audible frame comes within 2 s of the answer (TTS + pacing), not later.
  expect(heard.firstAudibleAtMs).toBeDefined();
  expect((heard.firstAudibleAtMs ?? 0) - answeredAt).toBeLessThan(2000);
}

describe.each(SEEDS)("the drop-in on a stock FreeSWITCH (seed %i)", (seed) => {
  it.each([
    ["a carrier DID in park mode", "public", "15551230000"],
    ["a carrier DID in socket mode", "public", "+15551230001"],
    ["a phone dialling 7700", "default", "7700"],
    ["a phone dialling 7701", "default", "7701"],
  ])("%s: the caller hears the greeting, the call ends cleanly with one hook and no warn or error", async (_name, context, dialled) => {
    const rig = await setup(seed);
    const route = routeThroughDropIn({ context, destination: dialled, caller: "+15557654321" });
    const uuid = await place(rig, route, "+15557654321");
    await until("the call", () => rig.server.calls.get(uuid) !== undefined);
    const events = record(rig.server, uuid);
    await expectGreetingHeard(rig, uuid);
    rig.sim.callerHangup(uuid);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "caller" });
    await until("the post-call hook", () => rig.receiver.received.length === 1);
    const hook = JSON.parse(rig.receiver.received[0]?.body ?? "{}") as Record<string, unknown>;
    expect(hook).toMatchObject({ callId: uuid, hangupReason: "caller" });
    // The fork closed before CHANNEL_HANGUP arrived: no restart, nothing logged above info.
    await new Promise((r) => setTimeout(r, 1200));
    expect(rig.sim.channel(uuid)?.forkStarts).toBe(1);
    expect(rig.server.problems).toEqual([]);
    expect(rig.receiver.received.length).toBe(1);
    // The dialplan set the variable: the controller did not have to.
    expect(rig.sim.commands.some((c) => c.includes(`uuid_setvar ${uuid} send_silence_when_idle`))).toBe(false);
  }, 60_000);

  it("originate: the answered callee hears the greeting ({send_silence_when_idle=-1} on the channel before &park())", async () => {
    const rig = await setup(seed);
    const res = await fetch(`${rig.server.baseUrl}/api/calls`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ to: "1001", playbook: "hello.md" }) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await until("the answer", () => rig.server.calls.get(id)?.state === "active", 10_000);
    const events = record(rig.server, id);
    expect(rig.sim.channel(id)?.vars.get("send_silence_when_idle")).toBe("-1");
    await expectGreetingHeard(rig, id);
    rig.sim.callerHangup(id);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    await until("the post-call hook", () => rig.receiver.received.length === 1);
    await new Promise((r) => setTimeout(r, 1200));
    expect(rig.server.problems).toEqual([]);
  }, 60_000);

  it("a dialplan transfer takes the fork off the channel first: no caller audio streams to us afterwards", async () => {
    const rig = await setup(seed);
    const route = routeThroughDropIn({ context: "public", destination: "15551230000", caller: "+15557654321" });
    const uuid = await place(rig, route, "+15557654321");
    await until("the call", () => rig.server.calls.get(uuid)?.state === "active");
    const events = record(rig.server, uuid);
    await expectGreetingHeard(rig, uuid);
    const res = await fetch(`${rig.server.baseUrl}/api/calls/${uuid}/transfer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ target: "9664" }) });
    expect(res.status).toBe(202);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "transferred" });
    const stop = rig.sim.commands.indexOf(`api uuid_audio_fork ${uuid} stop`);
    const transfer = rig.sim.commands.findIndex((c) => c.includes(`uuid_transfer ${uuid} 9664 XML default`));
    expect(stop).toBeGreaterThanOrEqual(0);
    expect(transfer).toBeGreaterThan(stop);
    await new Promise((r) => setTimeout(r, 500));
    const fork = rig.sim.channel(uuid)?.fork;
    expect(fork === undefined || fork.closed).toBe(true);
    expect(fork?.framesAfterTransfer ?? 0).toBe(0);
    expect(rig.server.problems).toEqual([]);
  }, 60_000);
});

describe("fail loud", () => {
  it("a channel answered and parked without send_silence_when_idle hears nothing: the call ends with a clear cause, an error naming the fix, and the reason in the hook", async () => {
    const rig = await setup(SEEDS[0] ?? 1);
    // A site's own dialplan: answer, then park, and no send_silence_when_idle (the park loop latches "none").
    const uuid = rig.sim.placeCall({ caller: "100", callee: "7700", variables: { active_call: "true", active_call_playbook: "hello.md" }, audio: silence(400), loopAudio: true, answered: true });
    await until("the call", () => rig.server.calls.get(uuid) !== undefined);
    const events = record(rig.server, uuid);
    await until("the hangup", () => events.some((e) => e.event === "hangup"), 20_000);
    expect(rig.sim.heard(uuid).frames.filter((f) => f.rms > 300)).toEqual([]);
    const hangup = events.find((e) => e.event === "hangup");
    expect(hangup).toMatchObject({ reason: "error" });
    expect(String(hangup?.detail)).toMatch(/played none of the agent audio/);
    expect(rig.sim.channel(uuid)?.killedCause).toBe("NORMAL_TEMPORARY_FAILURE");
    await until("the post-call hook", () => rig.receiver.received.length === 1);
    const hook = JSON.parse(rig.receiver.received[0]?.body ?? "{}") as Record<string, unknown>;
    expect(hook).toMatchObject({ hangupReason: "error" });
    expect(String(hook.hangupDetail)).toMatch(/played none of the agent audio/);
    const errors = rig.server.problems.filter((p) => p.level === "error");
    expect(errors.map((e) => e.msg)).toEqual(expect.arrayContaining(["send_silence_when_idle is not set on the channel: the caller may hear no agent audio", "no agent audio reached the caller; ending the call"]));
    expect(errors.every((e) => typeof e.step === "string")).toBe(true);
  }, 60_000);

  it("a fork that never connects ends the call at once with reason error and the step in the hook", async () => {
    const rig = await setup(SEEDS[0] ?? 1, {});
    rig.sim.apiHook = (cmd, args) => (cmd === "uuid_audio_fork" && args.includes("|start|") ? "-ERR Operation Failed\n" : undefined);
    const route = routeThroughDropIn({ context: "public", destination: "15551230000", caller: "+15557654321" });
    const uuid = await place(rig, route, "+15557654321");
    // The call ends at once, maybe before a listener could attach: the post-call hook is the record.
    await until("the post-call hook", () => rig.receiver.received.length === 1, 20_000);
    const hook = JSON.parse(rig.receiver.received[0]?.body ?? "{}") as Record<string, unknown>;
    expect(hook).toMatchObject({ callId: uuid, hangupReason: "error" });
    expect(String(hook.hangupDetail)).toMatch(/^media did not start: FreeSWITCH refused "uuid_audio_fork": -ERR Operation Failed/);
    await until("the channel's end", () => rig.sim.channel(uuid)?.hungUp === true);
    expect(rig.sim.channel(uuid)?.killedCause).toBe("NORMAL_TEMPORARY_FAILURE");
    expect(rig.server.problems.some((p) => p.level === "error" && p.step === "media")).toBe(true);
  }, 60_000);
});
