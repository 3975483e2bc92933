/**
 * How fast the controller starts (spawn -> first 200 from /health) and stops (SIGTERM -> exit 0),
 * with built-in defaults and no calls. Median and min of several runs; needs `npm run build` first.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/active-call.js", import.meta.url));
const ROUNDS = 7;

async function once(port: number): Promise<{ startMs: number; stopMs: number; code: number | null }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, "--http", `127.0.0.1:${port}`, "--log-level", "error"], {
    cwd: mkdtempSync(join(tmpdir(), "ac-bench-")),
    stdio: "ignore",
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const startMs = performance.now() - t0;
  const t1 = performance.now();
  child.kill("SIGTERM");
  const code = await exited;
  return { startMs, stopMs: performance.now() - t1, code };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const starts: number[] = [];
const stops: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const r = await once(18600 + i);
  if (r.code !== 0) throw new Error(`exit code ${r.code} after SIGTERM`);
  starts.push(r.startMs);
  stops.push(r.stopMs);
}
console.log(`lifecycle (${ROUNDS} runs)      median     min`);
console.log(`start -> /health 200     ${median(starts).toFixed(0).padStart(6)} ms ${Math.min(...starts).toFixed(0).padStart(5)} ms`);
console.log(`SIGTERM -> exit 0        ${median(stops).toFixed(0).padStart(6)} ms ${Math.min(...stops).toFixed(0).padStart(5)} ms`);
