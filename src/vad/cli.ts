/**
 * `active-call vad <file.wav> [--engine tinysilero|onnx|webrtc] [--json]` (config.md §3.2): per-chunk speech
 * probabilities and the detected speech segments of a recording, with the `[defaults.vad]` detector settings.
 * Any rate and channel count: stereo is mixed down; rates other than 8 and 16 kHz are resampled to 16 kHz.
 * Exit codes: 0 ok, 1 the engine failed to load, 2 usage error or unreadable file.
 */
import { parseArgs } from "node:util";
import { downmixToMono, readWav, resample } from "../audio/index.js";
import { isAppError } from "../errors.js";
import { SpeechDetector, segmentsOf, type DetectorOptions, type VadEvent } from "./detector.js";
import { createVadEngine, isVadEngineType } from "./index.js";
import { VAD_ENGINE_TYPES } from "./types.js";

/** The `[defaults.vad]` settings the command uses (a subset of the config's defaults.vad). */
export interface VadDefaults {
  type: string;
  threshold: number;
  negThreshold?: number | undefined;
  minSpeechMs: number;
  minSilenceMs: number;
  speechPadMs: number;
  webrtcMode?: number | undefined;
}

export interface VadCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  defaults: VadDefaults;
}

export const VAD_USAGE = "usage: active-call vad <file.wav> [--engine tinysilero|onnx|webrtc] [--json]";

function usageError(io: VadCommandIo, message: string): number {
  io.stderr(`active-call vad: ${message}\n${VAD_USAGE}\n`);
  return 2;
}

const fmtS = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

/** Runs the command. `argv` = the arguments after `vad`. Never throws; returns the exit code. */
export async function runVadCommand(argv: string[], io: VadCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        engine: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    // node:util messages name the flag, e.g. "Unknown option '--foo'" or "Option '--engine <value>' argument missing".
    return usageError(io, (err as Error).message.split("\n")[0] ?? "bad arguments");
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${VAD_USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) return usageError(io, "missing <file.wav>");
  if (positionals.length > 1) return usageError(io, `expected one <file.wav>, got ${positionals.length} arguments`);
  const file = positionals[0] as string;
  const defaultType = io.defaults.type === "none" ? "tinysilero" : io.defaults.type;
  const engineType = values.engine ?? defaultType;
  if (!isVadEngineType(engineType)) {
    return usageError(io, `--engine must be one of ${VAD_ENGINE_TYPES.join(", ")}, not "${engineType}"`);
  }

  let pcm: Int16Array;
  let sourceRate: number;
  try {
    const wav = await readWav(file);
    pcm = downmixToMono(wav.pcm, wav.channels);
    sourceRate = wav.sampleRate;
  } catch (err) {
    return usageError(io, (err as Error).message);
  }
  const sampleRate = sourceRate === 8000 || sourceRate === 16000 ? sourceRate : 16000;
  if (sampleRate !== sourceRate) pcm = resample(pcm, sourceRate, sampleRate);

  let engine;
  try {
    engine = await createVadEngine(engineType, { webrtcMode: io.defaults.webrtcMode ?? 3 });
  } catch (err) {
    io.stderr(`active-call vad: ${isAppError(err) ? `${err.code}: ` : ""}${(err as Error).message}\n`);
    return 1;
  }
  const stream = engine.createStream(sampleRate);
  const rules: Partial<DetectorOptions> = {
    threshold: io.defaults.threshold,
    negThreshold: io.defaults.negThreshold,
    minSpeechMs: io.defaults.minSpeechMs,
    minSilenceMs: io.defaults.minSilenceMs,
    speechPadMs: io.defaults.speechPadMs,
  };
  const probabilities: number[] = [];
  const detector = new SpeechDetector(stream, { ...rules, onProbability: (p) => probabilities.push(p) });
  const events: VadEvent[] = [...detector.push(pcm), ...detector.end()];
  stream.close();
  const segments = segmentsOf(events);
  const chunkMs = (stream.chunkSamples * 1000) / sampleRate;
  const durationMs = (pcm.length * 1000) / sampleRate;
  const negThreshold = rules.negThreshold ?? Math.max((rules.threshold ?? 0.5) - 0.15, 0.01);

  if (values.json) {
    const out = {
      file,
      sampleRate,
      sourceSampleRate: sourceRate,
      durationMs,
      engine: engine.type,
      engineDescription: engine.description,
      chunkSamples: stream.chunkSamples,
      chunkMs,
      detector: { ...rules, negThreshold },
      probabilities,
      segments,
    };
    io.stdout(`${JSON.stringify(out)}\n`);
    return 0;
  }
  const lines: string[] = [];
  const resampled = sampleRate !== sourceRate ? ` (resampled from ${sourceRate} Hz)` : "";
  lines.push(`${file}: ${fmtS(durationMs)}, ${sampleRate} Hz${resampled}; engine ${engine.description}; chunk ${stream.chunkSamples} samples (${chunkMs} ms)`);
  probabilities.forEach((p, i) => lines.push(`t=${((i * chunkMs) / 1000).toFixed(3)}s p=${p.toFixed(4)}`));
  lines.push(
    `segments (threshold ${rules.threshold}, negThreshold ${+negThreshold.toFixed(4)}, minSpeechMs ${rules.minSpeechMs}, minSilenceMs ${rules.minSilenceMs}, speechPadMs ${rules.speechPadMs}):`,
  );
  let speechMs = 0;
  segments.forEach((s, i) => {
    speechMs += s.durationMs;
    lines.push(`${String(i + 1).padStart(4)}  ${fmtS(s.startMs)} - ${fmtS(s.endMs)}  (${fmtS(s.durationMs)})`);
  });
  lines.push(`${segments.length} segments, ${fmtS(speechMs)} of speech in ${fmtS(durationMs)}`);
  io.stdout(`${lines.join("\n")}\n`);
  return 0;
}
