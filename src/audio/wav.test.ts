import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import wavefile from "wavefile";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeWav, downmixToMono, encodeWav, readWav, writeWav } from "./wav.js";

/** A WAV built by wavefile from explicit sample values of the given bit depth code. */
function wavOf(bitDepth: string, samples: number[], channels = 1, container = "RIFF"): Uint8Array {
  const w = new wavefile.WaveFile();
  w.fromScratch(channels, 8000, bitDepth, samples, { container });
  return w.toBuffer();
}

/** Hand-made WAVE_FORMAT_EXTENSIBLE file with a 32-bit float sub-format (what many DAWs write). */
function extensibleFloat(values: number[]): Uint8Array {
  const data = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => data.writeFloatLE(v, i * 4));
  const fmt = Buffer.alloc(40);
  fmt.writeUInt16LE(0xfffe, 0);
  fmt.writeUInt16LE(1, 2); // channels
  fmt.writeUInt32LE(16000, 4);
  fmt.writeUInt32LE(16000 * 4, 8);
  fmt.writeUInt16LE(4, 12);
  fmt.writeUInt16LE(32, 14);
  fmt.writeUInt16LE(22, 16); // cbSize
  fmt.writeUInt16LE(32, 18); // valid bits
  fmt.writeUInt32LE(4, 20); // channel mask: front centre
  // KSDATAFORMAT_SUBTYPE_IEEE_FLOAT {00000003-0000-0010-8000-00aa00389b71}
  Buffer.from("0300000000001000800000aa00389b71", "hex").copy(fmt, 24);
  const chunk = (id: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, "ascii");
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  const body = Buffer.concat([Buffer.from("WAVE"), chunk("fmt ", fmt), chunk("data", data)]);
  return new Uint8Array(chunk("RIFF", body));
}

describe("decodeWav", () => {
  it("reads 16-bit mono and stereo as written", () => {
    const mono = Int16Array.of(0, 1, -1, 32767, -32768, 1234);
    const a = decodeWav(encodeWav(mono, 16000));
    expect(a).toMatchObject({ sampleRate: 16000, channels: 1 });
    expect(Array.from(a.pcm)).toEqual(Array.from(mono));
    const stereo = Int16Array.of(1, -1, 2, -2, 3, -3);
    const b = decodeWav(encodeWav(stereo, 8000, 2));
    expect(b).toMatchObject({ sampleRate: 8000, channels: 2 });
    expect(Array.from(b.pcm)).toEqual([1, -1, 2, -2, 3, -3]);
  });

  it("converts wider integers by keeping the top 16 bits", () => {
    const w24 = decodeWav(wavOf("24", [8388607, -8388608, 256, -257, 255, 0]));
    expect(Array.from(w24.pcm)).toEqual([32767, -32768, 1, -2, 0, 0]);
    const w32 = decodeWav(wavOf("32", [2147483647, -2147483648, 65536, -65537]));
    expect(Array.from(w32.pcm)).toEqual([32767, -32768, 1, -2]);
  });

  it("converts unsigned 8-bit around 128", () => {
    expect(Array.from(decodeWav(wavOf("8", [0, 128, 255, 129])).pcm)).toEqual([-32768, 0, 32512, 256]);
  });

  it("scales floats by 32768 and saturates", () => {
    const f32 = decodeWav(wavOf("32f", [1, -1, 0.5, 1.5, -1.5, -0.25]));
    expect(Array.from(f32.pcm)).toEqual([32767, -32768, 16384, 32767, -32768, -8192]);
    const f64 = decodeWav(wavOf("64", [0.75, -0.125]));
    expect(Array.from(f64.pcm)).toEqual([24576, -4096]);
  });

  it("decodes mu-law and A-law files to the G.711 levels", () => {
    expect(Array.from(decodeWav(wavOf("8m", [0xff, 0x80, 0x00])).pcm)).toEqual([0, 32124, -32124]);
    expect(Array.from(decodeWav(wavOf("8a", [0xd5, 0xaa, 0x2a])).pcm)).toEqual([8, 32256, -32256]);
  });

  it("reads WAVE_FORMAT_EXTENSIBLE float files", () => {
    const w = decodeWav(extensibleFloat([0.5, -0.5, 0]));
    expect(w).toMatchObject({ sampleRate: 16000, channels: 1 });
    expect(Array.from(w.pcm)).toEqual([16384, -16384, 0]);
  });

  it("reads big-endian RIFX files", () => {
    expect(Array.from(decodeWav(wavOf("16", [1, -2, 300], 1, "RIFX")).pcm)).toEqual([1, -2, 300]);
  });

  it("drops a truncated last frame", () => {
    const bytes = encodeWav(Int16Array.of(1, 2, 3, 4, 5, 6), 8000, 2);
    const cut = bytes.slice(0, bytes.length - 3);
    expect(Array.from(decodeWav(cut).pcm)).toEqual([1, 2, 3, 4]);
  });

  it("names the file and the problem in errors", () => {
    expect(() => decodeWav(new Uint8Array(100), "prompt.wav")).toThrow(/^prompt\.wav: not a readable WAV file/);
    const adpcm = new wavefile.WaveFile();
    adpcm.fromScratch(1, 8000, "16", new Int16Array(1010));
    adpcm.toIMAADPCM();
    expect(() => decodeWav(adpcm.toBuffer(), "adpcm.wav")).toThrow(/^adpcm\.wav: unsupported WAV encoding \(format 17/);
  });
});

describe("encodeWav", () => {
  it("refuses what it cannot write", () => {
    expect(() => encodeWav(new Int16Array(6), 8000, 3)).toThrow(RangeError);
    expect(() => encodeWav(new Int16Array(5), 8000, 2)).toThrow(RangeError);
  });
});

describe("WAV files", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "audio-wav-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes and reads back a file", async () => {
    const path = join(dir, "a.wav");
    const pcm = Int16Array.from({ length: 8000 }, (_, i) => Math.round(20000 * Math.sin(i / 5)));
    await writeWav(path, pcm, 8000);
    const back = await readWav(path);
    expect(back).toMatchObject({ sampleRate: 8000, channels: 1 });
    expect(Buffer.from(back.pcm.buffer).equals(Buffer.from(pcm.buffer))).toBe(true);
  });

  it("names a missing file in the error", async () => {
    const path = join(dir, "missing.wav");
    await expect(readWav(path)).rejects.toThrow(`${path}: cannot read WAV file`);
  });
});

describe("downmixToMono", () => {
  it("averages the channels of each frame with rounding", () => {
    const stereo = Int16Array.of(100, 300, -32768, -32768, 32767, 32766, 1, 2);
    expect(Array.from(downmixToMono(stereo, 2))).toEqual([200, -32768, 32767, 2]);
    expect(Array.from(downmixToMono(Int16Array.of(3, 6, 9, -3, -6, -9), 3))).toEqual([6, -6]);
  });

  it("returns mono input unchanged", () => {
    const mono = Int16Array.of(1, 2, 3);
    expect(downmixToMono(mono, 1)).toBe(mono);
  });
});
