/** The simulator itself: raw wire checks (SSE framing, splits) and the Realtime WebSocket protocol. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { OpenAiSim } from "./server.js";

let sim: OpenAiSim;
beforeAll(async () => {
  sim = await new OpenAiSim().start();
});
afterAll(async () => {
  await sim.close();
});

describe("openai simulator: http", () => {
  it("streams SSE chunks in small writes ending with [DONE]", async () => {
    sim.chat.push({ text: "héllo", toolCalls: [{ id: "c1", name: "f", arguments: '{"a":1}' }] });
    const res = await fetch(`${sim.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", stream: true, messages: [] }) });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const text = await res.text();
    const data = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as { choices: { delta: { tool_calls?: { index: number; id?: string }[] }; finish_reason: string | null }[]; usage?: unknown });
    expect(chunks.some((c) => c.choices[0]?.finish_reason === "tool_calls")).toBe(true);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toBeDefined();
  });

  it("injects a 429 with retry-after and records the request", async () => {
    sim.chat.push({ fault: "status", status: 429, retryAfter: "2" });
    const res = await fetch(`${sim.url}/chat/completions`, { method: "POST", headers: { authorization: "Bearer k" }, body: "{}" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(sim.requests.at(-1)!.headers.authorization).toBe("Bearer k");
  });

  it("streams speech as odd-sized chunks of 24 kHz PCM", async () => {
    sim.speech.push({ durationMs: 100 });
    const res = await fetch(`${sim.url}/audio/speech`, { method: "POST", body: JSON.stringify({ input: "x" }) });
    expect((await res.arrayBuffer()).byteLength).toBe(2400 * 2);
  });
});

interface Ev {
  type: string;
  [k: string]: unknown;
}

function connect(headers: Record<string, string> = {}): Promise<{ ws: WebSocket; events: Ev[]; waitFor: (type: string, n?: number) => Promise<Ev> }> {
  const ws = new WebSocket(`${sim.url.replace("http", "ws")}/realtime?model=gpt-realtime`, { headers: { authorization: "Bearer k", ...headers } });
  const events: Ev[] = [];
  const waiters: (() => void)[] = [];
  ws.on("message", (d) => {
    events.push(JSON.parse(String(d)) as Ev);
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (type: string, n = 1) =>
    new Promise<Ev>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type}; got ${events.map((e) => e.type).join(",")}`)), 3000);
      const check = () => {
        const found = events.filter((e) => e.type === type);
        if (found.length >= n) {
          clearTimeout(timer);
          resolve(found[n - 1]!);
        } else waiters.push(check);
      };
      check();
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, events, waitFor }));
    ws.once("error", reject);
  });
}

const send = (ws: WebSocket, e: unknown) => ws.send(JSON.stringify(e));
const pcm24 = (ms: number, amp: number) => {
  const b = Buffer.alloc(ms * 48);
  for (let i = 0; i < ms * 24; i++) b.writeInt16LE(Math.round(amp * Math.sin((2 * Math.PI * 300 * i) / 24000)), i * 2);
  return b.toString("base64");
};

describe("openai simulator: realtime", () => {
  it("session, server VAD, audio response, truncate and function calls (GA names)", async () => {
    sim.realtime.replies.push({ text: "Hi, how can I help?", audioMs: 600 }, { text: "", functionCall: { name: "hangup_call", arguments: '{"reason":"done"}', callId: "call_9" } });
    const { ws, events, waitFor } = await connect();
    await waitFor("session.created");
    send(ws, { type: "session.update", session: { type: "realtime", instructions: "x", audio: { input: { turn_detection: { type: "server_vad", silence_duration_ms: 200, create_response: true } } } } });
    await waitFor("session.updated");
    for (let i = 0; i < 10; i++) send(ws, { type: "input_audio_buffer.append", audio: pcm24(50, 8000) });
    for (let i = 0; i < 6; i++) send(ws, { type: "input_audio_buffer.append", audio: pcm24(50, 0) });
    await waitFor("input_audio_buffer.speech_started");
    await waitFor("input_audio_buffer.speech_stopped");
    const done = await waitFor("response.done");
    expect((done.response as { status: string }).status).toBe("completed");
    const deltas = events.filter((e) => e.type === "response.output_audio.delta");
    expect(deltas.length).toBe(6);
    const itemId = deltas[0]!.item_id as string;
    // response.create while idle works; truncation past the audio sent fails, within it succeeds.
    send(ws, { type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: 5000 });
    await waitFor("error");
    send(ws, { type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: 300 });
    expect((await waitFor("conversation.item.truncated")).audio_end_ms).toBe(300);
    send(ws, { type: "response.create" });
    const fc = await waitFor("response.function_call_arguments.done");
    expect(fc).toMatchObject({ call_id: "call_9", name: "hangup_call", arguments: '{"reason":"done"}' });
    send(ws, { type: "conversation.item.create", item: { type: "function_call_output", call_id: "call_9", output: '{"ok":true}' } });
    await waitFor("conversation.item.created");
    send(ws, { type: "response.cancel" });
    expect(((await waitFor("error", 2)).error as { code: string }).code).toBe("response_cancel_not_active");
    ws.close();
  });

  it("beta names, active-response conflict and cancel", async () => {
    sim.realtime.replies.push({ text: "a long answer", audioMs: 3000, deltaIntervalMs: 20 });
    const { ws, waitFor } = await connect({ "OpenAI-Beta": "realtime=v1" });
    await waitFor("session.created");
    send(ws, { type: "response.create" });
    await waitFor("response.audio.delta");
    send(ws, { type: "response.create" });
    expect(((await waitFor("error")).error as { code: string }).code).toBe("conversation_already_has_active_response");
    send(ws, { type: "response.cancel" });
    expect(((await waitFor("response.done")).response as { status: string }).status).toBe("cancelled");
    expect(sim.realtime.connections.at(-1)!.beta).toBe(true);
    ws.close();
  });

  it("transcribes each committed caller turn when the session asks for transcription (GA), for the committed item", async () => {
    sim.realtime.transcripts.push("where is my order");
    const { ws, events, waitFor } = await connect();
    await waitFor("session.created");
    send(ws, { type: "session.update", session: { type: "realtime", audio: { input: { transcription: { model: "gpt-4o-mini-transcribe" }, turn_detection: null } } } });
    await waitFor("session.updated");
    send(ws, { type: "input_audio_buffer.append", audio: pcm24(200, 8000) });
    send(ws, { type: "input_audio_buffer.commit" });
    const committed = await waitFor("input_audio_buffer.committed");
    const done = await waitFor("conversation.item.input_audio_transcription.completed");
    expect(done).toMatchObject({ item_id: committed.item_id, transcript: "where is my order" });
    const deltas = events.filter((e) => e.type === "conversation.item.input_audio_transcription.delta");
    expect(deltas.map((d) => d.delta).join("")).toBe("where is my order");
    expect(deltas.every((d) => d.item_id === committed.item_id)).toBe(true);
    // No server VAD (turn_detection null): no speech events, no response until asked.
    expect(events.some((e) => e.type === "input_audio_buffer.speech_started" || e.type === "response.created")).toBe(false);
    ws.close();
  });

  it("without transcription in the session no transcript is sent", async () => {
    const { ws, events, waitFor } = await connect();
    await waitFor("session.created");
    send(ws, { type: "input_audio_buffer.commit" });
    await waitFor("input_audio_buffer.committed");
    await new Promise((r) => setTimeout(r, 30));
    expect(events.some((e) => e.type.startsWith("conversation.item.input_audio_transcription"))).toBe(false);
    ws.close();
  });

  it("a partial session.update keeps the rest; interrupt_response/create_response false: caller speech neither cancels nor starts a response", async () => {
    sim.realtime.replies.push({ text: "a long answer", audioMs: 2000, deltaIntervalMs: 20 });
    const { ws, events, waitFor } = await connect();
    await waitFor("session.created");
    send(ws, { type: "session.update", session: { type: "realtime", audio: { input: { transcription: { model: "m" }, turn_detection: { type: "server_vad", silence_duration_ms: 100 } }, output: { voice: "verse" } } } });
    await waitFor("session.updated");
    send(ws, { type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", silence_duration_ms: 100, interrupt_response: false, create_response: false } }, output: {} } } });
    const updated = await waitFor("session.updated", 2);
    expect(updated.session).toMatchObject({ audio: { input: { transcription: { model: "m" }, turn_detection: { create_response: false } }, output: { voice: "verse" } } });
    send(ws, { type: "response.create" });
    await waitFor("response.output_audio.delta");
    for (let i = 0; i < 4; i++) send(ws, { type: "input_audio_buffer.append", audio: pcm24(50, 8000) });
    for (let i = 0; i < 4; i++) send(ws, { type: "input_audio_buffer.append", audio: pcm24(50, 0) });
    await waitFor("input_audio_buffer.speech_stopped");
    await waitFor("conversation.item.input_audio_transcription.completed");
    expect(((await waitFor("response.done")).response as { status: string }).status).toBe("completed");
    await new Promise((r) => setTimeout(r, 30));
    expect(events.filter((e) => e.type === "response.created")).toHaveLength(1);
    ws.close();
  });

  it("GA session.update without session.type is rejected", async () => {
    const { ws, waitFor } = await connect();
    send(ws, { type: "session.update", session: { instructions: "x" } });
    expect(((await waitFor("error")).error as { code: string }).code).toBe("missing_required_parameter");
    ws.close();
  });
});
