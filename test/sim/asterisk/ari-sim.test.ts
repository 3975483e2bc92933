/**
 * The ARI simulator against the Asterisk 23.4.1 recordings (shared/fixtures/asterisk), driven by the project's
 * AriClient: each recorded run is replayed call by call (statuses, reply shapes, event order and shapes), then the
 * behaviours the whole-call tests rely on (auth, unknown ids, chan_websocket, app replacement, reconnect, originate,
 * redirect, continue, the channel-playback pitfall).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { AppError } from "../../../src/errors.js";
import { AriClient, isAriGone } from "../../../src/pbx/asterisk/ari/client.js";
import { isKnownAriEvent, type AriEvent } from "../../../src/pbx/asterisk/ari/events.js";
import type { RestRecord } from "../../../src/pbx/asterisk/ari/testutil.js";
import { sharedFixtures } from "../../shared-fixtures.js";
import { useCleanups } from "../../wait.js";
import { AriSim, type AriEventOrder, type AriSimOptions, type SimCall } from "./ari-sim.js";
import type { ExternalMediaRequest, SimMediaEndpoint } from "./types.js";

type Json = Record<string, unknown>;

// ---- a trivial media factory: records what the simulator asks of it ---------------------------------------------

class TestMedia implements SimMediaEndpoint {
  readonly channelvars: Record<string, string>;
  readonly ready = Promise.resolve();
  readonly muted: boolean[] = [];
  readonly stats: Record<string, number> = {};
  ws: WebSocket | undefined;
  closed = false;

  constructor(readonly req: ExternalMediaRequest) {
    this.channelvars =
      req.transport === "websocket"
        ? { MEDIA_WEBSOCKET_CONNECTION_ID: crypto.randomUUID(), MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE: "640" }
        : req.encapsulation === "rtp"
          ? { UNICASTRTP_LOCAL_PORT: "10090", UNICASTRTP_LOCAL_ADDRESS: "127.0.0.1" }
          : {};
  }

  acceptWebSocket(ws: WebSocket): void {
    this.ws = ws;
    ws.send(`MEDIA_START connection_id:${this.channelvars.MEDIA_WEBSOCKET_CONNECTION_ID} channel_id:${this.req.channelId} format:${this.req.format}`);
  }

  async sendCaller(): Promise<void> {}

  setCallerMuted(muted: boolean): void {
    this.muted.push(muted);
  }

  agentAudio(): { pcm: Int16Array; rate: number } {
    return { pcm: new Int16Array(0), rate: 16000 };
  }

  close(): void {
    this.closed = true;
    this.ws?.close(1000);
  }
}

// ---- harness ------------------------------------------------------------------------------------------------------

const cleanup = useCleanups();

async function startSim(o: AriSimOptions = {}): Promise<{ sim: AriSim; medias: TestMedia[] }> {
  const medias: TestMedia[] = [];
  const sim = await AriSim.start({
    media: (req) => {
      const m = new TestMedia(req);
      medias.push(m);
      return m;
    },
    ...o,
  });
  cleanup(() => sim.close());
  return { sim, medias };
}

interface Listener {
  client: AriClient;
  events: Json[];
}

function raw(ev: AriEvent): Json {
  return isKnownAriEvent(ev) ? (ev as unknown as Json) : ev.raw;
}

function makeClient(sim: AriSim, o: Partial<ConstructorParameters<typeof AriClient>[0]> = {}): Listener {
  const client = new AriClient({
    url: sim.url,
    username: "ari",
    password: "ari",
    app: "voiceagent",
    reconnectMinMs: 20,
    reconnectMaxMs: 50,
    requestTimeoutMs: 2000,
    pingIntervalMs: 0,
    ...o,
  });
  const events: Json[] = [];
  client.events.on("event", (ev) => events.push(raw(ev)));
  cleanup(() => client.stop());
  return { client, events };
}

async function connected(sim: AriSim, o: Partial<ConstructorParameters<typeof AriClient>[0]> = {}): Promise<Listener> {
  const l = makeClient(sim, o);
  l.client.start();
  await l.client.whenConnected(3000);
  return l;
}

const chanOf = (e: Json): string | undefined => ((e.channel ?? e.peer) as Json | undefined)?.id as string | undefined;

function typesFor(events: Json[], channelId: string): string[] {
  return events.filter((e) => chanOf(e) === channelId).map((e) => e.type as string);
}

async function waitEvent(l: Listener, pred: (e: Json) => boolean): Promise<Json> {
  return vi.waitFor(
    () => {
      const e = l.events.find(pred);
      if (!e) throw new Error("event not yet received");
      return e;
    },
    { timeout: 3000, interval: 5 },
  );
}

const isType = (type: string, channelId?: string) => (e: Json) => e.type === type && (channelId === undefined || chanOf(e) === channelId);

function auth(user = "ari", pass = "ari"): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

function openMedia(sim: AriSim, connectionId: string, protocol = "media"): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${sim.url.replace("http", "ws")}/media/${connectionId}`, protocol);
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once("error", reject);
    cleanup(() => ws.terminate());
  });
}

/** Inbound call answered, bridged with an RTP externalMedia leg, as in recorded run 1/2. */
async function bridgedCall(sim: AriSim, l: Listener): Promise<{ call: SimCall; mediaId: string; bridgeId: string }> {
  const call = await sim.placeCall();
  await waitEvent(l, isType("StasisStart", call.id));
  await l.client.answer(call.id);
  const mediaId = `${call.id}-m`;
  await l.client.externalMedia({ channelId: mediaId, format: "ulaw", externalHost: "127.0.0.1:40000", encapsulation: "rtp", transport: "udp" });
  await waitEvent(l, isType("StasisStart", mediaId));
  const bridgeId = `br-${call.id}`;
  await l.client.createBridge({ bridgeId });
  await l.client.addChannel(bridgeId, [call.id, mediaId]);
  await waitEvent(l, (e) => e.type === "ChannelEnteredBridge" && chanOf(e) === mediaId);
  return { call, mediaId, bridgeId };
}

// ---- recorded runs --------------------------------------------------------------------------------------------------

function jsonl<T>(run: string, file: string): T[] {
  return readFileSync(join(sharedFixtures("asterisk", run), file), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as T);
}

/** Keys, recursively (arrays by their elements), so two replies compare by shape, not by ids or times. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape((v as Json)[k])]));
  }
  return typeof v;
}

/** Key sets of an event, nested objects included; arrays (args, channels) only by being arrays. */
function eventKeys(v: unknown): unknown {
  if (Array.isArray(v)) return "array";
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, eventKeys((v as Json)[k])]));
  }
  return "value";
}

/** Dialplan- and device-dependent events: the recorded dialplan's NoOp, BRIDGEPEER/RTPAUDIOQOS variables, devices. */
const NOISE = new Set(["ChannelVarset", "ChannelDialplan", "DeviceStateChanged"]);

const RUNS = ["run1-ulaw-channel-playback", "run2-slin16-bridge-playback", "run3-websocket-only-slin16"];

describe("recorded runs replayed through AriClient", () => {
  const orders: AriEventOrder[] = [{ seed: 1 }, "events-first", "reply-first"];
  for (const [run, eventOrder] of RUNS.flatMap((r) => orders.map((o) => [r, o] as const))) {
    it(`${run} (${JSON.stringify(eventOrder)}): statuses, reply shapes, per-channel event order and event key sets match the recording`, async () => {
      const rest = jsonl<RestRecord>(run, "ari-rest.jsonl");
      const recorded = jsonl<Json>(run, "ari-events.jsonl");
      const timeline = jsonl<Json>(run, "timeline.jsonl");
      // The recorded playback is 30 s long; only its order matters here.
      const { sim } = await startSim({ soundDurationsMs: { "sound:demo-congrats": 150 }, eventOrder });
      const l = makeClient(sim, { subscribeAll: true });
      let call: SimCall | undefined;
      let recordedCallerId = "\u0000";
      const mapId = (s: string): string => (call ? s.split(recordedCallerId).join(call.id) : s);
      const stopped = new Set<string>();
      let evIndex = 0;

      for (const t of timeline) {
        if (t.kind === "rest") {
          const r = rest.find((x) => x.seq === t.seq) as RestRecord;
          // The capture client listed the applications before opening its events socket (recorded `[]`).
          if (r.path.startsWith("/ari/applications/") && !l.client.connected) {
            l.client.start();
            await l.client.whenConnected(3000);
          }
          const query = Object.fromEntries(Object.entries(r.query ?? {}).map(([k, v]) => [k, mapId(v)]));
          const before = sim.rest.length;
          const reply = await l.client.request(r.method, mapId(r.path.replace(/^\/ari/, "")), { query }).catch((e: unknown) => e);
          const got = sim.rest[before];
          expect(got, `seq ${r.seq}`).toBeDefined();
          expect({ seq: r.seq, status: got?.status }).toEqual({ seq: r.seq, status: r.status });
          expect({ seq: r.seq, shape: shape(got?.response) }).toEqual({ seq: r.seq, shape: shape(r.response) });
          expect(got?.contentType).toBe(r.content_type);
          if (r.status >= 400) expect(reply).toBeInstanceOf(AppError);
          if (r.method === "DELETE" && r.path.startsWith("/ari/playbacks/")) stopped.add(r.path.split("/").pop() as string);
          if (r.path === "/ari/channels/externalMedia" && r.query?.transport === "websocket") {
            // As the capture client did: connect the media socket, then wait for the channel's StasisStart.
            const vars = (got?.response as Json).channelvars as Record<string, string>;
            await openMedia(sim, vars.MEDIA_WEBSOCKET_CONNECTION_ID as string);
            await waitEvent(l, isType("StasisStart", r.query.channelId));
          }
          continue;
        }
        if (t.kind !== "event") continue;
        const ev = recorded[evIndex++] as Json;
        const ch = ev.channel as Json | undefined;
        if (ev.type === "ChannelCreated" && String(ch?.name).startsWith("PJSIP/")) {
          // sipp's INVITE.
          const caller = ch?.caller as Json;
          const dp = ch?.dialplan as Json;
          call = await sim.placeCall({ caller: caller.number as string, callerName: caller.name as string, exten: dp.exten as string, context: dp.context as string });
          recordedCallerId = ch?.id as string;
          await waitEvent(l, isType("StasisStart", call.id));
        } else if (ev.type === "ChannelDtmfReceived") {
          call?.pressDtmf(ev.digit as string, ev.duration_ms as number);
          await waitEvent(l, isType("ChannelDtmfReceived", call?.id));
        } else if (ev.type === "PlaybackFinished") {
          const id = (ev.playback as Json).id as string;
          if (!stopped.has(id)) await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === id);
        }
      }
      expect(sim.rest.map((r) => `${r.method} ${r.path}`)).toEqual(rest.map((r) => `${r.method} ${mapId(r.path)}`));
      await vi.waitFor(() => expect(l.events.length).toBe(sim.events.filter((s) => s.app === "voiceagent").length), { timeout: 3000 });
      const got = l.events;
      const recordedIds = [...new Set(recorded.map(chanOf).filter((id): id is string => id !== undefined))];

      // Per channel, the same event types in the same order (ids and timestamps aside).
      for (const rid of recordedIds) {
        const simId = rid === recordedCallerId ? (call as SimCall).id : rid;
        const want = typesFor(recorded, rid).filter((t) => !NOISE.has(t));
        expect({ channel: rid, types: typesFor(got, simId).filter((t) => !NOISE.has(t)) }).toEqual({ channel: rid, types: want });
      }
      // Per playback and per bridge, the same sequence (bridge playbacks twice with subscribeAll=true).
      const byKey = (evs: Json[], key: "playback" | "bridge"): Record<string, string[]> => {
        const out: Record<string, string[]> = {};
        for (const e of evs) {
          if (e[key] === undefined || e.channel !== undefined) continue;
          (out[String((e[key] as Json).id)] ??= []).push(e.type as string);
        }
        return out;
      };
      expect(byKey(got, "playback")).toEqual(byKey(recorded, "playback"));
      expect(byKey(got, "bridge")).toEqual(byKey(recorded, "bridge"));

      // Every event type the simulator sent has the recorded key set, and every recorded type is sent.
      const recordedByType = new Map<string, Json>();
      for (const e of recorded) if (!recordedByType.has(e.type as string)) recordedByType.set(e.type as string, e);
      for (const e of got) {
        const want = recordedByType.get(e.type as string);
        expect(want, `type ${String(e.type)} is not in the recording`).toBeDefined();
        expect({ type: e.type, keys: eventKeys(e) }).toEqual({ type: e.type, keys: eventKeys(want) });
      }
      const sentTypes = new Set(got.map((e) => e.type));
      expect([...recordedByType.keys()].filter((t) => !sentTypes.has(t) && t !== "DeviceStateChanged")).toEqual([]);
    });
  }

  it("events socket upgrade answers 101 with the recorded headers and no subprotocol", async () => {
    const { sim } = await startSim();
    const handshake = JSON.parse(readFileSync(join(sharedFixtures("asterisk", RUNS[0] as string), "ari-events-handshake.json"), "utf8")) as { headers: Json };
    const headers = await new Promise<Json>((resolve, reject) => {
      const ws = new WebSocket(`${sim.url.replace("http", "ws")}/ari/events?app=voiceagent&subscribeAll=false`, { headers: { Authorization: auth() } });
      ws.once("upgrade", (res) => resolve(res.headers as Json));
      ws.once("error", reject);
      cleanup(() => ws.terminate());
    });
    expect(Object.keys(headers).sort()).toEqual(Object.keys(handshake.headers).sort());
  });
});

// ---- auth and unknown ids -------------------------------------------------------------------------------------------

describe("auth", () => {
  it("answers 401 without or with wrong credentials, on REST and on the events upgrade; api_key works", async () => {
    const { sim } = await startSim({ user: "u1", password: "p1" });
    const none = await fetch(`${sim.url}/ari/asterisk/info`);
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/json");
    expect(await none.json()).toEqual({ message: "Authentication required" });
    expect((await fetch(`${sim.url}/ari/channels`, { headers: { Authorization: auth("u1", "nope") } })).status).toBe(401);
    expect((await fetch(`${sim.url}/ari/channels?api_key=u1:p1`)).status).toBe(200);
    const info = (await (await fetch(`${sim.url}/ari/asterisk/info`, { headers: { Authorization: auth("u1", "p1") } })).json()) as Json;
    expect((info.system as Json).version).toBe("23.4.1");

    const status = await new Promise<number | undefined>((resolve) => {
      const ws = new WebSocket(`${sim.url.replace("http", "ws")}/ari/events?app=voiceagent`);
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode));
      ws.once("open", () => resolve(101));
      ws.once("error", () => undefined);
    });
    expect(status).toBe(401);
    const bad = makeClient(sim, { username: "u1", password: "wrong" });
    const disconnected = new Promise<Json>((resolve) => bad.client.events.once("disconnected", (d) => resolve(d as Json)));
    bad.client.start();
    expect(((await disconnected).error as AppError).details).toMatchObject({ pbxReply: { status: 401 } });
    const good = await connected(sim, { username: "u1", password: "p1", eventsApiKey: true });
    expect(good.client.connected).toBe(true);
    expect(sim.eventsConnections()).toBe(1);
  });

  it("reports the configured version", async () => {
    const { sim } = await startSim({ version: "20.15.0" });
    const l = makeClient(sim);
    expect((await l.client.info()).system?.version).toBe("20.15.0");
  });
});

describe("unknown ids and invalid requests", () => {
  it("answers 404 with Asterisk's messages; DELETEs of gone things resolve false", async () => {
    const { sim } = await startSim();
    const { client } = makeClient(sim);
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as AppError);
    const answer = await err(client.answer("nope"));
    expect(isAriGone(answer)).toBe(true);
    expect((answer as AppError).details).toMatchObject({ pbxReply: { status: 404, message: "Channel not found" } });
    expect((await err(client.getChannel("nope")))?.details).toMatchObject({ pbxReply: { status: 404, message: "Channel not found" } });
    expect((await err(client.getChannelVar("nope", "X")))?.details).toMatchObject({ pbxReply: { status: 404, message: "Provided channel was not found" } });
    expect(await client.hangup("nope", 16)).toBe(false);
    expect(await client.destroyBridge("nope")).toBe(false);
    expect(await client.stopPlayback("nope")).toBe(false);
    expect((await err(client.addChannel("nope", ["x"])))?.details).toMatchObject({ pbxReply: { status: 404, message: "Bridge not found" } });
    expect((await err(client.playOnBridge("nope", "sound:x")))?.details).toMatchObject({ pbxReply: { status: 404, message: "Bridge not found" } });
    expect((await err(client.controlPlayback("nope", "pause")))?.details).toMatchObject({ pbxReply: { status: 404, message: "Playback not found" } });
    await client.createBridge({ bridgeId: "b1" });
    expect((await err(client.addChannel("b1", ["ghost"])))?.details).toMatchObject({ pbxReply: { status: 400, message: "Channel not found" } });
    expect((await err(client.createBridge({ bridgeId: "b1" })))?.details).toMatchObject({ pbxReply: { status: 409 } });
    const r = sim.rest.find((x) => x.path === "/ari/channels/nope/answer");
    expect(r).toMatchObject({ method: "POST", status: 404, contentType: "application/json", response: { message: "Channel not found" } });
  });

  it("validates externalMedia like Asterisk", async () => {
    const { sim, medias } = await startSim();
    const { client } = makeClient(sim);
    const status = (p: Promise<unknown>) => p.then(() => 200, (e: unknown) => ((e as AppError).details as { pbxReply: { status: number; message: string } }).pbxReply);
    expect(await status(client.externalMedia({ channelId: "m1", format: "ulaw", encapsulation: "rtp", transport: "udp" }))).toEqual({ status: 400, message: "external_host cannot be empty" });
    expect(await status(client.externalMedia({ channelId: "m1", format: "ulaw", externalHost: "nohostport" }))).toEqual({ status: 400, message: "external_host must be <host>:<port>" });
    expect(await status(client.externalMedia({ channelId: "m1", format: "", externalHost: "127.0.0.1:1" }))).toEqual({ status: 400, message: "format cannot be empty" });
    expect(await status(client.externalMedia({ channelId: "m1", format: "mp3", externalHost: "127.0.0.1:1" }))).toEqual({ status: 400, message: "Provided format (mp3) was not found" });
    expect(await status(client.externalMedia({ channelId: "m1", format: "slin16", externalHost: "127.0.0.1:1", encapsulation: "rtp", transport: "tcp" }))).toMatchObject({ status: 501 });
    expect(await status(client.externalMedia({ channelId: "m1", format: "slin16", externalHost: "127.0.0.1:1", encapsulation: "audiosocket", transport: "tcp" }))).toEqual({ status: 400, message: "data can not be empty" });
    expect(await status(client.externalMedia({ channelId: "m1", format: "slin16", externalHost: "127.0.0.1:1", encapsulation: "audiosocket", transport: "tcp", data: "not-a-uuid" }))).toMatchObject({ status: 500 });
    expect(medias).toHaveLength(0);
    const ch = await client.externalMedia({ channelId: "as1", format: "slin16", externalHost: "127.0.0.1:1", encapsulation: "audiosocket", transport: "tcp", data: crypto.randomUUID() });
    expect(ch.name.startsWith("AudioSocket/")).toBe(true);
    expect(medias[0]?.req).toMatchObject({ channelId: "as1", encapsulation: "audiosocket", transport: "tcp", format: "slin16" });
    expect(await status(client.externalMedia({ channelId: "as1", format: "ulaw", externalHost: "127.0.0.1:1" }))).toMatchObject({ status: 409 });
  });
});

// ---- inbound call flow ------------------------------------------------------------------------------------------------

describe("inbound call (subscribeAll=false)", () => {
  it("delivers StasisStart with args, serves headers and codec, answers, bridges with the media leg", async () => {
    const { sim, medias } = await startSim();
    const l = await connected(sim);
    const call = await sim.placeCall({ caller: "+15551234", exten: "200", args: ["playbook=demo", "lang=en"], headers: { "X-Tenant": "acme", "X-Ref": "42", Foo: "no" } });
    const start = await waitEvent(l, isType("StasisStart", call.id));
    expect(start.args).toEqual(["playbook=demo", "lang=en"]);
    expect(start.channel).toMatchObject({ state: "Ring", caller: { number: "+15551234" }, dialplan: { exten: "200", app_name: "Stasis", app_data: "voiceagent,playbook=demo,lang=en" } });
    expect(String((start.channel as Json).name).startsWith("PJSIP/")).toBe(true);
    // Without subscribeAll nothing from before Stasis reaches the app.
    expect(l.events.some((e) => e.type === "ChannelCreated")).toBe(false);

    expect(await l.client.getChannelVar(call.id, "PJSIP_HEADERS(X-)")).toBe("X-Tenant,X-Ref");
    expect(await l.client.getChannelVar(call.id, "PJSIP_HEADER(read,x-tenant)")).toBe("acme");
    expect(await l.client.getChannelVar(call.id, "CHANNEL(audioreadformat)")).toBe("alaw");
    expect(await l.client.getChannelVar(call.id, "NOT_SET")).toBeUndefined();
    await expect(l.client.getChannelVar(call.id, "PJSIP_HEADER(read,X-Missing)")).rejects.toMatchObject({ details: { pbxReply: { status: 500 } } });

    await l.client.answer(call.id);
    await call.waitForState("Up");
    await waitEvent(l, (e) => e.type === "ChannelStateChange" && (e.channel as Json).state === "Up");
    const em = await l.client.externalMedia({ channelId: "m-1", format: "slin16", externalHost: "127.0.0.1:40000", encapsulation: "rtp", transport: "udp" });
    expect(em.channelvars).toEqual(medias[0]?.channelvars);
    expect(em.name.startsWith("UnicastRTP/127.0.0.1:40000-")).toBe(true);
    await waitEvent(l, isType("StasisStart", "m-1"));
    expect(await l.client.getChannelVar("m-1", "UNICASTRTP_LOCAL_PORT")).toBe("10090");
    await l.client.createBridge({ bridgeId: "br-1" });
    await l.client.addChannel("br-1", [call.id, "m-1"]);
    await waitEvent(l, (e) => e.type === "ChannelEnteredBridge" && chanOf(e) === "m-1");
    expect(call.media()).toBe(medias[0]);
    expect(sim.bridge("br-1")?.channels).toEqual([call.id, "m-1"]);
    // The media leg's StasisStart carries the externalMedia data as args; the app is subscribed from the dial.
    expect(typesFor(l.events, "m-1")).toEqual(["Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart", "ChannelEnteredBridge", "ChannelConnectedLine"]);
    expect(l.events.some((e) => e.type === "BridgeCreated")).toBe(false);
  });

  it("bridge playback: Started/Finished once without subscribeAll, after the sound's length or when stopped; tone plays until stopped", async () => {
    const { sim } = await startSim({ soundDurationsMs: { "sound:short": 30 } });
    const l = await connected(sim);
    const { bridgeId } = await bridgedCall(sim, l);
    const pb = await l.client.playOnBridge(bridgeId, "sound:short", { playbackId: "pb-1" });
    expect(pb).toMatchObject({ id: "pb-1", state: "queued", target_uri: `bridge:${bridgeId}`, media_uri: "sound:short" });
    await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === "pb-1");
    const tone = await l.client.playOnBridge(bridgeId, "tone:1004/500", { playbackId: "pb-2" });
    await waitEvent(l, (e) => e.type === "PlaybackStarted" && (e.playback as Json).id === tone.id);
    await l.client.controlPlayback("pb-2", "pause");
    expect(sim.playbacks().find((p) => p.id === "pb-2")?.state).toBe("paused");
    await l.client.controlPlayback("pb-2", "unpause");
    expect(l.events.some((e) => e.type === "PlaybackFinished" && (e.playback as Json).id === "pb-2")).toBe(false);
    expect(await l.client.stopPlayback("pb-2")).toBe(true);
    const fin = await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === "pb-2");
    expect((fin.playback as Json).state).toBe("done");
    const pbTypes = l.events.filter((e) => e.playback !== undefined).map((e) => `${String((e.playback as Json).id)} ${String(e.type)}`);
    expect(pbTypes).toEqual(["pb-1 PlaybackStarted", "pb-1 PlaybackFinished", "pb-2 PlaybackStarted", "pb-2 PlaybackFinished"]);
    expect(await l.client.stopPlayback("pb-2")).toBe(false);
  });

  it("a playback on the bridged caller channel mutes the media leg's caller audio for its length (§3.9)", async () => {
    const { sim, medias } = await startSim({ soundDurationsMs: { "sound:x": 40 } });
    const l = await connected(sim);
    const { call } = await bridgedCall(sim, l);
    await l.client.playOnChannel(call.id, "sound:x", { playbackId: "p-ch" });
    await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === "p-ch");
    expect(medias[0]?.muted).toEqual([true, false]);
    await l.client.playOnBridge(`br-${call.id}`, "sound:x", { playbackId: "p-br" });
    await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === "p-br");
    expect(medias[0]?.muted).toEqual([true, false]);
  });

  it("DTMF, hold, DTMF sent by the app", async () => {
    const { sim } = await startSim();
    const l = await connected(sim);
    const { call } = await bridgedCall(sim, l);
    call.pressDtmf("5", 250);
    const d = await waitEvent(l, isType("ChannelDtmfReceived", call.id));
    expect(d).toMatchObject({ digit: "5", duration_ms: 250 });
    call.hold(true);
    call.hold(false);
    await waitEvent(l, isType("ChannelUnhold", call.id));
    await l.client.sendDtmf(call.id, "12#", { duration: 100, between: 100 });
    expect(sim.channel(call.id)?.dtmfSent).toEqual([{ dtmf: "12#", duration: 100, between: 100 }]);
    expect(typesFor(l.events, call.id).slice(-3)).toEqual(["ChannelDtmfReceived", "ChannelHold", "ChannelUnhold"]);
  });

  it("caller hangup: ChannelHangupRequest, ChannelLeftBridge, StasisEnd, ChannelDestroyed with the cause", async () => {
    const { sim } = await startSim();
    const l = await connected(sim);
    const { call } = await bridgedCall(sim, l);
    const n = typesFor(l.events, call.id).length;
    call.hangup(17);
    await call.waitGone();
    const destroyed = await waitEvent(l, isType("ChannelDestroyed", call.id));
    expect(destroyed).toMatchObject({ cause: 17, cause_txt: "User busy" });
    expect(typesFor(l.events, call.id).slice(n).filter((t) => t !== "ChannelVarset")).toEqual(["ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd", "ChannelDestroyed"]);
    await expect(l.client.answer(call.id)).rejects.toSatisfy(isAriGone);
  });

  it("app hangup with reason_code: the recorded sequence, ChannelDestroyed carries the code; reject before answer works", async () => {
    const { sim, medias } = await startSim();
    const l = await connected(sim);
    const { call, mediaId, bridgeId } = await bridgedCall(sim, l);
    expect(await l.client.hangup(mediaId)).toBe(true);
    expect(await l.client.hangup(call.id, 21)).toBe(true);
    await call.waitGone();
    expect(medias[0]?.closed).toBe(true);
    const d = await waitEvent(l, isType("ChannelDestroyed", call.id));
    expect(d).toMatchObject({ cause: 21, cause_txt: "Call Rejected" });
    expect(typesFor(l.events, call.id).filter((t) => t !== "ChannelVarset").slice(-5)).toEqual(["ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"]);
    expect(await l.client.destroyBridge(bridgeId)).toBe(true);
    await waitEvent(l, (e) => e.type === "BridgeDestroyed");
    expect(await l.client.listChannels()).toEqual([]);

    const rejected = await sim.placeCall();
    await waitEvent(l, isType("StasisStart", rejected.id));
    await l.client.hangup(rejected.id, 17);
    await rejected.waitGone();
    expect(sim.channel(rejected.id)).toMatchObject({ destroyed: true, cause: 17, state: "Ring" });
    const q = await sim.waitForRest((r) => r.method === "DELETE" && r.path === `/ari/channels/${rejected.id}`);
    expect(q).toMatchObject({ query: { reason_code: "17" }, status: 204, response: null, contentType: null });
  });

  it("continue: StasisEnd and ChannelLeftBridge, the channel lives on outside the app", async () => {
    const { sim } = await startSim();
    const l = await connected(sim);
    const { call, bridgeId } = await bridgedCall(sim, l);
    await l.client.continueInDialplan(call.id, { context: "transfer", extension: "2000", priority: 1 });
    await call.waitStasisEnd();
    await waitEvent(l, isType("StasisEnd", call.id));
    expect(typesFor(l.events, call.id).filter((t) => t !== "ChannelVarset").slice(-2)).toEqual(["ChannelLeftBridge", "StasisEnd"]);
    expect(sim.channel(call.id)).toMatchObject({ destroyed: false, continuedTo: { context: "transfer", extension: "2000", priority: 1 } });
    expect(sim.bridge(bridgeId)?.channels).not.toContain(call.id);
    const listed = (await l.client.listChannels()).find((c) => c.id === call.id);
    expect(listed?.dialplan).toMatchObject({ context: "transfer", exten: "2000", app_name: "" });
    // Out of Stasis: channel operations are 409, adding it back to a bridge 422, and its events stop.
    await expect(l.client.answer(call.id)).rejects.toMatchObject({ details: { pbxReply: { status: 409 } } });
    await expect(l.client.addChannel(bridgeId, [call.id])).rejects.toMatchObject({ details: { pbxReply: { status: 422, message: "Channel not in Stasis application" } } });
    const n = l.events.length;
    call.hangup();
    await call.waitGone();
    await l.client.listChannels();
    expect(l.events.slice(n).filter((e) => chanOf(e) === call.id)).toEqual([]);
  });

  it("redirect: PJSIP only (422 otherwise); accept hangs the caller up, fail leaves it alone", async () => {
    const { sim } = await startSim();
    const l = await connected(sim);
    const a = await sim.placeCall();
    await waitEvent(l, isType("StasisStart", a.id));
    await l.client.answer(a.id);
    await expect(l.client.redirect(a.id, "SIP/bob")).rejects.toMatchObject({ details: { pbxReply: { status: 422, message: "Endpoint technology 'SIP' does not match channel technology 'PJSIP'" } } });
    await expect(l.client.redirect(a.id, "bob")).rejects.toMatchObject({ details: { pbxReply: { status: 422 } } });
    sim.redirectBehavior = (ep) => (ep.includes("good") ? "accept" : "fail");
    await l.client.redirect(a.id, "PJSIP/sip:bad@example.com");
    const b = await sim.placeCall();
    await waitEvent(l, isType("StasisStart", b.id));
    await l.client.answer(b.id);
    await l.client.redirect(b.id, "PJSIP/sip:good@example.com");
    await waitEvent(l, isType("ChannelDestroyed", b.id));
    // `a` was redirected first and is still there: nothing happened on failure.
    expect(sim.channel(a.id)).toMatchObject({ destroyed: false, redirects: ["PJSIP/sip:bad@example.com"] });
    expect(typesFor(l.events, b.id).filter((t) => t !== "ChannelVarset").slice(-3)).toEqual(["ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"]);
  });

  it("operations on an originated channel before it reaches Stasis are 409, like Asterisk's find_control", async () => {
    const { sim } = await startSim({ stepMs: 5 });
    const l = await connected(sim);
    sim.originateBehavior = () => "ring";
    await l.client.originate({ endpoint: "PJSIP/bob", channelId: "o-409", appArgs: "originate" });
    await sim.waitForEvent((e) => e.type === "ChannelStateChange" && (e.channel as Json).id === "o-409");
    await expect(l.client.answer("o-409")).rejects.toMatchObject({ details: { pbxReply: { status: 409, message: "Channel not in Stasis application" } } });
    await expect(l.client.playOnChannel("o-409", "sound:x")).rejects.toMatchObject({ details: { pbxReply: { status: 409 } } });
    expect(await l.client.hangup("o-409")).toBe(true);
    await waitEvent(l, isType("ChannelDestroyed", "o-409"));
  });
});

describe("early media and applications", () => {
  it("ring, progress and early playback are recorded on the channel, which stays in Ring until answered", async () => {
    const { sim } = await startSim({ soundDurationsMs: { "sound:ringback": 20 } });
    const l = await connected(sim);
    const call = await sim.placeCall();
    await waitEvent(l, isType("StasisStart", call.id));
    await l.client.ring(call.id);
    await l.client.ringStop(call.id);
    await l.client.progress(call.id);
    const pb = await l.client.playOnChannel(call.id, "sound:ringback");
    expect(pb.target_uri).toBe(`channel:${call.id}`);
    await waitEvent(l, (e) => e.type === "PlaybackFinished" && (e.playback as Json).id === pb.id);
    expect(sim.channel(call.id)?.indications).toEqual(["ring", "ring_stop", "progress", "progress"]);
    expect(call.state()).toBe("Ring");
    expect(typesFor(l.events, call.id)).toEqual(["StasisStart"]);
  });

  it("lists the registered app once its events socket is up; unknown apps and sounds are 404", async () => {
    const { sim } = await startSim();
    const { client } = makeClient(sim);
    expect(await client.request("GET", "/applications")).toEqual([]);
    const l = await connected(sim);
    const apps = await l.client.request<Json[]>("GET", "/applications");
    expect(apps?.map((a) => a.name)).toEqual(["voiceagent"]);
    await expect(client.request("GET", "/applications/other")).rejects.toMatchObject({ details: { pbxReply: { status: 404 } } });
    expect(await client.request("GET", "/sounds/demo-congrats")).toMatchObject({ id: "demo-congrats" });
    await expect(client.request("GET", "/sounds/nope")).rejects.toMatchObject({ details: { pbxReply: { status: 404 } } });
  });

  it("works without a media factory: stub endpoints carry the channelvars", async () => {
    const sim = await AriSim.start();
    cleanup(() => sim.close());
    const l = await connected(sim);
    const rtp = await l.client.externalMedia({ channelId: "r", format: "slin16", externalHost: "127.0.0.1:4000" });
    expect(Object.keys(rtp.channelvars ?? {}).sort()).toEqual(["UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT"]);
    const ws = await l.client.externalMedia({ channelId: "w", format: "ulaw", transport: "websocket", encapsulation: "none", connectionType: "server" });
    expect(ws.channelvars?.MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE).toBe("160");
    await openMedia(sim, ws.channelvars?.MEDIA_WEBSOCKET_CONNECTION_ID as string);
    await waitEvent(l, isType("StasisStart", "w"));
    expect(await l.client.hangup("w")).toBe(true);
    await waitEvent(l, isType("ChannelDestroyed", "w"));
  });
});

// ---- chan_websocket -------------------------------------------------------------------------------------------------

describe("chan_websocket externalMedia", () => {
  it("StasisStart only after the media socket connects on /media/<id> with subprotocol media; 404 / 409", async () => {
    const { sim, medias } = await startSim();
    const l = await connected(sim);
    const ch = await l.client.externalMedia({ channelId: "ws-1", format: "slin16", transport: "websocket", encapsulation: "none", connectionType: "server", transportData: "f(json)", data: "ws-json" });
    expect(ch.name.startsWith("WebSocket/INCOMING/")).toBe(true);
    const connId = ch.channelvars?.MEDIA_WEBSOCKET_CONNECTION_ID as string;
    expect(ch.channelvars).toEqual({ MEDIA_WEBSOCKET_CONNECTION_ID: connId, MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE: "640" });
    // Not in Stasis yet: still Down, and it cannot be bridged.
    expect((await l.client.getChannel("ws-1")).state).toBe("Down");
    await l.client.createBridge({ bridgeId: "b-ws" });
    await expect(l.client.addChannel("b-ws", ["ws-1"])).rejects.toMatchObject({ details: { pbxReply: { status: 422 } } });
    expect(l.events.filter((e) => e.type === "StasisStart")).toEqual([]);
    expect(typesFor(l.events, "ws-1")).toEqual(["Dial"]);

    await expect(openMedia(sim, "00000000-0000-4000-8000-000000000000")).rejects.toThrow("HTTP 404");
    await expect(openMedia(sim, connId, "other")).rejects.toThrow();
    const ws = await openMedia(sim, connId);
    expect(ws.protocol).toBe("media");
    expect(medias[0]?.ws).toBeDefined();
    const start = await waitEvent(l, isType("StasisStart", "ws-1"));
    expect(start.args).toEqual(["ws-json"]);
    expect(typesFor(l.events, "ws-1")).toEqual(["Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart"]);
    await expect(openMedia(sim, connId)).rejects.toThrow("HTTP 409");
    await l.client.addChannel("b-ws", ["ws-1"]);

    // The media socket closing hangs the channel up.
    ws.close();
    await waitEvent(l, isType("ChannelDestroyed", "ws-1"));
  });
});

// ---- events socket: app replacement, drops, reconnect -------------------------------------------------------------

describe("events socket", () => {
  it("a second socket for the same app takes over: ApplicationReplaced to the first, which gets nothing more", async () => {
    const { sim } = await startSim();
    const a = await connected(sim);
    const b = await connected(sim);
    await waitEvent(a, (e) => e.type === "ApplicationReplaced");
    expect((a.events.find((e) => e.type === "ApplicationReplaced") as Json).application).toBe("voiceagent");
    const call = await sim.placeCall();
    await waitEvent(b, isType("StasisStart", call.id));
    await b.client.listChannels();
    expect(a.events.map((e) => e.type)).toEqual(["ApplicationReplaced"]);
  });

  it("replaceApplication: another client registers the app; our socket gets ApplicationReplaced and then silence", async () => {
    const { sim } = await startSim();
    const a = await connected(sim);
    sim.replaceApplication();
    await waitEvent(a, (e) => e.type === "ApplicationReplaced");
    const call = await sim.placeCall({ app: "voiceagent" });
    await a.client.getChannel(call.id);
    expect(a.events.map((e) => e.type)).toEqual(["ApplicationReplaced"]);
    expect(sim.eventsConnections()).toBe(1);
  });

  it("dropEvents: the client reconnects; calls placed meanwhile stay in Stasis without StasisStart; vanish is silent", async () => {
    const { sim } = await startSim();
    const l = await connected(sim);
    const kept = await sim.placeCall();
    await waitEvent(l, isType("StasisStart", kept.id));
    const reconnected = new Promise<{ reconnect: boolean }>((resolve) => l.client.events.once("connected", resolve));
    const gone = new Promise<void>((resolve) => l.client.events.once("disconnected", () => resolve()));
    sim.dropEvents();
    await gone;
    const meanwhile = await sim.placeCall({ app: "voiceagent", args: ["k=v"] });
    sim.vanish(kept.id);
    expect((await reconnected).reconnect).toBe(true);
    expect(sim.eventsConnections()).toBe(1);
    const channels = await l.client.listChannels();
    expect(channels.map((c) => c.id)).toEqual([meanwhile.id]);
    expect(channels[0]?.dialplan).toMatchObject({ app_name: "Stasis", app_data: "voiceagent,k=v" });
    expect(l.events.filter((e) => chanOf(e) === meanwhile.id || chanOf(e) === kept.id).map((e) => e.type)).toEqual(["StasisStart"]);
    // The adopted call is fully usable.
    await l.client.answer(meanwhile.id);
    await waitEvent(l, isType("ChannelStateChange", meanwhile.id));
  });

  it("stallRest delays replies until the client's timeout", async () => {
    const { sim } = await startSim();
    const { client } = makeClient(sim, { requestTimeoutMs: 100 });
    sim.stallRest(400, 1);
    await expect(client.info()).rejects.toMatchObject({ code: "TIMEOUT" });
    expect((await client.info()).system?.version).toBe("23.4.1");
  });
});

// ---- originate -------------------------------------------------------------------------------------------------------

describe("originate", () => {
  it("answer: Dial, Ringing, Up, Dial ANSWER, StasisStart [originate]; variables kept", async () => {
    const { sim } = await startSim({ stepMs: 5 });
    const l = await connected(sim);
    const seen: Json[] = [];
    sim.originateBehavior = (req) => {
      seen.push(req as unknown as Json);
      return "answer";
    };
    const ch = await l.client.originate({ endpoint: "PJSIP/bob", channelId: "out-1", appArgs: "originate", callerId: '"Agent" <1000>', timeout: 30, variables: { "PJSIP_HEADER(add,X-Call)": "c1" } });
    expect(ch).toMatchObject({ id: "out-1", state: "Down", caller: { name: "Agent", number: "1000" } });
    const start = await waitEvent(l, isType("StasisStart", "out-1"));
    expect(start.args).toEqual(["originate"]);
    expect(typesFor(l.events, "out-1")).toEqual(["Dial", "ChannelStateChange", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart"]);
    const states = l.events.filter(isType("ChannelStateChange", "out-1")).map((e) => (e.channel as Json).state);
    expect(states).toEqual(["Ringing", "Up"]);
    expect(l.events.filter(isType("Dial", "out-1")).map((e) => e.dialstatus)).toEqual(["", "ANSWER"]);
    expect(seen).toEqual([{ endpoint: "PJSIP/bob", channelId: "out-1", variables: { "PJSIP_HEADER(add,X-Call)": "c1" } }]);
    expect(sim.channel("out-1")?.variables["PJSIP_HEADER(add,X-Call)"]).toBe("c1");
    await expect(l.client.originate({ endpoint: "PJSIP/bob", channelId: "out-1" })).rejects.toMatchObject({ details: { pbxReply: { status: 409 } } });
    await expect(l.client.originate({ endpoint: "nodevice" })).rejects.toMatchObject({ details: { pbxReply: { status: 400, message: "Invalid endpoint specified" } } });
  });

  for (const [outcome, dialstatus, cause] of [
    ["busy", "BUSY", 17],
    ["noanswer", "NOANSWER", 19],
    ["congestion", "CONGESTION", 34],
    ["unavailable", "CHANUNAVAIL", 20],
  ] as const) {
    it(`${outcome}: Dial ${dialstatus}, ChannelDestroyed cause ${cause}, never StasisStart`, async () => {
      const { sim } = await startSim({ stepMs: 5 });
      const l = await connected(sim);
      sim.originateBehavior = () => outcome;
      await l.client.originate({ endpoint: "PJSIP/sip:bob@example.com", channelId: `o-${outcome}`, appArgs: "originate" });
      const d = await waitEvent(l, isType("ChannelDestroyed", `o-${outcome}`));
      expect(d.cause).toBe(cause);
      const types = typesFor(l.events, `o-${outcome}`);
      expect(types).not.toContain("StasisStart");
      expect(types.at(0)).toBe("Dial");
      expect(l.events.filter(isType("Dial", `o-${outcome}`)).map((e) => e.dialstatus)).toEqual(["", dialstatus]);
      expect(types.includes("ChannelStateChange")).toBe(outcome !== "unavailable");
    });
  }

  it("the app can cancel a ringing originate with DELETE", async () => {
    const { sim } = await startSim({ stepMs: 5 });
    const l = await connected(sim);
    sim.originateBehavior = () => "ring";
    await l.client.originate({ endpoint: "PJSIP/bob", channelId: "o-cancel", appArgs: "originate" });
    await waitEvent(l, isType("Dial", "o-cancel"));
    expect(await l.client.hangup("o-cancel", 16)).toBe(true);
    await waitEvent(l, isType("ChannelDestroyed", "o-cancel"));
    expect(sim.channel("o-cancel")?.destroyed).toBe(true);
  });
});
