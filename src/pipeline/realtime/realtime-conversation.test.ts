/**
 * RealtimeConversation against the OpenAI simulator's Realtime WebSocket (test/sim/openai/realtime.ts), on an
 * in-memory leg paced by the real clock (the simulator is a real socket): audio both ways, µ-law passthrough,
 * tool calls, scene switches, barge-in truncation against the leg's ledger, and socket drops.
 */
import { afterEach, describe, expect, it } from "vitest";
import { muLawEncode } from "../../audio/index.js";
import { realClock } from "../../media/clock.js";
import { MemoryLeg } from "../../media/memory-leg.js";
import { loadPlaybook } from "../../playbook/runner/testutil.js";
import { OpenAiRealtime } from "../../providers/openai/realtime.js";
import { startHttpReceiver } from "../../../test/sim/http-receiver.js";
import { useOpenAiSim } from "../../../test/sim/openai/use-sim.js";
import type { VadEngine } from "../../vad/index.js";
import type { ConversationEvent } from "../conversation.js";
import { RealtimeConversation, type RealtimeConversationOptions } from "./realtime-conversation.js";

/** The parts of a `session.update` session the tests read. */
interface SessionJson {
  type?: string;
  instructions?: string;
  tools?: { name: string }[];
  audio?: { input: { format?: unknown; turn_detection?: unknown; transcription?: unknown }; output: { format?: unknown; voice?: string } };
}

const sim = useOpenAiSim();

interface Run {
  conv: RealtimeConversation;
  leg: MemoryLeg;
  events: ConversationEvent[];
  controls: unknown[];
  waitFor<E extends ConversationEvent["event"]>(name: E, pred?: (e: Extract<ConversationEvent, { event: E }>) => boolean, ms?: number): Promise<Extract<ConversationEvent, { event: E }>>;
}

const running: Run[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.conv.stop();
    await r.leg.close();
  }
});

const PLAYBOOK = `---
realtime: { provider: openai, apiKey: sk-test, voice: verse, instructions: "Speak like a pirate." }
greeting: false
---
You are the help line of Northwind.
`;

/** A VAD for logic tests: a chunk is speech when its mean amplitude is above 500. */
const energyVad: VadEngine = {
  type: "webrtc",
  description: "energy (test)",
  sampleRates: [16000],
  chunkSamples: () => 512,
  createStream(sampleRate) {
    return {
      sampleRate,
      chunkSamples: 512,
      stateBytes: 0,
      process(samples, offset = 0) {
        let sum = 0;
        for (let i = 0; i < 512; i++) sum += Math.abs((samples[offset + i] as number) * (samples instanceof Float32Array ? 32768 : 1));
        return sum / 512 > 500 ? 0.95 : 0.02;
      },
      reset() {},
      close() {},
    };
  },
};

function start(
  playbookText = PLAYBOOK,
  leg = new MemoryLeg({ clock: realClock, callerRate: 16000, agentRate: 16000, leadMs: 40 }),
  wire: { codec?: string; outputCodec?: string } = {},
  extra: Partial<RealtimeConversationOptions> = {},
): Run {
  const provider = new OpenAiRealtime({ flavor: "openai", baseUrl: sim.url, apiKey: "sk-test", model: "gpt-realtime", protocol: "ga" });
  const conv = new RealtimeConversation({
    leg,
    provider,
    playbook: loadPlaybook(playbookText),
    call: { callId: "c1", callType: "websocket", direction: "inbound", startTime: new Date(), playbook: "test.md" },
    callId: "c1",
    wire,
    reconnectDelayMs: 10,
    vad: { engine: energyVad, detector: { minSpeechMs: 100 } },
    ...extra,
  });
  const events: ConversationEvent[] = [];
  const controls: unknown[] = [];
  const waiters: (() => void)[] = [];
  conv.events.on("event", (e) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  conv.events.on("control", (c) => controls.push(c));
  const waitFor: Run["waitFor"] = (name, pred, ms = 5000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${name}; got ${events.map((e) => e.event).join(",")}`)), ms);
      const check = (): void => {
        const found = events.find((e) => e.event === name && (!pred || pred(e as never)));
        if (found) {
          clearTimeout(timer);
          resolve(found as never);
        } else waiters.push(check);
      };
      check();
    });
  const run = { conv, leg, events, controls, waitFor };
  running.push(run);
  return run;
}

function tone(ms: number, rate: number, amp = 8000, hz = 300): Int16Array {
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

/** A caller turn the simulator's server VAD detects: speech, then enough silence to end it. */
function callerTurn(leg: MemoryLeg, speechMs = 400): void {
  leg.pushCaller(tone(speechMs, leg.callerRate));
  leg.pushCallerSilence(700);
}

const conn = (i: number) => sim.realtime.connections[i]!;
const ofType = (i: number, type: string) => conn(i).received.filter((e) => e.type === type);
const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};
/** Agent audio the leg sent for one utterance, in ms. */
const sentMs = (leg: MemoryLeg, playId: string) => leg.captured.filter((f) => f.playId === playId).reduce((ms, f) => ms + (f.pcm.length * 1000) / f.sampleRate, 0);

describe("RealtimeConversation", () => {
  it("sets the session up, sends caller audio at 24 kHz, plays the reply at the leg's rate, and keeps both transcripts", async () => {
    sim.realtime.replies.push({ text: "Arr, how can I help?", audioMs: 600 });
    sim.realtime.transcripts.push("where is my order");
    const r = start();
    await r.conv.start();
    await until(() => ofType(0, "session.update").length > 0);
    const session = ofType(0, "session.update")[0]!.session as SessionJson;
    expect(conn(0).headers.authorization).toBe("Bearer sk-test");
    expect(conn(0).query.model).toBe("gpt-realtime");
    expect(session.type).toBe("realtime");
    expect(session.instructions).toContain("help line of Northwind");
    expect(session.instructions).toContain("Speak like a pirate.");
    expect(session.instructions).not.toContain("<hangup/>"); // native tools only: speech is never parsed for tags
    expect(session.audio!.input.format).toEqual({ type: "audio/pcm", rate: 24000 });
    expect(session.audio!.output).toEqual({ format: { type: "audio/pcm", rate: 24000 }, voice: "verse" });
    expect(session.audio!.input.turn_detection).toMatchObject({ type: "server_vad", create_response: true, interrupt_response: true });
    expect(session.audio!.input.transcription).toEqual({ model: "gpt-4o-mini-transcribe" });
    expect((session.tools as { name: string }[]).map((t) => t.name)).toContain("hangup_call");

    callerTurn(r.leg);
    const end = await r.waitFor("trackEnd");
    expect(end.reason).toBe("finished");
    // 1100 ms of 16 kHz caller audio arrive as 24 kHz PCM (whole 40 ms batches).
    const appended = ofType(0, "input_audio_buffer.append").reduce((n, e) => n + Buffer.from(String(e.audio), "base64").length / 2, 0);
    expect(appended).toBe(24 * 1080);
    // 600 ms of 24 kHz reply played as 16 kHz: every sample, resampled, nothing lost or added.
    expect(sentMs(r.leg, end.playId)).toBe(600);
    const played = r.leg.agentAudio();
    expect(Math.max(...played.map(Math.abs))).toBeGreaterThan(5000);

    const final = await r.waitFor("asrFinal");
    expect(final.text).toBe("where is my order");
    await r.waitFor("addHistory", (e) => e.speaker === "assistant");
    expect(r.events.some((e) => e.event === "speaking")).toBe(true);
    expect(r.events.some((e) => e.event === "metrics" && e.key === "realtime.response")).toBe(true);
    // The caller's turn stays before the reply in the history although its transcript came later.
    expect(r.conv.snapshot().runner?.history.map((h) => [h.message.role, h.message.content])).toEqual([
      ["user", "where is my order"],
      ["assistant", "Arr, how can I help?"],
    ]);
  });

  it("runs µ-law end to end on an 8 kHz pcmu leg: no resampling either way", async () => {
    sim.realtime.replies.push({ text: "Hi", audioMs: 400 });
    const leg = new MemoryLeg({ clock: realClock, callerRate: 8000, agentRate: 8000, leadMs: 40 });
    const r = start(PLAYBOOK, leg, { codec: "pcmu", outputCodec: "pcmu" });
    await r.conv.start();
    expect(r.conv.audioFormat).toBe("pcmu");
    const caller = new Int16Array([...tone(400, 8000), ...new Int16Array(8 * 720)]);
    leg.pushCaller(caller);
    const end = await r.waitFor("trackEnd");
    const session = ofType(0, "session.update")[0]!.session as SessionJson;
    expect(session.audio!.input.format).toEqual({ type: "audio/pcmu" });
    expect(session.audio!.output.format).toEqual({ type: "audio/pcmu" });
    const sent = Buffer.concat(ofType(0, "input_audio_buffer.append").map((e) => Buffer.from(String(e.audio), "base64")));
    expect(sent.equals(Buffer.from(muLawEncode(caller)))).toBe(true);
    expect(sentMs(leg, end.playId)).toBe(400);
  });

  it("speaks a fixed greeting through response.create, and a tool call ends the call after playout without a new response", async () => {
    sim.realtime.replies.push({ text: "Welcome aboard." }, { text: "Goodbye!", audioMs: 300, functionCall: { name: "hangup_call", arguments: '{"reason":"done"}', callId: "call_1" } });
    const r = start(PLAYBOOK.replace("greeting: false", 'greeting: "Welcome aboard."'));
    await r.conv.start();
    const greeting = await r.waitFor("trackEnd", (e) => e.playId === "greeting");
    expect(greeting.reason).toBe("finished");
    expect(ofType(0, "response.create")[0]).toMatchObject({ response: { instructions: expect.stringContaining('"Welcome aboard."') } });
    callerTurn(r.leg);
    const end = await r.conv.closed;
    expect(end).toMatchObject({ reason: "agent", initiator: "agent", detail: "done" });
    expect(ofType(0, "conversation.item.create").map((e) => e.item)).toEqual([{ type: "function_call_output", call_id: "call_1", output: '{"ok":true}' }]);
    expect(ofType(0, "response.create")).toHaveLength(1); // the greeting's only: a terminal tool asks for no new response
    const names = r.events.map((e) => e.event);
    expect(r.events.find((e) => e.event === "functionCall")).toMatchObject({ callId: "call_1", name: "hangup_call" });
    expect(r.events.find((e) => e.event === "functionResult")).toMatchObject({ callId: "call_1", ok: true });
    // "Goodbye!" was heard in full before the hangup.
    const goodbye = r.events.find((e) => e.event === "trackEnd" && e.playId !== "greeting");
    expect(goodbye).toMatchObject({ reason: "finished", duration: 300 });
    expect(names.lastIndexOf("trackEnd")).toBeLessThan(names.indexOf("hangup"));
  });

  it("a scene switch by tool: function_call_output, session.update with the new scene's instructions and tools, then response.create", async () => {
    const pb = `---
realtime: { provider: openai, apiKey: sk-test }
greeting: false
tools:
  - name: lookup_invoice
    description: Find an invoice
    http: { url: "http://127.0.0.1:9/never" }
---
# Scene: main
Answer general questions.

# Scene: billing
Help with invoices only.
`;
    sim.realtime.replies.push({ text: "One moment.", audioMs: 200, functionCall: { name: "goto_scene", arguments: '{"scene":"billing"}', callId: "call_g" } }, { text: "Billing here.", audioMs: 200 });
    const r = start(pb);
    await r.conv.start();
    callerTurn(r.leg);
    await r.waitFor("trackEnd", (e) => e.duration === 200 && r.events.filter((x) => x.event === "trackEnd").length === 2, 8000);
    const types = conn(0).received.map((e) => e.type).filter((t) => t !== "input_audio_buffer.append");
    expect(types).toEqual(["session.update", "conversation.item.create", "session.update", "response.create"]);
    const update = ofType(0, "session.update")[1]!.session as SessionJson;
    expect(update.type).toBe("realtime");
    expect(update.instructions).toContain("Help with invoices only.");
    expect(update.instructions).not.toContain("Answer general questions.");
    expect((update.tools as { name: string }[]).map((t) => t.name)).toEqual(expect.arrayContaining(["goto_scene", "lookup_invoice"]));
    expect(update.audio).toBeUndefined(); // the audio set-up is left alone
    expect(r.events.find((e) => e.event === "sceneChange")).toMatchObject({ from: "main", to: "billing", trigger: "tool" });
    expect(r.conv.snapshot().runner?.scenes).toEqual(["main", "billing"]);
  });

  it("a playbook HTTP tool: the request is made with the model's arguments, its result goes back as function_call_output, then the model goes on", async () => {
    const api = await startHttpReceiver(() => ({ status: 200, headers: { "content-type": "application/json" }, body: '{"status":"shipped"}' }));
    try {
      const pb = `---
realtime: { provider: openai, apiKey: sk-test }
greeting: false
tools:
  - name: lookup_order
    description: Look up an order
    parameters: { type: object, properties: { order_number: { type: string } }, required: [order_number] }
    http: { url: "${api.origin}/orders/{{ args.order_number }}" }
---
Help with orders.
`;
      sim.realtime.replies.push({ text: "", functionCall: { name: "lookup_order", arguments: '{"order_number":"1234"}', callId: "call_h" } }, { text: "It has shipped.", audioMs: 200 });
      const r = start(pb);
      await r.conv.start();
      callerTurn(r.leg);
      await r.waitFor("addHistory", (e) => e.speaker === "assistant" && e.text === "It has shipped.");
      expect(api.received.map((q) => q.url)).toEqual(["/orders/1234"]);
      const output = ofType(0, "conversation.item.create")[0]!.item as { type: string; call_id: string; output: string };
      expect(output).toMatchObject({ type: "function_call_output", call_id: "call_h" });
      expect(JSON.parse(output.output)).toMatchObject({ status: 200, body: { status: "shipped" } });
      expect(ofType(0, "response.create")).toHaveLength(1);
      expect(r.events.find((e) => e.event === "functionResult")).toMatchObject({ name: "lookup_order", ok: true });
      expect(r.conv.snapshot().runner?.history.map((h) => h.message.role)).toEqual(["user", "assistant", "tool", "assistant"]);
    } finally {
      await api.close();
    }
  });

  it("turnDetection local: our VAD ends the turn, so the session has no server turn detection and we commit and ask for the response", async () => {
    sim.realtime.replies.push({ text: "Yes?", audioMs: 200 });
    sim.realtime.transcripts.push("hello agent");
    const r = start(PLAYBOOK.replace("voice: verse,", "voice: verse, turnDetection: { type: local, silenceDurationMs: 300 },"));
    await r.conv.start();
    callerTurn(r.leg);
    await r.waitFor("trackEnd");
    expect((ofType(0, "session.update")[0]!.session as SessionJson).audio!.input.turn_detection).toBeNull();
    const types = conn(0).received.map((e) => e.type).filter((t) => t !== "input_audio_buffer.append");
    expect(types).toEqual(["session.update", "input_audio_buffer.commit", "response.create"]);
    expect(conn(0).sent.some((e) => e.type === "input_audio_buffer.speech_started")).toBe(false);
    expect(r.events.map((e) => e.event).filter((n) => n === "speaking" || n === "silence" || n === "eou")).toEqual(["speaking", "silence", "eou"]);
    expect((await r.waitFor("asrFinal")).text).toBe("hello agent");
  });

  it("a key without an action is told to the model as a user message, and the model answers", async () => {
    sim.realtime.replies.push({ text: "You pressed five.", audioMs: 200 });
    const r = start();
    await r.conv.start();
    r.leg.pushDtmf("5");
    await r.waitFor("trackEnd");
    expect(r.events.find((e) => e.event === "dtmf")).toMatchObject({ digit: "5" });
    expect(ofType(0, "conversation.item.create")[0]!.item).toEqual({ type: "message", role: "user", content: [{ type: "input_text", text: "[the caller pressed 5]" }] });
    expect(ofType(0, "response.create")).toHaveLength(1);
  });

  it("barge-in: clears the leg, cancels the active response and truncates the item to what the leg played", async () => {
    // 4 s of reply streamed at twice real time: the response is still active when the caller talks.
    sim.realtime.replies.push({ text: "Let me tell you a very long story about the sea and its many ships.", audioMs: 4000, deltaIntervalMs: 50 });
    const r = start();
    await r.conv.start();
    callerTurn(r.leg);
    const started = await r.waitFor("trackStart");
    await new Promise((res) => setTimeout(res, 500));
    r.leg.pushCaller(tone(300, 16000));
    const cut = await r.waitFor("interruption");
    await until(() => ofType(0, "conversation.item.truncate").length === 1);
    const truncate = ofType(0, "conversation.item.truncate")[0]!;
    const heardMs = sentMs(r.leg, started.playId);
    expect(cut).toMatchObject({ playId: started.playId, reason: "bargeIn" });
    // What the caller actually heard (the frames the leg sent), within one 20 ms frame; far less than received.
    expect(Math.abs(Number(truncate.audio_end_ms) - heardMs)).toBeLessThanOrEqual(20);
    expect(truncate.audio_end_ms).toBe(cut.current);
    expect(heardMs).toBeLessThan(2000);
    expect(truncate.content_index).toBe(0);
    const item = conn(0).sent.find((e) => e.type === "response.output_audio.delta")!.item_id;
    expect(truncate.item_id).toBe(item);
    expect(ofType(0, "response.cancel")).toHaveLength(1);
    await until(() => conn(0).sent.some((e) => e.type === "conversation.item.truncated"));
    // The truncate was accepted. The server's own interrupt_response may have beaten our cancel: that refusal is
    // harmless (§5.4) and is not reported as a call error.
    const refused = conn(0).sent.filter((e) => e.type === "error").map((e) => (e.error as { code: string }).code);
    expect(refused.filter((c) => c !== "response_cancel_not_active")).toEqual([]);
    expect(r.events.filter((e) => e.event === "error")).toEqual([]);
    // Nothing more of the cut item reaches the caller; the history keeps only the heard words.
    const after = sentMs(r.leg, started.playId);
    await new Promise((res) => setTimeout(res, 300));
    expect(sentMs(r.leg, started.playId)).toBe(after);
    const entry = r.conv.snapshot().runner?.history.find((h) => h.message.role === "assistant");
    expect(entry?.interrupted).toBe(true);
    const full = "Let me tell you a very long story about the sea and its many ships.";
    expect(full.startsWith(String(entry?.message.content))).toBe(true);
    expect(String(entry?.message.content).length).toBeLessThan(full.length);
    expect(r.conv.snapshot().interruptions.bargeIns).toBe(1);
  });

  it("barge-in after the whole reply arrived: no response.cancel, and the history keeps only the words heard although the full transcript came first", async () => {
    const full = "One two three four five six seven eight nine ten eleven twelve.";
    sim.realtime.replies.push({ text: full, audioMs: 3000 });
    const r = start();
    await r.conv.start();
    callerTurn(r.leg);
    const started = await r.waitFor("trackStart");
    await until(() => conn(0).sent.some((e) => e.type === "response.done"));
    await new Promise((res) => setTimeout(res, 400));
    r.leg.pushCaller(tone(300, 16000));
    const cut = await r.waitFor("interruption");
    await until(() => ofType(0, "conversation.item.truncate").length === 1);
    const truncate = ofType(0, "conversation.item.truncate")[0]!;
    expect(Math.abs(Number(truncate.audio_end_ms) - sentMs(r.leg, started.playId))).toBeLessThanOrEqual(20);
    expect(Number(truncate.audio_end_ms)).toBeLessThan(1500);
    expect(ofType(0, "response.cancel")).toEqual([]);
    expect(cut.totalDuration).toBe(3000);
    const said = r.conv.snapshot().runner?.history.filter((h) => h.message.role === "assistant").map((h) => h.message.content);
    expect(said).toHaveLength(1);
    expect(full.startsWith(String(said?.[0]))).toBe(true);
    expect(String(said?.[0]).split(" ").length).toBeLessThan(6);
    expect(r.events.filter((e) => e.event === "addHistory" && e.speaker === "assistant").map((e) => (e as { text: string }).text)).toEqual(said);
  });

  it("with barge-in off (interruption.strategy none) the server is told not to cut its response, and caller speech cuts nothing", async () => {
    sim.realtime.replies.push({ text: "A long answer that goes on.", audioMs: 1500 });
    const r = start(PLAYBOOK, undefined, {}, { interruption: { enabled: false } });
    await r.conv.start();
    callerTurn(r.leg);
    const started = await r.waitFor("trackStart");
    await new Promise((res) => setTimeout(res, 200));
    r.leg.pushCaller(tone(300, 16000));
    const end = await r.waitFor("trackEnd", undefined, 8000);
    expect((ofType(0, "session.update")[0]!.session as SessionJson).audio!.input.turn_detection).toMatchObject({ interrupt_response: false });
    expect(end).toMatchObject({ playId: started.playId, reason: "finished", duration: 1500 });
    expect(ofType(0, "conversation.item.truncate")).toEqual([]);
    expect(r.events.some((e) => e.event === "interruption")).toBe(false);
  });

  it("a dropped socket is reconnected once with the history replayed; a second drop ends the call with an error", async () => {
    sim.realtime.transcripts.push("I need help", "still there?");
    sim.realtime.replies.push({ text: "Welcome." }, { text: "Sure, one", audioMs: 2000, deltaIntervalMs: 20, dropAfterEvents: 5 });
    const r = start(PLAYBOOK.replace("greeting: false", 'greeting: "Welcome."'));
    await r.conv.start();
    await r.waitFor("trackEnd", (e) => e.playId === "greeting");
    callerTurn(r.leg);
    await until(() => sim.realtime.connections.length === 2 && ofType(1, "conversation.item.create").length === 2);
    expect(ofType(1, "session.update")).toHaveLength(1);
    expect(ofType(1, "conversation.item.create").map((e) => e.item)).toEqual([
      { type: "message", role: "assistant", content: [{ type: "output_text", text: "Welcome." }] },
      { type: "message", role: "user", content: [{ type: "input_text", text: "I need help" }] },
    ]);
    expect(r.events.some((e) => e.event === "hangup")).toBe(false);

    // The call goes on over the new socket, until that one drops too.
    sim.realtime.replies.push({ text: "Again", audioMs: 1000, dropAfterEvents: 3 });
    callerTurn(r.leg);
    const end = await r.conv.closed;
    expect(end.reason).toBe("error");
    expect(sim.realtime.connections).toHaveLength(2);
    expect(r.events.find((e) => e.event === "error")).toMatchObject({ sender: "realtime", code: "PROVIDER_ERROR" });
    expect(r.events.at(-1)).toMatchObject({ event: "hangup", reason: "error", initiator: "system" });
    // What was said before is still there for the post-call hook.
    expect(r.conv.snapshot().runner?.history.map((h) => h.message.content).slice(0, 2)).toEqual(["Welcome.", "I need help"]);
  });
});

describe("RealtimeConversation: playbook features", () => {
  const COLLECT_PB = `---
realtime: { provider: openai, apiKey: sk-test }
greeting: false
dtmf:
  "1": { action: collect, collector: account, var: account }
  "2": { action: hangup }
dtmfCollectors:
  account:
    description: the account number
    digits: 4
    retries: 1
    prompt: "Enter your four digit account number."
    validation: { pattern: "12[0-9]*", errorMessage: "That is not an account number." }
  pin:
    description: the PIN
    minDigits: 2
    maxDigits: 6
    interDigitTimeoutMs: 300
    prompt: "Now your PIN."
---
You are a bank.
`;
  const instructionsOf = (i: number) => ofType(i, "response.create").map((e) => (e.response as { instructions?: string } | undefined)?.instructions);
  const systemNotes = (i: number) =>
    ofType(i, "conversation.item.create")
      .map((e) => e.item as { role?: string; content?: { text: string }[] })
      .filter((it) => it.role === "system")
      .map((it) => it.content?.[0]?.text);

  it("a collect key action runs the collector: prompt spoken word for word, keys go to it, a wrong entry re-prompts, a valid one sets the variable and the model replies", async () => {
    sim.realtime.replies.push(
      { text: "Enter your four digit account number.", audioMs: 200 },
      { text: "That is not an account number.", audioMs: 200 },
      { text: "Enter your four digit account number.", audioMs: 200 },
      { text: "Thanks, found it.", audioMs: 200 },
    );
    const r = start(COLLECT_PB);
    await r.conv.start();
    r.leg.pushDtmf("1");
    await r.waitFor("trackEnd", (e) => e.playId.startsWith("collect-"));
    expect(instructionsOf(0)[0]).toContain('"Enter your four digit account number."');
    // Key actions are suspended while collecting: "2" (hangup) and "1" are digits now. 4 digits = the exact length.
    for (const d of "9921") r.leg.pushDtmf(d);
    await until(() => ofType(0, "response.create").length === 3);
    expect(instructionsOf(0)[1]).toContain('"That is not an account number."');
    expect(instructionsOf(0)[2]).toContain('"Enter your four digit account number."');
    for (const d of "1234") r.leg.pushDtmf(d);
    const collected = await r.waitFor("collected");
    expect(collected).toMatchObject({ collector: "account", var: "account", digits: "1234", valid: true, attempt: 2 });
    await r.waitFor("addHistory", (e) => e.text === "Thanks, found it.");
    expect(systemNotes(0)).toEqual(["[keypad input for account: 1234]"]);
    expect(instructionsOf(0)).toHaveLength(4);
    expect(instructionsOf(0)[3]).toBeUndefined(); // the model answers the result in its own words
    expect(r.events.some((e) => e.event === "hangup")).toBe(false);
    // No key was told to the model as a bare key press.
    const userItems = ofType(0, "conversation.item.create").filter((e) => (e.item as { role?: string }).role === "user");
    expect(userItems).toEqual([]);
    const snap = r.conv.snapshot().runner!;
    expect(snap.collected).toEqual({ account: "1234" });
    expect(snap.variables).toMatchObject({ account: "1234" });
    expect(snap.history.map((h) => h.message.content)).toContain("[keypad input for account: 1234]");
  });

  it("collect_digits from the model: no continuation response, the inter-digit timeout ends the input, and caller speech meanwhile never reaches the model", async () => {
    sim.realtime.replies.push(
      { text: "", functionCall: { name: "collect_digits", arguments: '{"collector":"pin","var":"pin"}', callId: "call_c" } },
      { text: "Now your PIN.", audioMs: 200 },
      { text: "PIN accepted.", audioMs: 200 },
    );
    const r = start(COLLECT_PB);
    await r.conv.start();
    await until(() => ofType(0, "session.update").length > 0);
    expect((ofType(0, "session.update")[0]!.session as SessionJson).tools!.map((t) => t.name)).toContain("collect_digits");
    callerTurn(r.leg);
    await r.waitFor("trackEnd", (e) => e.playId.startsWith("collect-"));
    expect(ofType(0, "conversation.item.create")[0]!.item).toMatchObject({ type: "function_call_output", call_id: "call_c", output: '{"ok":true}' });
    expect(instructionsOf(0)).toEqual([expect.stringContaining('"Now your PIN."')]);
    // The caller talks while the collector waits: the model hears silence (no speech_started, no response).
    const startsBefore = conn(0).sent.filter((e) => e.type === "input_audio_buffer.speech_started").length;
    callerTurn(r.leg);
    r.leg.pushDtmf("4");
    r.leg.pushDtmf("2");
    const collected = await r.waitFor("collected");
    expect(collected).toMatchObject({ collector: "pin", var: "pin", digits: "42", valid: true, attempt: 1 });
    await r.waitFor("addHistory", (e) => e.text === "PIN accepted.");
    expect(conn(0).sent.filter((e) => e.type === "input_audio_buffer.speech_started")).toHaveLength(startsBefore);
    expect(systemNotes(0)).toEqual(["[keypad input for pin: 42]"]);
    expect(instructionsOf(0)).toHaveLength(2);
    expect(r.events.filter((e) => e.event === "functionResult")).toMatchObject([{ name: "collect_digits", ok: true }]);
  });

  it("a collector that fails after its retries: collected {valid:false}, the failure note, and the model replies", async () => {
    sim.realtime.replies.push({ text: "Enter.", audioMs: 100 }, { text: "Bad.", audioMs: 100 }, { text: "Enter.", audioMs: 100 }, { text: "Let me get someone.", audioMs: 100 });
    const r = start(COLLECT_PB);
    await r.conv.start();
    r.leg.pushDtmf("1");
    await r.waitFor("trackEnd", (e) => e.playId.startsWith("collect-"));
    for (const d of "0000") r.leg.pushDtmf(d);
    await until(() => ofType(0, "response.create").length === 3);
    await until(() => r.events.filter((e) => e.event === "trackEnd").length === 3); // error message, then the prompt again
    for (const d of "9999") r.leg.pushDtmf(d);
    const collected = await r.waitFor("collected");
    expect(collected).toMatchObject({ valid: false, attempt: 2, digits: "9999" });
    await until(() => ofType(0, "response.create").length === 4);
    expect(systemNotes(0)).toEqual(["[keypad input for account failed after 2 attempts]"]);
    expect(r.conv.snapshot().runner!.collected).toEqual({});
  });

  it("a greeting with interruptible: false is not cut by caller speech, the server is told not to cut or answer meanwhile, and the caller is answered after it", async () => {
    const pb = PLAYBOOK.replace("greeting: false", 'greeting: { text: "Welcome to Northwind, the home of fine goods.", interruptible: false }');
    sim.realtime.replies.push({ text: "Welcome to Northwind, the home of fine goods.", audioMs: 3000, deltaIntervalMs: 40 }, { text: "How can I help?", audioMs: 200 });
    const r = start(pb);
    await r.conv.start();
    const started = await r.waitFor("trackStart", (e) => e.playId === "greeting");
    r.leg.pushCaller(tone(300, 16000));
    r.leg.pushCallerSilence(700);
    await r.waitFor("speaking");
    const greeting = await r.waitFor("trackEnd", (e) => e.playId === started.playId, 8000);
    expect(greeting).toMatchObject({ reason: "finished", duration: 3000 });
    expect(r.events.some((e) => e.event === "interruption")).toBe(false);
    expect(ofType(0, "conversation.item.truncate")).toEqual([]);
    expect(ofType(0, "response.cancel")).toEqual([]);
    // session.update (protected) goes before the greeting's response.create; the full set-up is restored after it.
    const types = conn(0).received.map((e) => e.type).filter((t) => t !== "input_audio_buffer.append");
    expect(types.slice(0, 3)).toEqual(["session.update", "session.update", "response.create"]);
    const td = (i: number) => (ofType(0, "session.update")[i]!.session as SessionJson).audio!.input.turn_detection;
    expect(td(1)).toMatchObject({ interrupt_response: false, create_response: false });
    await until(() => ofType(0, "session.update").length === 3);
    expect(td(2)).toMatchObject({ interrupt_response: true, create_response: true });
    // The caller's words are answered, once, after the greeting.
    const reply = await r.waitFor("trackEnd", (e) => e.playId !== "greeting", 8000);
    expect(reply.reason).toBe("finished");
    expect(conn(0).sent.filter((e) => e.type === "response.created")).toHaveLength(2);
    // On the caller's side the reply follows the whole greeting (media time of the frames the leg sent).
    const greetingFrames = r.leg.captured.filter((f) => f.playId === "greeting");
    const greetingEnd = Math.max(...greetingFrames.map((f) => f.timestampMs + (f.pcm.length * 1000) / f.sampleRate));
    const replyStart = Math.min(...r.leg.captured.filter((f) => f.playId === reply.playId).map((f) => f.timestampMs));
    expect(replyStart).toBeGreaterThanOrEqual(greetingEnd);
  });

  it("an explicit interrupt command still cuts a non-interruptible greeting, and the session leaves protected mode", async () => {
    const pb = PLAYBOOK.replace("greeting: false", 'greeting: { text: "A very long welcome message.", interruptible: false }');
    sim.realtime.replies.push({ text: "A very long welcome message.", audioMs: 4000, deltaIntervalMs: 40 });
    const r = start(pb);
    await r.conv.start();
    await r.waitFor("trackStart", (e) => e.playId === "greeting");
    r.leg.pushCaller(tone(300, 16000));
    await r.waitFor("speaking");
    expect(r.events.some((e) => e.event === "interruption")).toBe(false);
    r.conv.handleCommand({ command: "interrupt" });
    const cut = await r.waitFor("interruption");
    expect(cut).toMatchObject({ playId: "greeting", reason: "command" });
    await until(() => ofType(0, "session.update").length === 3);
    const td = (ofType(0, "session.update")[2]!.session as SessionJson).audio!.input.turn_detection;
    expect(td).toMatchObject({ interrupt_response: true, create_response: true });
    expect(ofType(0, "response.cancel")).toHaveLength(1);
    expect(ofType(0, "conversation.item.truncate")).toHaveLength(1);
  });

  it("follow-up: after the agent's last utterance and caller silence the follow-up text is spoken word for word, then the goodbye and hangup maxFollowUp", async () => {
    const pb = PLAYBOOK.replace("greeting: false", 'greeting: "Hi there."\nfollowup: { timeout: 300, max: 1, text: "Are you still there?", goodbye: "Goodbye then." }');
    sim.realtime.replies.push({ text: "Hi there.", audioMs: 200 }, { text: "Are you still there?", audioMs: 200 }, { text: "Goodbye then.", audioMs: 200 });
    const r = start(pb);
    await r.conv.start();
    const end = await r.conv.closed;
    expect(end).toMatchObject({ reason: "maxFollowUp", initiator: "agent" });
    const said = instructionsOf(0);
    expect(said).toHaveLength(3);
    expect(said[1]).toContain('"Are you still there?"');
    expect(said[2]).toContain('"Goodbye then."');
    const tracks = r.events.filter((e) => e.event === "trackEnd").map((e) => (e as { playId: string; reason: string }).playId.replace(/-\d+$/, ""));
    expect(tracks).toEqual(["greeting", "followup", "goodbye"]);
    const names = r.events.map((e) => e.event);
    expect(names.lastIndexOf("trackEnd")).toBeLessThan(names.indexOf("hangup"));
    expect(r.conv.snapshot().runner!.followUps).toBe(1);
    // The goodbye is not interruptible: it went out protected.
    expect(ofType(0, "session.update").some((e) => ((e.session as SessionJson).audio?.input.turn_detection as { create_response?: boolean } | undefined)?.create_response === false)).toBe(true);
  });

  it("follow-up without text: the silence note goes to the model, which replies; caller speech resets the count", async () => {
    const pb = PLAYBOOK.replace("greeting: false", 'greeting: "Hi."\nfollowup: { timeout: 500, max: 1 }');
    sim.realtime.replies.push({ text: "Hi.", audioMs: 100 }, { text: "Anything else?", audioMs: 100 }, { text: "Sure.", audioMs: 100 }, { text: "Still there?", audioMs: 100 });
    const r = start(pb);
    await r.conv.start();
    await r.waitFor("addHistory", (e) => e.text === "Anything else?");
    expect(systemNotes(0)).toEqual(["[the caller has been silent for 1 seconds]"]);
    expect(instructionsOf(0)[1]).toBeUndefined();
    // The caller speaks: the count starts again, so the next silence brings another follow-up rather than the hangup.
    callerTurn(r.leg);
    await r.waitFor("addHistory", (e) => e.text === "Sure.");
    await r.waitFor("addHistory", (e) => e.text === "Still there?");
    expect(systemNotes(0)).toHaveLength(2);
    expect(r.events.some((e) => e.event === "hangup")).toBe(false);
    expect(r.conv.snapshot().runner!.followUps).toBe(2);
  });

  it("tts with base64 audio plays through the leg without the model, streamed chunks split mid-sample included", async () => {
    const r = start();
    await r.conv.start();
    const pcm = tone(200, 16000);
    const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    r.conv.handleCommand({ command: "tts", base64: true, text: bytes.subarray(0, 3001).toString("base64"), playId: "clip", streaming: true });
    r.conv.handleCommand({ command: "tts", base64: true, text: bytes.subarray(3001).toString("base64"), playId: "clip", endOfStream: true });
    const end = await r.waitFor("trackEnd", (e) => e.playId === "clip");
    expect(end).toMatchObject({ reason: "finished", duration: 200 });
    expect(sentMs(r.leg, "clip")).toBe(200);
    const played = r.leg.captured.filter((f) => f.playId === "clip").flatMap((f) => Array.from(f.pcm));
    expect(played).toEqual(Array.from(pcm));
    expect(ofType(0, "response.create")).toEqual([]);
    expect(r.events.some((e) => e.event === "error")).toBe(false);
    // 8 kHz audio is resampled to the leg's rate.
    r.conv.handleCommand({ command: "tts", base64: true, text: Buffer.from(tone(100, 8000).buffer).toString("base64"), playId: "clip8", option: { sampleRate: 8000 } });
    await r.waitFor("trackEnd", (e) => e.playId === "clip8");
    expect(sentMs(r.leg, "clip8")).toBe(100);
  });

  it("tts base64 with autoHangup hangs up once it has played; an interruptible clip is cut by caller speech", async () => {
    sim.realtime.replies.push({ text: "Yes?", audioMs: 100 });
    const r = start();
    await r.conv.start();
    // 3 s of PCM is more than one command's 20 000 characters (ws-call-api §3.4): it streams in chunks.
    const long = Buffer.from(tone(3000, 16000).buffer);
    for (let at = 0; at < long.length; at += 15_000) {
      const last = at + 15_000 >= long.length;
      r.conv.handleCommand({ command: "tts", base64: true, streaming: true, endOfStream: last, text: long.subarray(at, at + 15_000).toString("base64"), playId: "long" });
    }
    await r.waitFor("trackStart", (e) => e.playId === "long");
    r.leg.pushCaller(tone(300, 16000));
    const cut = await r.waitFor("interruption", (e) => e.playId === "long");
    expect(cut.reason).toBe("bargeIn");
    r.conv.handleCommand({ command: "tts", base64: true, text: Buffer.from(tone(100, 16000).buffer).toString("base64"), playId: "bye", autoHangup: true, queue: true });
    const end = await r.conv.closed;
    expect(end.reason).toBe("autohangup");
    expect(r.events.find((e) => e.event === "trackEnd" && e.playId === "bye")).toMatchObject({ reason: "finished" });
  });
});
