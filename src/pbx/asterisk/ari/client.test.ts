import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AppError } from "../../../errors.js";
import { AriClient, AriGoneError, buildQuery, isAriGone } from "./client.js";
import { isKnownAriEvent, parseAriEvent, KNOWN_ARI_EVENT_TYPES, type AriEvent } from "./events.js";
import { FakeAri, allRuns, type RestRecord } from "./testutil.js";

const RUNS = allRuns();
const BASIC_ARI = `Basic ${Buffer.from("ari:ari").toString("base64")}`;

let fake: FakeAri;
let base: string;
let client: AriClient;

function makeClient(extra: Partial<ConstructorParameters<typeof AriClient>[0]> = {}): AriClient {
  return new AriClient({
    url: base,
    username: "ari",
    password: "ari",
    app: "voiceagent",
    reconnectMinMs: 20,
    reconnectMaxMs: 80,
    requestTimeoutMs: 1000,
    ...extra,
  });
}

beforeEach(async () => {
  fake = new FakeAri();
  base = await fake.listen();
  client = makeClient();
});

afterEach(async () => {
  await client.stop();
  await fake.close();
});

/** Replays one recorded REST call through the client; returns undefined for calls outside §3.2. */
async function replay(c: AriClient, r: RestRecord): Promise<unknown> {
  const q = r.query ?? {};
  const p = r.path.replace(/^\/ari/, "").split("/").map(decodeURIComponent);
  const [, res, id, sub] = p;
  const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));
  const key = `${r.method} ${res}${id === undefined ? "" : id === "externalMedia" ? "/externalMedia" : "/:id"}${sub === undefined ? "" : `/${sub}`}`;
  switch (key) {
    case "GET asterisk/:id":
      return id === "info" ? c.info() : undefined;
    case "POST channels/:id/answer":
      return c.answer(id as string);
    case "GET channels/:id/variable":
      return c.getChannelVar(id as string, q.variable as string);
    case "POST channels/externalMedia": {
      const { app, channelId, format, external_host, encapsulation, transport, connection_type, transport_data, data, ...rest } = q;
      expect(rest).toEqual({});
      return c.externalMedia({
        app,
        channelId: channelId as string,
        format: format as string,
        externalHost: external_host,
        encapsulation: encapsulation as "rtp" | undefined,
        transport: transport as "udp" | undefined,
        connectionType: connection_type as "server" | undefined,
        transportData: transport_data,
        data,
      });
    }
    case "POST bridges":
      return c.createBridge({ type: q.type, bridgeId: q.bridgeId, name: q.name });
    case "POST bridges/:id/addChannel":
      return c.addChannel(id as string, (q.channel as string).split(","));
    case "POST bridges/:id/removeChannel":
      return c.removeChannel(id as string, (q.channel as string).split(","));
    case "POST channels/:id/play":
      return c.playOnChannel(id as string, q.media as string, { playbackId: q.playbackId, lang: q.lang });
    case "POST bridges/:id/play":
      return c.playOnBridge(id as string, q.media as string, { playbackId: q.playbackId, lang: q.lang });
    case "DELETE playbacks/:id":
      return c.stopPlayback(id as string);
    case "POST channels/:id/dtmf":
      return c.sendDtmf(id as string, q.dtmf as string, { duration: num(q.duration), between: num(q.between) });
    case "GET channels/:id":
      return c.getChannel(id as string);
    case "DELETE channels/:id":
      return c.hangup(id as string, num(q.reason_code));
    case "DELETE bridges/:id":
      return c.destroyBridge(id as string);
    case "GET channels":
      return c.listChannels();
    default:
      return undefined; // applications, sounds, rtp_statistics, GET playback/bridge: not used by the controller
  }
}

describe("REST against the recorded Asterisk 23.4.1 traffic", () => {
  for (const run of RUNS) {
    it(`${run.name}: method, path and query match the recording; responses come through`, async () => {
      let expected: RestRecord | undefined;
      fake.reply = () => ({ status: expected?.status ?? 500, body: expected?.response ?? undefined });
      let replayed = 0;
      for (const r of run.rest) {
        expected = r;
        const before = fake.requests.length;
        const result = await replay(client, r);
        if (fake.requests.length === before) continue; // not a §3.2 call
        replayed++;
        const seen = fake.requests.at(-1);
        expect(seen?.method).toBe(r.method);
        expect(seen?.path).toBe(r.path);
        expect(seen?.query).toEqual(r.query ?? {});
        expect(seen?.headers.authorization).toBe(BASIC_ARI);
        // Results as the controller reads them.
        if (r.path.endsWith("/variable")) expect(result).toBe((r.response as { value: string }).value);
        else if (r.method === "DELETE") expect(result).toBe(true);
        else if (r.status === 204) expect(result).toBeUndefined();
        else expect(result).toEqual(r.response);
      }
      // Every recorded call except the capture script's own diagnostics goes through the client.
      const diagnostics = run.rest.filter(
        (r) =>
          /^\/ari\/(applications|sounds)\b/.test(r.path) ||
          r.path.endsWith("/rtp_statistics") ||
          (r.method === "GET" && /^\/ari\/(playbacks|bridges)\//.test(r.path)),
      );
      expect(replayed).toBe(run.rest.length - diagnostics.length);
    });
  }

  it("externalMedia exposes channelvars (run1 RTP leg)", async () => {
    const r = RUNS[0]?.rest.find((x) => x.path.endsWith("/externalMedia")) as RestRecord;
    fake.reply = () => ({ status: r.status, body: r.response });
    const ch = await client.externalMedia({
      channelId: "extrtp-1795468233199",
      externalHost: "127.0.0.1:40000",
      format: "ulaw",
      encapsulation: "rtp",
      transport: "udp",
    });
    expect(ch.channelvars?.UNICASTRTP_LOCAL_PORT).toBe("10090");
    expect(ch.name.startsWith("UnicastRTP/")).toBe(true);
    expect(fake.requests[0]?.query.app).toBe("voiceagent");
  });

  it("asterisk info gives system.version", async () => {
    const r = RUNS[0]?.rest[0] as RestRecord;
    fake.reply = () => ({ status: 200, body: r.response });
    expect((await client.info()).system?.version).toBe("23.4.1");
  });
});

describe("REST calls not in the recording", () => {
  beforeEach(() => {
    fake.reply = (req) =>
      req.method === "POST" && req.path === "/ari/channels"
        ? { status: 200, body: { id: "c1", name: "PJSIP/x-1", state: "Down", caller: { name: "", number: "" }, dialplan: { context: "", exten: "", priority: 1 } } }
        : { status: 204 };
  });

  it("ring, progress, redirect, continue, variables, playback control, originate", async () => {
    await client.ring("c/1");
    await client.ringStop("c1");
    await client.progress("c1");
    await client.redirect("c1", "PJSIP/bob@example.com");
    await client.continueInDialplan("c1", { context: "default", extension: "200", priority: 1 });
    await client.setChannelVar("c1", "PJSIP_HEADER(add,X-Foo)", "a b");
    await client.controlPlayback("pb1", "pause");
    const ch = await client.originate({
      endpoint: "PJSIP/100",
      appArgs: "originate",
      channelId: "call-1",
      callerId: "100",
      timeout: 30,
      variables: { "PJSIP_HEADER(add,X-Foo)": "v" },
    });
    expect(ch.id).toBe("c1");
    const got = fake.requests.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.query)}`);
    expect(got).toEqual([
      `POST /ari/channels/c%2F1/ring {}`,
      `DELETE /ari/channels/c1/ring {}`,
      `POST /ari/channels/c1/progress {}`,
      `POST /ari/channels/c1/redirect {"endpoint":"PJSIP/bob@example.com"}`,
      `POST /ari/channels/c1/continue {"context":"default","extension":"200","priority":"1"}`,
      `POST /ari/channels/c1/variable {"variable":"PJSIP_HEADER(add,X-Foo)","value":"a b"}`,
      `POST /ari/playbacks/pb1/control {"operation":"pause"}`,
      `POST /ari/channels {"endpoint":"PJSIP/100","app":"voiceagent","appArgs":"originate","channelId":"call-1","callerId":"100","timeout":"30"}`,
    ]);
    const originate = fake.requests.at(-1);
    expect(originate?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(originate?.body ?? "")).toEqual({ variables: { "PJSIP_HEADER(add,X-Foo)": "v" } });
    // Spaces are %20, not '+'.
    expect(fake.requests[5]?.rawQuery).toContain("value=a%20b");
  });

  it("buildQuery skips undefined and encodes", () => {
    expect(buildQuery({ a: "x y", b: undefined, c: 3, d: false })).toBe("?a=x%20y&c=3&d=false");
    expect(buildQuery({})).toBe("");
  });
});

describe("REST errors", () => {
  it("404 on a channel operation is the gone error", async () => {
    fake.reply = () => ({ status: 404, body: { message: "Channel not found" } });
    const err = await client.answer("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AriGoneError);
    expect(err).toBeInstanceOf(AppError);
    expect(isAriGone(err)).toBe(true);
    const e = err as AriGoneError;
    expect(e.code).toBe("PBX_ERROR");
    expect(e.details).toMatchObject({ gone: true, pbxReply: { status: 404, message: "Channel not found" } });
    expect(e.resource).toBe("channel");
    await expect(client.sendDtmf("nope", "1")).rejects.toBeInstanceOf(AriGoneError);
    await expect(client.getChannel("nope")).rejects.toBeInstanceOf(AriGoneError);
  });

  it("404 on DELETE is success (false = already gone)", async () => {
    fake.reply = () => ({ status: 404, body: { message: "Channel not found" } });
    expect(await client.hangup("gone", 16)).toBe(false);
    expect(await client.destroyBridge("gone")).toBe(false);
    expect(await client.stopPlayback("gone")).toBe(false);
    expect(fake.requests[0]?.query).toEqual({ reason_code: "16" });
  });

  it("an unset variable is undefined, a missing channel is gone", async () => {
    fake.reply = () => ({ status: 404, body: { message: "Provided variable was not found" } });
    expect(await client.getChannelVar("c1", "FOO")).toBeUndefined();
    fake.reply = () => ({ status: 404, body: { message: "Channel not found" } });
    await expect(client.getChannelVar("c1", "FOO")).rejects.toBeInstanceOf(AriGoneError);
  });

  it("other statuses are PBX_ERROR with pbxReply (not gone)", async () => {
    fake.reply = () => ({ status: 422, body: { message: "Endpoint technology mismatch" } });
    const err = (await client.redirect("c1", "SIP/x").catch((e: unknown) => e)) as AppError;
    expect(err).toBeInstanceOf(AppError);
    expect(isAriGone(err)).toBe(false);
    expect(err.code).toBe("PBX_ERROR");
    expect(err.details.pbxReply).toEqual({ status: 422, message: "Endpoint technology mismatch" });
    expect(err.retryable).toBe(false);

    fake.reply = () => ({ status: 401, body: { message: "Authentication required" } });
    const e401 = (await client.info().catch((e: unknown) => e)) as AppError;
    expect(e401.details.pbxReply).toEqual({ status: 401, message: "Authentication required" });

    // 404 on a non-channel GET (no gone mapping) stays plain PBX_ERROR.
    fake.reply = () => ({ status: 404, body: { message: "Resource not found" } });
    const e404 = await client.listChannels().catch((e: unknown) => e);
    expect(isAriGone(e404)).toBe(false);
    expect((e404 as AppError).code).toBe("PBX_ERROR");

    fake.reply = () => ({ status: 500, body: undefined });
    const e500 = (await client.answer("c1").catch((e: unknown) => e)) as AppError;
    expect(e500.retryable).toBe(true);
    expect((e500.details.pbxReply as { status: number }).status).toBe(500);
  });

  it("a hanging request times out with TIMEOUT", async () => {
    const c = makeClient({ requestTimeoutMs: 100 });
    fake.reply = () => ({ status: 204, delayMs: 1000 });
    await expect(c.answer("c1")).rejects.toMatchObject({ code: "TIMEOUT" });
  });

  it("connection refused is PBX_UNAVAILABLE", async () => {
    const c = new AriClient({ url: "http://127.0.0.1:1", username: "a", password: "b", app: "x" });
    await expect(c.info()).rejects.toMatchObject({ code: "PBX_UNAVAILABLE" });
  });
});

describe("events", () => {
  for (const run of RUNS) {
    it(`${run.name}: every recorded frame parses; per-type counts equal the recording`, () => {
      const want = new Map<string, number>();
      const got = new Map<string, number>();
      for (const line of run.events) {
        const t = (JSON.parse(line) as { type: string }).type;
        want.set(t, (want.get(t) ?? 0) + 1);
        const ev = parseAriEvent(line);
        expect(ev).toBeDefined();
        const e = ev as AriEvent;
        got.set(e.type, (got.get(e.type) ?? 0) + 1);
        // Known types never fall back to unknown.
        expect(isKnownAriEvent(e)).toBe((KNOWN_ARI_EVENT_TYPES as readonly string[]).includes(t));
      }
      expect(got).toEqual(want);
    });
  }

  it("typed fields of the consumed events", () => {
    const evs = RUNS.flatMap((r) => r.events.map((l) => parseAriEvent(l) as AriEvent)).filter(isKnownAriEvent);
    const start = evs.find((e) => e.type === "StasisStart");
    if (start?.type !== "StasisStart") throw new Error("no StasisStart");
    expect(start.args).toEqual([]);
    expect(start.channel.caller.number).toBe("agent");
    expect(start.channel.dialplan.exten).toBe("100");
    expect(start.application).toBe("voiceagent");
    const dtmf = evs.find((e) => e.type === "ChannelDtmfReceived");
    if (dtmf?.type !== "ChannelDtmfReceived") throw new Error("no DTMF");
    expect(dtmf.digit).toBe("1");
    expect(dtmf.duration_ms).toBe(280);
    const destroyed = evs.find((e) => e.type === "ChannelDestroyed");
    if (destroyed?.type !== "ChannelDestroyed") throw new Error("no ChannelDestroyed");
    expect(destroyed.cause).toBe(16);
    expect(destroyed.cause_txt).toBe("Normal Clearing");
    const fin = evs.find((e) => e.type === "PlaybackFinished");
    if (fin?.type !== "PlaybackFinished") throw new Error("no PlaybackFinished");
    expect(fin.playback.state).toBe("done");
    const dial = evs.find((e) => e.type === "Dial");
    if (dial?.type !== "Dial") throw new Error("no Dial");
    expect(dial.peer.id).toMatch(/^ext/);
  });

  it("unknown and malformed events", () => {
    const unk = parseAriEvent('{"type":"DeviceStateChanged","device_state":{}}') as AriEvent;
    expect(isKnownAriEvent(unk)).toBe(false);
    expect(unk).toEqual({ type: "DeviceStateChanged", known: false, raw: { type: "DeviceStateChanged", device_state: {} } });
    // A known type with missing fields passes through as unknown rather than lying about its shape.
    const bad = parseAriEvent('{"type":"StasisStart","application":"a"}') as AriEvent;
    expect(bad.type).toBe("StasisStart");
    expect(isKnownAriEvent(bad)).toBe(false);
    const withArgs = parseAriEvent(
      JSON.stringify({ type: "StasisStart", application: "a", timestamp: "t", args: ["originate"], channel: { id: "1", name: "PJSIP/a", state: "Up", caller: {}, dialplan: {} } }),
    ) as AriEvent;
    expect(isKnownAriEvent(withArgs) && withArgs.type === "StasisStart" && withArgs.args[0]).toBe("originate");
    expect(parseAriEvent("not json")).toBeUndefined();
    expect(parseAriEvent("[1]")).toBeUndefined();
    expect(parseAriEvent('{"no":"type"}')).toBeUndefined();
  });

  it("events socket: URL, Basic auth on the upgrade, recorded events arrive typed", async () => {
    const run = RUNS[0];
    if (!run) throw new Error("no run");
    const received: AriEvent[] = [];
    client.events.on("event", (e) => received.push(e));
    const connected: boolean[] = [];
    client.events.on("connected", ({ reconnect }) => connected.push(reconnect));
    expect(client.connected).toBe(false);
    const t0 = Date.now();
    client.start();
    const ws = await fake.waitSockets(1);
    await client.whenConnected(2000);
    expect(client.connected).toBe(true);
    expect(client.since).toBeGreaterThanOrEqual(t0);
    expect(connected).toEqual([false]);
    expect(fake.upgrades[0]?.path).toBe("/ari/events");
    expect(fake.upgrades[0]?.query).toEqual({ app: "voiceagent", subscribeAll: "false" });
    expect(fake.upgrades[0]?.headers.authorization).toBe(BASIC_ARI);
    for (const line of run.events) ws.send(line);
    ws.send("garbage");
    await waitFor(() => received.length === run.events.length);
    expect(received.map((e) => e.type)).toEqual(run.events.map((l) => (JSON.parse(l) as { type: string }).type));
    await waitFor(() => client.invalidFrames === 1);
  });

  it("events socket with api_key instead of the header", async () => {
    const c = makeClient({ eventsApiKey: true, subscribeAll: true });
    try {
      c.start();
      await c.whenConnected(2000);
      expect(fake.upgrades[0]?.query).toEqual({ app: "voiceagent", subscribeAll: "true", api_key: "ari:ari" });
      expect(fake.upgrades[0]?.headers.authorization).toBeUndefined();
    } finally {
      await c.stop();
    }
  });

  it("a dropped events socket reconnects with backoff", async () => {
    const states: string[] = [];
    client.events.on("connected", ({ reconnect }) => states.push(reconnect ? "reconnected" : "connected"));
    client.events.on("disconnected", () => states.push("disconnected"));
    client.start();
    const first = await fake.waitSockets(1);
    await client.whenConnected(2000);
    const since1 = client.since as number;
    first.terminate();
    await waitFor(() => states.includes("disconnected"));
    expect(client.connected).toBe(false);
    // Refuse the next attempts for a while: the client keeps retrying.
    fake.refuseUpgrade = 401;
    await waitFor(() => fake.upgrades.length >= 3);
    fake.refuseUpgrade = undefined;
    const second = await fake.waitSockets(2);
    await waitFor(() => client.connected);
    expect(states[0]).toBe("connected");
    expect(states.at(-1)).toBe("reconnected");
    expect(client.since as number).toBeGreaterThan(since1);
    // Events flow on the new socket.
    const got: AriEvent[] = [];
    client.events.on("event", (e) => got.push(e));
    const line = RUNS[0]?.events.find((l) => l.includes('"StasisEnd"')) as string;
    second.send(line);
    await waitFor(() => got.length === 1);
    expect(got[0]?.type).toBe("StasisEnd");
    // All attempts authenticated.
    for (const u of fake.upgrades) expect(u.headers.authorization).toBe(BASIC_ARI);
  });

  it("a socket that stops answering pings is dropped and reopened", async () => {
    const c = makeClient({ pingIntervalMs: 30 });
    try {
      c.start();
      const first = await fake.waitSockets(1);
      await c.whenConnected(2000);
      // Freeze the peer: no pongs any more.
      (first as unknown as { _socket: { pause(): void } })._socket.pause();
      await fake.waitSockets(2);
      await waitFor(() => c.connected);
    } finally {
      await c.stop();
    }
  });

  it("a refused upgrade reports the status and stop() ends the retries", async () => {
    fake.refuseUpgrade = 401;
    const errors: (Error | undefined)[] = [];
    client.events.on("disconnected", ({ error }) => errors.push(error));
    client.start();
    await waitFor(() => errors.length >= 2);
    expect(errors[0]).toBeInstanceOf(AppError);
    expect((errors[0] as AppError).details.pbxReply).toMatchObject({ status: 401 });
    await client.stop();
    const n = fake.upgrades.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.upgrades.length).toBe(n);
    expect(client.connected).toBe(false);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
