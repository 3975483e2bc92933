/**
 * The bench:latency peer process: /call clients that stream caller speech in real time and time, on this
 * process's Date.now() (the same system clock the controller stamps its events with), every agent frame received
 * and every `silence` / `interruption` event. `report` returns the per-turn latencies (analysis.ts).
 */
import { setMaxListeners } from "node:events";
import { CallClient } from "../../src/client/index.js";
import { bargeInStops, turnLatencies } from "./analysis.js";

type Msg = { id: number; cmd: string; args: Record<string, unknown> };
const RATE = 16000;
interface Rec {
  arrivals: number[];
  silences: number[];
  bargeIns: number[];
}
const recs: Rec[] = [];
const clients: CallClient[] = [];
const ctrl = new AbortController();
setMaxListeners(0, ctrl.signal); // one signal stops every caller

const handlers: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
  async start(a) {
    const n = a.n as number;
    const pcm = new Int16Array(a.pcm as number[]);
    let answered = 0;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await new Promise((r) => setTimeout(r, (i / n) * 5000));
        const rec: Rec = { arrivals: [], silences: [], bargeIns: [] };
        recs.push(rec);
        const c = await CallClient.connect(a.url as string, { handshakeTimeoutMs: 30_000 });
        clients.push(c);
        c.on("audio", () => rec.arrivals.push(Date.now()));
        c.on("event", (e) => {
          const ev = e as { event: string; timestamp?: number; reason?: string };
          if (ev.event === "silence" && typeof ev.timestamp === "number") rec.silences.push(ev.timestamp);
          if (ev.event === "interruption" && ev.reason === "bargeIn" && typeof ev.timestamp === "number") rec.bargeIns.push(ev.timestamp);
        });
        c.invite({ codec: "pcm", sampleRate: RATE, playbook: "latency.md" });
        await c.waitFor("answer", undefined, 30_000);
        answered++;
        const off = Math.floor(Math.random() * pcm.length);
        const looped = new Int16Array(RATE * ((a.seconds as number) + 10));
        for (let k = 0; k < looped.length; k++) looped[k] = pcm[(off + k) % pcm.length] as number;
        void c.streamPcm(looped, RATE, { realtime: true, signal: ctrl.signal }).catch(() => undefined);
      }),
    );
    return { answered };
  },
  async report() {
    const turns = recs.flatMap((r) => turnLatencies(r.silences, r.arrivals));
    const stops = recs.flatMap((r) => bargeInStops(r.bargeIns, r.arrivals));
    return { turns, stops, silences: recs.reduce((n, r) => n + r.silences.length, 0), bargeIns: recs.reduce((n, r) => n + r.bargeIns.length, 0) };
  },
  async stop() {
    ctrl.abort();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
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
