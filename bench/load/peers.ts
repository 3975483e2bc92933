/**
 * A bench:load peer process (never the controller's): `--kind call` drives /call WebSocket clients, `--kind fork`
 * runs the FreeSWITCH simulator (test/sim/freeswitch) whose mod_audio_fork sockets stream the caller in real time.
 * Every agent frame's arrival is timed on this process's clock (performance.now) while the driver measures;
 * `report` returns late/missing frames (analysis.ts frameGaps) over that window. Commands over IPC from load.ts.
 */
import { CallClient } from "../../src/client/index.js";
import { FreeSwitchSim } from "../../test/sim/freeswitch/esl-sim.js";
import { addGaps, frameGaps, type GapReport } from "./analysis.js";

type Msg = { id: number; cmd: string; args: Record<string, unknown> };
const kind = process.argv[process.argv.indexOf("--kind") + 1];
const RATE = 16000;
const FRAME = 320;

interface Timed {
  arrivals: number[];
  periodMs: number;
  answered: boolean;
}
const calls: Timed[] = [];
let measuring = false;
const clients: CallClient[] = [];
let sim: FreeSwitchSim | undefined;
let ticker: NodeJS.Timeout | undefined;

function onAgent(t: Timed, bytes: number): void {
  if (!measuring) return;
  t.arrivals.push(performance.now());
  t.periodMs = (bytes / 2 / RATE) * 1000;
}

/** One shared 20 ms ticker feeds every /call client the frames due since it started (catching up after a stall). */
function feed(pcm: Int16Array, feeds: Array<{ c: CallClient; t0: number; sent: number; off: number }>): void {
  const tick = () => {
    const now = performance.now();
    for (const f of feeds) {
      const due = Math.floor((now - f.t0) / 20) + 1;
      while (f.sent < due && f.c.isOpen) {
        const at = ((f.off + f.sent) * FRAME) % (pcm.length - FRAME);
        f.c.sendAudio(pcm.subarray(at, at + FRAME));
        f.sent++;
      }
    }
    ticker = setTimeout(tick, 20 - ((performance.now() - now) % 20));
  };
  tick();
}

const handlers: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
  async init() {
    if (kind !== "fork") return {};
    sim = new FreeSwitchSim({ seed: 1 });
    await sim.start();
    return { eslPort: sim.eslPort };
  },
  async start(a) {
    const n = a.n as number;
    const pcm = new Int16Array(a.pcm as number[]);
    const rampMs = a.rampMs as number;
    const playbook = a.playbook as string;
    if (kind === "call") {
      const feeds: Array<{ c: CallClient; t0: number; sent: number; off: number }> = [];
      feed(pcm, feeds);
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await new Promise((r) => setTimeout(r, (i / n) * rampMs));
          const t: Timed = { arrivals: [], periodMs: 20, answered: false };
          calls.push(t);
          try {
            const c = await CallClient.connect(a.url as string, { handshakeTimeoutMs: 30_000 });
            clients.push(c);
            c.on("audio", (b) => onAgent(t, b.length));
            c.invite({ codec: "pcm", sampleRate: RATE, playbook });
            await c.waitFor("answer", undefined, 30_000);
            t.answered = true;
            feeds.push({ c, t0: performance.now(), sent: 0, off: Math.floor(Math.random() * (pcm.length / FRAME)) });
          } catch {
            // counted as not answered
          }
        }),
      );
      return { answered: calls.filter((c) => c.answered).length };
    }
    const s = sim as FreeSwitchSim;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await new Promise((r) => setTimeout(r, (i / n) * rampMs));
        const t: Timed = { arrivals: [], periodMs: 20, answered: false };
        calls.push(t);
        // Each caller starts at another point of the loop, so turns do not line up.
        const off = Math.floor(Math.random() * (pcm.length / FRAME)) * FRAME;
        const audio = new Int16Array(pcm.length);
        audio.set(pcm.subarray(off));
        audio.set(pcm.subarray(0, off), pcm.length - off);
        const uuid = s.placeCall({ caller: "100", callee: "7700", variables: { active_call: "true", send_silence_when_idle: "-1", active_call_playbook: playbook }, audio, loopAudio: true });
        const until = performance.now() + 30_000;
        while (performance.now() < until) {
          const ws = s.channel(uuid)?.fork?.ws;
          if (ws && s.channel(uuid)?.fork?.connected) {
            ws.on("message", (d: Buffer, binary: boolean) => binary && onAgent(t, d.length));
            t.answered = true;
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }),
    );
    return { answered: calls.filter((c) => c.answered).length };
  },
  async measure(a) {
    measuring = a.on as boolean;
    if (measuring) for (const c of calls) c.arrivals.length = 0;
    return {};
  },
  async report() {
    let total: GapReport = { frames: 0, utterances: 0, late: 0, missing: 0, maxGapMs: 0 };
    for (const c of calls) total = addGaps(total, frameGaps(c.arrivals, c.periodMs));
    return { ...total, answered: calls.filter((c) => c.answered).length };
  },
  async stop() {
    clearTimeout(ticker);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await sim?.close();
    setTimeout(() => process.exit(0), 100);
    return {};
  },
};

process.on("message", (m: Msg) => {
  void (handlers[m.cmd] ?? (async () => ({})))(m.args).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: String((err as Error).stack ?? err) }),
  );
});
process.send?.({ ready: true });
