/**
 * Text helpers for TTS: cutting a stream of LLM deltas into sentences (one synthesis request per sentence), and
 * running a per-sentence synthesiser over either a whole string or such a stream with one clock per call.
 */
import type { AudioFrame } from "../audio/index.js";
import { FrameOutput } from "./pcm.js";

/** Sentence ends: `.!?;:` (and the CJK full-width forms) followed by white space, or a newline. */
const BOUNDARY = /[.!?;:…]+["')\]]*\s+|[。！？；]+|\n+/g;

export class SentenceSplitter {
  private buffer = "";

  /** Adds a delta; returns the sentences it completed (trimmed, non-empty). */
  push(delta: string): string[] {
    this.buffer += delta;
    const out: string[] = [];
    let last = 0;
    BOUNDARY.lastIndex = 0;
    for (let m = BOUNDARY.exec(this.buffer); m !== null; m = BOUNDARY.exec(this.buffer)) {
      const end = m.index + m[0].length;
      const sentence = this.buffer.slice(last, end).trim();
      if (sentence !== "") out.push(sentence);
      last = end;
    }
    this.buffer = this.buffer.slice(last);
    return out;
  }

  /** The text after the last boundary, if any. */
  end(): string | undefined {
    const rest = this.buffer.trim();
    this.buffer = "";
    return rest === "" ? undefined : rest;
  }
}

/** Every sentence of `text`, whether it is a string or a stream of deltas, as soon as it is complete. */
export async function* sentences(text: string | AsyncIterable<string>, signal?: AbortSignal): AsyncGenerator<string> {
  const splitter = new SentenceSplitter();
  if (typeof text === "string") {
    yield* splitter.push(text);
  } else {
    for await (const delta of text) {
      signal?.throwIfAborted();
      yield* splitter.push(delta);
    }
  }
  const rest = splitter.end();
  if (rest !== undefined) yield rest;
}

/** One chunk of engine output: samples at the engine's rate. */
export interface EngineChunk {
  pcm: Int16Array;
  sampleRate: number;
}

/**
 * Synthesises sentence by sentence with `speak` and yields 20 ms frames at `sampleRate`, timestamps counting from
 * 0 for the whole call.
 */
export async function* synthesizeBySentence(
  text: string | AsyncIterable<string>,
  sampleRate: number,
  signal: AbortSignal | undefined,
  speak: (sentence: string, signal: AbortSignal | undefined) => AsyncIterable<EngineChunk>,
): AsyncGenerator<AudioFrame> {
  const output = new FrameOutput(sampleRate);
  for await (const sentence of sentences(text, signal)) {
    signal?.throwIfAborted();
    for await (const chunk of speak(sentence, signal)) {
      signal?.throwIfAborted();
      yield* output.push(chunk.pcm, chunk.sampleRate);
    }
    signal?.throwIfAborted();
    yield* output.end();
  }
}

/** `{{ text }}` (any spacing) replaced by `value`; the playbook's full templating lives in src/playbook. */
export function fillText(template: string, value: string): string {
  return template.replace(/\{\{\s*text\s*\}\}/g, () => value);
}

/** A JSON object, or undefined when the text is not one. */
export function parseArguments(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text === "" ? "{}" : text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
