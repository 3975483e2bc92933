/**
 * Offline ASR with CMU pocketsphinx (Debian `pocketsphinx` + `pocketsphinx-en-us`) on endpointed utterances:
 * the utterance is written as a 16 kHz mono WAV to a private temp directory, the CLI decodes it, and the
 * hypothesis lines are joined. The temp files are removed afterwards; the process is killed on abort.
 *
 * CLIs: `pocketsphinx_continuous -infile x.wav` (0.8 / 5prealpha, Debian 12) prints one hypothesis per line;
 * `pocketsphinx ... single x.wav` (5.x) prints one JSON object per line with the text in `t`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { encodeWav, resample } from "../../audio/index.js";
import { EndpointedAsrSession } from "../asr-session.js";
import { providerError } from "../retry.js";
import type { AsrCapabilities, AsrProvider, AsrResult, AsrSession, AsrUtterance, CallOptions } from "../types.js";
import { pathExists, runCollect } from "./process.js";

export interface PocketsphinxOptions {
  /** `pocketsphinx_continuous` (default) or the 5.x `pocketsphinx`. */
  binary?: string | undefined;
  hmm: string;
  lm: string;
  dict: string;
}

export const POCKETSPHINX_BINARY = "pocketsphinx_continuous";
const RATE = 16000;

export class PocketsphinxAsr implements AsrProvider {
  readonly name = "pocketsphinx";
  readonly capabilities: AsrCapabilities = { streaming: false, endpointed: true, sampleRates: [RATE], languages: ["en"] };
  private readonly binary: string;

  constructor(private readonly options: PocketsphinxOptions) {
    this.binary = options.binary ?? POCKETSPHINX_BINARY;
  }

  session(options: CallOptions = {}): AsrSession {
    return new EndpointedAsrSession(this, options);
  }

  async *transcribe(utterance: AsrUtterance, options: CallOptions = {}): AsyncGenerator<AsrResult> {
    const signal = options.signal;
    signal?.throwIfAborted();
    for (const key of ["hmm", "lm", "dict"] as const) {
      const path = this.options[key];
      if (!(await pathExists(path))) {
        throw providerError(this.name, `pocketsphinx ${key} not found: ${path} (install pocketsphinx-en-us, or set [providers.pocketsphinx] ${key})`, {
          retryable: false,
          details: { path },
        });
      }
    }
    // Under 0.1 s there is nothing to recognise, and the decoder complains.
    if (utterance.pcm.length < utterance.sampleRate / 10) {
      yield { type: "final", utterance: 0, text: "" };
      return;
    }
    const pcm = utterance.sampleRate === RATE ? utterance.pcm : resample(utterance.pcm, utterance.sampleRate, RATE);
    const dir = await mkdtemp(join(tmpdir(), "ac-sphinx-"));
    try {
      const file = join(dir, "turn.wav");
      await writeFile(file, encodeWav(pcm, RATE), { signal });
      const model = ["-hmm", this.options.hmm, "-lm", this.options.lm, "-dict", this.options.dict];
      const v5 = basename(this.binary) === "pocketsphinx";
      // 5.x logs to stderr (captured for error messages); 0.8 needs -logfn to keep its log off stdout.
      const args = v5 ? [...model, "single", file] : [...model, "-logfn", "/dev/null", "-infile", file];
      const out = await runCollect(this.binary, args, { provider: this.name, signal });
      yield { type: "final", utterance: 0, text: v5 ? parseJsonLines(out) : parseLines(out) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function parseLines(out: string): string {
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !/^(INFO|ERROR|WARN|FATAL)/.test(l))
    .join(" ")
    .replace(/\s+/g, " ");
}

function parseJsonLines(out: string): string {
  const texts: string[] = [];
  for (const line of out.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    try {
      const t = (JSON.parse(line) as { t?: unknown }).t;
      if (typeof t === "string" && t.trim() !== "") texts.push(t.trim());
    } catch {
      // not a result line
    }
  }
  return texts.join(" ");
}
