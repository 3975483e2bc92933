/**
 * The text side of a stream-input request:
 * - TextFeed reads the caller's text (a string, or LLM deltas) once and keeps what it read, so a retried
 *   connection can send the same text again from the start while the LLM goes on producing the rest;
 * - TextChunker turns deltas into the messages ElevenLabs wants: whole words ending with a space (a word cut in
 *   two would be spoken as two), and `flush` at each sentence end so the sentence is spoken without waiting for
 *   the server's 120-character buffer to fill.
 */

/** Sentence ends: `.!?;:…` (and closing quotes/brackets) followed by white space, the CJK full stops, a newline. */
const SENTENCE_END = /[.!?;:…]+["')\]]*\s+|[。！？；]+|\n+/g;

export interface TextChunk {
  text: string;
  flush: boolean;
}

export class TextChunker {
  private buffer = "";

  push(delta: string): TextChunk[] {
    this.buffer += delta;
    const out: TextChunk[] = [];
    let last = 0;
    SENTENCE_END.lastIndex = 0;
    for (let m = SENTENCE_END.exec(this.buffer); m !== null; m = SENTENCE_END.exec(this.buffer)) {
      const end = m.index + m[0].length;
      const sentence = this.buffer.slice(last, end).trim();
      if (sentence !== "") out.push({ text: `${sentence} `, flush: true });
      last = end;
    }
    let rest = this.buffer.slice(last);
    // The complete words of the unfinished sentence go now; the word still being written waits.
    const cut = rest.search(/\s\S*$/);
    if (cut >= 0) {
      const words = rest.slice(0, cut).trim();
      if (words !== "") out.push({ text: `${words} `, flush: false });
      rest = rest.slice(cut + 1);
    }
    this.buffer = rest;
    return out;
  }

  /** What is left at the end of the text, flushed. */
  end(): TextChunk | undefined {
    const rest = this.buffer.trim();
    this.buffer = "";
    return rest === "" ? undefined : { text: `${rest} `, flush: true };
  }
}

/** Reads a text source once; any number of readers get its deltas by index, from the start. */
export class TextFeed {
  private readonly deltas: string[] = [];
  private done = false;
  private failure: { error: unknown } | undefined;
  private iterator: AsyncIterator<string> | undefined;
  private reading = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly source: string | AsyncIterable<string>) {
    if (typeof source === "string") {
      this.deltas.push(source);
      this.done = true;
    }
  }

  /** True when the whole text was known up front (a string). */
  get whole(): boolean {
    return typeof this.source === "string";
  }

  /** Delta number `i`, or undefined after the last one. Rejects with the source's error, or on abort. */
  async get(i: number, signal: AbortSignal): Promise<string | undefined> {
    for (;;) {
      signal.throwIfAborted();
      if (i < this.deltas.length) return this.deltas[i];
      if (this.failure) throw this.failure.error;
      if (this.done) return undefined;
      this.startReading();
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason as Error);
        signal.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
  }

  /** Stops reading the source (the request ended or was cancelled). */
  close(): void {
    this.done = true;
    const it = this.iterator;
    this.iterator = undefined;
    if (it?.return) void Promise.resolve(it.return()).catch(() => undefined);
    this.wake();
  }

  private startReading(): void {
    if (this.reading || typeof this.source === "string") return;
    this.reading = true;
    const it = this.source[Symbol.asyncIterator]();
    this.iterator = it;
    void (async () => {
      try {
        for (;;) {
          const r = await it.next();
          if (r.done || this.done) break;
          if (r.value !== "") this.deltas.push(r.value);
          this.wake();
        }
      } catch (error) {
        this.failure = { error };
      }
      this.done = true;
      this.wake();
    })();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
