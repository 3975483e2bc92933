/**
 * Incremental 16-bit PCM WAV writer for recordings.
 *
 * The file is always a valid WAV: after every append batch the RIFF and data sizes in the header are
 * rewritten, so if the process dies mid-call the file holds everything appended so far (with `fsync`, even
 * across a power loss). The header is the canonical 44-byte one, written by us, because wavefile only writes
 * whole files.
 *
 * Operations are queued, so appends issued without awaiting still land in order.
 */

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { endianness } from "node:os";

const HEADER_BYTES = 44;
/** RIFF sizes are 32-bit: the RIFF size field (data + 36) must stay below 2^32. */
const MAX_DATA_BYTES = 0xffffffff - 36;
const LITTLE_ENDIAN_HOST = endianness() === "LE";

export interface WavWriterOptions {
  sampleRate: number;
  /** 1 (default) or 2; stereo data is interleaved. */
  channels?: number;
  /** Flush data and header to the disk after each append (slower; survives power loss, not just a crash). */
  fsync?: boolean;
}

function header(sampleRate: number, channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write("WAVE", 8, "ascii");
  h.write("fmt ", 12, "ascii");
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28); // byte rate
  h.writeUInt16LE(channels * 2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write("data", 36, "ascii");
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Little-endian bytes of `pcm`: a view on little-endian hosts, a swapped copy otherwise. */
function littleEndianBytes(pcm: Int16Array): Buffer {
  if (LITTLE_ENDIAN_HOST) return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const b = Buffer.alloc(pcm.byteLength);
  for (let i = 0; i < pcm.length; i++) b.writeInt16LE(pcm[i] as number, i * 2);
  return b;
}

export class WavWriter {
  private dataBytes = 0;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly sizes = Buffer.alloc(4);

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly sampleRate: number,
    readonly channels: number,
    private readonly fsync: boolean,
  ) {}

  /** Creates (or truncates) `path` and writes an empty WAV header. */
  static async open(path: string, options: WavWriterOptions): Promise<WavWriter> {
    const channels = options.channels ?? 1;
    if (channels !== 1 && channels !== 2) {
      throw new RangeError(`${path}: WAV writer supports 1 or 2 channels, got ${channels}`);
    }
    if (!Number.isInteger(options.sampleRate) || options.sampleRate <= 0) {
      throw new RangeError(`${path}: invalid sample rate ${options.sampleRate}`);
    }
    let fh: FileHandle;
    try {
      // "w" without following a symbolic link at the last component: a link placed after a caller's path check
      // (util/paths.ts confinedWritePath) would otherwise send the write out of its folder.
      fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o666);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new Error(`${path}: is a symbolic link (not followed for writing)`, { cause: err });
      throw new Error(`${path}: cannot create WAV file (${(err as Error).message})`, { cause: err });
    }
    const writer = new WavWriter(path, fh, options.sampleRate, channels, options.fsync ?? false);
    try {
      await fh.write(header(options.sampleRate, channels, 0), 0, HEADER_BYTES, 0);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw new Error(`${path}: cannot write WAV header (${(err as Error).message})`, { cause: err });
    }
    return writer;
  }

  /** Samples per channel written so far. */
  get frames(): number {
    return this.dataBytes / (2 * this.channels);
  }

  /**
   * Appends one batch of PCM (interleaved for stereo), then updates the header sizes. The arrays may be reused
   * by the caller once the returned promise settles.
   */
  append(...chunks: Int16Array[]): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) throw new Error(`${this.path}: append after close`);
      let added = 0;
      for (const c of chunks) {
        if (c.length % this.channels !== 0) {
          throw new RangeError(`${this.path}: ${c.length} samples do not split into ${this.channels} channels`);
        }
        added += c.byteLength;
      }
      if (this.dataBytes + added > MAX_DATA_BYTES) throw new Error(`${this.path}: WAV file would exceed 4 GiB`);
      if (added === 0) return;
      for (const c of chunks) {
        if (c.length === 0) continue;
        const bytes = littleEndianBytes(c);
        await this.fh.write(bytes, 0, bytes.length, HEADER_BYTES + this.dataBytes);
        this.dataBytes += bytes.length;
      }
      // Sizes go in after the data, so a crash in between leaves a header that still describes valid data.
      this.sizes.writeUInt32LE(36 + this.dataBytes, 0);
      await this.fh.write(this.sizes, 0, 4, 4);
      this.sizes.writeUInt32LE(this.dataBytes, 0);
      await this.fh.write(this.sizes, 0, 4, 40);
      if (this.fsync) await this.fh.datasync();
    });
  }

  /** Waits for queued appends and closes the file. Idempotent. */
  close(): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.fh.close();
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    // Each operation starts after the previous one settled, whether it failed or not.
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
