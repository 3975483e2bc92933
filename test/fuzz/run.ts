/**
 * `npm run fuzz`: every fuzz target for 100k cases (FUZZ_RUNS or --runs N), a random seed printed so that any
 * failure replays with --seed; --target NAME (repeatable, or comma-separated) picks targets. Prints per target
 * the cases, failures and time, and for a failing target the first counterexample shrunk by fast-check.
 * Exit code 1 when anything failed.
 *
 * Every case runs (a failure does not stop the count), then a failing target is re-run under fast-check's
 * normal mode with the same seed to shrink its first failure. A watchdog thread kills the process when one case
 * blocks the event loop for FUZZ_WATCHDOG_S seconds (a synchronous infinite loop cannot be timed out otherwise),
 * naming the target and the seed.
 */
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { describeError, fuzzProperty, guarded, guardedSync, HANG_MS, TARGETS, type FuzzTarget } from "./targets.js";

interface Args {
  runs: number;
  seed: number;
  targets: string[];
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run fuzz -- [--runs N] [--seed S] [--target NAME]...\ntargets: ${TARGETS.map((t) => t.name).join(", ")}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: Number(process.env.FUZZ_RUNS ?? 100_000), seed: (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0, targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--runs":
        args.runs = Number(value());
        break;
      case "--seed":
        args.seed = Number(value());
        break;
      case "--target":
        args.targets.push(...value().split(",").filter((t) => t !== ""));
        break;
      case "--help":
      case "-h":
        usage("");
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (!Number.isInteger(args.runs) || args.runs < 1) usage("--runs must be a positive integer");
  if (!Number.isInteger(args.seed)) usage("--seed must be an integer");
  for (const t of args.targets) if (!TARGETS.some((x) => x.name === t)) usage(`unknown target ${t}`);
  return args;
}

/**
 * Kills the process if the main thread stops advancing `beat[0]` for `seconds` (a hang inside one case), after
 * printing the label last set (target and seed).
 */
function startWatchdog(beat: Int32Array, seconds: number): { worker: Worker; setLabel: (text: string) => void } {
  const label = new Uint8Array(new SharedArrayBuffer(1024));
  const worker = new Worker(
    `const { workerData } = require("node:worker_threads");
     const fs = require("node:fs");
     const beat = new Int32Array(workerData.beat);
     const label = workerData.label;
     let last = Atomics.load(beat, 0), since = Date.now();
     setInterval(() => {
       const now = Atomics.load(beat, 0);
       if (now !== last) { last = now; since = Date.now(); return; }
       if (Date.now() - since > workerData.seconds * 1000) {
         const text = Buffer.from(label).toString("utf8").replace(/\\0+$/, "");
         fs.writeSync(2, "\\nHANG: no progress for " + workerData.seconds + " s in " + text + "\\n");
         process.kill(process.pid, "SIGKILL");
       }
     }, 500);`,
    { eval: true, workerData: { beat: beat.buffer, label, seconds } },
  );
  worker.unref();
  const setLabel = (text: string): void => {
    label.fill(0);
    label.set(Buffer.from(text).subarray(0, label.length - 1));
  };
  return { worker, setLabel };
}

interface Row {
  name: string;
  cases: number;
  failures: number;
  ms: number;
  first?: string;
}

/** Time fast-check may spend re-finding and shrinking a target's first failure. */
const SHRINK_BUDGET_MS = Number(process.env.FUZZ_SHRINK_MS ?? 120_000);

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

async function runTarget(target: FuzzTarget<unknown>, args: Args, beat: Int32Array, relabel: (s: string) => void): Promise<Row> {
  let cases = 0;
  let failures = 0;
  let firstFailure: { index: number; input: unknown; error: unknown } | undefined;
  let lastPrint = 0;
  const t0 = performance.now();
  const progress = (final = false): void => {
    const now = performance.now();
    const tty = process.stderr.isTTY;
    // A terminal gets a line rewritten every second; a log gets one line per 10 %.
    if (!final && (tty ? now - lastPrint < 1000 : cases % Math.max(1, Math.floor(args.runs / 10)) !== 0)) return;
    lastPrint = now;
    const pct = ((cases / args.runs) * 100).toFixed(0).padStart(3);
    process.stderr.write(`${process.stderr.isTTY ? "\r" : ""}  ${target.name.padEnd(15)} ${String(cases).padStart(7)}/${args.runs} ${pct}%  ${failures} failures  ${((now - t0) / 1000).toFixed(1)} s${process.stderr.isTTY && !final ? "" : "\n"}`);
  };
  const onCase = (): void => {
    cases++;
    Atomics.add(beat, 0, 1);
    progress();
  };
  const examples = (target.regressions ?? []).map((r) => [r] as [unknown]);
  relabel(`target ${target.name} (seed ${args.seed}): rerun with --target ${target.name} --seed ${args.seed}`);
  // Count every failure: the property itself never fails in this pass.
  if (target.async) {
    await fc.check(
      fc.asyncProperty(target.arbitrary, async (input) => {
        try {
          await guarded(target, input);
        } catch (error) {
          failures++;
          firstFailure ??= { index: cases, input, error };
        }
        onCase();
      }),
      { seed: args.seed, numRuns: args.runs, examples },
    );
  } else {
    fc.check(
      fc.property(target.arbitrary, (input) => {
        try {
          guardedSync(target, input);
        } catch (error) {
          failures++;
          firstFailure ??= { index: cases, input, error };
        }
        onCase();
      }),
      { seed: args.seed, numRuns: args.runs, examples },
    );
  }
  const ms = performance.now() - t0;
  progress(true);
  const row: Row = { name: target.name, cases, failures, ms };
  if (firstFailure) {
    const f = firstFailure;
    row.first = `case #${f.index}\n    input: ${clip(fc.stringify(f.input), 600)}\n    error: ${clip(describeError(f.error), 1200).replace(/\n/g, "\n    ")}`;
    // Same seed, normal mode: stops at the first failure and shrinks it, within a time budget (each shrink step
    // beats the watchdog, so a slow shrink is not taken for a hang).
    relabel(`shrinking ${target.name} (seed ${args.seed})`);
    const beating: FuzzTarget<unknown> = { ...target, check: (input) => {
        Atomics.add(beat, 0, 1);
        return target.check(input);
      },
    };
    const property = fuzzProperty(beating);
    const options = { seed: args.seed, numRuns: args.runs, examples, interruptAfterTimeLimit: SHRINK_BUDGET_MS };
    const details = target.async ? await fc.check(property as fc.IAsyncProperty<[unknown]>, options) : fc.check(property as fc.IProperty<[unknown]>, options);
    if (details.failed && details.counterexample) {
      row.first += `\n  shrunk (${details.numShrinks} steps${details.interrupted ? ", budget ran out" : ""}; replay: --target ${target.name} --seed ${details.seed}, path ${details.counterexamplePath ?? "?"})\n    input: ${clip(fc.stringify(details.counterexample[0]), 600)}\n    error: ${clip(describeError(details.errorInstance), 1200).replace(/\n/g, "\n    ")}`;
    }
  }
  return row;
}

/** Process warnings raised by parsers (the yaml package warns about collection keys), counted, not printed per case. */
const warnings = new Map<string, number>();

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.removeAllListeners("warning");
  process.on("warning", (w) => warnings.set(clip(w.message, 160), (warnings.get(clip(w.message, 160)) ?? 0) + 1));
  const targets = args.targets.length > 0 ? TARGETS.filter((t) => args.targets.includes(t.name)) : TARGETS;
  const watchdogSeconds = Number(process.env.FUZZ_WATCHDOG_S ?? 60);
  process.stdout.write(`fuzz: ${targets.length} target(s), ${args.runs} cases each, seed ${args.seed} (replay: npm run fuzz -- --seed ${args.seed}), hang = one case over ${HANG_MS} ms\n`);
  const beat = new Int32Array(new SharedArrayBuffer(4));
  const watchdog = startWatchdog(beat, watchdogSeconds);
  const rows: Row[] = [];
  for (const target of targets) rows.push(await runTarget(target, args, beat, watchdog.setLabel));
  await watchdog.worker.terminate();

  const header = ["target", "cases", "failures", "time (ms)", "cases/s"];
  const body = rows.map((r) => [r.name, String(r.cases), String(r.failures), r.ms.toFixed(0), ((r.cases / r.ms) * 1000).toFixed(0)]);
  const total = rows.reduce((a, r) => ({ cases: a.cases + r.cases, failures: a.failures + r.failures, ms: a.ms + r.ms }), { cases: 0, failures: 0, ms: 0 });
  body.push(["total", String(total.cases), String(total.failures), total.ms.toFixed(0), ((total.cases / total.ms) * 1000).toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${body.map(line).join("\n")}\n`);
  for (const r of rows) if (r.first) process.stdout.write(`\nFAILED ${r.name}: first counterexample (${r.failures} failing case(s)):\n    ${r.first}\n`);
  if (warnings.size > 0) {
    process.stdout.write(`\nprocess warnings (${[...warnings.values()].reduce((a, b) => a + b, 0)}, ${warnings.size} distinct; first 5):\n`);
    for (const [m, n] of [...warnings].slice(0, 5)) process.stdout.write(`  ${n} × ${m}\n`);
  }
  process.stdout.write(`\nseed ${args.seed}\n`);
  process.exitCode = total.failures > 0 ? 1 : 0;
}

await main();
