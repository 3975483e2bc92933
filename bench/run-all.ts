/**
 * Runs every benchmark under bench/ in turn, each in its own process so one cannot warm or slow another.
 * Benchmarks print figures; none asserts a timing. The soak (`npm run soak`, bench/soak*.ts) is left out: it runs
 * for minutes and gives a verdict.
 * bench/load/ (`npm run bench:load`, `npm run bench:latency`) is a folder, so it is left out too: it ramps to
 * hundreds of calls for minutes.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const scripts = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run-all.ts" && !/^soak(-.*)?\.ts$/.test(f))
  .sort();
let failed = 0;
for (const script of scripts) {
  process.stdout.write(`\n== bench/${script} ==\n`);
  const r = spawnSync(process.execPath, ["--import", "tsx", `${dir}${script}`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
