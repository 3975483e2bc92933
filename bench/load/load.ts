/**
 * `npm run bench:load`: the controller in one process, the callers in others (one per kind: /call WebSocket
 * clients, the FreeSWITCH simulator's mod_audio_fork sockets), N calls streaming flite speech in real time
 * through TinySilero and the scripted zero-latency ASR/LLM/TTS, for each N of the ramp. Per step: controller CPU
 * (/proc/<pid>/stat), p50/p99 caller frame lag (wire data received -> VAD decision, measured in the controller,
 * media/frame-lag.ts), event-loop delay p99, RSS per call, late and missing agent frames at the peers' clocks.
 * A fresh controller and fresh peers per step. Prints a progress line per step, a table, the verdict line; writes
 * JSON and an SVG.
 *
 *   npm run bench:load -- [--counts 50,100,200,500,1000] [--seconds 20] [--mix call,fork] [--json f] [--svg f] [--cpu-prof]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { fliteSpeech, silence } from "../../test/e2e/harness.js";
import { histPercentile, lagDelta, renderLoadSvg, verdictLine, type LagCounts, type LoadStep } from "./analysis.js";
import { Child } from "./rpc.js";

const KINDS = ["call", "fork"] as const;
type Kind = (typeof KINDS)[number];
const NOT_YET = ["chanws", "rtp"];
const CLK_TCK = 100;

const { values } = parseArgs({
  options: {
    counts: { type: "string", default: "50,100,200,500,1000" },
    seconds: { type: "string", default: "20" },
    mix: { type: "string", default: KINDS.join(",") },
    json: { type: "string", default: "data/bench-load.json" },
    svg: { type: "string", default: "data/bench-load.svg" },
    "cpu-prof": { type: "boolean", default: false },
  },
});
const counts = values.counts.split(",").map(Number);
if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--counts: whole numbers >= 1, got "${values.counts}"`);
const seconds = Number(values.seconds);
if (!(seconds >= 2)) throw new Error(`--seconds: at least 2, got "${values.seconds}"`);
const mix = values.mix.split(",").filter((k) => {
  if (NOT_YET.includes(k)) {
    process.stderr.write(`bench:load: --mix ${k} is not implemented yet (Asterisk peers); left out\n`);
    return false;
  }
  if (!(KINDS as readonly string[]).includes(k)) throw new Error(`--mix: one of ${[...KINDS, ...NOT_YET].join(", ")}, got "${k}"`);
  return true;
}) as Kind[];
if (mix.length === 0) throw new Error("--mix: no kind left to run");

export const PLAYBOOK = `---
asr: { provider: scripted, script: [${Array.from({ length: 200 }, () => '"I would like to know my balance"').join(", ")}] }
llm: { provider: scripted, fallback: "Sure, one moment please." }
tts: { provider: scripted }
greeting: "Hello."
---
A load-test agent.
`;

// Speech, then 4 s of silence: the agent's reply (1.4 s) fits before the caller speaks again.
const speech = fliteSpeech("I would like to know the balance of my account please");
const pcm = new Int16Array(speech.length + 64000);
pcm.set(speech);
void silence;

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(f[11]) + Number(f[12]);
}
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:")) ?? "VmRSS: 0";
  return Number(line.split(/\s+/)[1]) / 1024;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function step(n: number, index: number): Promise<LoadStep> {
  const peers = new Map<Kind, Child>(mix.map((k) => [k, new Child("./peers.ts", ["--kind", k])]));
  const inits = new Map<Kind, { eslPort?: number }>();
  for (const [k, p] of peers) inits.set(k, await p.call("init"));
  const ctl = new Child("./controller.ts", [], values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${resolve("data/cpu-prof")}`] : []);
  const { wsUrl } = await ctl.call<{ wsUrl: string }>("start", { playbook: PLAYBOOK, eslPort: inits.get("fork")?.eslPort });
  await sleep(500);
  const rss0 = rssMb(ctl.pid);
  const share = (i: number) => Math.floor(n / mix.length) + (i < n % mix.length ? 1 : 0);
  const rampMs = Math.min(10_000, n * 10);
  const started = await Promise.all(mix.map((k, i) => (peers.get(k) as Child).call<{ answered: number }>("start", { n: share(i), pcm: Array.from(pcm), rampMs, url: wsUrl, playbook: "load.md" })));
  const answered = started.reduce((a, s) => a + s.answered, 0);
  await sleep(2000); // settle: every call past its greeting
  for (const p of peers.values()) await p.call("measure", { on: true });
  const lag0 = await ctl.call<LagCounts>("window");
  const c0 = cpuTicks(ctl.pid);
  const t0 = performance.now();
  let fellOver: string | undefined;
  const end = t0 + seconds * 1000;
  while (performance.now() < end && fellOver === undefined) {
    await sleep(Math.min(1000, end - performance.now()));
    if (ctl.exitCode !== undefined) fellOver = `controller exited (${ctl.exitCode})`;
  }
  const cpuPct = fellOver ? NaN : (100 * (cpuTicks(ctl.pid) - c0)) / CLK_TCK / ((performance.now() - t0) / 1000);
  const rss = fellOver ? NaN : rssMb(ctl.pid);
  const read = fellOver ? undefined : await ctl.call<{ lag: LagCounts; loopP99Ms: number; problems: number }>("read");
  for (const p of peers.values()) await p.call("measure", { on: false });
  const reports = await Promise.all([...peers.values()].map((p) => p.call<{ frames: number; late: number; missing: number; maxGapMs: number }>("report")));
  const lag = read ? lagDelta(lag0, read.lag) : undefined;
  const s: LoadStep = {
    n,
    answered,
    cpuPct,
    lagP50Ms: lag ? histPercentile(lag, 50) : NaN,
    lagP99Ms: lag ? histPercentile(lag, 99) : NaN,
    loopDelayP99Ms: read?.loopP99Ms ?? NaN,
    rssMbPerCall: (rss - rss0) / n,
    late: reports.reduce((a, r) => a + r.late, 0),
    missing: reports.reduce((a, r) => a + r.missing, 0),
    agentFrames: reports.reduce((a, r) => a + r.frames, 0),
  };
  if (!fellOver && answered < n) fellOver = `only ${answered} of ${n} calls answered`;
  if (!fellOver && s.lagP99Ms > 1000) fellOver = `p99 frame lag ${s.lagP99Ms} ms`;
  if (fellOver) s.fellOver = fellOver;
  process.stdout.write(
    `[${index + 1}/${counts.length}] N=${n}: ${answered} answered, cpu ${cpuPct.toFixed(0)} %, lag p50 ${s.lagP50Ms.toFixed(1)} / p99 ${s.lagP99Ms.toFixed(1)} ms, loop p99 ${s.loopDelayP99Ms.toFixed(1)} ms, rss ${s.rssMbPerCall.toFixed(2)} MB/call, late ${s.late}, missing ${s.missing} of ${s.agentFrames} agent frames${read?.problems ? `, ${read.problems} warnings logged` : ""}${fellOver ? ` -- FELL OVER: ${fellOver}` : ""}\n`,
  );
  await ctl.call("stop").catch(() => undefined);
  for (const p of peers.values()) await p.call("stop").catch(() => undefined);
  await sleep(500);
  return s;
}

process.stdout.write(`bench:load: mix ${mix.join(",")}, ${seconds} s measured per step after the ramp, counts ${counts.join(", ")}\n`);
const steps: LoadStep[] = [];
for (const [i, n] of counts.entries()) {
  const s = await step(n, i);
  steps.push(s);
  if (s.fellOver) {
    process.stdout.write(`ramp stopped at N=${n}: ${s.fellOver}\n`);
    break;
  }
}
process.stdout.write("\n     N  answered  cpu %core  lag p50 ms  lag p99 ms  loop p99 ms  MB/call   late  missing  agent frames\n");
for (const s of steps) {
  process.stdout.write(
    `${String(s.n).padStart(6)}  ${String(s.answered).padStart(8)}  ${s.cpuPct.toFixed(0).padStart(9)}  ${s.lagP50Ms.toFixed(1).padStart(10)}  ${s.lagP99Ms.toFixed(1).padStart(10)}  ${s.loopDelayP99Ms.toFixed(1).padStart(11)}  ${s.rssMbPerCall.toFixed(2).padStart(7)}  ${String(s.late).padStart(5)}  ${String(s.missing).padStart(7)}  ${String(s.agentFrames).padStart(12)}\n`,
  );
}
writeFileSync(values.json, JSON.stringify({ options: { counts, seconds, mix }, steps }, null, 2) + "\n");
writeFileSync(values.svg, renderLoadSvg(steps, `active-call bench:load (${mix.join(", ")}): frame lag and CPU against N`));
process.stdout.write(`wrote ${resolve(values.json)}\nplot: ${resolve(values.svg)}\n`);
process.stdout.write(verdictLine(steps) + "\n");
process.exit(0);
