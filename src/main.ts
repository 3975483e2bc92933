/**
 * Composition root: command line -> config -> logger -> (providers, PBX adapters as they arrive) -> HTTP server.
 * The only module that wires concrete implementations together; nothing imports it.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseCli, USAGE } from "./cli.js";
import { ConfigError, configToToml, loadProcessConfig, noColor, parseHostPort, stdoutIsTty, type LoadedConfig } from "./config.js";
import { AppError } from "./errors.js";
import { buildServer, type Server } from "./http/server.js";
import { createLogger, type Logger } from "./log.js";
import { checkProviders } from "./providers/registry.js";
import { createVadEngine } from "./vad/index.js";

async function readVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function fail(message: string, code: number): never {
  process.stderr.write(`active-call: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let command;
  try {
    command = parseCli(argv);
  } catch (err) {
    if (err instanceof AppError) fail(err.message, 2);
    throw err;
  }
  if (command.kind === "help") {
    process.stdout.write(USAGE);
    return;
  }
  const version = await readVersion();
  if (command.kind === "version") {
    process.stdout.write(`active-call ${version}\n`);
    return;
  }

  let loaded: LoadedConfig;
  try {
    loaded = await loadProcessConfig(command.confPath, command.kind === "run" ? command.overrides : []);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.problems.map((p) => `active-call: ${p}\n`).join(""));
      process.exit(err.exitCode);
    }
    throw err;
  }
  if (command.kind === "subcommand") {
    // Loaded on demand: a subcommand's modules are not needed to start the server.
    if (command.name === "lint") {
      const { runLintCommand } = await import("./playbook/lint.js");
      const io = { stdout: process.stdout, stderr: process.stderr, env: loaded.env, cwd: process.cwd(), config: loaded.config };
      process.exitCode = await runLintCommand(command.argv, io);
    } else if (command.name === "simulate") {
      const { runSimulateCommand } = await import("./pipeline/simulate/cli.js");
      const io = { stdout: process.stdout, stderr: process.stderr, isTty: stdoutIsTty(), env: loaded.env, cwd: process.cwd(), config: loaded.config };
      process.exitCode = await runSimulateCommand(command.argv, io);
    } else {
      const { runVadCommand } = await import("./vad/cli.js");
      const io = { stdout: (s: string) => process.stdout.write(s), stderr: (s: string) => process.stderr.write(s) };
      process.exitCode = await runVadCommand(command.argv, { ...io, defaults: loaded.config.defaults.vad });
    }
    return;
  }
  if (command.printConfig) {
    process.stdout.write(configToToml(loaded));
    return;
  }
  await run(loaded, version);
}

async function run(loaded: LoadedConfig, version: string): Promise<void> {
  const { config } = loaded;
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    file: config.log.file,
    redactPersonal: config.log.redact_personal,
    secrets: loaded.secrets,
    tty: stdoutIsTty(),
    noColor: noColor(),
  });
  log.info({ version, config: loaded.file ?? "built-in defaults" }, "starting");

  for (const dir of Object.values(config.paths)) await mkdir(resolve(dir), { recursive: true });

  // Signals are handled from the start: a SIGTERM while starting up still stops cleanly (exit 0).
  const running: { server?: Server } = {};
  // npm (`npm start`, `npx`) marks the processes it runs with npm_lifecycle_event.
  installShutdown(log, loaded.env.npm_lifecycle_event !== undefined, async () => {
    const server = running.server;
    if (!server) return;
    // Drain: no new call is taken; live calls may run up to `[calls] shutdown_grace_ms` and end by themselves.
    if (server.calls.liveCount > 0) log.info({ live: server.calls.liveCount, graceMs: config.calls.shutdown_grace_ms }, "draining live calls");
    await server.calls.drain(config.calls.shutdown_grace_ms);
    // Then the rest end with reason `shutdown` (each hook is spooled before its call is reported ended), and the
    // server closes. Hooks not yet delivered stay in the spool for the next start.
    await server.close();
  });
  const server = await buildServer({ config, env: loaded.env, log, version });
  running.server = server;
  const { app } = server;
  for (const warning of await checkProviders(config)) log.warn({ problem: warning }, "provider unusable; calls that need it will fail");
  for (const warning of await server.router.startupWarnings()) log.warn({ problem: warning }, "handler playbook unusable; calls that need it will be rejected");

  // The default VAD's weights are loaded once now and shared by every call; a failure is not fatal here (calls
  // that need the engine will report it) but is said at once.
  if (config.defaults.vad.type !== "none") {
    await createVadEngine(config.defaults.vad.type, { logger: log, webrtcMode: config.defaults.vad.webrtcMode }).then(
      (engine) => log.info({ engine: engine.description }, "vad ready"),
      (err: unknown) => log.error({ err }, "default vad engine cannot load"),
    );
  }

  const addr = parseHostPort(config.http.addr);
  if (!addr) throw new Error(`unreachable: http.addr was validated: ${config.http.addr}`);
  if (config.http.token === "" && !isLoopback(addr.host)) {
    log.warn({ addr: config.http.addr }, "no API token set and listening beyond loopback: anyone who reaches this port controls calls (set ACTIVE_CALL_TOKEN)");
  }

  try {
    await app.listen({ host: addr.host, port: addr.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    log.fatal({ addr: config.http.addr, code }, "cannot listen");
    await flushAndExit(log, 1);
  }
  await server.start();
  const bound = app.server.address();
  log.info({ addr: typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : config.http.addr }, "http listening");
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

function flushAndExit(log: Logger, code: number): Promise<never> {
  return new Promise(() => {
    log.flush(() => process.exit(code));
    // flush() may never call back if the destination is broken; do not hang on it.
    setTimeout(() => process.exit(code), 500).unref();
  });
}

/**
 * First SIGINT/SIGTERM: stop gracefully and exit 0. A second one: exit at once. Run by npm (`npm start`, `npx`),
 * the parent going away counts as the first signal: a shell between npm and us that does not pass npm's
 * signal on dies of it, and we must not stay behind as an orphan.
 */
function installShutdown(log: Logger, runByNpm: boolean, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals | "parent exited") => {
    if (stopping) {
      if (signal === "parent exited") return;
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    stop().then(
      () => flushAndExit(log, 0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        return flushAndExit(log, 1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (runByNpm) watchParent(() => onSignal("parent exited"));
  process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled rejection"));
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    void flushAndExit(log, 1);
  });
}

/**
 * Calls `onGone` once when the process that started us has exited (we were re-parented). `process.ppid` is
 * fixed at start in Node 20, so Linux reads it from /proc; elsewhere the original parent is probed with signal 0.
 */
function watchParent(onGone: () => void, everyMs = 250): void {
  const original = process.ppid;
  if (original <= 1) return;
  const currentParent = (): number | undefined => {
    try {
      const stat = readFileSync("/proc/self/stat", "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      return undefined;
    }
  };
  const alive = (): boolean => {
    const now = currentParent();
    if (now !== undefined) return now === original;
    try {
      process.kill(original, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  };
  const timer = setInterval(() => {
    if (alive()) return;
    clearInterval(timer);
    onGone();
  }, everyMs);
  timer.unref();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`active-call: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
