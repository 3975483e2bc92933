/**
 * Caller-audio processor chain: small synchronous stages applied to each caller frame before VAD and ASR
 * (denoise is the first built-in one). Users add their own by registering a factory.
 *
 * Contract of a processor:
 * - `process(frame)` works in place: it may change `frame.pcm` samples but not its length or rate, and returns
 *   the frame. It is synchronous and must not keep a reference to `frame.pcm` after returning.
 * - State is per call: a factory creates one processor per call (async creation is allowed, e.g. to load WASM).
 * - `close()` releases what it holds (WASM memory, native handles). Called once when the call ends.
 *
 * A processor that throws is taken out of the chain (closed, reported once via `onError`) and the frame goes
 * on unprocessed by it: a broken filter degrades the audio path instead of ending the call.
 */

import type { AudioFrame } from "../../audio/index.js";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";

export interface AudioProcessor {
  readonly name: string;
  /** Processes one frame in place and returns it (same length, same rate). */
  process(frame: AudioFrame): AudioFrame;
  close(): void;
}

export interface ProcessorContext {
  /** Rate of the frames the processor will receive. */
  sampleRate: number;
  callId?: string;
  logger?: Logger;
}

export interface AudioProcessorFactory<O = unknown> {
  readonly name: string;
  create(context: ProcessorContext, options?: O): AudioProcessor | Promise<AudioProcessor>;
}

/** A processor name, or a name with options for its factory. */
export type ProcessorSpec = string | { name: string; options?: unknown };

export class ProcessorChain {
  private processors: AudioProcessor[];
  private closed = false;

  constructor(
    processors: readonly AudioProcessor[],
    private readonly onError: (err: Error, processor: string) => void = () => {},
  ) {
    this.processors = [...processors];
  }

  /** Names of the active processors, in order. */
  get names(): string[] {
    return this.processors.map((p) => p.name);
  }

  get length(): number {
    return this.processors.length;
  }

  /** Runs every processor on the frame, in order, in place. */
  process(frame: AudioFrame): AudioFrame {
    let list = this.processors;
    for (let i = 0; i < list.length; i++) {
      const p = list[i] as AudioProcessor;
      try {
        p.process(frame);
      } catch (err) {
        this.remove(p, err);
        list = this.processors; // the failed one is gone: the next one is now at index i
        i--;
      }
    }
    return frame;
  }

  /** Closes every processor. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.processors.splice(0)) {
      try {
        p.close();
      } catch {
        // closing must not fail the call teardown
      }
    }
  }

  private remove(p: AudioProcessor, err: unknown): void {
    this.processors = this.processors.filter((x) => x !== p);
    try {
      p.close();
    } catch {
      // already failing
    }
    this.onError(err instanceof Error ? err : new Error(String(err)), p.name);
  }
}

export class ProcessorRegistry {
  private readonly factories = new Map<string, AudioProcessorFactory>();

  /** Adds a factory; a name can be registered once. */
  register(factory: AudioProcessorFactory): this {
    if (this.factories.has(factory.name)) throw new Error(`audio processor "${factory.name}" is already registered`);
    this.factories.set(factory.name, factory);
    return this;
  }

  has(name: string): boolean {
    return this.factories.has(name);
  }

  get names(): string[] {
    return [...this.factories.keys()];
  }

  /**
   * Creates one processor per spec, in order, for one call. If one fails to be created, those already created
   * are closed and the error is thrown (an unknown name is a BAD_REQUEST AppError).
   */
  async createChain(
    specs: readonly ProcessorSpec[],
    context: ProcessorContext,
    onError?: (err: Error, processor: string) => void,
  ): Promise<ProcessorChain> {
    const made: AudioProcessor[] = [];
    try {
      for (const spec of specs) {
        const name = typeof spec === "string" ? spec : spec.name;
        const factory = this.factories.get(name);
        if (!factory) {
          throw new AppError("BAD_REQUEST", `unknown audio processor "${name}" (known: ${this.names.join(", ") || "none"})`);
        }
        made.push(await factory.create(context, typeof spec === "string" ? undefined : spec.options));
      }
    } catch (err) {
      for (const p of made) p.close();
      throw err;
    }
    const log = context.logger;
    return new ProcessorChain(
      made,
      onError ?? ((err, processor) => log?.warn({ err, processor }, "audio processor failed and was removed")),
    );
  }
}
