/**
 * PCM plumbing at the provider edge: raw little-endian bytes (with a sample split across chunks) to samples,
 * streamed WAV (engines writing to stdout) to samples, and samples at the engine's rate to 20 ms frames at the
 * rate the pipeline asked for.
 */
import { Rechunker, Resampler, type AudioFrame } from "../audio/index.js";

/** Little-endian PCM16 bytes to samples; an odd trailing byte is carried into the next chunk. */
export class PcmBytes {
  private carry = -1;

  push(bytes: Uint8Array): Int16Array {
    const total = bytes.length + (this.carry >= 0 ? 1 : 0);
    const out = new Int16Array(total >> 1);
    let i = 0;
    let o = 0;
    if (this.carry >= 0 && bytes.length > 0) {
      out[o++] = ((bytes[0] as number) << 8) | this.carry;
      i = 1;
      this.carry = -1;
    }
    for (; i + 1 < bytes.length; i += 2) out[o++] = ((bytes[i + 1] as number) << 8) | (bytes[i] as number);
    if (i < bytes.length) this.carry = bytes[i] as number;
    return out;
  }

  /** Bytes left over (0 or 1); a dangling byte at the end of a stream is dropped. */
  get pending(): number {
    return this.carry >= 0 ? 1 : 0;
  }
}

export interface WavFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
}

/**
 * Reads a WAV file as it streams (`espeak-ng --stdout` writes a header with a placeholder size of ~2 GiB).
 * Only PCM16 mono is accepted, which is what the local engines write.
 */
export class WavStream {
  format: WavFormat | undefined;
  private header = new Uint8Array(0);
  private remaining = Infinity;
  private readonly pcm = new PcmBytes();

  constructor(private readonly name: string) {}

  push(bytes: Uint8Array): Int16Array {
    if (this.format === undefined) {
      const joined = new Uint8Array(this.header.length + bytes.length);
      joined.set(this.header);
      joined.set(bytes, this.header.length);
      const parsed = this.parseHeader(joined);
      if (parsed === undefined) {
        this.header = joined;
        return new Int16Array(0);
      }
      this.header = new Uint8Array(0);
      bytes = joined.subarray(parsed);
    }
    if (this.remaining !== Infinity) {
      bytes = bytes.subarray(0, Math.max(0, Math.min(bytes.length, this.remaining)));
      this.remaining -= bytes.length;
    }
    return this.pcm.push(bytes);
  }

  /** Returns the offset of the first sample once the header is complete; throws on anything but PCM16 mono. */
  private parseHeader(b: Uint8Array): number | undefined {
    if (b.length < 12) return undefined;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const tag = (o: number) => String.fromCharCode(b[o] as number, b[o + 1] as number, b[o + 2] as number, b[o + 3] as number);
    if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error(`${this.name}: output is not a WAV stream`);
    let off = 12;
    let format: WavFormat | undefined;
    for (;;) {
      if (b.length < off + 8) return undefined;
      const id = tag(off);
      const size = view.getUint32(off + 4, true);
      if (id === "data") {
        if (!format) throw new Error(`${this.name}: WAV data before its format`);
        if (format.bitsPerSample !== 16 || format.channels !== 1) {
          throw new Error(`${this.name}: expected 16-bit mono WAV, got ${format.bitsPerSample}-bit ${format.channels}-channel`);
        }
        this.format = format;
        // Streaming writers put a placeholder (0 or ~2^31) here; trust only a plausible size.
        this.remaining = size === 0 || size >= 0x7f000000 ? Infinity : size;
        return off + 8;
      }
      if (b.length < off + 8 + size) return undefined;
      if (id === "fmt ") {
        const audioFormat = view.getUint16(off + 8, true);
        if (audioFormat !== 1 && audioFormat !== 0xfffe) throw new Error(`${this.name}: WAV format ${audioFormat} is not PCM`);
        format = { channels: view.getUint16(off + 10, true), sampleRate: view.getUint32(off + 12, true), bitsPerSample: view.getUint16(off + 22, true) };
      }
      off += 8 + size + (size & 1);
    }
  }
}

/**
 * Samples at the engine's rate in, 20 ms frames at the output rate out. The resampler's group delay is removed,
 * so output sample n lines up with input time n / to; timestamps continue across `end()` (one clock per call).
 */
export class FrameOutput {
  private resampler: Resampler | undefined;
  private skip = 0;
  private readonly rechunker: Rechunker;
  private frames: AudioFrame[] = [];
  private offsetMs = 0;
  private lastEndMs = 0;
  private from = 0;

  constructor(
    readonly sampleRate: number,
    frameMs = 20,
  ) {
    this.rechunker = new Rechunker({ sampleRate, frameMs }, (pcm, timestampMs) => {
      const ts = this.offsetMs + timestampMs;
      this.frames.push({ pcm: pcm.slice(), sampleRate, timestampMs: ts });
      this.lastEndMs = ts + (pcm.length * 1000) / sampleRate;
    });
  }

  /** Adds samples produced at `rate` (the first call fixes it until `end`). */
  push(pcm: Int16Array, rate: number): AudioFrame[] {
    if (this.from !== rate) {
      if (this.from !== 0) throw new Error(`rate changed mid-utterance (${this.from} -> ${rate})`);
      this.from = rate;
      this.resampler = rate === this.sampleRate ? undefined : new Resampler(rate, this.sampleRate);
      this.skip = this.resampler?.delay ?? 0;
    }
    this.feed(this.resampler ? this.resampler.process(pcm) : pcm);
    return this.take();
  }

  /** Ends one utterance: flushes the resampler and the partial last frame. The clock goes on for the next one. */
  end(): AudioFrame[] {
    if (this.resampler) this.feed(this.resampler.flush());
    this.rechunker.flush(false);
    this.rechunker.reset();
    this.offsetMs = this.lastEndMs;
    this.from = 0;
    this.resampler = undefined;
    return this.take();
  }

  private feed(pcm: Int16Array): void {
    if (this.skip > 0) {
      const n = Math.min(this.skip, pcm.length);
      this.skip -= n;
      pcm = pcm.subarray(n);
    }
    if (pcm.length > 0) this.rechunker.push(pcm);
  }

  private take(): AudioFrame[] {
    const out = this.frames;
    this.frames = [];
    return out;
  }
}

export { concatPcm, rms } from "../audio/measure.js";
