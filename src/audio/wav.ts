/**
 * WAV files <-> PCM16. Parsing and writing of the RIFF structure is done by `wavefile`; the sample conversion
 * to 16 bits is ours, so that every source format maps the same way (top 16 bits of wider integers, floats
 * scaled by 32768 with saturation, G.711 through our own decoder).
 * Errors are plain `Error`s whose message starts with the file name (or "<buffer>") and says what is wrong.
 */

import { readFile, writeFile } from "node:fs/promises";
import wavefile from "wavefile";
import { aLawDecodeSample, muLawDecodeSample } from "./g711.js";

/** Decoded audio: interleaved PCM16 when `channels` > 1. */
export interface WavAudio {
  pcm: Int16Array;
  sampleRate: number;
  channels: number;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

/** The parts of wavefile's (loosely typed) fmt/data objects we read. */
interface FmtChunk {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  subformat?: number[];
}

/** Parses a WAV file held in memory. `name` is used in error messages. */
export function decodeWav(bytes: Uint8Array, name = "<buffer>"): WavAudio {
  let wav: wavefile.WaveFile;
  try {
    wav = new wavefile.WaveFile(bytes);
  } catch (err) {
    throw new Error(`${name}: not a readable WAV file (${(err as Error).message})`, { cause: err });
  }
  const fmt = wav.fmt as FmtChunk;
  const data = (wav.data as { samples?: Uint8Array }).samples ?? new Uint8Array(0);
  const channels = fmt.numChannels;
  const sampleRate = fmt.sampleRate;
  const bits = fmt.bitsPerSample;
  // WAVE_FORMAT_EXTENSIBLE carries the real format code in the first field of its sub-format GUID.
  const format = fmt.audioFormat === FORMAT_EXTENSIBLE ? (fmt.subformat?.[0] ?? 0) : fmt.audioFormat;
  if (!Number.isInteger(channels) || channels < 1) throw new Error(`${name}: invalid channel count ${channels}`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new Error(`${name}: invalid sample rate ${sampleRate}`);

  const bytesPerSample = bits / 8;
  const supported =
    (format === FORMAT_PCM && [8, 16, 24, 32].includes(bits)) ||
    (format === FORMAT_FLOAT && (bits === 32 || bits === 64)) ||
    ((format === FORMAT_ALAW || format === FORMAT_MULAW) && bits === 8);
  if (!supported) {
    throw new Error(`${name}: unsupported WAV encoding (format ${format}, ${bits} bits per sample)`);
  }
  // A truncated last frame (e.g. a recording cut mid-write) is dropped rather than rejected.
  const frames = Math.floor(data.length / (bytesPerSample * channels));
  const count = frames * channels;
  const pcm = new Int16Array(count);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = wav.container !== "RIFX";

  if (format === FORMAT_MULAW || format === FORMAT_ALAW) {
    const decode = format === FORMAT_MULAW ? muLawDecodeSample : aLawDecodeSample;
    for (let i = 0; i < count; i++) pcm[i] = decode(data[i] as number);
  } else if (format === FORMAT_FLOAT) {
    for (let i = 0; i < count; i++) {
      const v = bits === 32 ? view.getFloat32(i * 4, le) : view.getFloat64(i * 8, le);
      const s = Math.round(v * 32768);
      pcm[i] = Number.isNaN(s) ? 0 : s > 32767 ? 32767 : s < -32768 ? -32768 : s;
    }
  } else if (bits === 8) {
    // 8-bit WAV is unsigned with 128 as zero.
    for (let i = 0; i < count; i++) pcm[i] = ((data[i] as number) - 128) << 8;
  } else if (bits === 16) {
    for (let i = 0; i < count; i++) pcm[i] = view.getInt16(i * 2, le);
  } else if (bits === 24) {
    // Keep the two most significant bytes (truncation, like an arithmetic shift by 8).
    for (let i = 0; i < count; i++) {
      const o = i * 3;
      pcm[i] = le ? view.getInt16(o + 1, true) : view.getInt16(o, false);
    }
  } else {
    for (let i = 0; i < count; i++) pcm[i] = view.getInt32(i * 4, le) >> 16;
  }
  return { pcm, sampleRate, channels };
}

/** Serialises PCM16 (interleaved if `channels` > 1) as a 16-bit WAV file. */
export function encodeWav(pcm: Int16Array, sampleRate: number, channels = 1): Uint8Array {
  if (channels !== 1 && channels !== 2) throw new RangeError(`WAV writer supports 1 or 2 channels, got ${channels}`);
  if (pcm.length % channels !== 0) {
    throw new RangeError(`${pcm.length} samples do not split into ${channels} channels`);
  }
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, sampleRate, "16", pcm);
  return wav.toBuffer();
}

export async function readWav(path: string): Promise<WavAudio> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new Error(`${path}: cannot read WAV file (${(err as Error).message})`, { cause: err });
  }
  return decodeWav(bytes, path);
}

export async function writeWav(path: string, pcm: Int16Array, sampleRate: number, channels = 1): Promise<void> {
  const bytes = encodeWav(pcm, sampleRate, channels);
  try {
    await writeFile(path, bytes);
  } catch (err) {
    throw new Error(`${path}: cannot write WAV file (${(err as Error).message})`, { cause: err });
  }
}

/** Averages interleaved channels into mono (allocates). Mono input is returned as is. */
export function downmixToMono(pcm: Int16Array, channels: number): Int16Array {
  if (channels === 1) return pcm;
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`invalid channel count ${channels}`);
  const frames = Math.floor(pcm.length / channels);
  const out = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += pcm[f * channels + c] as number;
    // Rounded average: never clips, since the mean of int16 values is within int16.
    out[f] = Math.round(sum / channels);
  }
  return out;
}
