/**
 * The controller under load, in its own process (its CPU is read by the driver from /proc/<pid>/stat): the real
 * composition (buildServer, via the e2e harness) with scripted zero-latency providers and TinySilero, the
 * FreeSWITCH link pointed at the fork peer's simulator. Over IPC it reports its frame-lag histogram
 * (media/frame-lag.ts) and event-loop delay (monitorEventLoopDelay, 1 ms resolution) for a window.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { callerFrameLag } from "../../src/media/frame-lag.js";
import { startServer, type TestServer } from "../../test/e2e/harness.js";

type Msg = { id: number; cmd: string; args: Record<string, unknown> };
let server: TestServer | undefined;
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();

const handlers: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
  async start(a) {
    const esl = a.eslPort as number | undefined;
    server = await startServer(esl ? { freeswitch: { enabled: true, esl_port: esl, outbound_listen: "" } } : {});
    await writeFile(join(server.config.paths.playbooks, (a.playbookName as string | undefined) ?? "load.md"), a.playbook as string);
    if (esl) {
      const until = Date.now() + 20_000;
      while (server.freeswitch?.status().connected !== true && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    }
    return { wsUrl: server.wsUrl };
  },
  async window() {
    loop.reset();
    return callerFrameLag.snapshot();
  },
  async read() {
    return { lag: callerFrameLag.snapshot(), loopP50Ms: loop.percentile(50) / 1e6 - 1, loopP99Ms: loop.percentile(99) / 1e6 - 1, loopMaxMs: loop.max / 1e6 - 1, problems: server?.problems.length ?? 0 };
  },
  async stop() {
    await server?.stop().catch(() => undefined);
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
