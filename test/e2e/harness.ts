/**
 * End-to-end harness: the real controller (buildServer, the same composition main.ts listens on) on a free
 * loopback port, with its data folders in a temp dir and the repository's playbooks copied there. Local engines
 * only (flite/espeak-ng, pocketsphinx, scripted LLM): no key, no network.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema, type Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { buildServer, type Server, type ServerOptions } from "../../src/http/server.js";
import type { WireEvent } from "../../src/call/session.js";
import { decodeWav, downmixToMono, resample } from "../../src/audio/index.js";

export interface TestServer extends Server {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>` */
  wsUrl: string;
  dir: string;
  config: Config;
  /** Every log line of the controller at warn or above, parsed (a normal call must leave none). */
  problems: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Starts a controller; `overrides` are TOML-shaped (e.g. `{ http: { token: "t" } }`). */
export async function startServer(overrides: DeepPartial<Record<string, unknown>> = {}, ws?: ServerOptions["ws"]): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "active-call-e2e-"));
  // The port is chosen first, so that URLs the PBX is given (the audio fork's) can name it.
  const port = await freePort();
  const fs = overrides.freeswitch as Record<string, unknown> | undefined;
  const ast = overrides.asterisk as Record<string, unknown> | undefined;
  // AudioSocket: Asterisk is told the listener's address, so it is chosen here too.
  const audioSocketAddr = ast && ast.audiosocket_listen === undefined ? `127.0.0.1:${await freePort()}` : undefined;
  await cp(new URL("../../playbooks", import.meta.url), join(dir, "playbooks"), { recursive: true });
  const raw = {
    ...overrides,
    http: { addr: `127.0.0.1:${port}`, ...(overrides.http as object) },
    ...(fs ? { freeswitch: { audio_fork_url: `ws://127.0.0.1:${port}/media/fork`, ...fs } } : {}),
    ...(ast ? { asterisk: { ...(audioSocketAddr ? { audiosocket_listen: audioSocketAddr, audiosocket_advertise: audioSocketAddr } : {}), ...ast } } : {}),
    paths: {
      playbooks: join(dir, "playbooks"),
      sounds: join(dir, "sounds"),
      recordings: join(dir, "recordings"),
      dumps: join(dir, "dumps"),
      spool: join(dir, "spool"),
      cache: join(dir, "cache"),
      ...(overrides.paths as object),
    },
  };
  const config = configSchema.parse(raw);
  const { mkdir } = await import("node:fs/promises");
  for (const d of Object.values(config.paths)) await mkdir(d, { recursive: true });
  // Lines at warn and above are kept for the test (and still printed when E2E_LOG asks for them).
  const problems: Array<Record<string, unknown>> = [];
  const shown = process.env.E2E_LOG;
  const destination = {
    write(line: string): void {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.level === "warn" || entry.level === "error" || entry.level === "fatal") problems.push(entry);
      if (shown !== undefined && shown !== "silent") process.stdout.write(line);
    },
  };
  const level = shown !== undefined && shown !== "silent" ? shown : "warn";
  const log = createLogger({ level: level as "info", format: "json", redactPersonal: true, secrets: [], tty: false, noColor: true, destination });
  const server = await buildServer({ config, env: {}, log, version: "test", ...(ws ? { ws } : {}) });
  await server.app.listen({ host: "127.0.0.1", port });
  await server.start();
  return {
    ...server,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    dir,
    config,
    problems,
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every event of call `id` from now on, in order (the array fills as the call goes). */
export function record(server: TestServer, id: string): WireEvent[] {
  const events: WireEvent[] = [];
  const call = server.calls.get(id);
  if (!call) throw new Error(`no call ${id}`);
  call.subscribe((e) => events.push(e));
  return events;
}

export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

/** Speech from flite (pocketsphinx understands its voices) as mono PCM16 at `rate`. */
export function fliteSpeech(text: string, rate = 16000, voice = "slt"): Int16Array {
  const file = join(tmpdir(), `flite-${process.pid}-${Math.random().toString(36).slice(2)}.wav`);
  const r = spawnSync("flite", ["-voice", voice, "-t", text, "-o", file]);
  if (r.error || r.status !== 0) throw new Error(`flite failed: ${r.error?.message ?? r.stderr.toString()}`);
  const wav = decodeWav(readFileSync(file));
  rmSync(file, { force: true });
  const mono = downmixToMono(wav.pcm, wav.channels);
  return wav.sampleRate === rate ? mono : resample(mono, wav.sampleRate, rate);
}

/** `ms` of silence at `rate`. */
export function silence(ms: number, rate = 16000): Int16Array {
  return new Int16Array(Math.round((ms * rate) / 1000));
}

/** Peak absolute sample of little-endian PCM16 bytes. */
export function peakOfPcmBytes(buf: Buffer): number {
  let peak = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) peak = Math.max(peak, Math.abs(buf.readInt16LE(i)));
  return peak;
}
