/**
 * An ASR session for engines that recognise endpointed utterances (every engine here): frames are buffered
 * until `endUtterance`, then the utterance is transcribed while the next one is being recorded. Results come
 * out in utterance order through a blocking channel (text is never dropped).
 */
import { resample, type AudioFrame } from "../audio/index.js";
import { toAppError } from "../errors.js";
import { BoundedChannel } from "../util/channel.js";
import type { AsrProvider, AsrResult, AsrSession, AsrUtterance, CallOptions } from "./types.js";

export class EndpointedAsrSession implements AsrSession {
  private chunks: Int16Array[] = [];
  private rate = 0;
  private next = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly channel = new BoundedChannel<AsrResult>({ capacity: 256, policy: "block" });
  private closed = false;

  constructor(
    private readonly provider: Pick<AsrProvider, "transcribe" | "name">,
    private readonly options: CallOptions = {},
  ) {
    options.signal?.addEventListener("abort", () => this.channel.close(), { once: true });
  }

  get results(): AsyncIterable<AsrResult> {
    return this.channel;
  }

  write(frame: AudioFrame): void {
    if (this.closed) return;
    if (this.rate === 0) this.rate = frame.sampleRate;
    this.chunks.push(frame.sampleRate === this.rate ? frame.pcm.slice() : resample(frame.pcm, frame.sampleRate, this.rate));
  }

  discardUtterance(): void {
    this.chunks = [];
    this.rate = 0;
  }

  endUtterance(): void {
    if (this.closed) return;
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const pcm = new Int16Array(total);
    let o = 0;
    for (const c of this.chunks) {
      pcm.set(c, o);
      o += c.length;
    }
    const utterance: AsrUtterance = { pcm, sampleRate: this.rate || 16000 };
    const index = this.next++;
    this.discardUtterance();
    this.queue = this.queue.then(() => this.run(index, utterance));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.queue.then(() => this.channel.close());
  }

  private async run(index: number, utterance: AsrUtterance): Promise<void> {
    const signal = this.options.signal;
    if (signal?.aborted) return;
    try {
      let final = false;
      for await (const result of this.provider.transcribe(utterance, { signal })) {
        // The provider numbers from 0 per call; the session numbers per session.
        const numbered = { ...result, utterance: index };
        if (numbered.type === "final") final = true;
        await this.channel.send(numbered, signal);
      }
      if (!final) await this.channel.send({ type: "final", utterance: index, text: "" }, signal);
    } catch (err) {
      if (signal?.aborted || this.channel.closed) return;
      await this.channel.send({ type: "error", utterance: index, error: toAppError(err, "PROVIDER_ERROR") }, signal).catch(() => {});
    }
  }
}
