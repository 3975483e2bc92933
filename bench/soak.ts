/**
 * `npm run soak`: many simulated calls for minutes against the built controller (a child process, `npm run build`
 * first), its heap and RSS sampled at a fixed interval, a chart, and a verdict on growth and on lost events/hooks.
 *
 * Each of `--calls` slots runs one `/call` WebSocket call after another: invite with a keyless playbook (scripted
 * ASR/LLM/TTS, so no key is needed and the controller's own work is what is measured; TinySilero still decides
 * the turns), caller speech (flite, looped with pauses) sent as 20 ms frames paced in real time by one shared
 * ticker, hangup after `--call-seconds` (±25 %, so calls do not end together), then the next call on that slot.
 * The controller's `[posthook] url` points at a receiver in this process. Memory is read from the controller:
 * RSS from /proc/<pid>/status, heap used from its /metrics (prom-client's nodejs_heap_size_used_bytes).
 *
 *   npm run soak -- --calls 200 --minutes 10 --call-seconds 30 --sample-seconds 10 --out soak-out
 *
 * Writes soak.json (options, samples, accounting, verdict) and soak.svg to --out; exit 0 on PASS, 1 on FAIL.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { setMaxListeners } from "node:events";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { CallClient } from "../src/client/index.js";
import { decodeWav, downmixToMono, resample } from "../src/audio/index.js";
import { account, renderSvg, verdict, measuredWindow, type CallRecord, type SoakSample } from "./soak-verdict.js";

const BIN = fileURLToPath(new URL("../bin/active-call.js", import.meta.url));
const RATE = 16000;
const FRAME = RATE / 50; // 20 ms
const CLK_TCK = 100;

const USAGE = `usage: npm run soak -- [options]
  --calls N              calls live at once (default 200)
  --minutes M            length of the soak (default 10)
  --call-seconds S       length of each call, ±25 % (default 30)
  --sample-seconds S     sampling interval (default 10)
  --warmup F             fraction of samples skipped before the fit (default 0.2)
  --max-heap-slope MB    heap slope limit, MB/min (default 1)
  --max-rss-slope MB     RSS slope limit, MB/min (default 2)
  --out DIR              where soak.json and soak.svg go (default ./data/soak)
  --raw-heap             fit the heap as /metrics reports it, without the full GC before each sample
`;

function options() {
  const { values } = parseArgs({
    options: {
      calls: { type: "string", default: "200" },
      minutes: { type: "string", default: "10" },
      "call-seconds": { type: "string", default: "30" },
      "sample-seconds": { type: "string", default: "10" },
      warmup: { type: "string", default: "0.2" },
      "max-heap-slope": { type: "string", default: "1" },
      "max-rss-slope": { type: "string", default: "2" },
      out: { type: "string", default: "data/soak" },
      "raw-heap": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (name: keyof typeof values, min: number): number => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min) {
      process.stderr.write(`soak: --${name} must be a number ≥ ${min}, got "${String(values[name])}"\n${USAGE}`);
      process.exit(2);
    }
    return v;
  };
  return {
    calls: Math.round(num("calls", 1)),
    minutes: num("minutes", 0.1),
    callSeconds: num("call-seconds", 2),
    sampleSeconds: num("sample-seconds", 1),
    warmup: num("warmup", 0),
    maxHeapSlope: num("max-heap-slope", 0),
    maxRssSlope: num("max-rss-slope", 0),
    out: resolve(values.out),
    rawHeap: values["raw-heap"],
  };
}

const PLAYBOOK = `---
asr: { provider: scripted, script: [${Array.from({ length: 60 }, (_, i) => (i % 2 ? '"thank you"' : '"I would like to know my balance"')).join(", ")}] }
llm: { provider: scripted, fallback: "Sure, one moment please." }
tts: { provider: scripted }
greeting: "Hello, this is the soak test."
---
A soak-test agent.
`;

/** Caller audio: flite speech and 1.5 s of silence (a tone burst when flite is missing), at 16 kHz. */
function callerAudio(): Int16Array {
  const file = join(tmpdir(), `soak-${process.pid}.wav`);
  const r = spawnSync("flite", ["-voice", "slt", "-t", "I would like to know the balance of my account please", "-o", file]);
  let voice: Int16Array;
  if (r.status === 0) {
    const wav = decodeWav(readFileSync(file));
    rmSync(file, { force: true });
    voice = resample(downmixToMono(wav.pcm, wav.channels), wav.sampleRate, RATE);
  } else {
    process.stderr.write("soak: flite not found; the caller sends a 300 Hz tone burst instead of speech\n");
    voice = new Int16Array(RATE * 2);
    for (let i = 0; i < voice.length; i++) voice[i] = Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / RATE) * (1 + 0.5 * Math.sin((2 * Math.PI * 4 * i) / RATE)));
  }
  const frames = Math.ceil((voice.length + RATE * 1.5) / FRAME);
  const out = new Int16Array(frames * FRAME);
  out.set(voice);
  return out;
}

// ------------------------------------------------------------------------------------------------ controller

interface Controller {
  child: ChildProcess;
  pid: number;
  port: number;
  dir: string;
  exited: Promise<number | null>;
  /** The last 20 kB the controller wrote (warnings and errors, JSON lines). */
  logTail: () => string;
  inspector: Inspector | undefined;
}

/** The controller's V8 inspector (loopback only): a full GC, then the heap in use. */
class Inspector {
  private seq = 0;
  private readonly pending = new Map<number, (result: Record<string, unknown>) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown> };
      if (msg.id !== undefined) {
        this.pending.get(msg.id)?.(msg.result ?? {});
        this.pending.delete(msg.id);
      }
    });
  }
  static open(url: string): Promise<Inspector> {
    const ws = new WebSocket(url);
    return new Promise((res, rej) => {
      ws.once("open", () => res(new Inspector(ws)));
      ws.once("error", rej);
    });
  }
  call(method: string): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    return new Promise((res) => {
      this.pending.set(id, res);
      this.ws.send(JSON.stringify({ id, method }));
    });
  }
  /** MB in use after a full GC, and how long the GC took (ms). */
  async heapAfterGc(): Promise<{ mb: number; gcMs: number }> {
    const t = performance.now();
    await this.call("HeapProfiler.collectGarbage");
    const gcMs = performance.now() - t;
    const usage = await this.call("Runtime.getHeapUsage");
    return { mb: Number(usage.usedSize) / 2 ** 20, gcMs };
  }
  close(): void {
    this.ws.close();
  }
}

async function freePort(): Promise<number> {
  const { createServer: net } = await import("node:net");
  return new Promise((res, rej) => {
    const s = net();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

async function startController(hookUrl: string, gc: boolean): Promise<Controller> {
  if (!existsSync(fileURLToPath(new URL("../dist/main.js", import.meta.url)))) {
    process.stderr.write("soak: dist/ is missing; run `npm run build` first\n");
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), "ac-soak-"));
  cpSync(fileURLToPath(new URL("../playbooks", import.meta.url)), join(dir, "playbooks"), { recursive: true });
  writeFileSync(join(dir, "playbooks", "soak.md"), PLAYBOOK);
  const port = await freePort();
  writeFileSync(
    join(dir, "soak.toml"),
    [
      "[http]",
      `addr = "127.0.0.1:${port}"`,
      "rate_limit_per_min = 0",
      "[posthook]",
      `url = "${hookUrl}"`,
      "retries = 3",
      "backoff_initial_ms = 500",
      "",
    ].join("\n"),
  );
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ACTIVE_CALL_") && !k.startsWith("OPENAI_")) env[k] = v;
  // --inspect on loopback: the soak asks V8 for a full GC before reading the heap (HeapProfiler.collectGarbage).
  const child = spawn(process.execPath, [...(gc ? ["--inspect=127.0.0.1:0"] : []), BIN, "--conf", "soak.toml", "--log-level", "warn", "--log-format", "json"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  let inspectorUrl: string | undefined;
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-20000);
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(tail)?.[1];
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      if (child.exitCode !== null || Date.now() - t0 > 20_000) throw new Error(`the controller did not start:\n${tail}`);
      await sleep(50);
    }
  }
  while (gc && inspectorUrl === undefined && Date.now() - t0 < 20_000) await sleep(20);
  const inspector = inspectorUrl ? await Inspector.open(inspectorUrl) : undefined;
  if (gc && !inspector) process.stderr.write("soak: no inspector; heap is read from /metrics without a GC first\n");
  return { child, pid: child.pid as number, port, dir, exited, logTail: () => tail, inspector };
}

function procStatusMb(pid: number, key: string): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${key}:`));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

async function metrics(port: number): Promise<{ heapUsedMb: number; lagMs: number; liveCalls: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const one = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  let live = 0;
  for (const m of text.matchAll(/^active_call_calls_active(?:\{[^}]*\})? (\S+)$/gm)) live += Number(m[1]);
  return { heapUsedMb: one("active_call_nodejs_heap_size_used_bytes") / 2 ** 20, lagMs: one("active_call_event_loop_lag_seconds") * 1000, liveCalls: live };
}

// ------------------------------------------------------------------------------------------------ hooks

function hookReceiver(hooks: string[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { callId?: unknown };
        hooks.push(typeof body.callId === "string" ? body.callId : "(no callId)");
      } catch {
        hooks.push("(unparsable body)");
      }
      res.writeHead(204).end();
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook` })));
}

// ------------------------------------------------------------------------------------------------ callers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Live callers, fed by one 20 ms ticker: each gets every frame due since it started (catching up after a stall). */
interface Feed {
  client: CallClient;
  startedAt: number;
  sent: number;
  offset: number;
}

class Ticker {
  readonly feeds = new Set<Feed>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly pcm: Int16Array) {}
  start(): void {
    const tick = () => {
      const now = performance.now();
      for (const f of this.feeds) {
        const due = Math.floor((now - f.startedAt) / 20) + 1;
        while (f.sent < due && f.client.isOpen) {
          const at = ((f.offset + f.sent) * FRAME) % this.pcm.length;
          f.client.sendAudio(this.pcm.subarray(at, at + FRAME));
          f.sent++;
        }
      }
      this.timer = setTimeout(tick, 20 - ((performance.now() - now) % 20));
    };
    tick();
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}

interface Totals {
  started: number;
  ended: number;
  failed: number;
  live: number;
  agentFrames: number;
  failures: Map<string, number>;
}

async function oneCall(id: string, port: number, ms: number, stop: AbortSignal, ticker: Ticker, frameCount: number, rec: CallRecord & { events: string[]; tracks: Array<{ event: "trackStart" | "trackEnd"; playId: string; reason?: string }> }, totals: Totals): Promise<void> {
  let client: CallClient | undefined;
  let feed: Feed | undefined;
  try {
    client = await CallClient.connect(`ws://127.0.0.1:${port}`, { id, handshakeTimeoutMs: 20_000 });
    client.on("event", (e) => {
      rec.events.push(e.event);
      if (e.event === "trackStart" || e.event === "trackEnd") rec.tracks.push({ event: e.event, playId: String(e.playId), ...(e.event === "trackEnd" ? { reason: String(e.reason) } : {}) });
    });
    client.on("audio", () => totals.agentFrames++);
    client.invite({ codec: "pcm", sampleRate: RATE, playbook: "soak.md" });
    await client.waitFor("answer", undefined, 20_000);
    feed = { client, startedAt: performance.now(), sent: 0, offset: Math.floor(Math.random() * frameCount) };
    ticker.feeds.add(feed);
    await new Promise<void>((r) => {
      const done = () => {
        clearTimeout(t);
        stop.removeEventListener("abort", done);
        r();
      };
      const t = setTimeout(done, ms);
      if (stop.aborted) done();
      else stop.addEventListener("abort", done);
    });
    ticker.feeds.delete(feed);
    client.hangup();
    await client.waitFor("hangup", undefined, 20_000);
    await Promise.race([client.closed, sleep(10_000)]);
  } catch (err) {
    totals.failed++;
    // Grouped by kind: the call id and the list of events received are left out.
    const msg = ((err as Error).message.split("\n")[0] ?? "error").replace(/soak-\d+-\d+/g, "<id>").replace(/; received: .*/, "").slice(0, 120);
    totals.failures.set(msg, (totals.failures.get(msg) ?? 0) + 1);
    if (client?.isOpen) await client.close().catch(() => undefined);
  } finally {
    if (feed) ticker.feeds.delete(feed);
    if (rec.events.includes("hangup")) totals.ended++;
  }
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const o = options();
  mkdirSync(o.out, { recursive: true });
  const pcm = callerAudio();
  const hooks: string[] = [];
  const receiver = await hookReceiver(hooks);
  const ctl = await startController(receiver.url, !o.rawHeap);
  const records: Array<CallRecord & { events: string[]; tracks: Array<{ event: "trackStart" | "trackEnd"; playId: string; reason?: string }> }> = [];
  const totals: Totals = { started: 0, ended: 0, failed: 0, live: 0, agentFrames: 0, failures: new Map() };
  const ticker = new Ticker(pcm);
  ticker.start();
  const durationMs = o.minutes * 60_000;
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per live call
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  console.log(`soak: ${o.calls} calls at once for ${o.minutes} min, ${o.callSeconds} s per call (±25 %), sample every ${o.sampleSeconds} s; controller pid ${ctl.pid}`);

  // The slots: a ramp over at most 10 s, then one call after another until the end.
  const rampMs = Math.min(10_000, o.callSeconds * 500);
  const slots = Array.from({ length: o.calls }, async (_, slot) => {
    await sleep((slot / o.calls) * rampMs);
    for (let seq = 0; !stop.signal.aborted; seq++) {
      const id = `soak-${slot}-${seq}`;
      const rec = { id, events: [] as string[], tracks: [] as Array<{ event: "trackStart" | "trackEnd"; playId: string; reason?: string }> };
      records.push(rec);
      totals.started++;
      totals.live++;
      const ms = o.callSeconds * 1000 * (0.75 + 0.5 * Math.random());
      await oneCall(id, ctl.port, ms, stop.signal, ticker, pcm.length / FRAME, rec, totals);
      totals.live--;
      if (rec.events.length === 0 && !stop.signal.aborted) await sleep(1000); // connect failed: do not spin
    }
  });

  // Sampling.
  const samples: SoakSample[] = [];
  let lastTicks = cpuTicks(ctl.pid);
  let lastAt = performance.now();
  let lastDriver = process.cpuUsage();
  const driverCpu: number[] = [];
  const sample = async (phase: SoakSample["phase"]) => {
    const m = await metrics(ctl.port);
    const gc = await ctl.inspector?.heapAfterGc();
    const now = performance.now();
    const ticks = cpuTicks(ctl.pid);
    const wall = (now - lastAt) / 1000;
    const cpuPct = (100 * (ticks - lastTicks)) / CLK_TCK / wall;
    const d = process.cpuUsage(lastDriver);
    const driverPct = (100 * (d.user + d.system)) / 1e6 / wall;
    driverCpu.push(driverPct);
    lastTicks = ticks;
    lastAt = now;
    lastDriver = process.cpuUsage();
    const s: SoakSample = { t: elapsed(), heapUsedMb: gc?.mb ?? m.heapUsedMb, rawHeapUsedMb: m.heapUsedMb, gcMs: gc?.gcMs ?? 0, rssMb: procStatusMb(ctl.pid, "VmRSS"), liveCalls: m.liveCalls, cpuPct, lagMs: m.lagMs, phase };
    samples.push(s);
    const mmss = `${Math.floor(s.t / 60)}:${String(Math.floor(s.t % 60)).padStart(2, "0")}`;
    console.log(
      `[${mmss.padStart(5)}] ${phase}  live ${String(s.liveCalls).padStart(4)}  started ${totals.started} ended ${totals.ended} failed ${totals.failed} hooks ${hooks.length}  heap ${s.heapUsedMb.toFixed(1)} MB after GC (${m.heapUsedMb.toFixed(1)} before, GC ${(gc?.gcMs ?? 0).toFixed(0)} ms)  rss ${s.rssMb.toFixed(1)} MB  cpu ${cpuPct.toFixed(0)} %  lag ${s.lagMs.toFixed(1)} ms  driver cpu ${driverPct.toFixed(0)} %`,
    );
  };
  await metrics(ctl.port); // starts the lag window
  for (let k = 1; k * o.sampleSeconds * 1000 <= durationMs; k++) {
    await sleep(Math.max(0, t0 + k * o.sampleSeconds * 1000 - performance.now()));
    await sample("load");
  }
  await sleep(Math.max(0, t0 + durationMs - performance.now()));

  // The end: every live call hangs up, then the hooks are waited for (at most 60 s).
  const hooksAtEnd = hooks.length;
  stop.abort();
  await Promise.all(slots);
  ticker.stop();
  // Hooks still spooled keep coming: wait while they do (at most 10 min), and 30 s after the last one.
  const hookDeadline = performance.now() + 600_000;
  let lastCount = -1;
  let lastHookAt = performance.now();
  while (hooks.length < totals.started && performance.now() < hookDeadline && performance.now() - lastHookAt < 30_000) {
    if (hooks.length !== lastCount) [lastCount, lastHookAt] = [hooks.length, performance.now()];
    await sleep(200);
  }
  const hooksAfterS = elapsed() - durationMs / 1000;
  await sleep(1000); // a duplicate would come now
  const liveLeft = ((await (await fetch(`http://127.0.0.1:${ctl.port}/api/calls?state=live&limit=1000`)).json()) as { calls: unknown[] }).calls.length;
  for (let k = 0; k < 2; k++) {
    await sleep(o.sampleSeconds * 1000);
    await sample("drain");
  }
  ctl.inspector?.close();
  ctl.child.kill("SIGTERM");
  const code = await Promise.race([ctl.exited, sleep(15_000).then(() => "timeout")]);
  receiver.server.close();

  const acc = account(records, hooks, liveLeft);
  const v = verdict(samples, acc, { warmupFraction: o.warmup, maxHeapSlopeMbPerMin: o.maxHeapSlope, maxRssSlopeMbPerMin: o.maxRssSlope });
  const window = measuredWindow(samples, o.warmup);
  const load = samples.filter((s) => s.phase === "load");
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const finals = records.reduce((n, r) => n + r.events.filter((e) => e === "asrFinal").length, 0);
  const interruptions = records.reduce((n, r) => n + r.events.filter((e) => e === "interruption").length, 0);
  const summary = {
    calls: { started: acc.callsStarted, answered: acc.callsAnswered, ended: acc.callsEnded, failed: totals.failed, failures: Object.fromEntries(totals.failures) },
    hooks: { atEndOfLoad: hooksAtEnd, lastAfterSeconds: hooksAfterS, received: acc.hooksReceived, missing: acc.missingHooks.length, duplicate: acc.duplicateHooks.length, stray: acc.strayHooks.length },
    events: { openAtHangup: acc.openAtHangup.length, unbalancedTracks: acc.unbalancedTracks.length, noGreeting: acc.noGreeting.length, errors: acc.errorEvents, asrFinals: finals, interruptions, agentFrames: totals.agentFrames },
    leftoverSessions: liveLeft,
    cpu: { controllerMeanPct: mean(window.map((s) => s.cpuPct)), driverMeanPct: mean(driverCpu.slice(0, load.length)), lagMeanMs: mean(window.map((s) => s.lagMs)), lagMaxMs: Math.max(...load.map((s) => s.lagMs)) },
    liveCallsMean: mean(window.map((s) => s.liveCalls)),
    controllerExit: code,
  };
  writeFileSync(join(o.out, "soak.json"), JSON.stringify({ options: o, samples, summary, verdict: v, lists: { lostCalls: acc.lostCalls.slice(0, 50), missingHooks: acc.missingHooks.slice(0, 50), duplicateHooks: acc.duplicateHooks.slice(0, 50), unbalancedTracks: acc.unbalancedTracks.slice(0, 50), openAtHangup: acc.openAtHangup.slice(0, 50) }, examples: { unbalancedTracks: records.filter((r) => acc.unbalancedTracks.includes(r.id)).slice(0, 5), openAtHangup: records.filter((r) => acc.openAtHangup.includes(r.id)).slice(0, 3), lostCalls: records.filter((r) => acc.lostCalls.includes(r.id)).slice(0, 5) } }, null, 2) + "\n");
  const warmupEndT = window[0]?.t;
  writeFileSync(
    join(o.out, "soak.svg"),
    renderSvg(samples, { title: `active-call soak: ${o.calls} calls, ${o.minutes} min; heap ${v.heap.slopeMbPerMin.toFixed(2)} MB/min, RSS ${v.rss.slopeMbPerMin.toFixed(2)} MB/min: ${v.pass ? "PASS" : "FAIL"}`, ...(warmupEndT !== undefined ? { warmupEndT } : {}) }),
  );

  console.log("");
  console.log(`calls:  ${acc.callsStarted} started, ${acc.callsAnswered} answered, ${acc.callsEnded} ended, ${totals.failed} failed; ${summary.liveCallsMean.toFixed(0)} live on average (measured window)`);
  for (const [msg, n] of [...totals.failures].sort((a, b) => b[1] - a[1]).slice(0, 5)) console.log(`        ${n} × ${msg}`);
  console.log(`hooks:  ${acc.hooksReceived} received, ${acc.missingHooks.length} missing, ${acc.duplicateHooks.length} duplicated, ${acc.strayHooks.length} stray; ${hooksAtEnd} had arrived when the load stopped, the last ${hooksAfterS.toFixed(0)} s after`);
  console.log(`events: ${acc.openAtHangup.length} calls hung up with a track open (no trackEnd), ${acc.unbalancedTracks.length} with a second trackEnd for one playId, ${acc.noGreeting.length} without greeting, ${acc.errorEvents} errors; ${finals} asrFinal, ${interruptions} interruptions, ${totals.agentFrames} agent frames`);
  console.log(`cpu:    controller ${summary.cpu.controllerMeanPct.toFixed(0)} % of a core, soak driver ${summary.cpu.driverMeanPct.toFixed(0)} %; event-loop lag mean ${summary.cpu.lagMeanMs.toFixed(1)} ms, max ${summary.cpu.lagMaxMs.toFixed(1)} ms`);
  console.log(`heap:   ${v.heap.slopeMbPerMin.toFixed(3)} MB/min (limit ${o.maxHeapSlope}), ${v.heap.first.toFixed(1)} -> ${v.heap.last.toFixed(1)} MB (${v.heap.growthMb >= 0 ? "+" : ""}${v.heap.growthMb.toFixed(1)} MB) over ${v.measured} samples after warm-up`);
  console.log(`rss:    ${v.rss.slopeMbPerMin.toFixed(3)} MB/min (limit ${o.maxRssSlope}), ${v.rss.first.toFixed(1)} -> ${v.rss.last.toFixed(1)} MB (${v.rss.growthMb >= 0 ? "+" : ""}${v.rss.growthMb.toFixed(1)} MB)`);
  console.log(`leftover live sessions: ${liveLeft}; controller exit on SIGTERM: ${String(code)}`);
  console.log(`wrote ${join(o.out, "soak.json")} and ${join(o.out, "soak.svg")}`);
  console.log(v.pass ? "PASS" : `FAIL\n  - ${v.reasons.join("\n  - ")}`);
  rmSync(ctl.dir, { recursive: true, force: true });
  process.exit(v.pass ? 0 : 1);
}

await main();
