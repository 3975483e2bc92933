/**
 * `active-call simulate <playbook> [options]` (config.md §3.2): runs a playbook on a virtual call in this process,
 * with no HTTP server and no PBX. A SerialConversation on a MemoryLeg, driven in 20 ms steps on a ManualClock:
 * at `--speed 0` the clock moves as fast as the work allows (it follows real time only while a provider request
 * is in flight), at `--speed x` each virtual step takes 20/x real ms.
 *
 * Caller input: `--text` turns are injected as final transcripts (VAD and ASR skipped) once the agent is quiet
 * and `--gap-ms` has passed; `--dtmf` keys at an offset or in turn order; `--input` audio streamed from the start
 * through denoise, VAD and ASR. The call ends when the agent hangs up, or when every input is used and the agent
 * has been idle `--idle-ms` (the caller hangs up), or at `--timeout-ms`.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { downmixToMono, readWav, resample, writeWav } from "../../audio/index.js";
import type { Config } from "../../config/schema.js";
import { isAppError } from "../../errors.js";
import { ManualClock } from "../../media/clock.js";
import { MemoryLeg } from "../../media/memory-leg.js";
import { formatDiagnostic, parsePlaybook, type Playbook } from "../../playbook/index.js";
import { resolveAsr, resolveLlm, resolveTts } from "../../providers/registry.js";
import { ScriptedAsr } from "../../providers/scripted.js";
import type { AsrProvider, LlmProvider, TtsProvider } from "../../providers/types.js";
import type { VadEngine, VadStream } from "../../vad/index.js";
import type { ConversationEnd, ConversationEvent } from "../conversation.js";
import { SerialConversation } from "../serial/serial-conversation.js";

export interface SimulateIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Whether stdout is a terminal (progress goes to stderr when it is not). */
  isTty: boolean;
  config: Config;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export const SIMULATE_USAGE =
  "Usage: active-call simulate <playbook.md> [--text <utterance>]... [--input <file.wav>] [--dtmf <digits>[@<ms>]]... [--gap-ms <ms>] [--speed <x>] [--var <name>=<value>]... [--caller <n>] [--callee <n>] [--offline] [--output <file.wav>] [--json] [--timeout-ms <ms>] [--idle-ms <ms>]";

const HELP = `${SIMULATE_USAGE}

Runs a playbook on a virtual call in this process (no HTTP server, no PBX) and prints the transcript.

  --text <utterance>       a caller turn, injected as the final transcript once the agent has finished speaking
                           and --gap-ms has passed (VAD and ASR skipped); repeatable, in order
  --input <file.wav>       caller audio (any rate, mono or stereo) through denoise, VAD and ASR
  --dtmf <digits>[@<ms>]   key presses at <ms> from the start or, without @, after the previous caller turn
  --gap-ms <ms>            caller silence before each --text or --dtmf turn (default 500)
  --speed <x>              0 = as fast as possible on a virtual clock (default), 1 = real time
  --var <name>=<value>     template variable; repeatable
  --caller <n>, --callee <n>   the built-in caller and callee
  --offline                scripted LLM, pocketsphinx ASR, flite/espeak-ng TTS, whatever the playbook says
  --output <file.wav>      write the call as a stereo 16 kHz WAV (caller left, agent right)
  --json                   print the call's events as JSON lines instead of the transcript
  --timeout-ms <ms>        stop after this long (default 120000)
  --idle-ms <ms>           end once every input is used and the agent has been idle this long (default 3000)

Exit codes: 0 = the call ended normally, 1 = invalid playbook, 2 = usage error, 3 = runtime failure.
`;

const STEP_MS = 20;
const RATE = 16000;
const STEP_SAMPLES = (RATE * STEP_MS) / 1000;
const DIGIT_SPACING_MS = 200;
const ASR_GRACE_MS = 5000;

type Turn = { kind: "text"; text: string } | { kind: "dtmf"; digits: string };

interface Options {
  playbook: string;
  turns: Turn[];
  timedDigits: { atMs: number; digit: string }[];
  input: string | undefined;
  gapMs: number;
  speed: number;
  vars: Record<string, string>;
  caller: string | undefined;
  callee: string | undefined;
  offline: boolean;
  output: string | undefined;
  json: boolean;
  timeoutMs: number;
  idleMs: number;
  help: boolean;
}

class UsageError extends Error {}

const FLAGS = {
  text: { type: "string", multiple: true },
  input: { type: "string" },
  dtmf: { type: "string", multiple: true },
  "gap-ms": { type: "string" },
  speed: { type: "string" },
  var: { type: "string", multiple: true },
  caller: { type: "string" },
  callee: { type: "string" },
  offline: { type: "boolean" },
  output: { type: "string" },
  json: { type: "boolean" },
  "timeout-ms": { type: "string" },
  "idle-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `argv` = the arguments after `simulate`. Throws UsageError with a one-line message naming the flag. */
export function parseSimulateArgs(argv: readonly string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const flag = /'(-{1,2}[^' ]+)/.exec(e.message ?? "")?.[1] ?? "a flag";
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new UsageError(`unknown flag ${flag}`);
    if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") throw new UsageError(`${flag} ${/argument missing/.test(e.message ?? "") ? "needs a value" : "takes no value"}`);
    throw new UsageError((e.message ?? String(err)).split("\n")[0] as string);
  }
  const { values, positionals, tokens } = parsed;
  const opts: Options = {
    playbook: "",
    turns: [],
    timedDigits: [],
    input: undefined,
    gapMs: 500,
    speed: 0,
    vars: {},
    caller: undefined,
    callee: undefined,
    offline: values.offline === true,
    output: undefined,
    json: values.json === true,
    timeoutMs: 120_000,
    idleMs: 3000,
    help: values.help === true,
  };
  if (opts.help) return opts;
  if (positionals.length === 0) throw new UsageError("give the playbook file to simulate");
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (one playbook at a time)`);
  opts.playbook = positionals[0] as string;

  const nonEmpty = (name: string, v: string | undefined): string | undefined => {
    if (v === "") throw new UsageError(`--${name} needs a value`);
    return v;
  };
  const int = (name: string, v: string | undefined, min: number, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
    return Number(v);
  };
  opts.gapMs = int("gap-ms", values["gap-ms"], 0, 500);
  opts.timeoutMs = int("timeout-ms", values["timeout-ms"], 1, 120_000);
  opts.idleMs = int("idle-ms", values["idle-ms"], 1, 3000);
  if (values.speed !== undefined) {
    const s = Number(values.speed);
    if (values.speed.trim() === "" || !Number.isFinite(s) || s < 0) throw new UsageError(`--speed must be a number ≥ 0, got "${values.speed}"`);
    opts.speed = s;
  }
  opts.input = nonEmpty("input", values.input);
  opts.output = nonEmpty("output", values.output);
  opts.caller = nonEmpty("caller", values.caller);
  opts.callee = nonEmpty("callee", values.callee);
  for (const v of values.var ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(v);
    if (!m) throw new UsageError(`--var must be <name>=<value> with a name of letters, digits and _, got "${v}"`);
    opts.vars[m[1] as string] = m[2] as string;
  }
  // --text and --dtmf turns keep their command-line order.
  for (const t of tokens) {
    if (t.kind !== "option" || (t.name !== "text" && t.name !== "dtmf")) continue;
    const value = t.value ?? "";
    if (t.name === "text") {
      if (value.trim() === "") throw new UsageError("--text needs a non-empty utterance");
      opts.turns.push({ kind: "text", text: value });
      continue;
    }
    const m = /^([0-9*#A-Da-d]+)(?:@(\d+))?$/.exec(value);
    if (!m) throw new UsageError(`--dtmf must be <digits>[@<ms>] with digits 0-9 * # A-D, got "${value}"`);
    const digits = (m[1] as string).toUpperCase();
    if (m[2] === undefined) opts.turns.push({ kind: "dtmf", digits });
    else [...digits].forEach((digit, i) => opts.timedDigits.push({ atMs: Number(m[2]) + i * DIGIT_SPACING_MS, digit }));
  }
  opts.timedDigits.sort((a, b) => a.atMs - b.atMs);
  return opts;
}

/** Runs the command. Never throws; returns the exit code. */
export async function runSimulateCommand(argv: readonly string[], io: SimulateIo): Promise<number> {
  let opts: Options;
  try {
    opts = parseSimulateArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`active-call simulate: ${err.message} (see --help)\n`);
      return 2;
    }
    throw err;
  }
  if (opts.help) {
    io.stdout.write(HELP);
    return 0;
  }
  try {
    return await simulate(opts, io);
  } catch (err) {
    io.stderr.write(`active-call simulate: ${isAppError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err)}\n`);
    return 3;
  }
}

/** Counts provider requests in flight: an iterator `next()` not yet answered. */
class Busy {
  count = 0;
  private waiters: (() => void)[] = [];

  wrap<T>(iterable: AsyncIterable<T>): AsyncIterable<T> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const busy = this;
    return {
      [Symbol.asyncIterator]() {
        const it = iterable[Symbol.asyncIterator]();
        return {
          async next() {
            busy.count++;
            try {
              return await it.next();
            } finally {
              busy.release();
            }
          },
          async return(value?: unknown) {
            return it.return ? it.return(value) : { done: true, value: undefined as T };
          },
        } as AsyncIterator<T>;
      },
    };
  }

  private release(): void {
    this.count--;
    if (this.count === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when nothing is in flight, or after `ms` real ms. */
  idle(ms: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((res) => {
      const t = setTimeout(res, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        res();
      });
    });
  }
}

function proxied<T extends object>(target: T, method: keyof T & string, busy: Busy): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      if (prop === method) return (...args: unknown[]) => busy.wrap((v as (...a: unknown[]) => AsyncIterable<unknown>).apply(t, args));
      return (v as (...a: unknown[]) => unknown).bind(t);
    },
  });
}

/** With --text only there is no caller audio to detect: a VAD that never hears speech. */
const silentVad: VadEngine = {
  type: "webrtc",
  description: "none (simulate --text)",
  sampleRates: [16000],
  chunkSamples: () => 512,
  createStream(sampleRate): VadStream {
    return { sampleRate, chunkSamples: 512, stateBytes: 0, process: () => 0, reset() {}, close() {} };
  },
};

function offlineConfig(config: Config): Config {
  return {
    ...config,
    providers: {
      ...config.providers,
      openai: { ...config.providers.openai, api_key: "" },
      azure: { ...config.providers.azure, api_key: "" },
    },
  };
}

const flush = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** `[mm:ss.cc]` of a call-relative time. */
export function formatTime(ms: number): string {
  const cs = Math.floor(ms / 10);
  const mm = Math.floor(cs / 6000);
  const ss = Math.floor(cs / 100) % 60;
  return `[${String(mm).padStart(2, "0")}:${String(ss).padStart(2, "0")}.${String(cs % 100).padStart(2, "0")}]`;
}

interface Line {
  t: number;
  seq: number;
  kind: string;
  text: string;
  /** An agent utterance still playing: its text is complete at trackEnd. */
  openPlayId?: string | undefined;
}

/** The readable transcript: lines in time order; an agent line holds back later ones until it has ended. */
class Transcript {
  private readonly pending: Line[] = [];
  private seq = 0;

  constructor(private readonly write: (s: string) => void) {}

  add(t: number, kind: string, text: string, openPlayId?: string): Line {
    const line = { t, seq: this.seq++, kind, text, openPlayId };
    this.pending.push(line);
    this.flush(false);
    return line;
  }

  open(playId: string): Line | undefined {
    return this.pending.find((l) => l.openPlayId === playId);
  }

  flush(all: boolean): void {
    this.pending.sort((a, b) => a.t - b.t || a.seq - b.seq);
    while (this.pending.length > 0) {
      const first = this.pending[0] as Line;
      if (first.openPlayId !== undefined && !all) return;
      this.pending.shift();
      this.write(`${formatTime(first.t)} ${first.kind.padEnd(8)} ${first.text}\n`);
    }
  }
}

async function simulate(opts: Options, io: SimulateIo): Promise<number> {
  const path = resolve(io.cwd, opts.playbook);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    io.stderr.write(`active-call simulate: cannot read ${opts.playbook}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 2;
  }
  let input: Int16Array | undefined;
  if (opts.input !== undefined) {
    try {
      const wav = await readWav(resolve(io.cwd, opts.input));
      const mono = downmixToMono(wav.pcm, wav.channels);
      input = wav.sampleRate === RATE ? mono : resample(mono, wav.sampleRate, RATE);
    } catch (err) {
      io.stderr.write(`active-call simulate: --input ${opts.input}: ${(err as Error).message}\n`);
      return 2;
    }
  }

  const config = opts.offline ? offlineConfig(io.config) : io.config;
  const soundsDir = resolve(io.cwd, config.paths.sounds);
  const result = parsePlaybook(bytes, { file: opts.playbook, env: io.env, soundsDir, config, missingCredentials: opts.offline ? "warning" : "error" });
  const pb: Playbook | undefined = result.playbook;
  if (!pb) {
    for (const d of result.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n`);
    return 1;
  }
  if (pb.pipeline !== "serial") {
    io.stderr.write(`active-call simulate: ${opts.playbook} uses the realtime pipeline, which simulate does not run yet\n`);
    return 3;
  }

  const s = pb.settings;
  const busy = new Busy();
  const llmSection = opts.offline ? { ...s.llm, provider: "scripted" as const } : s.llm;
  const ttsSection = opts.offline ? { ...s.tts, provider: "auto" as const, apiKey: "", baseUrl: "" } : s.tts;
  const llm = proxied(await resolveLlm(llmSection, config), "chat", busy) as LlmProvider;
  const tts = proxied(await resolveTts(ttsSection, config, { sampleRate: RATE }), "synthesize", busy) as TtsProvider;
  let asr: AsrProvider;
  if (input) asr = await resolveAsr(opts.offline ? { ...s.asr, provider: "pocketsphinx" as const } : s.asr, config);
  else asr = new ScriptedAsr({ script: [] });
  const progress = (msg: string): void => {
    if (!io.isTty) io.stderr.write(`active-call simulate: ${msg}\n`);
  };
  progress(`${opts.playbook}: llm ${llm.name ?? "?"}, tts ${tts.name ?? "?"}${input ? `, asr ${asr.name ?? "?"}` : ""}`);

  const clock = new ManualClock();
  const leg = new MemoryLeg({ id: "simulate", clock, leadMs: STEP_MS, callerRate: RATE, agentRate: RATE });
  const startEpoch = Date.now();
  const callId = `simulate-${startEpoch.toString(36)}`;
  const vadType = s.vad?.type ?? config.defaults.vad.type;
  const conv = new SerialConversation({
    leg,
    callId,
    clock,
    wallClock: () => startEpoch + clock.now(),
    asr,
    tts,
    llm,
    vad: input && vadType !== "none" ? { type: vadType } : { engine: silentVad },
    runner: {
      playbook: pb,
      call: {
        callId,
        callType: "websocket",
        direction: "inbound",
        startTime: new Date(startEpoch),
        playbook: pb.name,
        ...(opts.caller !== undefined ? { caller: opts.caller } : {}),
        ...(opts.callee !== undefined ? { callee: opts.callee } : {}),
      },
      variables: [opts.vars],
      ...(config.log.timezone !== "" ? { timeZone: config.log.timezone } : {}),
    },
    soundsDir,
    cacheDir: resolve(io.cwd, config.paths.cache),
    onProviderError: config.calls.on_provider_error,
  });

  // ------------------------------------------------------------------------------------------ output
  const transcript = new Transcript((line) => io.stdout.write(line));
  const calls = new Map<string, { name: string; args: string }>();
  const playing = new Set<string>();
  let lastActivity = 0;
  let transferred = false;
  /** Caller speech heard by the VAD whose final transcript has not come yet (ASR work not seen by Busy). */
  let asrPending = false;
  /** When the caller's last speech ended: an ASR that gives no final within ASR_GRACE_MS is not waited for. */
  let speechEndedAt: number | undefined;
  let end: ConversationEnd | undefined;
  void conv.closed.then((e) => (end = e));

  const agentText = (playId: string): string | undefined => {
    const u = conv.utterance(playId);
    if (!u) return undefined;
    return u.kind === "play" ? `♪ ${u.url ?? playId}` : u.text;
  };
  conv.events.on("event", (e: ConversationEvent) => {
    const now = clock.now();
    if (e.event !== "metrics") lastActivity = now;
    if (e.event === "trackStart") playing.add(e.playId);
    if (e.event === "trackEnd") playing.delete(e.playId);
    if (e.event === "speaking") {
      asrPending = true;
      speechEndedAt = undefined;
    }
    if (e.event === "silence" && e.reason === "vad") speechEndedAt = now;
    if (e.event === "asrFinal" || (e.event === "error" && e.sender === "asr")) asrPending = false;
    if (opts.json) {
      io.stdout.write(`${JSON.stringify(e)}\n`);
      return;
    }
    switch (e.event) {
      case "trackStart":
        if (!transcript.open(e.playId)) transcript.add(now, "agent", agentText(e.playId) ?? "", e.playId);
        return;
      case "trackEnd": {
        const line = transcript.open(e.playId);
        if (line) {
          line.text = agentText(e.playId) || line.text;
          if (e.reason !== "finished") line.text += ` [${e.reason}]`;
          line.openPlayId = undefined;
          transcript.flush(false);
        }
        return;
      }
      case "asrFinal":
        transcript.add(now, "caller", e.text);
        return;
      case "dtmf":
        transcript.add(now, "dtmf", e.digit);
        return;
      case "sceneChange":
        transcript.add(now, "scene", `${e.from} → ${e.to} (${e.trigger})`);
        return;
      case "functionCall":
        calls.set(e.callId, { name: e.name, args: e.arguments });
        return;
      case "functionResult": {
        const c = calls.get(e.callId);
        transcript.add(now, "tool", `${e.name} ${c?.args ?? ""} → ${e.ok ? "ok" : "failed"}${!e.ok && e.result ? `: ${e.result}` : ""}`.replace("  ", " "));
        return;
      }
      case "collected":
        transcript.add(now, "collect", `${e.collector} → ${e.var} = ${e.digits} (${e.valid ? "valid" : "invalid"}, attempt ${e.attempt})`);
        return;
      case "transfer":
        transcript.add(now, "transfer", `${e.mode} ${e.target}${e.context ? ` (context ${e.context})` : ""}`);
        return;
      case "interruption":
        transcript.add(now, "barge-in", `${e.playId} (${e.reason})`);
        return;
      case "error":
        transcript.add(now, "error", `${e.sender} ${e.code}: ${e.error}`);
        return;
      case "hangup":
        transcript.add(now, "hangup", `${e.reason} (${e.initiator})${e.detail ? `: ${e.detail}` : ""}`);
        return;
      default:
        return;
    }
  });
  conv.events.on("control", (c) => {
    if (c.command === "refer" || c.command === "transfer") transferred = true;
  });

  // ------------------------------------------------------------------------------------------ driver
  const callerPcm: Int16Array[] = [];
  const digits = [...opts.timedDigits];
  let nextTurn = 0;
  let inputPos = 0;
  let timedOut = false;
  await conv.start();
  if (!opts.json && pb.initialScene !== "" && !(pb.scenes.size === 1 && pb.initialScene === "default")) transcript.add(0, "scene", pb.initialScene);
  await flush(8);
  const realStart = performance.now();
  while (end === undefined) {
    const now = clock.now();
    if (now >= opts.timeoutMs) {
      timedOut = true;
      await conv.stop({ reason: "shutdown", initiator: "system", detail: `timeout after ${opts.timeoutMs} ms` });
      break;
    }
    const frame = new Int16Array(STEP_SAMPLES);
    if (input && inputPos < input.length) {
      frame.set(input.subarray(inputPos, Math.min(input.length, inputPos + STEP_SAMPLES)));
      inputPos += STEP_SAMPLES;
    }
    callerPcm.push(frame);
    leg.pushCaller(frame);
    while (digits.length > 0 && (digits[0] as { atMs: number }).atMs <= now) {
      leg.pushDtmf((digits.shift() as { digit: string }).digit);
      lastActivity = now;
    }
    if (asrPending && speechEndedAt !== undefined && now - speechEndedAt > ASR_GRACE_MS) asrPending = false;
    const inputDone = !input || inputPos >= input.length;
    const quiet = playing.size === 0 && busy.count === 0 && !asrPending;
    const turn = opts.turns[nextTurn];
    if (turn && quiet && inputDone && digits.length === 0 && now - lastActivity >= opts.gapMs) {
      nextTurn++;
      progress(`caller turn ${nextTurn}/${opts.turns.length} at ${formatTime(now)}`);
      if (turn.kind === "text") conv.injectCallerText(turn.text);
      else [...turn.digits].forEach((digit, i) => digits.push({ atMs: now + i * DIGIT_SPACING_MS, digit }));
      lastActivity = now;
    } else if (!turn && inputDone && digits.length === 0 && quiet && (transferred || now - lastActivity >= opts.idleMs)) {
      await conv.stop(transferred ? { reason: "agent", initiator: "agent", detail: "transferred" } : { reason: "caller", initiator: "caller", detail: "simulation input used up" });
      break;
    }
    await flush(3);
    if (opts.speed > 0) await sleep(realStart + (now + STEP_MS) / opts.speed - performance.now());
    else if (asrPending) await sleep(STEP_MS);
    else if (busy.count > 0) await busy.idle(STEP_MS);
    clock.advance(STEP_MS);
    await flush(3);
  }
  const finalEnd = end ?? (await conv.closed);
  await flush(4);
  transcript.flush(true);

  if (opts.output !== undefined) {
    const callerLen = callerPcm.length * STEP_SAMPLES;
    let agentLen = 0;
    for (const f of leg.captured) agentLen = Math.max(agentLen, Math.round((f.timestampMs * RATE) / 1000) + f.pcm.length);
    const frames = Math.max(callerLen, agentLen);
    const stereo = new Int16Array(frames * 2);
    callerPcm.forEach((chunk, i) => chunk.forEach((v, j) => (stereo[(i * STEP_SAMPLES + j) * 2] = v)));
    for (const f of leg.captured) {
      const pcm = f.sampleRate === RATE ? f.pcm : resample(f.pcm, f.sampleRate, RATE);
      const at = Math.round((f.timestampMs * RATE) / 1000);
      for (let j = 0; j < pcm.length && at + j < frames; j++) stereo[(at + j) * 2 + 1] = pcm[j] as number;
    }
    try {
      await writeWav(resolve(io.cwd, opts.output), stereo, RATE, 2);
    } catch (err) {
      io.stderr.write(`active-call simulate: cannot write ${opts.output}: ${(err as Error).message}\n`);
      return 3;
    }
    progress(`wrote ${opts.output}`);
  }
  progress(`call ended at ${formatTime(clock.now())}: ${finalEnd.reason} (${finalEnd.initiator})`);
  if (timedOut) {
    io.stderr.write(`active-call simulate: stopped by --timeout-ms after ${opts.timeoutMs} ms\n`);
    return 3;
  }
  return finalEnd.reason === "error" ? 3 : 0;
}
