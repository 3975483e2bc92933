/**
 * Wire codecs of the /call WebSocket (ws-call-api.md §5.1): what a client may declare as `codec`/`sampleRate`
 * (caller audio) and `outputCodec`/`outputSampleRate` (agent audio), and the stateful converters between those
 * bytes and PCM16 at the codec's rate. No resampling here: the conversation resamples.
 *
 * | codec | rates                      | 20 ms frame |
 * |-------|----------------------------|-------------|
 * | pcm   | 8000, 16000, 24000, 48000  | 2 × rate / 50 bytes (s16le, mono) |
 * | pcmu  | 8000                       | 160 bytes |
 * | pcma  | 8000                       | 160 bytes |
 * | g722  | 16000                      | 160 bytes |
 * | opus  | not built: "codec opus is not supported" |
 *
 * Allocation: the decoder writes into one reused, growing Int16Array and returns a view of it (the view object
 * itself is reused while message sizes stay the same); the encoder allocates only the outgoing Buffer (a
 * WebSocket may keep it after `send` returns), or writes into a caller-provided buffer with `encodeInto`.
 */

import { G722Decoder, G722Encoder, aLawDecodeSample, aLawEncodeSample, muLawDecodeSample, muLawEncodeSample } from "../audio/index.js";

export type WireCodec = "pcm" | "pcmu" | "pcma" | "g722";

export interface WireFormat {
  codec: WireCodec;
  sampleRate: number;
}

/** Codecs this build speaks, with their allowed rates (first = default). */
export const WIRE_CODECS: Readonly<Record<WireCodec, readonly number[]>> = {
  pcm: [16000, 8000, 24000, 48000],
  pcmu: [8000],
  pcma: [8000],
  g722: [16000],
};

export function isWireCodec(codec: unknown): codec is WireCodec {
  return typeof codec === "string" && Object.prototype.hasOwnProperty.call(WIRE_CODECS, codec);
}

/** Default sample rate of a codec (pcm 16000, pcmu/pcma 8000, g722 16000). */
export function defaultWireRate(codec: WireCodec): number {
  return WIRE_CODECS[codec][0] as number;
}

export type WireFormatCheck = { ok: true; format: WireFormat } | { ok: false; field: string; error: string };

export interface WireFieldNames {
  /** Default "codec" (use "outputCodec" for the agent direction). */
  codec?: string;
  /** Default "sampleRate" (use "outputSampleRate" for the agent direction). */
  sampleRate?: string;
}

/**
 * Validates a declared codec and rate. A missing rate takes the codec's default. Errors name the field:
 * `codec opus is not supported`, `codec foo is not supported`, `sampleRate 44100 is not supported for pcm`.
 */
export function checkWireFormat(input: { codec: unknown; sampleRate?: unknown }, names: WireFieldNames = {}): WireFormatCheck {
  const codecField = names.codec ?? "codec";
  const rateField = names.sampleRate ?? "sampleRate";
  const { codec, sampleRate } = input;
  if (!isWireCodec(codec)) {
    const shown = typeof codec === "string" ? codec : JSON.stringify(codec);
    // Known-but-unbuilt codecs (opus) and unknown names get the same answer: this build cannot speak them.
    return { ok: false, field: codecField, error: `${codecField} ${shown} is not supported` };
  }
  if (sampleRate === undefined) return { ok: true, format: { codec, sampleRate: defaultWireRate(codec) } };
  if (typeof sampleRate !== "number" || !WIRE_CODECS[codec].includes(sampleRate)) {
    const shown = typeof sampleRate === "number" ? String(sampleRate) : JSON.stringify(sampleRate);
    return { ok: false, field: rateField, error: `${rateField} ${shown} is not supported for ${codec}` };
  }
  return { ok: true, format: { codec, sampleRate } };
}

/** Bytes of `samples` samples of PCM in `codec` (samples must be even for g722). */
export function wireBytesForSamples(codec: WireCodec, samples: number): number {
  switch (codec) {
    case "pcm":
      return samples * 2;
    case "pcmu":
    case "pcma":
      return samples;
    case "g722":
      return samples >> 1;
  }
}

function assertFormat(format: WireFormat): void {
  const check = checkWireFormat(format);
  if (!check.ok) throw new RangeError(check.error);
}

/**
 * Caller bytes -> PCM16 at `sampleRate`. Stateful for one stream: pcm keeps an odd trailing byte for the next
 * message; g722 keeps its ADPCM state across messages (so never drop bytes).
 */
export class WireDecoder {
  readonly codec: WireCodec;
  readonly sampleRate: number;
  private out = new Int16Array(0);
  private view = new Int16Array(0);
  private carry = -1;
  private readonly g722: G722Decoder | undefined;

  constructor(format: WireFormat) {
    assertFormat(format);
    this.codec = format.codec;
    this.sampleRate = format.sampleRate;
    this.g722 = format.codec === "g722" ? new G722Decoder() : undefined;
  }

  /** An odd pcm byte is waiting for its partner. */
  get pendingBytes(): number {
    return this.carry >= 0 ? 1 : 0;
  }

  /**
   * Decodes one message. The result is a view of a reused buffer: valid until the next `decode`; copy to keep.
   * It may be empty (one pcm byte).
   */
  decode(bytes: Uint8Array): Int16Array {
    let n: number;
    switch (this.codec) {
      case "pcm": {
        const total = bytes.length + (this.carry >= 0 ? 1 : 0);
        n = total >> 1;
        const out = this.ensure(n);
        let i = 0;
        let o = 0;
        if (this.carry >= 0 && bytes.length > 0) {
          const v = this.carry | ((bytes[0] as number) << 8);
          out[o++] = v; // Int16Array wraps 0..65535 to the signed value
          i = 1;
          this.carry = -1;
        }
        for (; i + 1 < bytes.length; i += 2) out[o++] = (bytes[i] as number) | ((bytes[i + 1] as number) << 8);
        if (i < bytes.length) this.carry = bytes[i] as number;
        break;
      }
      case "pcmu": {
        n = bytes.length;
        const out = this.ensure(n);
        for (let i = 0; i < n; i++) out[i] = muLawDecodeSample(bytes[i] as number);
        break;
      }
      case "pcma": {
        n = bytes.length;
        const out = this.ensure(n);
        for (let i = 0; i < n; i++) out[i] = aLawDecodeSample(bytes[i] as number);
        break;
      }
      case "g722": {
        n = bytes.length * 2;
        (this.g722 as G722Decoder).decode(bytes, this.ensure(n));
        break;
      }
    }
    return this.viewOf(n);
  }

  reset(): void {
    this.carry = -1;
    this.g722?.reset();
  }

  private ensure(n: number): Int16Array {
    if (this.out.length < n) {
      this.out = new Int16Array(Math.max(n, this.out.length * 2, 160));
      this.view = this.out.subarray(0, 0);
    }
    return this.out;
  }

  private viewOf(n: number): Int16Array {
    if (this.view.length !== n || this.view.buffer !== this.out.buffer) this.view = this.out.subarray(0, n);
    return this.view;
  }
}

/** PCM16 at `sampleRate` -> wire bytes. Stateful for one stream (g722 encoder state). */
export class WireEncoder {
  readonly codec: WireCodec;
  readonly sampleRate: number;
  private readonly g722: G722Encoder | undefined;

  constructor(format: WireFormat) {
    assertFormat(format);
    this.codec = format.codec;
    this.sampleRate = format.sampleRate;
    this.g722 = format.codec === "g722" ? new G722Encoder() : undefined;
  }

  /** Bytes `encode` produces for `samples` samples (g722: one byte per pair). */
  bytesFor(samples: number): number {
    return wireBytesForSamples(this.codec, samples);
  }

  /** Encodes into a new Buffer (the one allocation a WebSocket send needs). */
  encode(pcm: Int16Array): Buffer {
    const out = Buffer.allocUnsafe(this.codec === "g722" ? (pcm.length + 1) >> 1 : this.bytesFor(pcm.length));
    const n = this.encodeInto(pcm, out);
    return n === out.length ? out : out.subarray(0, n);
  }

  /** Encodes into `out` (large enough) and returns the bytes written. */
  encodeInto(pcm: Int16Array, out: Uint8Array): number {
    const n = pcm.length;
    switch (this.codec) {
      case "pcm": {
        if (out.length < n * 2) throw new RangeError(`output holds ${out.length} bytes, ${n * 2} needed`);
        for (let i = 0, o = 0; i < n; i++, o += 2) {
          const s = pcm[i] as number;
          out[o] = s & 0xff;
          out[o + 1] = (s >> 8) & 0xff;
        }
        return n * 2;
      }
      case "pcmu":
        if (out.length < n) throw new RangeError(`output holds ${out.length} bytes, ${n} needed`);
        for (let i = 0; i < n; i++) out[i] = muLawEncodeSample(pcm[i] as number);
        return n;
      case "pcma":
        if (out.length < n) throw new RangeError(`output holds ${out.length} bytes, ${n} needed`);
        for (let i = 0; i < n; i++) out[i] = aLawEncodeSample(pcm[i] as number);
        return n;
      case "g722":
        return (this.g722 as G722Encoder).encode(pcm, out);
    }
  }

  reset(): void {
    this.g722?.reset();
  }
}
