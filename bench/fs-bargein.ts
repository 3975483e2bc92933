/**
 * Barge-in on FreeSWITCH: how long the caller still hears the agent after the controller decided to stop it.
 * Live (2026-12-06, fact 10) that was 80-110 ms; issue 16 asks for at most 60 ms.
 *
 * Each run: the FreeSWITCH simulator (strict, seeded) and the real controller (the e2e harness: buildServer, local
 * TTS/ASR). A caller on the drop-in's park path hears a long greeting; once half a second of it was heard, the
 * caller speaks (flite) and the controller's VAD barges in. "Decided" is the `interruption` event's timestamp
 * (emitted right after the leg was cleared); "stopped" is the end of the last frame that carried agent audio on the
 * simulator's caller-side playout clock, i.e. what RTP would carry to the caller.
 *
 * Reference, measured in the same run on the same simulator: a bare WebSocket peer in place of the controller
 * streams a tone with the controller's 60 ms lead and sends killAudio at a chosen instant: the floor the simulated
 * switch itself imposes (killAudio transit plus the frame being written). Figures: per run and the median of the
 * runs, and the ratio of the medians. No assertions.
 *
 *   node --import tsx bench/fs-bargein.ts [--runs N]
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { AUDIBLE_RMS, FreeSwitchSim } from "../test/sim/freeswitch/esl-sim.js";
import { fliteSpeech, record, silence, startServer } from "../test/e2e/harness.js";

const FRAME_MS = 20;
const LEAD_MS = 60; // AudioForkLeg's default lead
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1] ?? 0) || 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * End of the last frame that carried agent audio to the caller (not the park loop's idle silence), or `decided`
 * when the audio had already stopped. Loudness is not the criterion: a pause between two words is still the
 * agent's audio, and the caller hears the next word if it is not cut.
 */
function agentAudioEnd(sim: FreeSwitchSim, uuid: string, decided: number): number {
  let end = decided;
  for (const f of sim.heard(uuid).frames) if (f.agent && f.atMs + FRAME_MS > end) end = f.atMs + FRAME_MS;
  return end;
}

const PLAYBOOK = `---
asr: { provider: auto }
tts: { provider: auto }
llm: { provider: scripted, fallback: "You said: {{ text }}" }
greeting: "Thank you for calling. This greeting is long on purpose, so that the caller can talk over it while it plays, and the time it takes for the agent to fall silent can be measured on the caller's side of the call."
---
A barge-in benchmark.
`;

async function controllerRun(seed: number): Promise<{ stopMs: number; killTransitMs: number }> {
  const sim = new FreeSwitchSim({ seed });
  await sim.start();
  const server = await startServer({ freeswitch: { enabled: true, esl_port: sim.eslPort, outbound_listen: "" } });
  try {
    await writeFile(join(server.config.paths.playbooks, "bargein.md"), PLAYBOOK);
    await until("the ESL connection", () => server.freeswitch?.status().connected === true);
    const uuid = sim.placeCall({
      caller: "100",
      callee: "7700",
      variables: { active_call: "true", send_silence_when_idle: "-1", active_call_playbook: "bargein.md" },
      audio: silence(400),
      loopAudio: true,
    });
    await until("the call", () => server.calls.get(uuid) !== undefined);
    const events = record(server, uuid);
    await until("half a second of greeting at the caller", () => sim.heard(uuid).frames.filter((f) => f.rms > AUDIBLE_RMS).length >= 25);
    sim.setCallerAudio(uuid, new Int16Array([...fliteSpeech("hello can you hear me"), ...silence(3000)]), false);
    await until("the barge-in", () => events.some((e) => e.event === "interruption"));
    const decided = events.find((e) => e.event === "interruption")?.timestamp ?? 0;
    await sleep(600);
    const end = agentAudioEnd(sim, uuid, decided);
    const kill = sim.channel(uuid)?.fork?.killAudioAt.find((t) => t >= decided - 50) ?? NaN;
    return { stopMs: end - decided, killTransitMs: kill - decided };
  } finally {
    await server.stop();
    await sim.close();
  }
}

async function referenceRun(seed: number): Promise<{ stopMs: number }> {
  const sim = new FreeSwitchSim({ seed });
  await sim.start();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (p) => [...p][0] ?? false });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const port = (wss.address() as { port: number }).port;
  try {
    const uuid = sim.placeCall({ caller: "100", callee: "7700", variables: { send_silence_when_idle: "-1" } });
    sim.runApi(`uuid_answer ${uuid}`);
    const connected = new Promise<WebSocket>((r) => wss.once("connection", (ws) => r(ws)));
    sim.runApi(`uuid_audio_fork ^^|${uuid}|start|ws://127.0.0.1:${port}/ref|mono|16k|audio_fork|{}|true|true|16000`);
    const ws = await connected;
    // A 440 Hz tone, 20 ms frames, LEAD_MS ahead of real time, as the leg paces.
    const frame = Buffer.alloc(640);
    for (let i = 0; i < 320; i++) frame.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16000)), i * 2);
    const t0 = Date.now();
    let sent = 0;
    const timer = setInterval(() => {
      while (sent * FRAME_MS < Date.now() - t0 + LEAD_MS) {
        ws.send(frame);
        sent++;
      }
    }, 5);
    await until("half a second of tone at the caller", () => sim.heard(uuid).frames.filter((f) => f.rms > AUDIBLE_RMS).length >= 25);
    await sleep(137); // off the frame grid, like a VAD decision
    clearInterval(timer);
    const decided = Date.now();
    ws.send('{"type":"killAudio"}');
    await sleep(300);
    return { stopMs: agentAudioEnd(sim, uuid, decided) - decided };
  } finally {
    wss.close();
    await sim.close();
  }
}

const ours: number[] = [];
const transit: number[] = [];
const floor: number[] = [];
process.stdout.write(`FreeSWITCH barge-in: decided -> agent audio stopped at the caller (simulator RTP clock), ${runs} runs\n`);
for (let i = 1; i <= runs; i++) {
  const c = await controllerRun(i);
  const r = await referenceRun(i);
  ours.push(c.stopMs);
  transit.push(c.killTransitMs);
  floor.push(r.stopMs);
  process.stdout.write(`run ${i}: controller ${c.stopMs.toFixed(0)} ms (killAudio arrived after ${c.killTransitMs.toFixed(0)} ms), reference ${r.stopMs.toFixed(0)} ms\n`);
}
const m = median(ours);
const ref = median(floor);
process.stdout.write(`median: controller ${m.toFixed(0)} ms, killAudio transit ${median(transit).toFixed(0)} ms, reference ${ref.toFixed(0)} ms, ratio ${(m / Math.max(1, ref)).toFixed(2)} (target: <= 60 ms)\n`);
