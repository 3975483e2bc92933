/**
 * Whole FreeSWITCH calls: the controller drives the FreeSWITCH simulator (ESL byte-for-byte as recorded from
 * FreeSWITCH 1.10.12, and a real mod_audio_fork-style WebSocket) and takes the call's audio from the fork.
 * inbound call -> greeting plays -> caller speech -> reply -> DTMF -> transfer -> hangup -> post-call hook.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import { FreeSwitchSim } from "../sim/freeswitch/esl-sim.js";
import { startHttpReceiver } from "../sim/http-receiver.js";
import { until, useCleanups } from "../wait.js";
import { fliteSpeech, record, silence, startServer, type TestServer } from "./harness.js";

const cleanup = useCleanups();

async function setup(extra: Record<string, unknown> = {}): Promise<{ sim: FreeSwitchSim; server: TestServer }> {
  const sim = new FreeSwitchSim();
  await sim.start();
  cleanup(() => sim.close());
  const server = await startServer({ freeswitch: { enabled: true, esl_port: sim.eslPort, outbound_listen: "127.0.0.1:0", reconnect_min_ms: 50, reconnect_max_ms: 200 }, ...extra });
  cleanup(() => server.stop());
  await until("the ESL connection", () => server.freeswitch?.status().connected === true);
  return { sim, server };
}

/** A caller on extension 9000 that the dialplan parks for the controller with hello.md; silence until told. */
function placeHello(sim: FreeSwitchSim): string {
  return sim.placeCall({ caller: "100", callee: "9000", variables: { active_call: "true", active_call_playbook: "hello.md" }, audio: silence(400), loopAudio: true });
}

describe("FreeSWITCH inbound (park + ESL)", () => {
  it("greets, hears the caller, answers, takes DTMF, transfers, and sends the post-call hook", async () => {
    const receiver = await startHttpReceiver();
    cleanup(() => receiver.close());
    const { sim, server } = await setup({ posthook: { url: `${receiver.origin}/hook` } });

    const uuid = sim.placeCall({
      caller: "+15551230000",
      callee: "9000",
      variables: { active_call: "true", active_call_playbook: "hello.md", active_call_var_customer: "Ada", "sip_h_X-Ticket": "T-42" },
      audio: silence(400),
      loopAudio: true,
    });
    await until("the call", () => server.calls.get(uuid) !== undefined);
    const events = record(server, uuid);
    const call = server.calls.get(uuid);
    expect(call?.callType).toBe("freeswitch");
    expect(call?.variables).toMatchObject({ customer: "Ada" });

    // The controller answered, started the fork (10-argument form) and the greeting streams into the channel.
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    const ch = sim.channel(uuid);
    expect(ch?.answered).toBe(true);
    // This dialplan lacks send_silence_when_idle: the controller set it before answering, while the park loop
    // could still read it (set after the answer it would change nothing and the caller would hear silence).
    const setvar = sim.commands.findIndex((c) => c.startsWith(`api uuid_setvar ${uuid} send_silence_when_idle -1`));
    expect(setvar).toBeGreaterThanOrEqual(0);
    expect(setvar).toBeLessThan(sim.commands.indexOf(`api uuid_answer ${uuid}`));
    expect(ch?.silenceLatched).toBe(true);
    // What the caller heard, on the RTP side: the greeting, not only what the controller sent.
    const audible = () => sim.heard(uuid).frames.filter((f) => f.rms > 300).length;
    expect(audible()).toBeGreaterThan(25);
    expect(sim.commands.find((c) => c.includes("uuid_audio_fork ^^|"))).toMatch(new RegExp(`^api uuid_audio_fork \\^\\^\\|${uuid}\\|start\\|ws://127\\.0\\.0\\.1:\\d+/media/fork/${uuid}\\?token=[\\w-]+\\|mono\\|16k\\|audio_fork\\|\\{"callId":"${uuid}"\\}\\|true\\|true\\|16000$`));
    expect(ch?.agentAudioBytes).toBeGreaterThan(32_000);

    // The caller speaks; the agent answers.
    sim.setCallerAudio(uuid, new Int16Array([...fliteSpeech("please transfer me to billing"), ...silence(2000)]), false);
    await until("the transcript", () => events.some((e) => e.event === "asrFinal"));
    expect(String(events.find((e) => e.event === "asrFinal")?.text)).toMatch(/billing/);
    const before = ch?.agentAudioBytes ?? 0;
    const heardBefore = audible();
    await until("the reply", () => events.some((e) => e.event === "trackEnd" && e.playId !== "greeting"));
    expect((sim.channel(uuid)?.agentAudioBytes ?? 0) - before).toBeGreaterThan(16_000);
    expect(audible() - heardBefore).toBeGreaterThan(25);

    // DTMF from the caller (RFC 2833 via the PBX).
    sim.pressDtmf(uuid, "5");
    await until("the dtmf event", () => events.some((e) => e.event === "dtmf"));
    expect(events.find((e) => e.event === "dtmf")).toMatchObject({ digit: "5", durationMs: 280, source: "rfc2833" });

    // REST transfer into the dialplan: the PBX takes the call back, the session ends `transferred`.
    const res = await fetch(`${server.baseUrl}/api/calls/${uuid}/transfer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ target: "1001" }) });
    expect(res.status).toBe(202);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(sim.channel(uuid)?.transferredTo).toMatch(/^1001 XML default/);
    expect(events.filter((e) => e.event === "transfer").map((e) => e.state)).toEqual(["requested", "accepted"]);
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "transferred" });

    await until("the post-call hook", () => receiver.received.length === 1);
    expect(JSON.parse(receiver.received[0]?.body ?? "{}")).toMatchObject({ event: "call.ended", callId: uuid, callType: "freeswitch", hangupReason: "transferred", playbook: "hello.md" });
  }, 90_000);

  it("a fork that drops while the call lives is restarted once on the same leg, and the call goes on", async () => {
    const { sim, server } = await setup();
    const uuid = placeHello(sim);
    await until("the call", () => server.calls.get(uuid)?.state === "active");
    const events = record(server, uuid);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    sim.dropFork(uuid);
    await until("the restart", () => (sim.channel(uuid)?.forkStarts ?? 0) === 2, 10_000);
    expect(sim.commands).toContain(`api uuid_audio_fork ${uuid} stop`);
    expect(server.calls.get(uuid)?.state).toBe("active");
    sim.setCallerAudio(uuid, new Int16Array([...fliteSpeech("please transfer me to billing"), ...silence(2000)]), false);
    await until("the transcript after the restart", () => events.some((e) => e.event === "asrFinal"), 20_000);
    expect(events.some((e) => e.event === "hangup")).toBe(false);
  }, 60_000);

  it("plays pbx: urls on FreeSWITCH (sendmsg playback), reports them as tracks, and stops them with uuid_break on interrupt", async () => {
    const { sim, server } = await setup();
    const uuid = placeHello(sim);
    await until("the call", () => server.calls.get(uuid)?.state === "active");
    const events = record(server, uuid);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    const post = (body: object) => fetch(`${server.baseUrl}/api/calls/${uuid}/play`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ url: "pbx:tone_stream://%(200,0,440)", playId: "beep" })).status).toBe(202);
    await until("the beep's end", () => events.some((e) => e.event === "trackEnd" && e.playId === "beep"));
    expect(events.filter((e) => e.playId === "beep").map((e) => `${e.event}:${String(e.reason ?? "")}`)).toEqual(["trackStart:", "trackEnd:finished"]);
    expect(sim.channel(uuid)?.executed.some((x) => JSON.stringify(x).includes("tone_stream://%(200,0,440)"))).toBe(true);

    expect((await post({ url: "pbx:/usr/share/freeswitch/sounds/music/hold.wav", playId: "hold", loop: 0 })).status).toBe(202);
    await until("the hold music", () => events.some((e) => e.event === "trackStart" && e.playId === "hold"));
    // pause/resume toggle the PBX's playback with uuid_fileman (a toggle: sent once per change).
    const fileman = () => sim.commands.filter((c) => c === `api uuid_fileman ${uuid} pause`).length;
    await fetch(`${server.baseUrl}/api/calls/${uuid}/commands`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ command: "pause" }) });
    await until("the pause", () => fileman() === 1, 5000);
    await fetch(`${server.baseUrl}/api/calls/${uuid}/commands`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ command: "resume" }) });
    await until("the resume", () => fileman() === 2, 5000);
    const breaks = sim.channel(uuid)?.breaks ?? 0;
    await fetch(`${server.baseUrl}/api/calls/${uuid}/commands`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ command: "interrupt" }) });
    await until("the hold music's end", () => events.some((e) => e.event === "trackEnd" && e.playId === "hold"));
    expect(events.find((e) => e.event === "trackEnd" && e.playId === "hold")?.reason).toBe("interrupted");
    expect(sim.channel(uuid)?.breaks).toBeGreaterThan(breaks);
  }, 60_000);

  it("a playbook key transfer that the PBX refuses hands the call back to the agent: the caller's next turn is answered", async () => {
    const { sim, server } = await setup();
    // hello.md with a key that refers the caller to a desk.
    const hello = await readFile(join(server.dir, "playbooks", "hello.md"), "utf8");
    await writeFile(join(server.dir, "playbooks", "desk.md"), hello.replace("followup:", 'dtmf:\n  "0": { action: refer, target: "sip:desk@example.com" }\nfollowup:'));
    sim.deflectBehavior = () => ({ sipfrag: "SIP/2.0 486 Busy Here" });
    const uuid = sim.placeCall({ caller: "100", callee: "9000", variables: { active_call: "true", active_call_playbook: "desk.md" }, audio: silence(400), loopAudio: true });
    await until("the call", () => server.calls.get(uuid)?.state === "active");
    const events = record(server, uuid);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    sim.pressDtmf(uuid, "0");
    await until("the failed transfer", () => events.some((e) => e.event === "transfer" && e.state === "failed"));
    expect(sim.channel(uuid)?.deflectedTo).toBe("sip:desk@example.com");
    const tracks = events.filter((e) => e.event === "trackStart").length;
    sim.setCallerAudio(uuid, new Int16Array([...fliteSpeech("hello there"), ...silence(2000)]), false);
    await until("the transcript", () => events.some((e) => e.event === "asrFinal"), 20_000);
    await until("the agent's answer", () => events.filter((e) => e.event === "trackStart").length > tracks, 20_000);
    expect(server.calls.get(uuid)?.state).toBe("active");
  }, 60_000);

  it("refer: uuid_deflect, the NOTIFY's outcome decides: 200 ends the call `refer`, 486 keeps it; DTMF out goes by uuid_send_dtmf", async () => {
    const { sim, server } = await setup();
    const place = () => placeHello(sim);
    const send = (id: string, body: object) => fetch(`${server.baseUrl}/api/calls/${id}/commands`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    const busy = place();
    await until("the call", () => server.calls.get(busy)?.state === "active");
    const busyEvents = record(server, busy);
    sim.deflectBehavior = () => ({ sipfrag: "SIP/2.0 486 Busy Here" });
    expect((await send(busy, { command: "refer", callee: "sip:bob@example.com" })).status).toBe(202);
    await until("the failed transfer", () => busyEvents.some((e) => e.event === "transfer" && e.state === "failed"));
    expect(busyEvents.find((e) => e.state === "failed")).toMatchObject({ mode: "refer", code: 486 });
    expect(sim.channel(busy)?.deflectedTo).toBe("sip:bob@example.com");
    expect(sim.commands).toContain(`api uuid_setvar ${busy} sip_refer_continue_after_reply true`);
    expect(server.calls.get(busy)?.state).toBe("active");
    expect((await send(busy, { command: "dtmf", digits: "12#", durationMs: 120 })).status).toBe(202);
    await until("the DTMF", () => sim.commands.includes(`api uuid_send_dtmf ${busy} 12#@120`), 5000);

    const ok = place();
    await until("the second call", () => server.calls.get(ok)?.state === "active");
    const okEvents = record(server, ok);
    sim.deflectBehavior = () => ({ sipfrag: "SIP/2.0 200 OK" });
    sim.channel(ok)?.vars.set("sip_local_network_addr", "192.0.2.10");
    expect((await send(ok, { command: "refer", callee: "bob" })).status).toBe(202);
    await until("the hangup", () => okEvents.some((e) => e.event === "hangup"));
    expect(okEvents.filter((e) => e.event === "transfer").map((e) => e.state)).toEqual(["requested", "accepted"]);
    expect(okEvents.find((e) => e.event === "hangup")).toMatchObject({ reason: "refer" });
    // A bare user is completed with the SIP address of the channel's profile.
    expect(sim.channel(ok)?.deflectedTo).toBe("sip:bob@192.0.2.10");
    expect(sim.channel(ok)?.killedCause).toBe("BLIND_TRANSFER");
  }, 60_000);

  it("a caller hangup ends the session; a call nobody routes is rejected with 503 by `respond`", async () => {
    const { sim, server } = await setup();
    const routed = placeHello(sim);
    await until("the call", () => server.calls.get(routed)?.state === "active");
    const events = record(server, routed);
    sim.callerHangup(routed);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "caller", initiator: "caller" });
    // The controller does not kill a channel that is already gone.
    expect(sim.commands.filter((c) => c.startsWith(`api uuid_kill ${routed}`))).toEqual([]);

    const unrouted = sim.placeCall({ caller: "100", callee: "777", variables: { active_call: "true" } });
    // The session is marked ended before `respond` goes out over ESL (so the PBX's hangup cannot re-label it):
    // wait for what the caller gets, the simulator's record of the respond, as well as for the ended state.
    await until("the rejection", () => server.calls.get(unrouted)?.state === "ended" && sim.channel(unrouted)?.respondedWith !== undefined);
    expect(sim.channel(unrouted)?.respondedWith).toMatch(/^503/);
    expect(server.calls.get(unrouted)?.hangupInfo).toMatchObject({ reason: "rejected" });
  }, 60_000);

  it("an ESL outage: /ready says degraded, the controller reconnects, a surviving call is reattached, one that vanished ends pbxLost", async () => {
    const { sim, server } = await setup();
    const place = () => placeHello(sim);
    const uuid = place();
    const survivor = place();
    await until("the calls", () => server.calls.get(uuid)?.state === "active" && server.calls.get(survivor)?.state === "active");
    const events = record(server, uuid);
    const survivorEvents = record(server, survivor);
    sim.dropConnections(300);
    await until("the outage", () => server.freeswitch?.status().connected === false, 5000);
    const ready = await fetch(`${server.baseUrl}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: "degraded", freeswitch: { connected: false } });
    // The channel disappears while we are away (no event reaches us).
    sim.vanish(uuid);
    await until("the reconnect", () => server.freeswitch?.status().connected === true, 10_000);
    await until("the pbxLost hangup", () => events.some((e) => e.event === "hangup"), 10_000);
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "pbxLost", initiator: "system" });
    expect((await fetch(`${server.baseUrl}/ready`)).status).toBe(200);
    // The survivor goes on over the new connection: its DTMF arrives, and a hangup reaches FreeSWITCH.
    expect(server.calls.get(survivor)?.state).toBe("active");
    sim.pressDtmf(survivor, "7");
    await until("the survivor's dtmf", () => survivorEvents.some((e) => e.event === "dtmf" && e.digit === "7"));
    const bye = await fetch(`${server.baseUrl}/api/calls/${survivor}/hangup`, { method: "POST" });
    expect(bye.status, await bye.clone().text()).toBe(202);
    await until("the kill", () => sim.channel(survivor)?.killedCause !== undefined, 5000);
  }, 60_000);
});

describe("FreeSWITCH file playback mode (playback = \"file\")", () => {
  it("sends each utterance as playAudio and plays the file FreeSWITCH reports, one at a time, with trackStart/trackEnd from PLAYBACK events", async () => {
    const sim = new FreeSwitchSim();
    await sim.start();
    cleanup(() => sim.close());
    const server = await startServer({ freeswitch: { enabled: true, esl_port: sim.eslPort, outbound_listen: "", playback: "file" } });
    cleanup(() => server.stop());
    await until("the ESL connection", () => server.freeswitch?.status().connected === true);
    const uuid = placeHello(sim);
    await until("the call", () => server.calls.get(uuid) !== undefined);
    const events = record(server, uuid);
    await until("the greeting's end", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"), 20_000);
    expect(sim.commands.find((c) => c.includes("uuid_audio_fork ^^|"))).toMatch(/\|true\|false\|0$/);
    const broadcasts = sim.channel(uuid)?.broadcasts ?? [];
    expect(broadcasts.length).toBeGreaterThan(0);
    expect(broadcasts[0]).toMatch(new RegExp(`${uuid}_\\d+\\.tmp\\.r16`));
    expect(events.filter((e) => e.playId === "greeting").map((e) => e.event)).toEqual(["trackStart", "trackEnd"]);
    expect(events.find((e) => e.event === "trackEnd")).toMatchObject({ reason: "finished" });
  }, 60_000);
});

describe("FreeSWITCH originate (POST /api/calls)", () => {
  it("dials with bgapi originate and origination_uuid, rings, answers, plays the playbook; a busy callee is rejected 486", async () => {
    const { sim, server } = await setup();
    const res = await fetch(`${server.baseUrl}/api/calls`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to: "1001", from: "5550100", playbook: "hello.md", headers: { "X-Campaign": "a,b" } }),
    });
    expect(res.status).toBe(201);
    const { id, state } = (await res.json()) as { id: string; state: string };
    expect(state).toBe("dialing");
    const events = record(server, id);
    const dialled = sim.commands.find((c) => c.startsWith("bgapi originate"));
    expect(dialled).toBe(
      `bgapi originate {origination_uuid=${id},origination_caller_id_number=5550100,origination_caller_id_name='active-call',originate_timeout=30,active_call=true,send_silence_when_idle=-1,sip_h_X-Campaign=a\\,b}user/1001 &park()`,
    );
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    expect(events.map((e) => e.event).slice(0, 3)).toEqual(["ringing", "answer", "trackStart"]);
    expect(server.calls.get(id)?.direction).toBe("outbound");
    expect(sim.channel(id)?.agentAudioBytes).toBeGreaterThan(32_000);
    await fetch(`${server.baseUrl}/api/calls/${id}`, { method: "DELETE" });
    await until("the kill", () => sim.channel(id)?.killedCause !== undefined, 5000);

    sim.originateBehavior = () => ({ result: "fail", cause: "USER_BUSY" });
    const busy = (await (await fetch(`${server.baseUrl}/api/calls`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ to: "1002" }) })).json()) as { id: string };
    const busyEvents = record(server, busy.id);
    await until("the rejection", () => busyEvents.some((e) => e.event === "hangup"));
    expect(busyEvents.map((e) => e.event)).toEqual(["ringing", "reject", "hangup"]);
    expect(busyEvents[1]).toMatchObject({ code: 486, reason: "USER_BUSY" });
    expect(busyEvents[2]).toMatchObject({ reason: "rejected", initiator: "system" });
  }, 60_000);
});

describe("FreeSWITCH originate over /call/pbx", () => {
  it("an invite for an unknown id dials option.callee and the socket controls the call", async () => {
    const { sim, server } = await setup();
    const id = "5b1f6f0e-3c1a-4c55-9d52-0d6a1d1c2f10";
    const client = await CallClient.connect(server.wsUrl, { path: "/call/pbx", id });
    client.invite({ callee: "sip:alice@example.com", caller: "5550101", playbook: "hello.md" });
    expect((await client.waitFor("ringing", undefined, 10_000)).earlyMedia).toBe(false);
    await client.waitFor("answer", undefined, 10_000);
    await client.waitFor("trackStart", (e) => e.playId === "greeting", 10_000);
    expect(sim.commands.find((c) => c.startsWith("bgapi originate"))).toContain(`origination_uuid=${id},origination_caller_id_number=5550101`);
    expect(sim.commands.find((c) => c.startsWith("bgapi originate"))).toMatch(/}sofia\/internal\/alice@example\.com &park\(\)$/);
    client.hangup();
    expect((await client.waitFor("hangup")).reason).toBe("client");
    await until("the kill", () => sim.channel(id)?.killedCause !== undefined, 5000);
    // Without a callee nothing is dialled.
    const bad = await CallClient.connect(server.wsUrl, { path: "/call/pbx", id: "7c9e1f2a-0000-4000-8000-000000000001" });
    bad.invite({ playbook: "hello.md" });
    expect(await bad.waitFor("error")).toMatchObject({ code: "BAD_REQUEST" });
  }, 60_000);
});

describe("FreeSWITCH outbound socket (`socket … async full`)", () => {
  it("takes the call handed over by the dialplan's socket, greets it, and leaves when the caller hangs up", async () => {
    const { sim, server } = await setup();
    const port = server.freeswitch?.outboundPort as number;
    const uuid = await sim.connectOutbound("127.0.0.1", port, { caller: "200", callee: "9001", variables: { active_call_playbook: "hello.md" }, audio: silence(400), loopAudio: true });
    await until("the call", () => server.calls.get(uuid) !== undefined);
    const events = record(server, uuid);
    await until("the greeting", () => events.some((e) => e.event === "trackEnd" && e.playId === "greeting"));
    expect(sim.channel(uuid)?.agentAudioBytes).toBeGreaterThan(32_000);
    const conn = sim.connections.find((c) => c.commands.includes("connect"));
    expect(conn?.commands.slice(0, 4)).toEqual(["connect", "myevents json", expect.stringMatching(/^event json PLAYBACK_START/), "linger 15"]);
    sim.callerHangup(uuid);
    await until("the hangup", () => events.some((e) => e.event === "hangup"));
    expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "caller" });
    await until("exit on the socket", () => conn?.commands.includes("exit") === true, 5000);
  }, 60_000);

  it("a socket without `async full` is hung up and closed", async () => {
    const { sim, server } = await setup();
    const port = server.freeswitch?.outboundPort as number;
    const uuid = await sim.connectOutbound("127.0.0.1", port, { caller: "200", callee: "9001", mode: "async" });
    await until("the hangup", () => sim.channel(uuid)?.hungUp === true, 5000);
    expect(server.calls.get(uuid)).toBeUndefined();
  }, 30_000);
});
