/**
 * `/call` end to end: the real controller on a loopback port, the typed client, real speech (flite) streamed in
 * real time through TinySilero, pocketsphinx, the scripted LLM and a local TTS, and the agent's audio back.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { CallClient } from "../../src/client/index.js";
import type { CallEvent } from "../../src/client/index.js";
import { fliteSpeech, peakOfPcmBytes, silence, startServer, type TestServer } from "./harness.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

const names = (events: readonly CallEvent[]): string[] => events.map((e) => e.event);

/** Collects agent audio with, for each message, the index of the event that came before it. */
function recordAudio(client: CallClient): { frames: { bytes: Buffer; afterEvent: number }[] } {
  const rec = { frames: [] as { bytes: Buffer; afterEvent: number }[] };
  client.on("audio", (buf: Buffer) => rec.frames.push({ bytes: Buffer.from(buf), afterEvent: client.events.length }));
  return rec;
}

describe("/call with the default playbook", () => {
  it("answers with the negotiated media, plays the greeting, hears the caller and answers; in order", async () => {
    const client = await CallClient.connect(server.wsUrl, { id: "e2e-turn" });
    const audio = recordAudio(client);
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "hello.md" });
    const answer = await client.waitFor("answer");
    expect(answer.media).toEqual({ codec: "pcm", sampleRate: 16000, outputCodec: "pcm", outputSampleRate: 16000, ptime: 20 });
    await client.waitFor("trackEnd", (e) => e.playId === "greeting", 20_000);
    const greetingFrames = audio.frames.length;
    expect(greetingFrames).toBeGreaterThan(50);
    // Every frame is one 20 ms frame at the negotiated rate: 16 kHz PCM16 = 640 bytes.
    expect(new Set(audio.frames.map((f) => f.bytes.length))).toEqual(new Set([640]));
    expect(Math.max(...audio.frames.map((f) => peakOfPcmBytes(f.bytes)))).toBeGreaterThan(1000);

    // The caller speaks after the greeting, in real time, then stays silent so the turn ends.
    const speech = fliteSpeech("please transfer me to billing");
    await client.streamPcm(new Int16Array([...silence(300), ...speech, ...silence(1500)]), 16000, { realtime: true });
    const final = await client.waitFor("asrFinal", undefined, 20_000);
    expect(final.text).toMatch(/billing/);
    const reply = await client.waitFor("trackEnd", (e) => e.playId !== "greeting", 20_000);
    expect(reply.reason).toBe("finished");

    const order = names(client.events).filter((n) => ["speaking", "silence", "asrFinal", "trackStart", "trackEnd"].includes(n));
    const from = order.indexOf("speaking");
    expect(order.slice(from)).toEqual(["speaking", "silence", "asrFinal", "trackStart", "trackEnd"]);
    // The reply (the scripted LLM repeats what it heard) came back as non-silent audio after the transcript.
    const finalAt = client.events.indexOf(final);
    const replyAudio = audio.frames.filter((f) => f.afterEvent > finalAt);
    expect(replyAudio.length).toBeGreaterThan(25);
    expect(Math.max(...replyAudio.map((f) => peakOfPcmBytes(f.bytes)))).toBeGreaterThan(1000);

    client.hangup();
    const hangup = await client.waitFor("hangup");
    expect(hangup).toMatchObject({ reason: "client", initiator: "client", trackId: "e2e-turn" });
    expect(hangup.hangupTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((await client.closed).code).toBe(1000);

    // The JSONL dump holds the commands and events of the call, one per line.
    const dump = (await readFile(`${server.config.paths.dumps}/e2e-turn.events.jsonl`, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { type: string; content: { event?: string; command?: string } });
    expect(dump[0]).toMatchObject({ type: "command", content: { command: "invite" } });
    expect(dump.filter((l) => l.type === "event").map((l) => l.content.event)).toContain("asrFinal");
    expect(dump[dump.length - 1]).toMatchObject({ type: "event", content: { event: "hangup" } });
  }, 60_000);

  it("speech during the agent's audio interrupts it, and the audio stops within the lead", async () => {
    const client = await CallClient.connect(server.wsUrl);
    const audio = recordAudio(client);
    client.invite({ codec: "pcm", sampleRate: 16000, playbook: "hello.md" });
    await client.waitFor("trackStart", (e) => e.playId === "greeting", 20_000);
    // Let the greeting play past the interruption grace time (ignoreFirstMs 800), then talk over it.
    await client.streamPcm(silence(1200), 16000, { realtime: true });
    const talking = client.streamPcm(new Int16Array([...fliteSpeech("wait a moment please"), ...silence(800)]), 16000, { realtime: true });
    const interruption = await client.waitFor("interruption", undefined, 20_000);
    expect(interruption).toMatchObject({ playId: "greeting", reason: "bargeIn" });
    const at = client.events.indexOf(interruption);
    await talking;
    // Greeting frames that arrived after the interruption event: only what was already on the wire, at most the
    // 40 ms lead plus the frame being sent (3 x 20 ms). Counted in frames, never clock time.
    const nextStart = client.events.findIndex((e, i) => i > at && e.event === "trackStart");
    const tail = audio.frames.filter((f) => f.afterEvent > at && (nextStart === -1 || f.afterEvent <= nextStart));
    expect(tail.length).toBeLessThanOrEqual(3);
    const end = await client.waitFor("trackEnd", (e) => e.playId === "greeting");
    expect(end.reason).toBe("interrupted");
    client.hangup();
    await client.waitFor("hangup");
  }, 60_000);

  it("speaks into the call in pcmu at 8 kHz: 160-byte frames", async () => {
    const client = await CallClient.connect(server.wsUrl);
    const audio = recordAudio(client);
    client.invite({ codec: "pcmu" });
    const answer = await client.waitFor("answer");
    expect(answer.media).toMatchObject({ codec: "pcmu", sampleRate: 8000, outputCodec: "pcmu", outputSampleRate: 8000 });
    // No playbook: nothing is said until the application asks.
    client.tts("Your order has shipped.", { playId: "app-1" });
    const end = await client.waitFor("trackEnd", (e) => e.playId === "app-1", 20_000);
    expect(end.reason).toBe("finished");
    expect(audio.frames.length).toBeGreaterThan(20);
    expect(new Set(audio.frames.map((f) => f.bytes.length))).toEqual(new Set([160]));
    // µ-law silence is 0xFF/0x7F; speech uses many other codes.
    expect(new Set(Buffer.concat(audio.frames.map((f) => f.bytes))).size).toBeGreaterThan(40);
    client.hangup();
    await client.closed;
  }, 30_000);
});

describe("/call bad input", () => {
  it("malformed JSON and unknown commands give error events and keep the connection; audio before invite too", async () => {
    const client = await CallClient.connect(server.wsUrl);
    client.sendText("{not json");
    expect(await client.waitFor("error")).toMatchObject({ code: "BAD_COMMAND" });
    client.send({ command: "dance", requestId: "r-7" });
    expect(await client.waitFor("error")).toMatchObject({ code: "UNKNOWN_COMMAND", requestId: "r-7" });
    client.sendText(JSON.stringify({ nocommand: true }));
    expect(await client.waitFor("error")).toMatchObject({ code: "BAD_COMMAND" });
    client.sendAudio(new Int16Array(320));
    client.sendAudio(new Int16Array(320));
    expect(await client.waitFor("error")).toMatchObject({ code: "INVALID_STATE" });
    client.tts("too early");
    expect(await client.waitFor("error")).toMatchObject({ code: "INVALID_STATE" });
    // A bad option names the field and leaves the call unanswered; a corrected invite works.
    client.invite({ codec: "pcm", sampleRate: 44100 });
    const bad = await client.waitFor("error");
    expect(bad).toMatchObject({ code: "BAD_REQUEST" });
    expect(bad.error).toMatch(/sampleRate 44100 is not supported for pcm/);
    client.invite({ codec: "g722" });
    expect((await client.waitFor("answer")).media).toMatchObject({ codec: "g722", sampleRate: 16000 });
    // Only one error per kind of early audio; nothing else went wrong.
    expect(client.events.filter((e) => e.event === "error")).toHaveLength(6);
    client.hangup();
    expect((await client.closed).code).toBe(1000);
  });

  it("a binary frame over max_ws_message_bytes closes 1009; a text frame over 64 KiB too", async () => {
    const a = await CallClient.connect(server.wsUrl);
    a.invite();
    await a.waitFor("answer");
    a.sendAudio(Buffer.alloc(server.config.http.max_ws_message_bytes + 2));
    expect((await a.closed).code).toBe(1009);
    const b = await CallClient.connect(server.wsUrl);
    b.sendText(JSON.stringify({ command: "tts", text: "x".repeat(70 * 1024) }));
    expect((await b.closed).code).toBe(1009);
  });

  it("pings with the RFC 3339 server time at the requested interval", async () => {
    const raw = new WebSocket(`${server.wsUrl}/call?ping=1`);
    const payload = await new Promise<string>((resolve, reject) => {
      raw.once("ping", (data: Buffer) => resolve(data.toString()));
      raw.once("error", reject);
    });
    expect(payload).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(payload) - Date.now())).toBeLessThan(60_000);
    raw.close();
  });

  it("close codes: 4400 bad id, 4409 id already live", async () => {
    const bad = await CallClient.connect(server.wsUrl, { id: "no spaces allowed" }).then(
      (c) => c.closed,
      (e: unknown) => ({ code: (e as { closeCode?: number }).closeCode }),
    );
    expect(bad.code).toBe(4400);
    const first = await CallClient.connect(server.wsUrl, { id: "dup-1" });
    const second = await CallClient.connect(server.wsUrl, { id: "dup-1" });
    expect((await second.closed).code).toBe(4409);
    first.hangup();
    await first.closed;
  });

  it("a pending /api/playbook/run entry is picked up by /call?id=", async () => {
    const res = await fetch(`${server.baseUrl}/api/playbook/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: '---\ngreeting: "Hi {{ name }}."\nllm: { provider: scripted }\n---\nHello.\n', variables: { name: "Ada" } }),
    });
    expect(res.status).toBe(201);
    const run = (await res.json()) as { id: string; wsUrl: string };
    expect(run.wsUrl).toBe(`/call?id=${run.id}`);
    const client = await CallClient.connect(`${server.wsUrl}${run.wsUrl}`);
    client.invite();
    await client.waitFor("trackStart", (e) => e.playId === "greeting", 20_000);
    const live = (await (await fetch(`${server.baseUrl}/api/calls/${run.id}`)).json()) as { playbook: string; state: string; speaking: { agent: boolean } };
    expect(live).toMatchObject({ playbook: "inline.md", state: "active" });
    client.hangup();
    await client.closed;
  }, 30_000);
});

describe("/call invite timeout", () => {
  it("a socket that sends no invite in time is closed with 4408 and its call ends", async () => {
    const quick = await startServer({}, { inviteTimeoutMs: 300 });
    try {
      const client = await CallClient.connect(quick.wsUrl, { id: "slow-1" });
      expect((await client.closed).code).toBe(4408);
      await quick.calls.get("slow-1")?.ended;
      expect(quick.calls.get("slow-1")?.state).toBe("ended");
      expect(quick.calls.getLive("slow-1")).toBeUndefined();
    } finally {
      await quick.stop();
    }
  });
});
