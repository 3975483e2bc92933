/**
 * The Conversation seam's contract (conversation.ts; ws-call-api.md §3 commands, §4 events): one table of cases,
 * each run against both pipelines, SerialConversation and RealtimeConversation, through their public API only
 * (constructor options, start, handleCommand, stop, the `event` and `control` events, snapshot, closed). Internals
 * may change freely; these must hold on both.
 *
 * Both run on a ManualClock and a MemoryLeg (20 ms lead). The serial one is the serial tests' Harness (scripted
 * providers, energy VAD); the realtime one talks to an in-process fake model that sends no server events unless a
 * test pushes them, so the cases are about what each engine does itself with commands, the leg and its timers.
 * Sound files are real files (loaded with real I/O: `runUntil` lets it progress while the media clock runs).
 *
 * SHARED holds observations once in DIFFERENCES that both pipelines now meet. DIFFERENCES pins where the
 * pipelines still behave differently, one expectation per pipeline: when a difference is fixed, its row fails
 * and moves to SHARED.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeWav } from "../audio/index.js";
import { ManualClock } from "../media/clock.js";
import { MemoryLeg } from "../media/memory-leg.js";
import { ScriptedAsr } from "../providers/scripted.js";
import type { AsrProvider } from "../providers/types.js";
import type { Conversation, ConversationEvent, HangupInitiator } from "./conversation.js";
import { fakeRealtimeCall, type FakeSession } from "./realtime/testutil.js";
import type { ControlRequest } from "./serial/serial-conversation.js";
import { flush, Harness, runCaller, TestPbxPlayer, watchUnhandledRejections } from "./serial/testutil.js";

const rejections = watchUnhandledRejections();

// ------------------------------------------------------------------------------------------------ fakes

/** The scripted ASR, recording every caller frame the serial engine hands it (that is: after mute). */
function recordingAsr(into: Int16Array[], script: string[]): AsrProvider {
  const inner = new ScriptedAsr({ script });
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    transcribe: (u, o) => inner.transcribe(u, o),
    session(options) {
      const s = inner.session(options);
      return {
        write(frame) {
          into.push(frame.pcm.slice());
          s.write(frame);
        },
        endUtterance: () => s.endUtterance(),
        discardUtterance: () => s.discardUtterance(),
        close: () => s.close(),
        get results() {
          return s.results;
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------------------------ harness

type Pipeline = "serial" | "realtime";
const PIPELINES: Pipeline[] = ["serial", "realtime"];

const CALL_ID = "c1";
const AGENT_TRACK = "server-side-track";
/** The injected wall clock is the media clock plus this, so a timestamp taken from Date.now() or from the media clock shows. */
const WALL_EPOCH = 1_700_000_000_000;

interface MakeOptions {
  inactivityTimeoutMs?: number;
  /** Extra front-matter lines (both pipelines), e.g. a `dtmf:` map. */
  frontMatter?: string;
  /** The playbook body (scenes); default one line of prompt. */
  body?: string;
  /** Serial: what the scripted ASR hears, one entry per caller segment (realtime: the model transcribes, here nothing). */
  asrScript?: string[];
  /** The PBX's side of `pbx:` plays (a FreeSWITCH/Asterisk call); none = a WebSocket call. */
  pbxPlayer?: TestPbxPlayer;
}

interface Made {
  pipeline: Pipeline;
  conv: Conversation;
  leg: MemoryLeg;
  clock: ManualClock;
  events: ConversationEvent[];
  /** The media-clock time at which each of `events` was emitted. */
  emittedAt: number[];
  controls: ControlRequest[];
  /** Caller audio the engine passed on (after mute): what the serial ASR got, what the realtime model got. */
  callerInput(): Int16Array[];
  /** Realtime: the fake model session in use. */
  session: (() => FakeSession | undefined) | undefined;
}

let sounds: string;
const live: Made[] = [];

function make(pipeline: Pipeline, opts: MakeOptions = {}): Made {
  const engine = pipeline === "serial" ? "llm: { provider: scripted }" : "realtime: { provider: openai, apiKey: sk-test }";
  const playbook = `---\n${engine}\ngreeting: false\n${opts.frontMatter ?? ""}\n---\n${opts.body ?? "Be brief.\n"}`;
  const inactivity = opts.inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs: opts.inactivityTimeoutMs } : {};
  const events: ConversationEvent[] = [];
  const emittedAt: number[] = [];
  const controls: ControlRequest[] = [];
  let made: Made;
  if (pipeline === "serial") {
    const asrInput: Int16Array[] = [];
    const clock: { current?: ManualClock } = {};
    const h = new Harness({
      playbook,
      soundsDir: sounds,
      asr: recordingAsr(asrInput, opts.asrScript ?? []),
      wallClock: () => WALL_EPOCH + (clock.current as ManualClock).now(),
      ...inactivity,
      ...(opts.pbxPlayer ? { pbxPlayer: opts.pbxPlayer } : {}),
    });
    clock.current = h.clock;
    h.conv.events.on("control", (c) => controls.push(c));
    made = { pipeline, conv: h.conv, leg: h.leg, clock: h.clock, events, emittedAt, controls, callerInput: () => asrInput, session: undefined };
  } else {
    const clock = new ManualClock();
    const leg = new MemoryLeg({ clock, leadMs: 20 });
    const { conv, provider } = fakeRealtimeCall(leg, clock, playbook, {
      call: { caller: "+1555" },
      wallClock: () => WALL_EPOCH + clock.now(),
      soundsDir: sounds,
      ...inactivity,
      ...(opts.pbxPlayer ? { pbxPlayer: opts.pbxPlayer } : {}),
    });
    conv.events.on("control", (c) => controls.push(c));
    made = {
      pipeline,
      conv,
      leg,
      clock,
      events,
      emittedAt,
      controls,
      callerInput: () => provider.sessions.flatMap((s) => s.audio),
      session: () => provider.sessions.at(-1),
    };
  }
  const m = made;
  m.conv.events.on("event", (e) => {
    events.push(e);
    emittedAt.push(m.clock.now());
  });
  live.push(m);
  return m;
}

afterEach(async () => {
  for (const m of live.splice(0)) {
    await m.conv.stop();
    await m.leg.close();
    // §4: every event has a timestamp, from the conversation's (injected) wall clock, taken when it is emitted.
    expect(m.events.map((e) => e.timestamp)).toEqual(m.emittedAt.map((t) => WALL_EPOCH + t));
  }
  expect(rejections).toEqual([]);
});

async function started(pipeline: Pipeline, opts: MakeOptions = {}): Promise<Made> {
  const m = make(pipeline, opts);
  await m.conv.start();
  await run(m, 100);
  return m;
}

/** Advances the media clock by `ms` in 20 ms steps, pushing `audio` (else silence) as caller audio in step. */
const run = (m: Made, ms: number, audio?: Int16Array): Promise<void> => runCaller(m.leg, m.clock, ms, audio);

/** Advances the media clock without any caller frame. */
async function idle(m: Made, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 20) {
    m.clock.advance(20);
    await flush(2);
  }
}

/** Lets real file I/O (sound loading) progress while the media clock runs (caller frames flowing), until `done`. */
async function runUntil(m: Made, done: () => boolean, maxSteps = 300): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    await run(m, 20);
  }
  if (!done()) throw new Error(`${m.pipeline}: condition not met; events: ${m.events.map((e) => e.event).join(",")}`);
}

/** The caller talks for `ms`, then is silent for 700 ms: a loud tone (the serial VAD), and for realtime the fake server VAD's events. */
async function callerSpeaks(m: Made, ms: number): Promise<void> {
  const server = m.session?.();
  server?.push({ type: "speech_started" });
  await run(m, ms, Harness.speech(ms));
  server?.push({ type: "speech_stopped", itemId: `in-${m.clock.now()}` });
  await run(m, 700);
}

function of<N extends ConversationEvent["event"]>(m: Made, name: N): Extract<ConversationEvent, { event: N }>[] {
  return m.events.filter((e): e is Extract<ConversationEvent, { event: N }> => e.event === name);
}

/** Playback events as strings: `trackStart:p`, `trackEnd:p:reason`, `interruption:p:reason`, `hangup:reason`. */
function playback(m: Made, playIds?: string[]): string[] {
  return m.events.flatMap((e) => {
    if ((e.event === "trackStart" || e.event === "trackEnd" || e.event === "interruption") && playIds && !playIds.includes(e.playId)) return [];
    switch (e.event) {
      case "trackStart":
        return [`trackStart:${e.playId}`];
      case "trackEnd":
        return [`trackEnd:${e.playId}:${e.reason}`];
      case "interruption":
        return [`interruption:${e.playId}:${e.reason}`];
      case "hangup":
        return [`hangup:${e.reason}`];
      default:
        return [];
    }
  });
}

const ended = (m: Made, playId: string) => () => of(m, "trackEnd").some((e) => e.playId === playId);
const playing = (m: Made, playId: string) => () => of(m, "trackStart").some((e) => e.playId === playId);
const hungUp = (m: Made) => () => of(m, "hangup").length > 0;
const peak = (chunks: Int16Array[]): number => chunks.reduce((p, c) => c.reduce((q, s) => Math.max(q, Math.abs(s)), p), 0);
/** Agent frames the leg sent for one utterance. */
const framesOf = (m: Made, playId: string) => m.leg.captured.filter((f) => f.playId === playId);
const sentMs = (m: Made, playId: string) => framesOf(m, playId).reduce((ms, f) => ms + (f.pcm.length * 1000) / f.sampleRate, 0);
/** The wall-clock timestamp of "now" (what an event emitted now carries). */
const wallNow = (m: Made) => WALL_EPOCH + m.clock.now();

/** short.wav: 200 ms of samples 1000; long.wav: 3000 ms of samples 2000 (16 kHz, the legs' rate). */
const SHORT_MS = 200;
const LONG_MS = 3000;

beforeAll(async () => {
  sounds = await mkdtemp(join(tmpdir(), "contract-sounds-"));
  await writeFile(join(sounds, "short.wav"), encodeWav(new Int16Array((SHORT_MS * 16000) / 1000).fill(1000), 16000));
  await writeFile(join(sounds, "long.wav"), encodeWav(new Int16Array((LONG_MS * 16000) / 1000).fill(2000), 16000));
});

afterAll(async () => {
  await rm(sounds, { recursive: true, force: true });
});

const KEYS = [
  "dtmf:",
  '  "1": { action: transfer, target: "1001", context: sales }',
  '  "2": { action: hangup }',
  '  "3": { action: refer, target: "sip:sales@example.com" }',
  '  "4": { action: goto, scene: billing }',
].join("\n");
const SCENES = "# Scene: main\nAnswer general questions.\n\n# Scene: billing\nHelp with invoices only.\n";

// ------------------------------------------------------------------------------------------------ the contract

interface Case {
  name: string;
  test(pipeline: Pipeline): Promise<void>;
}

const CASES: Case[] = [
  // ---------------------------------------------------------------------------------------------- mute (§3.12)
  {
    name: "mute/unmute with an unknown trackId: error {sender: command, code: BAD_REQUEST} each, and nothing is muted",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "mute", trackId: "nope" });
      m.conv.handleCommand({ command: "unmute", trackId: "nope2" });
      const at = wallNow(m);
      expect(m.events).toEqual([
        { event: "error", trackId: CALL_ID, sender: "command", code: "BAD_REQUEST", error: 'unknown trackId "nope"', timestamp: at },
        { event: "error", trackId: CALL_ID, sender: "command", code: "BAD_REQUEST", error: 'unknown trackId "nope2"', timestamp: at },
      ]);
      const from = m.callerInput().length;
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await run(m, 300, Harness.speech(300));
      await runUntil(m, ended(m, "p"));
      expect(peak(m.callerInput().slice(from))).toBeGreaterThan(4000);
      expect(peak(framesOf(m, "p").map((f) => f.pcm))).toBe(1000);
    },
  },
  {
    name: "mute of the caller track (the call id): the caller's audio goes on as silence, the agent is heard; unmute restores it",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "mute", trackId: CALL_ID });
      m.conv.handleCommand({ command: "mute", trackId: CALL_ID }); // muting twice does nothing
      const from = m.callerInput().length;
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await run(m, 300, Harness.speech(300));
      await runUntil(m, ended(m, "p"));
      const muted = m.callerInput().slice(from);
      expect(muted.length).toBeGreaterThan(3); // frames still flow (timing, inactivity), as silence
      expect(peak(muted)).toBe(0);
      expect(peak(framesOf(m, "p").map((f) => f.pcm))).toBe(1000);
      expect(of(m, "speaking")).toEqual([]);
      expect(of(m, "error")).toEqual([]);
      m.conv.handleCommand({ command: "unmute", trackId: CALL_ID });
      const again = m.callerInput().length;
      await run(m, 300, Harness.speech(300));
      expect(peak(m.callerInput().slice(again))).toBeGreaterThan(4000);
    },
  },
  {
    name: "mute of the agent track: its audio is sent as silence with playback timing unchanged; the caller is not muted",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "mute", trackId: AGENT_TRACK });
      const from = m.callerInput().length;
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await run(m, 300, Harness.speech(300));
      await runUntil(m, ended(m, "p"));
      expect(playback(m, ["p"])).toEqual(["trackStart:p", "trackEnd:p:finished"]);
      expect(of(m, "trackEnd")[0]?.duration).toBe(SHORT_MS);
      expect(sentMs(m, "p")).toBe(SHORT_MS);
      expect(peak(framesOf(m, "p").map((f) => f.pcm))).toBe(0);
      expect(peak(m.callerInput().slice(from))).toBeGreaterThan(4000);
      m.conv.handleCommand({ command: "unmute", trackId: AGENT_TRACK });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "q" });
      await runUntil(m, ended(m, "q"));
      expect(peak(framesOf(m, "q").map((f) => f.pcm))).toBe(1000);
    },
  },
  {
    name: "mute without trackId mutes both sides; unmute without trackId unmutes both",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "mute" });
      let from = m.callerInput().length;
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await run(m, 300, Harness.speech(300));
      await runUntil(m, ended(m, "p"));
      expect(peak(m.callerInput().slice(from))).toBe(0);
      expect(sentMs(m, "p")).toBe(SHORT_MS);
      expect(peak(framesOf(m, "p").map((f) => f.pcm))).toBe(0);
      m.conv.handleCommand({ command: "unmute" });
      from = m.callerInput().length;
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "q" });
      await run(m, 300, Harness.speech(300));
      await runUntil(m, ended(m, "q"));
      expect(peak(m.callerInput().slice(from))).toBeGreaterThan(4000);
      expect(peak(framesOf(m, "q").map((f) => f.pcm))).toBe(1000);
    },
  },

  // ---------------------------------------------------------------------------------------------- hangup (§3.8)
  {
    name: "hangup: reason client, initiator client by default, detail = the command's reason, headers kept; one hangup event; the rest is ignored",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "hangup", reason: "customer done", headers: { "X-Disposition": "resolved" } });
      const at = wallNow(m);
      const end = await m.conv.closed;
      expect(end).toEqual({ reason: "client", initiator: "client", detail: "customer done", headers: { "X-Disposition": "resolved" } });
      expect(m.events).toEqual([{ event: "hangup", trackId: CALL_ID, reason: "client", initiator: "client", detail: "customer done", timestamp: at }]);
      // A second hangup, other commands and a stop change nothing: hangup is the last event, sent once.
      m.conv.handleCommand({ command: "hangup", reason: "again", initiator: "system" });
      m.conv.handleCommand({ command: "history", speaker: "user", text: "late" });
      m.conv.handleCommand({ command: "mute", trackId: "nope" });
      await m.conv.stop({ reason: "shutdown", initiator: "system" });
      await run(m, 100);
      expect(m.events).toHaveLength(1);
      expect(m.conv.snapshot().end).toEqual(end);
      await expect(m.conv.closed).resolves.toBe(end);
    },
  },
  {
    name: "hangup initiator: callee is reported as agent; caller/agent/system pass through",
    async test(p) {
      const wire: [string, HangupInitiator][] = [
        ["callee", "agent"],
        ["caller", "caller"],
        ["agent", "agent"],
        ["system", "system"],
      ];
      for (const [given, reported] of wire) {
        const m = await started(p);
        // The wire accepts `callee` although the type does not name it.
        m.conv.handleCommand({ command: "hangup", initiator: given as HangupInitiator });
        await expect(m.conv.closed).resolves.toMatchObject({ reason: "client", initiator: reported });
        expect(of(m, "hangup").map((e) => [e.reason, e.initiator])).toEqual([["client", reported]]);
      }
    },
  },
  {
    name: "hangup afterPlayout: the playing file is heard to its end, then the call ends",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      m.conv.handleCommand({ command: "hangup", afterPlayout: true, reason: "bye" });
      expect(of(m, "hangup")).toEqual([]);
      await runUntil(m, hungUp(m));
      expect(playback(m)).toEqual(["trackStart:p", "trackEnd:p:finished", "hangup:client"]);
      expect(of(m, "trackEnd")[0]?.duration).toBe(SHORT_MS);
      await expect(m.conv.closed).resolves.toMatchObject({ reason: "client", initiator: "client", detail: "bye" });
    },
  },
  {
    name: "leg close (the caller hung up): hangup reason caller, initiator caller; closed resolves with it",
    async test(p) {
      const m = await started(p);
      m.leg.hangup("caller");
      await expect(m.conv.closed).resolves.toEqual({ reason: "caller", initiator: "caller" });
      expect(m.events.map((e) => (e.event === "hangup" ? [e.event, e.trackId, e.reason, e.initiator, e.detail] : [e.event]))).toEqual([
        ["hangup", CALL_ID, "caller", "caller", undefined],
      ]);
    },
  },

  // ---------------------------------------------------------------------------------------------- stop / lifecycle
  {
    name: "stop() before start(): one hangup with the given end; start() afterwards does nothing; a second stop keeps the first end",
    async test(p) {
      const m = make(p);
      const first = { reason: "client" as const, initiator: "client" as const, detail: "never started" };
      await m.conv.stop(first);
      await m.conv.stop({ reason: "error", initiator: "system" });
      await m.conv.start();
      await run(m, 200);
      await expect(m.conv.closed).resolves.toEqual(first);
      expect(m.conv.snapshot().end).toEqual(first);
      expect(m.events.map((e) => e.event)).toEqual(["hangup"]);
      expect(of(m, "hangup")[0]).toMatchObject({ reason: "client", initiator: "client", detail: "never started" });
      expect(m.callerInput()).toEqual([]); // never consumed the caller's audio
    },
  },
  {
    name: "stop() after start() defaults to shutdown/system; a second stop is harmless",
    async test(p) {
      const m = await started(p);
      expect(m.conv.snapshot().end).toBeUndefined();
      await m.conv.stop();
      await m.conv.stop({ reason: "caller", initiator: "caller" });
      await expect(m.conv.closed).resolves.toEqual({ reason: "shutdown", initiator: "system" });
      expect(of(m, "hangup").map((e) => [e.reason, e.initiator])).toEqual([["shutdown", "system"]]);
    },
  },

  // ---------------------------------------------------------------------------------------------- history (§3.13)
  {
    name: "history: addHistory {speaker, text}, an unknown speaker is user, and the messages are in snapshot().runner.history in order",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "history", speaker: "system", text: "The customer is a premium member." });
      m.conv.handleCommand({ command: "history", speaker: "bot", text: "Hello?" });
      m.conv.handleCommand({ command: "history", speaker: "assistant", text: "Hi, how can I help?" });
      m.conv.handleCommand({ command: "history", speaker: "user", text: "My order." });
      const at = wallNow(m);
      expect(m.events).toEqual([
        { event: "addHistory", speaker: "system", text: "The customer is a premium member.", timestamp: at },
        { event: "addHistory", speaker: "user", text: "Hello?", timestamp: at },
        { event: "addHistory", speaker: "assistant", text: "Hi, how can I help?", timestamp: at },
        { event: "addHistory", speaker: "user", text: "My order." , timestamp: at },
      ]);
      expect(m.conv.snapshot().runner?.history.map((h) => h.message)).toEqual([
        { role: "system", content: "The customer is a premium member." },
        { role: "user", content: "Hello?" },
        { role: "assistant", content: "Hi, how can I help?" },
        { role: "user", content: "My order." },
      ]);
    },
  },

  // ---------------------------------------------------------------------------------------------- inactivity
  {
    name: "inactivityTimeoutMs: caller frames (silent ones too) keep the call up; none for that long -> inactivity, then hangup inactivityTimeout/system",
    async test(p) {
      const m = await started(p, { inactivityTimeoutMs: 1000 });
      await run(m, 2500);
      expect(of(m, "inactivity")).toEqual([]);
      await idle(m, 900);
      expect(of(m, "inactivity")).toEqual([]);
      await idle(m, 200);
      expect(m.events.map((e) => e.event)).toEqual(["inactivity", "hangup"]);
      expect(of(m, "inactivity")[0]?.trackId).toBe(CALL_ID);
      expect(of(m, "hangup")[0]).toMatchObject({ trackId: CALL_ID, reason: "inactivityTimeout", initiator: "system", detail: "no caller audio for 1000 ms" });
      await expect(m.conv.closed).resolves.toEqual({ reason: "inactivityTimeout", initiator: "system", detail: "no caller audio for 1000 ms" });
    },
  },
  {
    name: "inactivity is off without inactivityTimeoutMs",
    async test(p) {
      const m = await started(p);
      await idle(m, 200);
      m.clock.advance(120_000);
      await flush(4);
      expect(m.events).toEqual([]);
      expect(m.conv.snapshot().end).toBeUndefined();
    },
  },

  // ---------------------------------------------------------------------------------------------- play (§3.5)
  {
    name: "play a sound file: trackStart then trackEnd {reason finished, duration = the file's} on the agent track, all of its audio sent",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "welcome" });
      await runUntil(m, ended(m, "welcome"));
      await run(m, 100);
      expect(m.events.map((e) => e.event)).toEqual(["trackStart", "trackEnd"]);
      expect(of(m, "trackStart")[0]).toMatchObject({ trackId: AGENT_TRACK, playId: "welcome" });
      expect(of(m, "trackEnd")[0]).toMatchObject({ trackId: AGENT_TRACK, playId: "welcome", reason: "finished", duration: SHORT_MS, ssrc: 0 });
      expect(sentMs(m, "welcome")).toBe(SHORT_MS);
      expect(framesOf(m, "welcome").every((f) => f.pcm.every((s) => s === 1000))).toBe(true);
    },
  },
  {
    name: "play with autoHangup: hangup autohangup (initiator client) once the file has been heard, and not before",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "bye", autoHangup: true });
      await runUntil(m, playing(m, "bye"));
      expect(of(m, "hangup")).toEqual([]);
      await runUntil(m, hungUp(m));
      expect(playback(m)).toEqual(["trackStart:bye", "trackEnd:bye:finished", "hangup:autohangup"]);
      expect(sentMs(m, "bye")).toBe(SHORT_MS);
      await expect(m.conv.closed).resolves.toEqual({ reason: "autohangup", initiator: "client" });
    },
  },
  {
    name: "queue: true plays after the current one: both to their end, in order, no interruption",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "a" });
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "b", queue: true });
      await runUntil(m, ended(m, "b"), 400);
      expect(of(m, "trackStart").map((e) => e.playId)).toEqual(["a", "b"]);
      expect(of(m, "trackEnd").map((e) => [e.playId, e.reason, e.duration])).toEqual([
        ["a", "finished", SHORT_MS],
        ["b", "finished", LONG_MS],
      ]);
      expect(of(m, "interruption")).toEqual([]);
      // On the wire every frame of a comes before any frame of b.
      expect(m.leg.captured.findIndex((f) => f.playId === "b")).toBe(framesOf(m, "a").length);
    },
  },
  {
    name: "a second play without queue replaces the first: the first stops early (interruption + a trackEnd that is not finished), the second plays in full",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "a", autoHangup: true });
      await runUntil(m, playing(m, "a"));
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "b" });
      await runUntil(m, ended(m, "b"));
      await run(m, 500);
      const endA = of(m, "trackEnd").find((e) => e.playId === "a");
      expect(endA?.reason).not.toBe("finished");
      expect(endA?.duration).toBeLessThan(LONG_MS);
      expect(of(m, "interruption").map((e) => [e.playId, e.totalDuration])).toEqual([["a", LONG_MS]]);
      expect(of(m, "trackEnd").find((e) => e.playId === "b")).toMatchObject({ reason: "finished", duration: SHORT_MS });
      expect(playback(m, ["b"])).toEqual(["trackStart:b", "trackEnd:b:finished"]);
      expect(sentMs(m, "a")).toBeLessThan(LONG_MS);
      // a's pending autoHangup went with it.
      expect(of(m, "hangup")).toEqual([]);
    },
  },

  // ---------------------------------------------------------------------------------------------- interrupt (§3.6)
  {
    name: "interrupt while a play runs: interruption {reason command} and trackEnd {reason interrupted} for it, no more of its audio, its autoHangup cancelled",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p", autoHangup: true });
      await runUntil(m, playing(m, "p"));
      await run(m, 400);
      m.conv.handleCommand({ command: "interrupt" });
      await run(m, 100);
      const frames = framesOf(m, "p").length;
      await run(m, LONG_MS);
      expect(framesOf(m, "p").length).toBe(frames);
      expect(sentMs(m, "p")).toBeLessThan(LONG_MS / 2);
      expect(playback(m)).toEqual(["trackStart:p", "interruption:p:command", "trackEnd:p:interrupted"]);
      const cut = of(m, "interruption")[0];
      expect(cut).toMatchObject({ trackId: AGENT_TRACK, playId: "p", reason: "command", totalDuration: LONG_MS });
      expect(cut?.current).toBe(of(m, "trackEnd")[0]?.duration);
      expect(cut?.current).toBeLessThan(LONG_MS / 2);
      expect(cut?.current).toBeGreaterThanOrEqual(400);
      expect(of(m, "hangup")).toEqual([]);
    },
  },
  {
    name: "interrupt with nothing playing does nothing and emits nothing",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "interrupt" });
      m.conv.handleCommand({ command: "interrupt", graceful: true });
      await run(m, 200);
      expect(m.events).toEqual([]);
    },
  },

  // ---------------------------------------------------------------------------------------------- pause (§3.7)
  {
    name: "pause freezes a play (no trackEnd however long); resume plays the rest: trackEnd finished with the full duration",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      await run(m, 200);
      m.conv.handleCommand({ command: "pause" });
      m.conv.handleCommand({ command: "pause" });
      const sent = sentMs(m, "p");
      await run(m, 5000);
      expect(playback(m)).toEqual(["trackStart:p"]);
      expect(sentMs(m, "p")).toBeLessThanOrEqual(sent + 40); // at most the lead already handed to the wire
      m.conv.handleCommand({ command: "resume" });
      await run(m, LONG_MS);
      expect(playback(m)).toEqual(["trackStart:p", "trackEnd:p:finished"]);
      expect(of(m, "trackEnd")[0]?.duration).toBe(LONG_MS);
      expect(sentMs(m, "p")).toBe(LONG_MS);
    },
  },

  // ---------------------------------------------------------------------------------------------- barge-in (§2.7)
  {
    name: "caller speech cuts an interruptible play: speaking, then interruption {reason bargeIn} and trackEnd interrupted for it",
    async test(p) {
      const m = await started(p, { asrScript: ["hold on please"] });
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      await run(m, 1000);
      await callerSpeaks(m, 600);
      expect(playback(m, ["p"])).toEqual(["trackStart:p", "interruption:p:bargeIn", "trackEnd:p:interrupted"]);
      const names = m.events.map((e) => e.event);
      expect(names.indexOf("speaking")).toBeLessThan(names.indexOf("interruption"));
      expect(sentMs(m, "p")).toBeLessThan(LONG_MS);
    },
  },
  {
    name: "caller speech does not cut a play with interruptible: false, nor one with autoHangup (not interruptible by default)",
    async test(p) {
      for (const opts of [{ interruptible: false }, { autoHangup: true }]) {
        const m = await started(p, { asrScript: ["hold on please"] });
        m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p", ...opts });
        await runUntil(m, playing(m, "p"));
        await run(m, 1000);
        await callerSpeaks(m, 600);
        await runUntil(m, ended(m, "p"));
        expect(of(m, "speaking")).toHaveLength(1);
        expect(of(m, "interruption")).toEqual([]);
        expect(of(m, "trackEnd").find((e) => e.playId === "p")).toMatchObject({ reason: "finished", duration: LONG_MS });
      }
    },
  },

  // ---------------------------------------------------------------------------------------------- tts base64 (§3.4)
  {
    name: "tts base64: the PCM plays through the leg unchanged, trackStart/trackEnd finished with its duration",
    async test(p) {
      const m = await started(p);
      const pcm = Int16Array.from({ length: 3200 }, (_, i) => ((i % 160) - 80) * 100); // 200 ms at 16 kHz
      m.conv.handleCommand({ command: "tts", base64: true, text: Buffer.from(pcm.buffer).toString("base64"), playId: "clip" });
      await run(m, 400);
      expect(playback(m)).toEqual(["trackStart:clip", "trackEnd:clip:finished"]);
      expect(of(m, "trackEnd")[0]?.duration).toBe(200);
      expect(Int16Array.from(framesOf(m, "clip").flatMap((f) => [...f.pcm]))).toEqual(pcm);
    },
  },

  // ---------------------------------------------------------------------------------------------- DTMF (§4, playbook §2.9)
  {
    name: "DTMF on the leg: a dtmf event {trackId: call id, digit, durationMs, source}",
    async test(p) {
      const m = await started(p);
      m.leg.pushDtmf("7", { durationMs: 120, source: "rfc2833" });
      const at = wallNow(m);
      expect(m.events).toEqual([{ event: "dtmf", trackId: CALL_ID, digit: "7", durationMs: 120, source: "rfc2833", timestamp: at }]);
      await run(m, 200);
      m.leg.pushDtmf("#");
      expect(of(m, "dtmf").map((e) => e.digit)).toEqual(["7", "#"]);
      expect(m.conv.snapshot().end).toBeUndefined();
    },
  },
  {
    name: "DTMF key action hangup: the call ends with reason agent, initiator agent",
    async test(p) {
      const m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("2");
      await run(m, 200);
      expect(m.events.map((e) => e.event)).toEqual(["dtmf", "hangup"]);
      await expect(m.conv.closed).resolves.toMatchObject({ reason: "agent", initiator: "agent" });
    },
  },
  {
    name: "DTMF key action transfer / refer: transfer {state requested} and the control request for the call layer",
    async test(p) {
      let m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("1");
      await run(m, 200);
      expect(of(m, "transfer").map(({ timestamp: _t, ...e }) => e)).toEqual([
        { event: "transfer", trackId: CALL_ID, mode: "dialplan", target: "1001", context: "sales", state: "requested" },
      ]);
      expect(m.controls).toEqual([{ command: "transfer", target: "1001", mode: "dialplan", context: "sales" }]);
      m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("3");
      await run(m, 200);
      expect(of(m, "transfer").map(({ timestamp: _t, ...e }) => e)).toEqual([
        { event: "transfer", trackId: CALL_ID, mode: "refer", target: "sip:sales@example.com", state: "requested" },
      ]);
      expect(m.controls).toEqual([{ command: "refer", callee: "sip:sales@example.com" }]);
      expect(m.conv.snapshot().end).toBeUndefined();
    },
  },
  {
    name: "DTMF key action goto: sceneChange {from, to, trigger dtmf}, and the snapshot's scenes",
    async test(p) {
      const m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("4");
      await run(m, 200);
      expect(of(m, "sceneChange").map(({ timestamp: _t, ...e }) => e)).toEqual([{ event: "sceneChange", from: "main", to: "billing", trigger: "dtmf" }]);
      expect(m.conv.snapshot().runner?.scenes).toEqual(["main", "billing"]);
    },
  },
  // ---------------------------------------------------------------------------------------------- timestamps (§4)
  {
    name: "events carry timestamp from the injected wallClock at the moment they are emitted",
    async test(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "mute", trackId: "x" });
      await run(m, 60);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "p" });
      await runUntil(m, ended(m, "p"));
      await run(m, 40);
      m.leg.pushDtmf("1");
      await run(m, 40);
      m.conv.handleCommand({ command: "hangup" });
      await m.conv.closed;
      expect(m.events.map((e) => e.event)).toEqual(["error", "trackStart", "trackEnd", "dtmf", "hangup"]);
      expect(m.events.map((e) => e.timestamp)).toEqual(m.emittedAt.map((t) => WALL_EPOCH + t));
      // Distinct moments, in order: the clock is read per event, not once.
      expect(new Set(m.emittedAt).size).toBe(5);
      expect([...m.emittedAt].sort((a, b) => a - b)).toEqual(m.emittedAt);
    },
  },
];

/**
 * Observations both pipelines now share, each once a row of DIFFERENCES (kept in that form: what is observed,
 * then the one expectation both meet, and the spec's word where it takes a side).
 */
interface Shared {
  name: string;
  spec?: string;
  observe(pipeline: Pipeline): Promise<unknown>;
  both: unknown;
}

const SHARED: Shared[] = [
  {
    name: "play without playId: the utterance's playId",
    spec: "§3.5: playId defaults to the url",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav" });
      await runUntil(m, () => of(m, "trackEnd").length > 0);
      return playback(m);
    },
    both: ["trackStart:short.wav", "trackEnd:short.wav:finished"],
  },
  {
    name: "a replacing play: the replaced one's interruption/trackEnd reasons and their order",
    spec: '§3.4 rule 3: interruption {reason:"replaced"} then trackEnd (§4 trackEnd reason "replaced")',
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "a" });
      await runUntil(m, playing(m, "a"));
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "b" });
      await runUntil(m, ended(m, "b"));
      return playback(m);
    },
    both: ["trackStart:a", "interruption:a:replaced", "trackEnd:a:replaced", "trackStart:b", "trackEnd:b:finished"],
  },
  {
    name: "interrupt: the order of interruption and trackEnd",
    spec: '§3.6 step 5: interruption {reason:"command"}, then trackEnd {reason:"interrupted"}',
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      m.conv.handleCommand({ command: "interrupt" });
      return playback(m);
    },
    both: ["trackStart:p", "interruption:p:command", "trackEnd:p:interrupted"],
  },
  {
    name: "a barge-in on a play: the order of interruption and trackEnd, and snapshot().interruptions.bargeIns",
    async observe(p) {
      const m = await started(p, { asrScript: ["hold on please"] });
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      await run(m, 1000);
      await callerSpeaks(m, 600);
      return { events: playback(m, ["p"]), bargeIns: m.conv.snapshot().interruptions.bargeIns };
    },
    both: { events: ["trackStart:p", "interruption:p:bargeIn", "trackEnd:p:interrupted"], bargeIns: 1 },
  },
  {
    name: "a barge-in on a pbx: sound: stopped on the PBX, interruption and trackEnd as for a file",
    async observe(p) {
      const pbx = new TestPbxPlayer();
      const m = await started(p, { asrScript: ["hold on please"], pbxPlayer: pbx });
      m.conv.handleCommand({ command: "play", url: "pbx:hold.wav", playId: "p", loop: 0 });
      await runUntil(m, () => pbx.plays.length > 0);
      pbx.plays[0]?.start();
      await runUntil(m, playing(m, "p"));
      await run(m, 1000);
      await callerSpeaks(m, 600);
      return { events: playback(m, ["p"]), stops: pbx.stops, rounds: pbx.plays.length };
    },
    both: { events: ["trackStart:p", "interruption:p:bargeIn", "trackEnd:p:interrupted"], stops: 1, rounds: 1 },
  },
  {
    name: "a barge-in that yields no words (empty transcript)",
    async observe(p) {
      const m = await started(p, { asrScript: [] });
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      await run(m, 1000);
      await callerSpeaks(m, 600);
      // The verdict waits verdictTimeoutMs (3 s) for words; the resumed play may load its file again (real I/O).
      await runUntil(m, () => of(m, "trackEnd").some((e) => e.playId === "p" && e.reason === "finished"), 600);
      await run(m, 200);
      return { events: playback(m, ["p"]), falseInterruptions: m.conv.snapshot().interruptions.falseInterruptions };
    },
    // a false interruption (interruption.resumeOnFalse): the cut play starts again under the same playId
    both: { events: ["trackStart:p", "interruption:p:bargeIn", "trackEnd:p:interrupted", "trackStart:p", "trackEnd:p:finished"], falseInterruptions: 1 },
  },
  {
    name: "a file that cannot be opened",
    spec: '§3.5: error {code:"PLAYBACK_ERROR"}, then trackEnd {reason:"error"}',
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "missing.wav", playId: "x" });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "next", queue: true });
      await runUntil(m, ended(m, "next"));
      return m.events.map((e) => (e.event === "error" ? `error:${e.sender}:${e.code}` : e.event === "trackEnd" ? `trackEnd:${e.playId}:${e.reason}` : `${e.event}`));
    },
    both: ["error:media:PLAYBACK_ERROR", "trackEnd:x:error", "trackStart", "trackEnd:next:finished"],
  },
  {
    name: "play pbx:<target> on a call without PBX playback",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "pbx:tone_stream://%(100,100,440)" });
      await run(m, 100);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await run(m, 100);
      return of(m, "error").map((e) => `${e.sender}:${e.code}`);
    },
    both: ["command:UNSUPPORTED"],
  },
  {
    name: "command validation: tts text '' without endOfStream, waitInputTimeout 50, interrupt fadeOutMs 5000, play loop -1",
    spec: "§3.4/§3.5/§3.6: each is BAD_REQUEST",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "tts", text: "" });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "w", waitInputTimeout: 50 });
      m.conv.handleCommand({ command: "interrupt", fadeOutMs: 5000 });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "l", loop: -1 });
      return of(m, "error").map((e) => `${e.sender}:${e.code}`);
    },
    both: ["command:BAD_REQUEST", "command:BAD_REQUEST", "command:BAD_REQUEST", "command:BAD_REQUEST"],
  },
  {
    name: "play loop: 2 (trackEnd duration)",
    spec: "§3.5: loop = times to play",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "l", loop: 2 });
      await runUntil(m, ended(m, "l"));
      return of(m, "trackEnd").map((e) => e.duration);
    },
    both: [2 * SHORT_MS],
  },
  {
    name: "play waitInputTimeout: 1000 with no caller input after it",
    spec: '§3.4: silence {startTime: trackEnd time, duration, reason:"waitInputTimeout"}',
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "w", waitInputTimeout: 1000 });
      await runUntil(m, ended(m, "w"));
      const endAt = of(m, "trackEnd")[0]?.timestamp ?? 0;
      await run(m, 1500);
      return of(m, "silence").map((e) => ({ startTime: e.startTime - endAt, duration: e.duration, reason: e.reason }));
    },
    both: [{ startTime: 0, duration: 1000, reason: "waitInputTimeout" }],
  },
  {
    name: "a mapped key (goto) while a client's play runs",
    spec: "playbook §2.9: a mapped key interrupts interruptible playback right away",
    async observe(p) {
      const m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "p" });
      await runUntil(m, playing(m, "p"));
      await run(m, 200);
      m.leg.pushDtmf("4");
      await run(m, 100);
      return of(m, "trackEnd").map((e) => `${e.playId}:${e.reason}`);
    },
    both: ["p:interrupted"],
  },
  {
    name: "a key action after a DTMF transfer request (key 1 transfer, then key 2 hangup): ignored while the transfer is pending; after transferFailed the call is the agent's again",
    async observe(p) {
      const m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("1");
      await run(m, 300);
      m.leg.pushDtmf("2");
      await run(m, 300);
      const pending = m.events.map((e) => (e.event === "dtmf" ? `dtmf:${e.digit}` : e.event === "hangup" ? `hangup:${e.reason}` : e.event));
      m.conv.transferFailed("486 Busy Here");
      // The agent answers (serial: an LLM turn, runner.test.ts; realtime: a response, transfer.test.ts), here
      // without audio from the fake model.
      m.session?.()?.push({ type: "response_started", responseId: "r-failed" });
      m.session?.()?.push({ type: "response_done", responseId: "r-failed", status: "completed" });
      await run(m, 300);
      m.leg.pushDtmf("2");
      await runUntil(m, hungUp(m));
      return { pending, history: m.conv.snapshot().runner?.history.some((h) => h.message.role === "system" && h.message.content === "[the transfer failed: 486 Busy Here]"), end: of(m, "hangup")[0]?.reason };
    },
    both: { pending: ["dtmf:1", "transfer", "dtmf:2"], history: true, end: "agent" },
  },
  {
    name: "pbx: with PBX playback: after what the leg plays before it, trackStart/trackEnd from the PBX, loop, pause/resume and interrupt reach the PBX",
    spec: "ws-call-api §3.5 (pbx:<target>), §3.6, §3.7",
    async observe(p) {
      const pbx = new TestPbxPlayer();
      const m = await started(p, { pbxPlayer: pbx });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "first" });
      m.conv.handleCommand({ command: "play", url: "pbx:tone_stream://%(100,100,440)", playId: "tone", queue: true, loop: 2 });
      await runUntil(m, () => pbx.plays.length > 0);
      // The PBX is asked only once the file queued before it has been heard.
      const askedAfter = playback(m);
      pbx.plays[0]?.start();
      await runUntil(m, () => of(m, "trackStart").some((e) => e.playId === "tone"));
      pbx.plays[0]?.finish("done");
      await runUntil(m, () => pbx.plays.length === 2);
      pbx.plays[1]?.start();
      pbx.plays[1]?.finish("done");
      await runUntil(m, () => of(m, "trackEnd").some((e) => e.playId === "tone"));
      m.conv.handleCommand({ command: "play", url: "pbx:hold.wav", playId: "hold", loop: 0 });
      await runUntil(m, () => pbx.plays.length === 3);
      pbx.plays[2]?.start();
      await runUntil(m, () => of(m, "trackStart").some((e) => e.playId === "hold"));
      m.conv.handleCommand({ command: "pause" });
      m.conv.handleCommand({ command: "pause" });
      m.conv.handleCommand({ command: "resume" });
      await run(m, 200);
      m.conv.handleCommand({ command: "interrupt" });
      await runUntil(m, () => of(m, "trackEnd").some((e) => e.playId === "hold"));
      await run(m, 200);
      const holdEnd = of(m, "trackEnd").find((e) => e.playId === "hold");
      return {
        askedAfter,
        playback: playback(m),
        targets: pbx.plays.map((x) => x.target),
        pauses: pbx.pauses,
        stops: pbx.stops,
        // what the PBX played until the interrupt (it started at once; 200 ms ran after the resume)
        holdPlayed: (holdEnd?.duration ?? 0) >= 200,
      };
    },
    both: {
      askedAfter: ["trackStart:first", "trackEnd:first:finished"],
      playback: ["trackStart:first", "trackEnd:first:finished", "trackStart:tone", "trackEnd:tone:finished", "trackStart:hold", "interruption:hold:command", "trackEnd:hold:interrupted"],
      targets: ["tone_stream://%(100,100,440)", "tone_stream://%(100,100,440)", "hold.wav"],
      pauses: [true, false],
      stops: 1,
      holdPlayed: true,
    },
  },
  {
    name: "hangup while a play is playing and another is queued: trackEnd {interrupted, ms played} for each, before the hangup",
    spec: "§4 trackEnd: emitted when an utterance is stopped (a hangup stops it); hangup is always the last call event",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "play", url: "long.wav", playId: "a" });
      m.conv.handleCommand({ command: "play", url: "short.wav", playId: "b", queue: true });
      await runUntil(m, playing(m, "a"));
      await run(m, 500);
      const sent = sentMs(m, "a");
      m.conv.handleCommand({ command: "hangup" });
      await m.conv.closed;
      const ends = of(m, "trackEnd").map((e) => ({ playId: e.playId, reason: e.reason, duration: e.duration }));
      // What was played of `a`: at most what was sent, at least that less the leg's 20 ms lead (and a frame).
      const a = ends.find((e) => e.playId === "a");
      return { events: playback(m), aPlayed: a !== undefined && a.duration <= sent && a.duration >= sent - 60 && a.duration >= 400, b: ends.find((e) => e.playId === "b")?.duration };
    },
    both: { events: ["trackStart:a", "trackEnd:a:interrupted", "trackEnd:b:interrupted", "hangup:client"], aPlayed: true, b: 0 },
  },
  {
    name: "snapshot().runner.history[].at is the wall clock",
    async observe(p) {
      const m = await started(p);
      m.conv.handleCommand({ command: "history", speaker: "user", text: "hi" });
      return m.conv.snapshot().runner?.history.map((h) => h.at);
    },
    // the wall clock (epoch ms): the post-call hook's history timestamps
    both: [WALL_EPOCH + 100],
  },
];

describe("Conversation contract: the same on both pipelines", () => {
  describe.each(CASES)("$name", ({ test }) => {
    it.each(PIPELINES)("%s", (pipeline) => test(pipeline));
  });
  describe.each(SHARED)("$name", (d) => {
    it.each(PIPELINES)("%s", async (pipeline) => {
      expect(await d.observe(pipeline)).toEqual(d.both);
    });
  });
});

// ------------------------------------------------------------------------------------------------ where they differ

interface Difference {
  name: string;
  /** What the spec says, when it takes a side. */
  spec?: string;
  observe(pipeline: Pipeline): Promise<unknown>;
  serial: unknown;
  realtime: unknown;
}

const DIFFERENCES: Difference[] = [
  {
    name: "a key with no action",
    // Both are the spec: playbook §2.9 has an unmapped key ignored by the scene runner, and media-protocols §5.4
    // lists DTMF among the messages the realtime pipeline sends the model (conversation.item.create). A Realtime
    // model has no other way to hear a key the playbook left to it ("press 1 or say yes").
    spec: "playbook §2.9 (serial: reported as a dtmf event and otherwise ignored); media-protocols §5.4 (realtime: DTMF to the model as a message)",
    async observe(p) {
      const m = await started(p, { frontMatter: KEYS, body: SCENES });
      m.leg.pushDtmf("5");
      await run(m, 200);
      return { events: m.events.map((e) => e.event), history: m.conv.snapshot().runner?.history.map((h) => h.message), toModel: m.session?.()?.messages ?? [], responses: m.session?.()?.creates ?? 0 };
    },
    serial: { events: ["dtmf"], history: [], toModel: [], responses: 0 },
    realtime: { events: ["dtmf"], history: [{ role: "user", content: "[the caller pressed 5]" }], toModel: [{ role: "user", text: "[the caller pressed 5]" }], responses: 1 },
  },
];

describe("Conversation: where the pipelines differ today (one expectation per pipeline)", () => {
  describe.each(DIFFERENCES)("$name", (d) => {
    it.each(PIPELINES)("%s", async (pipeline) => {
      expect(await d.observe(pipeline)).toEqual(d[pipeline]);
    });
  });
});
