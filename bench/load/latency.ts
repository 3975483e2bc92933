/**
 * `npm run bench:latency`: `--calls` (default 100) /call calls from a peer process against the controller in
 * another, scripted zero-latency providers, TinySilero, `eou.silenceMs` = the VAD's minSilenceMs (so the VAD's
 * `silence` decision is the turn decision and everything after it is the controller's own work). The caller
 * speaks again 1.5 s after each stop, over the agent's long reply, so every cycle has a turn and a barge-in.
 *
 * - controller-added latency: `silence` event timestamp (controller, Date.now) -> first agent frame received
 *   (peer, Date.now);
 * - barge-in: `interruption {reason: bargeIn}` timestamp -> last agent frame received after it.
 * Both clocks are Date.now() on one machine: 1 ms resolution. p50/p95/p99 and a histogram of each.
 *
 *   npm run bench:latency -- [--calls 100] [--seconds 30] [--json f]
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { fliteSpeech } from "../../test/e2e/harness.js";
import { percentile, textHistogram } from "./analysis.js";
import { Child } from "./rpc.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "100" }, seconds: { type: "string", default: "30" }, json: { type: "string", default: "data/bench-latency.json" } } });
const calls = Number(values.calls);
const seconds = Number(values.seconds);
if (!Number.isInteger(calls) || calls < 1) throw new Error(`--calls: a whole number >= 1, got "${values.calls}"`);
if (!(seconds >= 5)) throw new Error(`--seconds: at least 5, got "${values.seconds}"`);

const PLAYBOOK = `---
asr: { provider: scripted, script: [${Array.from({ length: 300 }, () => '"what is my balance"').join(", ")}] }
llm: { provider: scripted, fallback: "Sure, let me look up the balance of your account, this will only take a moment." }
tts: { provider: scripted }
greeting: "Hello."
eou: { type: early, silenceMs: 100 }
---
A latency-test agent.
`;
const speech = fliteSpeech("what is the balance of my account");
const pcm = new Int16Array(speech.length + 24000);
pcm.set(speech);

const peer = new Child("./latency-peer.ts");
const ctl = new Child("./controller.ts");
const { wsUrl } = await ctl.call<{ wsUrl: string }>("start", { playbook: PLAYBOOK, playbookName: "latency.md" });
process.stdout.write(`bench:latency: ${calls} /call calls for ${seconds} s (controller pid ${ctl.pid}); clocks: Date.now() in both processes (1 ms resolution)\n`);
const { answered } = await peer.call<{ answered: number }>("start", { n: calls, pcm: Array.from(pcm), url: wsUrl, seconds });
await new Promise((r) => setTimeout(r, seconds * 1000));
const r = await peer.call<{ turns: number[]; stops: number[]; silences: number[]; bargeIns: number[] }>("report");
await peer.call("stop").catch(() => undefined);
await ctl.call("stop").catch(() => undefined);

const show = (name: string, xs: number[], goal: string) => {
  process.stdout.write(`\n${name}: ${xs.length} samples, p50 ${percentile(xs, 50)} ms, p95 ${percentile(xs, 95)} ms, p99 ${percentile(xs, 99)} ms, max ${xs.length ? Math.max(...xs) : NaN} ms (goal ${goal})\n`);
  process.stdout.write(textHistogram(xs, [1, 2, 3, 5, 10, 20, 40, 60, 100, 200, 500]) + "\n");
};
process.stdout.write(`${answered} of ${calls} calls answered; ${r.silences} silence decisions, ${r.bargeIns} barge-ins\n`);
show("silence decided -> first agent frame at the peer (controller-added latency)", r.turns, "p50 <= 5 ms, p99 <= 20 ms");
show("barge-in decided -> last agent frame at the peer", r.stops, "<= 60 ms");
writeFileSync(values.json, JSON.stringify({ options: { calls, seconds }, answered, ...r }, null, 2) + "\n");
process.stdout.write(`wrote ${resolve(values.json)}\n`);
process.exit(0);
