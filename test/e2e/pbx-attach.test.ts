/**
 * `/call/pbx` (and its alias `/call/sip`) end to end: calls parked the way a PBX adapter parks them (a pending
 * `freeswitch` call whose media leg is an in-memory leg on the real clock), an application attaching with the
 * typed client, accepting, hearing the greeting on the leg, the caller's speech answered; and the close codes.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallClient } from "../../src/client/index.js";
import type { CallEvent, ConnectOptions } from "../../src/client/index.js";
import { realClock } from "../../src/media/clock.js";
import { MemoryLeg } from "../../src/media/memory-leg.js";
import { fliteSpeech, silence, startServer, type TestServer } from "./harness.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Parks an inbound FreeSWITCH-like call (state `pending`) whose media leg, once accepted, is `leg`. */
function park(id: string): MemoryLeg {
  const leg = new MemoryLeg({ id, clock: realClock });
  server.calls.create({
    id,
    callType: "freeswitch",
    direction: "inbound",
    caller: "+15551234567",
    callee: "100",
    legFactory: () => ({ leg, media: { leg: "memory", codec: "pcm", sampleRate: 16000 } }),
    plan: { variables: { customer: "ada" } },
  });
  return leg;
}

/** Connects and returns the close code; the server may close right after the upgrade. */
async function closeCodeOf(opts: ConnectOptions, first?: (c: CallClient) => void): Promise<{ code: number | undefined; events: CallEvent[] }> {
  try {
    const c = await CallClient.connect(server.wsUrl, opts);
    first?.(c);
    const info = await c.closed;
    return { code: info.code, events: c.events };
  } catch (e) {
    return { code: (e as { closeCode?: number }).closeCode, events: [] };
  }
}

/** Caller audio into the leg, 20 ms per step, in real time (drift-corrected). */
async function pushRealtime(leg: MemoryLeg, pcm: Int16Array): Promise<void> {
  const step = 320; // 20 ms at 16 kHz
  const t0 = performance.now();
  for (let i = 0, n = 0; i < pcm.length; i += step, n++) {
    const wait = t0 + n * 20 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (leg.closed) return;
    leg.pushCaller(pcm.slice(i, i + step));
  }
}

const peak = (pcm: Int16Array): number => pcm.reduce((m, s) => Math.max(m, Math.abs(s)), 0);

interface CallDetail {
  state: string;
  attached: boolean;
  hangup?: { reason: string; initiator: string };
}

async function detail(id: string): Promise<CallDetail> {
  const res = await fetch(`${server.baseUrl}/api/calls/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as CallDetail;
}

async function pollState(id: string, state: string, timeoutMs = 10_000): Promise<CallDetail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const d = await detail(id);
    if (d.state === state) return d;
    if (Date.now() > until) throw new Error(`call ${id} is ${d.state}, never ${state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const names = (events: readonly CallEvent[]): string[] => events.map((e) => e.event);

describe("/call/pbx attached to a parked call", () => {
  it("incoming first; a second client gets 4409; accept plays the greeting on the leg; speech is answered; binary audio is refused once; closing hangs up", async () => {
    const leg = park("fs-1");
    const app = await CallClient.connect(server.wsUrl, { id: "fs-1", path: "/call/pbx" });
    const incoming = await app.waitFor("incoming");
    expect(app.events[0]).toBe(incoming);
    expect(incoming).toMatchObject({
      trackId: "fs-1",
      caller: "+15551234567",
      callee: "100",
      direction: "inbound",
      callType: "freeswitch",
      state: "pending",
      headers: {},
      variables: { customer: "ada" },
    });
    expect(typeof incoming.timestamp).toBe("number");

    // Only one controlling client at a time.
    const second = await closeCodeOf({ id: "fs-1", path: "/call/pbx" });
    expect(second.code).toBe(4409);
    expect(second.events.map((e) => e.event)).not.toContain("incoming");

    app.accept({ playbook: "hello.md" });
    await app.waitFor("answer");
    const gEnd = await app.waitFor("trackEnd", (e) => e.playId === "greeting", 30_000);
    expect(gEnd.reason).toBe("finished");
    expect(names(app.events).filter((n) => ["incoming", "answer", "trackStart", "trackEnd"].includes(n))).toEqual(["incoming", "answer", "trackStart", "trackEnd"]);
    expect(app.events.find((e) => e.event === "trackStart")).toMatchObject({ playId: "greeting", trackId: "server-side-track" });
    const greeting = leg.captured.filter((f) => f.playId === "greeting");
    expect(greeting.length).toBeGreaterThan(50);
    expect(new Set(greeting.map((f) => f.pcm.length))).toEqual(new Set([320]));
    expect(Math.max(...greeting.map((f) => peak(f.pcm)))).toBeGreaterThan(1000);
    expect((await detail("fs-1")).state).toBe("active");

    // Binary frames on /call/pbx: one UNSUPPORTED error, however many are sent; the connection stays.
    app.sendAudio(new Int16Array(320));
    app.sendAudio(new Int16Array(320));
    expect(await app.waitFor("error")).toMatchObject({ code: "UNSUPPORTED" });

    // The caller speaks on the PBX side (the memory leg), in real time.
    const capturedBefore = leg.captured.length;
    await pushRealtime(leg, new Int16Array([...silence(300), ...fliteSpeech("please transfer me to billing"), ...silence(2500)]));
    const final = await app.waitFor("asrFinal", undefined, 30_000);
    expect(final.text).toMatch(/billing/);
    const reply = await app.waitFor("trackEnd", (e) => e.playId !== "greeting", 30_000);
    expect(reply.reason).toBe("finished");
    const replyFrames = leg.captured.slice(capturedBefore).filter((f) => f.playId === reply.playId);
    expect(replyFrames.length).toBeGreaterThan(25);
    expect(Math.max(...replyFrames.map((f) => peak(f.pcm)))).toBeGreaterThan(1000);
    expect(app.events.filter((e) => e.event === "error")).toHaveLength(1);

    // Default hangupOnClose: the call ends when the controlling socket closes.
    await app.close();
    const ended = await pollState("fs-1", "ended");
    expect(ended.hangup).toMatchObject({ reason: "client", initiator: "client" });
    expect(leg.closed).toBe(true);

    // Attaching to a call that has ended: 4410.
    expect((await closeCodeOf({ id: "fs-1", path: "/call/pbx" })).code).toBe(4410);
  }, 90_000);

  it("hangupOnClose=false: the call survives the socket, and another client can attach", async () => {
    const leg = park("fs-2");
    const a = await CallClient.connect(server.wsUrl, { id: "fs-2", path: "/call/pbx", hangupOnClose: false });
    await a.waitFor("incoming");
    a.accept();
    await a.waitFor("answer");
    await a.close();
    // Give the server the close; the call stays up, unattached.
    await expect.poll(async () => (await detail("fs-2")).attached, { timeout: 5_000 }).toBe(false);
    expect((await detail("fs-2")).state).toBe("active");
    expect(leg.closed).toBe(false);

    const b = await CallClient.connect(server.wsUrl, { id: "fs-2", path: "/call/pbx" });
    const incoming = await b.waitFor("incoming");
    expect(b.events[0]).toBe(incoming);
    expect(incoming).toMatchObject({ trackId: "fs-2", callType: "freeswitch", state: "active" });
    b.tts("Your order has shipped.", { playId: "app-1" });
    expect(await b.waitFor("trackEnd", (e) => e.playId === "app-1", 20_000)).toMatchObject({ reason: "finished" });
    expect(Math.max(...leg.captured.filter((f) => f.playId === "app-1").map((f) => peak(f.pcm)))).toBeGreaterThan(1000);
    b.hangup();
    expect(await b.waitFor("hangup")).toMatchObject({ reason: "client", trackId: "fs-2" });
    expect((await b.closed).code).toBe(1000);
    expect((await detail("fs-2")).state).toBe("ended");
  }, 60_000);

  it("/call/sip is the same endpoint; invite with option.subscribe is UNSUPPORTED; reject on a pending call: reject, hangup rejected, close 1000", async () => {
    park("fs-3");
    const app = await CallClient.connect(server.wsUrl, { id: "fs-3", path: "/call/sip" });
    expect(await app.waitFor("incoming")).toMatchObject({ trackId: "fs-3", callType: "freeswitch", state: "pending" });
    app.invite({ subscribe: true }, { requestId: "sub-1" });
    expect(await app.waitFor("error")).toMatchObject({ code: "UNSUPPORTED", requestId: "sub-1" });
    expect((await detail("fs-3")).state).toBe("pending");

    app.reject({ reason: "busy here", code: 486 });
    const closed = await app.closed;
    expect(closed.code).toBe(1000);
    const tail = app.events.slice(app.events.findIndex((e) => e.event === "error") + 1);
    expect(names(tail)).toEqual(["reject", "hangup"]);
    expect(tail[0]).toMatchObject({ reason: "busy here", code: 486 });
    expect(tail[1]).toMatchObject({ reason: "rejected", trackId: "fs-3" });
    expect((await detail("fs-3")).hangup).toMatchObject({ reason: "rejected" });
  }, 30_000);
});

describe("/call/pbx with an unknown id", () => {
  it("first command tts: close 4404", async () => {
    const r = await closeCodeOf({ id: "nope", path: "/call/pbx" }, (c) => c.tts("hello"));
    expect(r.code).toBe(4404);
    expect(r.events).toHaveLength(0);
  });

  it("first command accept: reject {code:481}, then close 4404", async () => {
    const r = await closeCodeOf({ id: "nope", path: "/call/pbx" }, (c) => c.accept());
    expect(r.code).toBe(4404);
    expect(names(r.events)).toEqual(["reject"]);
    expect(r.events[0]).toMatchObject({ code: 481 });
  });
});
