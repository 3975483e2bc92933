/**
 * Transcription of endpointed caller turns (media-protocols.md §5.2): one multipart `POST /audio/transcriptions`
 * per turn with a 16 kHz mono WAV. Models that stream (gpt-4o*-transcribe) answer with SSE deltas; whisper-1
 * ignores `stream`, so it is not sent. The body is read raw, so a compatible server that answers JSON to a
 * streamed request is understood too.
 */
import { toFile } from "openai";
import { encodeWav, resample } from "../../audio/index.js";
import { EndpointedAsrSession } from "../asr-session.js";
import { withRetries } from "../retry.js";
import type { AsrCapabilities, AsrProvider, AsrResult, AsrSession, AsrUtterance, CallOptions } from "../types.js";
import { classifyOpenAiError, type OpenAiProviderOptions } from "./client.js";
import { SseDecoder } from "./sse.js";

export interface OpenAiAsrOptions extends OpenAiProviderOptions {
  model: string;
  language?: string | undefined;
  prompt?: string | undefined;
  /** Default: true for gpt-4o*-transcribe models. */
  streaming?: boolean | undefined;
}

const RATE = 16000;

/** Whether a transcription model streams deltas (whisper-1 and unknown models do not, by default). */
export function modelStreams(model: string): boolean {
  return /^gpt-4o.*transcribe/.test(model);
}

type Piece = { kind: "delta"; text: string } | { kind: "done"; text: string };

export class OpenAiAsr implements AsrProvider {
  readonly name: string;
  readonly capabilities: AsrCapabilities;
  private readonly streaming: boolean;

  constructor(private readonly options: OpenAiAsrOptions) {
    this.name = options.provider;
    this.streaming = options.model !== "whisper-1" && (options.streaming ?? modelStreams(options.model));
    this.capabilities = { streaming: this.streaming, endpointed: true, sampleRates: [RATE], languages: "any" };
  }

  session(options: CallOptions = {}): AsrSession {
    return new EndpointedAsrSession(this, options);
  }

  async *transcribe(utterance: AsrUtterance, options: CallOptions = {}): AsyncGenerator<AsrResult> {
    options.signal?.throwIfAborted();
    // The API rejects segments under 0.1 s (media-protocols.md §5.2).
    if (utterance.pcm.length < utterance.sampleRate / 10) {
      yield { type: "final", utterance: 0, text: "" };
      return;
    }
    const o = this.options;
    const pcm = utterance.sampleRate === RATE ? utterance.pcm : resample(utterance.pcm, utterance.sampleRate, RATE);
    const wav = encodeWav(pcm, RATE);
    const stream = this.streaming;
    const pieces = withRetries<Piece>(
      this.name,
      o.policy,
      options.signal,
      async function* ({ signal }) {
        const file = await toFile(wav, "turn.wav", { type: "audio/wav" });
        const params = {
          file,
          model: o.model,
          response_format: "json" as const,
          ...(o.language ? { language: o.language } : {}),
          ...(o.prompt ? { prompt: o.prompt } : {}),
        };
        const response = await (stream
          ? o.client.audio.transcriptions.create({ ...params, stream: true }, { signal, maxRetries: 0 }).asResponse()
          : o.client.audio.transcriptions.create(params, { signal, maxRetries: 0 }).asResponse());
        yield* readTranscription(response);
      },
      (err) => classifyOpenAiError(this.name, err),
    );
    let text = "";
    let final: string | undefined;
    for await (const piece of pieces) {
      if (piece.kind === "delta") {
        text += piece.text;
        yield { type: "partial", utterance: 0, text, delta: piece.text };
      } else {
        final = piece.text;
      }
    }
    yield { type: "final", utterance: 0, text: (final ?? text).trim() };
  }
}

async function* readTranscription(response: Response): AsyncGenerator<Piece> {
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream")) {
    const raw = await response.text();
    let text = raw;
    try {
      const json = JSON.parse(raw) as { text?: unknown };
      if (typeof json.text === "string") text = json.text;
    } catch {
      // response_format text from some servers: the body is the transcript.
    }
    yield { kind: "done", text };
    return;
  }
  if (!response.body) return;
  const sse = new SseDecoder();
  const pieces = function* (events: string[]): Generator<Piece> {
    for (const data of events) {
      if (data === "[DONE]") continue;
      const event = JSON.parse(data) as { type?: string; delta?: string; text?: string };
      if (event.type === "transcript.text.delta" && typeof event.delta === "string") yield { kind: "delta", text: event.delta };
      else if (event.type === "transcript.text.done" && typeof event.text === "string") yield { kind: "done", text: event.text };
    }
  };
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) yield* pieces(sse.push(bytes));
  yield* pieces(sse.end());
}
