/**
 * What a live call costs the controller: N concurrent `/call` WebSocket calls, each streaming caller speech in
 * real time (flite speech and pauses, in a loop) through TinySilero, turn taking, a scripted ASR/LLM/TTS (so the
 * figures are the controller's own work, not a vendor's) and the paced agent audio back.
 *
 * Figures per N (median of ROUNDS runs): the server process's CPU per call (% of one core, from /proc), its
 * resident memory per call, and the event-loop lag it reports in /metrics. The reference, measured in the same
 * run, is the same N sockets streaming the same audio to a server that does nothing with it (never invited):
 * the cost of the WebSocket transport alone. Needs `npm run build`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { setMaxListeners } from "node:events";
import { mkdtempSync, readFileSync, rmSync, cpSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CallClient } from "../src/client/index.js";
import { decodeWav, downmixToMono, resample } from "../src/audio/index.js";

const BIN = fileURLToPath(new URL("../bin/active-call.js", import.meta.url));
const ROUNDS = 3;
const SECONDS = 8;
const COUNTS = [10, 40];
const CLK_TCK = 100;

const PLAYBOOK = `---
asr: { provider: scripted, script: ["I would like to know my balance", "thank you"] }
llm: { provider: scripted, fallback: "Sure, one moment please." }
tts: { provider: scripted }
greeting: "Hello."
eou: { type: early }
---
A benchmark agent.
`;

function speech(): Int16Array {
  const file = join(tmpdir(), `bench-calls-${process.pid}.wav`);
  const r = spawnSync("flite", ["-voice", "slt", "-t", "I would like to know the balance of my account please", "-o", file]);
  if (r.status !== 0) throw new Error("flite is needed (apt-get install flite)");
  const wav = decodeWav(readFileSync(file));
  rmSync(file);
  const mono = downmixToMono(wav.pcm, wav.channels);
  const pcm = resample(mono, wav.sampleRate, 16000);
  // Speech, then 1.5 s of silence so turns end and the agent answers.
  const out = new Int16Array(pcm.length + 24000);
  out.set(pcm);
  return out;
}

async function startServer(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, "--http", `127.0.0.1:${port}`, "--log-level", "error"], { cwd: dir, stdio: "ignore" });
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:")) ?? "VmRSS: 0 kB";
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function lagMs(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = /^active_call_event_loop_lag_seconds (\S+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : NaN;
}

/** One measured window: N clients stream for SECONDS; `invite` false = transport only. */
async function run(n: number, invite: boolean, pcm: Int16Array, port: number): Promise<{ cpuPct: number; rssMbPerCall: number; lagMs: number; agentFrames: number }> {
  const dir = mkdtempSync(join(tmpdir(), "ac-bench-calls-"));
  cpSync(fileURLToPath(new URL("../playbooks", import.meta.url)), join(dir, "playbooks"), { recursive: true });
  writeFileSync(join(dir, "playbooks", "bench.md"), PLAYBOOK);
  const server = await startServer(dir, port);
  const pid = server.pid as number;
  const rss0 = rssMb(pid);
  const clients = await Promise.all(Array.from({ length: n }, () => CallClient.connect(`ws://127.0.0.1:${port}`, { dump: false })));
  let agentFrames = 0;
  for (const c of clients) {
    c.on("audio", () => agentFrames++);
    if (invite) c.invite({ playbook: "bench.md" });
  }
  if (invite) await Promise.all(clients.map((c) => c.waitFor("answer")));
  await lagMs(port); // resets the lag window
  const ctrl = new AbortController();
  setMaxListeners(0, ctrl.signal); // one signal stops every caller
  const streams = clients.map(async (c, i) => {
    // Each caller starts at another point of the loop, so turns do not line up.
    const offset = Math.floor((i / n) * pcm.length);
    const looped = new Int16Array(16000 * (SECONDS + 2));
    for (let k = 0; k < looped.length; k++) looped[k] = pcm[(offset + k) % pcm.length] as number;
    await c.streamPcm(looped, 16000, { realtime: true, signal: ctrl.signal }).catch(() => undefined);
  });
  await new Promise((r) => setTimeout(r, 1000)); // settle
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpuSec = (cpuTicks(pid) - c0) / CLK_TCK;
  const wallSec = (performance.now() - t0) / 1000;
  const rss = rssMb(pid);
  const lag = await lagMs(port);
  ctrl.abort();
  await Promise.all(streams);
  await Promise.all(clients.map((c) => c.close()));
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
  return { cpuPct: (100 * cpuSec) / wallSec / n, rssMbPerCall: (rss - rss0) / n, lagMs: lag, agentFrames };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pcm = speech();
let port = 18700;
console.log(`calls: ${SECONDS} s of real-time caller speech per run, median of ${ROUNDS} runs`);
console.log("  N   pipeline CPU/call   transport CPU/call   ratio   RSS/call   loop lag (transport)   agent frames/s/call");
for (const n of COUNTS) {
  const full: Awaited<ReturnType<typeof run>>[] = [];
  const bare: Awaited<ReturnType<typeof run>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    full.push(await run(n, true, pcm, port++));
    bare.push(await run(n, false, pcm, port++));
  }
  const cpu = median(full.map((x) => x.cpuPct));
  const ref = median(bare.map((x) => x.cpuPct));
  const frames = median(full.map((x) => x.agentFrames)) / (SECONDS + 3) / n;
  console.log(
    `${String(n).padStart(3)}   ${cpu.toFixed(2).padStart(8)} % core   ${ref.toFixed(2).padStart(9)} % core     ${(cpu / ref).toFixed(1).padStart(5)}   ${median(full.map((x) => x.rssMbPerCall)).toFixed(2).padStart(5)} MB   ${median(full.map((x) => x.lagMs)).toFixed(1).padStart(5)} ms (${median(bare.map((x) => x.lagMs)).toFixed(1)} ms)   ${frames.toFixed(1).padStart(6)}`,
  );
}
