/** Ambiance, recorder and denoise end to end through SerialConversation + MemoryLeg on a ManualClock. */
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeWav, readWav } from "../../audio/index.js";
import { tone } from "../../providers/scripted.js";
import { ProcessorRegistry } from "../audio/index.js";
import { Recorder } from "../audio/recorder.js";
import { confinedWritePath } from "../../util/paths.js";
import type { RecordingInfo } from "./serial-conversation.js";
import { recordingName } from "./serial-conversation.js";
import { Harness, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "serial-audio-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rms = (pcm: Int16Array): number => {
  let s = 0;
  for (const x of pcm) s += x * x;
  return Math.sqrt(s / Math.max(1, pcm.length));
};

const quiet = (extra: string): string => `---\nllm: { provider: scripted }\ngreeting: false\n${extra}\n---\nBe brief.\n`;

describe("SerialConversation ambiance", () => {
  it("plays the background while idle and ducks it (duckLevel/normalLevel) while the agent speaks", async () => {
    await writeFile(join(dir, "a.wav"), encodeWav(tone(1000, 16000, 300), 16000));
    const h = new Harness({
      soundsDir: dir,
      playbook: quiet("ambiance: { path: a.wav, normalLevel: 0.3, duckLevel: 0.1, transitionSpeed: 1 }"),
    });
    await h.conv.start();
    await h.run(600);
    const idle = h.leg.captured.filter((f) => !f.speaking && f.timestampMs >= 100);
    expect(idle.length).toBeGreaterThan(10);
    const idleRms = rms(Int16Array.from(idle.flatMap((f) => [...f.pcm])));
    expect(idleRms).toBeGreaterThan(0.25 * 0.3 * 8192);
    // Agent audio muted: the frames still count as speech, so what is left in them is the ducked background.
    h.conv.handleCommand({ command: "mute", trackId: "server-side-track" });
    h.conv.handleCommand({ command: "tts", text: "This sentence takes a while to say.", playId: "p1" });
    await h.run(1500);
    const speaking = h.leg.captured.filter((f) => f.speaking && f.playId === "p1").slice(2);
    expect(speaking.length).toBeGreaterThan(20);
    const duckRms = rms(Int16Array.from(speaking.flatMap((f) => [...f.pcm])));
    expect(duckRms / idleRms).toBeGreaterThan(0.1 / 0.3 - 0.05);
    expect(duckRms / idleRms).toBeLessThan(0.1 / 0.3 + 0.05);
    // After the agent stops (releaseMs 300) the background comes back to its normal level.
    await h.run(1500);
    expect(h.names()).toContain("trackEnd:p1");
    const after = h.leg.captured.slice(-10);
    expect(rms(Int16Array.from(after.flatMap((f) => [...f.pcm]))) / idleRms).toBeCloseTo(1, 1);
    await h.conv.stop();
    expect(h.of("error")).toEqual([]);
    expect(rejections).toEqual([]);
  });

  it("a file that leads outside the sounds folder (symlink) is refused: error event, the call goes on without it", async () => {
    const outside = await mkdtemp(join(tmpdir(), "serial-outside-"));
    try {
      await writeFile(join(outside, "secret.wav"), encodeWav(tone(100, 16000), 16000));
      await symlink(join(outside, "secret.wav"), join(dir, "a.wav"));
      const h = new Harness({ soundsDir: dir, playbook: quiet("ambiance: { path: a.wav }") });
      await h.conv.start();
      await h.run(200);
      expect(h.of("error")[0]).toMatchObject({ sender: "playbook", code: "BAD_REQUEST" });
      expect(h.of("error")[0]!.error).toMatch(/outside the sounds folder/);
      expect(h.leg.captured).toEqual([]);
      expect(h.of("hangup")).toEqual([]);
      await h.conv.stop();
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe("SerialConversation recorder", () => {
  it("records caller left and agent right, aligned on the media clock, and reports the file at the end", async () => {
    const h = new Harness({ recordingsDir: dir, playbook: quiet("recorder: { recorderFile: 'calls/{id}-{playbook}' }") });
    let info: RecordingInfo | undefined;
    h.conv.events.on("recording", (r) => (info = r));
    await h.conv.start();
    await h.run(200);
    const click = new Int16Array(320);
    click[100] = 20000;
    await h.run(20, click); // caller frame at media time 200 ms: the click is at sample 3200 + 100
    h.conv.handleCommand({ command: "tts", text: "Hi there.", playId: "a1" });
    await h.run(1200);
    await h.conv.stop();
    expect(info?.path).toBe(join(dir, "calls", "c1-t.wav"));
    expect(h.conv.recording).toEqual(info);
    const wav = await readWav(info!.path);
    expect(info!.bytes).toBe(44 + wav.pcm.length * 2);
    expect(wav.channels).toBe(2);
    expect(wav.sampleRate).toBe(16000);
    const n = wav.pcm.length / 2;
    const left = new Int16Array(n);
    const right = new Int16Array(n);
    for (let i = 0; i < n; i++) {
      left[i] = wav.pcm[2 * i] as number;
      right[i] = wav.pcm[2 * i + 1] as number;
    }
    // Left: the caller, silence except the click exactly where the caller clock put it.
    expect(left[3300]).toBe(20000);
    expect(left.filter((x) => x !== 0).length).toBe(1);
    // Right: the agent's audio exactly as the leg sent it, at the media time it was sent for.
    const first = h.leg.captured.find((f) => f.playId === "a1")!;
    const startSample = Math.round((first.timestampMs * 16000) / 1000);
    expect(first.timestampMs).toBeGreaterThan(200);
    expect(rms(right.subarray(0, startSample))).toBe(0);
    expect(rms(right.subarray(startSample, startSample + 320))).toBeGreaterThan(1000);
    const sent = h.leg.agentAudio(0, h.leg.agentEndMs);
    expect(n).toBeGreaterThanOrEqual(sent.length);
    expect(right.subarray(0, sent.length)).toEqual(sent);
    expect(h.of("error")).toEqual([]);
    expect(rejections).toEqual([]);
  });

  it("config [recorder] enabled records a call whose playbook has none; names never leave the folder", async () => {
    const h = new Harness({ recordingsDir: dir, recorder: { enabled: true, stereo: false, samplerate: 8000 }, playbook: quiet("") });
    await h.conv.start();
    await h.run(100);
    await h.conv.stop();
    const wav = await readWav(h.conv.recording!.path);
    expect(h.conv.recording!.path).toBe(join(dir, "c1.wav"));
    expect([wav.channels, wav.sampleRate]).toEqual([1, 8000]);
    expect(() => recordingName("../x", { id: "c", date: new Date(0) })).toThrow(/inside/);
    expect(recordingName("{date}-{time}-{id}", { id: "a/b", date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) })).toBe("20240102-030405-a_b.wav");
  });
});

describe("SerialConversation denoise", () => {
  const noise = (ms: number): Int16Array => {
    let seed = 12345;
    const out = new Int16Array((ms * 16000) / 1000);
    for (let i = 0; i < out.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      out[i] = ((seed / 0x7fffffff) * 2 - 1) * 3000;
    }
    return out;
  };

  it("the denoise chain runs before VAD and ASR, per call, and is closed at the end", async () => {
    let closed = 0;
    let frames = 0;
    const registry = new ProcessorRegistry().register({
      name: "denoise",
      create: (ctx) => {
        expect(ctx).toMatchObject({ sampleRate: 16000, callId: "c1" });
        return {
          name: "denoise",
          process: (f) => {
            frames++;
            f.pcm.fill(0); // this "noise suppressor" keeps nothing of the noise-only signal
            return f;
          },
          close: () => closed++,
        };
      },
    });
    const plain = new Harness({ playbook: quiet("") });
    await plain.conv.start();
    await plain.run(600, noise(600));
    expect(plain.of("speaking").length).toBe(1);
    await plain.conv.stop();

    const h = new Harness({ processorRegistry: registry, playbook: quiet("denoise: true") });
    await h.conv.start();
    await h.run(600, noise(600));
    expect(h.of("speaking")).toEqual([]);
    expect(frames).toBeGreaterThanOrEqual(29);
    expect(closed).toBe(0);
    await h.conv.stop();
    expect(closed).toBe(1);
    expect(rejections).toEqual([]);
  });

  it("denoise {enabled: true} with the built-in RNNoise processor starts and the call runs", async () => {
    const h = new Harness({ playbook: quiet("denoise: { enabled: true, type: rnnoise }") });
    await h.conv.start();
    await h.run(400, noise(400));
    await h.conv.stop();
    expect(h.of("error")).toEqual([]);
    expect(rejections).toEqual([]);
  });
});

describe("recording file open", () => {
  it("refuses a symbolic link placed at the file after the path check (O_NOFOLLOW), leaving its target untouched", async () => {
    const outside = await mkdtemp(join(tmpdir(), "serial-outside-"));
    try {
      const recordings = join(dir, "recordings");
      const checked = await confinedWritePath(recordings, "call-1.wav");
      if (!checked.ok) throw new Error(checked.problem);
      // The race: between the check and the open, a link to a file outside the folder takes the name.
      await writeFile(join(outside, "victim"), "keep");
      await symlink(join(outside, "victim"), checked.path);
      const err = await Recorder.open({ path: checked.path, sampleRate: 16000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(`${checked.path}: is a symbolic link (not followed for writing)`);
      expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe("ELOOP");
      expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep");
      // A dangling link (nothing at its target yet) is refused too, and creates nothing there.
      const second = await confinedWritePath(recordings, "call-2.wav");
      if (!second.ok) throw new Error(second.problem);
      await symlink(join(outside, "created"), second.path);
      expect(((await Recorder.open({ path: second.path }).catch((e: unknown) => e)) as Error).message).toContain("is a symbolic link");
      expect(await readFile(join(outside, "created")).catch((e: NodeJS.ErrnoException) => e.code)).toBe("ENOENT");
      // A plain file at the name is still overwritten (O_TRUNC: the earlier semantics).
      const third = await confinedWritePath(recordings, "call-3.wav");
      if (!third.ok) throw new Error(third.problem);
      await writeFile(third.path, "old contents that are longer than a WAV header");
      const r = await Recorder.open({ path: third.path, sampleRate: 16000 });
      await r.close();
      expect((await readFile(third.path)).subarray(0, 4).toString()).toBe("RIFF");
      expect((await readFile(third.path)).length).toBe(44);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});
