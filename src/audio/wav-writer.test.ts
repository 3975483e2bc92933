import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWav } from "./wav.js";
import { WavWriter } from "./wav-writer.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "audio-wav-writer-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ramp(from: number, n: number): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => ((from + i) * 37) % 30000);
}

describe("WavWriter", () => {
  it("keeps the file readable after every append batch", async () => {
    const path = join(dir, "rec.wav");
    const w = await WavWriter.open(path, { sampleRate: 8000 });
    expect((await readWav(path)).pcm.length).toBe(0); // a valid, empty WAV from the start

    await w.append(ramp(0, 160), ramp(160, 160));
    const middle = await readWav(path); // read while the writer is still open, as after a crash
    expect(middle).toMatchObject({ sampleRate: 8000, channels: 1 });
    expect(Array.from(middle.pcm)).toEqual(Array.from(ramp(0, 320)));

    await w.append(ramp(320, 1000));
    expect(w.frames).toBe(1320);
    await w.close();
    const end = await readWav(path);
    expect(Array.from(end.pcm)).toEqual(Array.from(ramp(0, 1320)));

    // Header sizes describe exactly the data written.
    const bytes = await readFile(path);
    expect(bytes.length).toBe(44 + 2640);
    expect(bytes.readUInt32LE(4)).toBe(36 + 2640);
    expect(bytes.readUInt32LE(40)).toBe(2640);
  });

  it("writes appends in call order even when they are not awaited", async () => {
    const path = join(dir, "queued.wav");
    const w = await WavWriter.open(path, { sampleRate: 16000, channels: 2 });
    const pending = [w.append(ramp(0, 100)), w.append(ramp(100, 2)), w.append(ramp(102, 998))];
    await Promise.all(pending);
    await w.close();
    const back = await readWav(path);
    expect(back).toMatchObject({ sampleRate: 16000, channels: 2 });
    expect(Array.from(back.pcm)).toEqual(Array.from(ramp(0, 1100)));
  });

  it("rejects bad input with the file name, and appends after close", async () => {
    const path = join(dir, "bad.wav");
    const w = await WavWriter.open(path, { sampleRate: 8000, channels: 2 });
    await expect(w.append(new Int16Array(3))).rejects.toThrow(`${path}: 3 samples do not split into 2 channels`);
    await w.append(new Int16Array(4)); // a failed append does not poison the queue
    await w.close();
    await w.close(); // idempotent
    await expect(w.append(new Int16Array(2))).rejects.toThrow(`${path}: append after close`);
    expect((await readWav(path)).pcm.length).toBe(4);
  });

  it("reports a file that cannot be created", async () => {
    const path = join(dir, "no-such-dir", "x.wav");
    await expect(WavWriter.open(path, { sampleRate: 8000 })).rejects.toThrow(`${path}: cannot create WAV file`);
    await expect(WavWriter.open(join(dir, "y.wav"), { sampleRate: 8000, channels: 3 })).rejects.toThrow(RangeError);
  });
});
