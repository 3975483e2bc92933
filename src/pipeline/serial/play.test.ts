import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeWav } from "../../audio/index.js";
import { DOWNLOAD_MAX_BYTES, DOWNLOAD_TIMEOUT_MS, download } from "../core/sound-source.js";
import { Harness, type HarnessOptions, TestPbxPlayer, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();
afterEach(() => {
  expect(rejections).toEqual([]);
});

const NO_GREETING = `---\nllm: { provider: scripted }\ngreeting: false\n---\nBe brief.\n`;

/** `ms` of a constant non-zero sample at `rate`, `channels` interleaved. */
function pcmOf(ms: number, rate = 16000, channels = 1, value = 1000): Int16Array {
  return new Int16Array(Math.round((ms * rate) / 1000) * channels).fill(value);
}

function rawBytes(pcm: Int16Array): Buffer {
  const b = Buffer.alloc(pcm.length * 2);
  pcm.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

let root: string;
let sounds: string;
let outside: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "play-test-"));
  sounds = join(root, "sounds");
  outside = join(root, "outside");
  await mkdir(join(sounds, "sub"), { recursive: true });
  await mkdir(outside);
  await writeFile(join(sounds, "a.wav"), encodeWav(pcmOf(200), 16000));
  await writeFile(join(sounds, "sub", "stereo8k.wav"), encodeWav(pcmOf(300, 8000, 2), 8000, 2));
  await writeFile(join(sounds, "b.raw"), rawBytes(pcmOf(100)));
  await writeFile(join(sounds, "c.pcm"), rawBytes(pcmOf(100)));
  await writeFile(join(sounds, "song.mp3"), Buffer.from([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xfb, 0x90, 0x00]));
  await writeFile(join(sounds, "junk.wav"), Buffer.from("definitely not audio"));
  await writeFile(join(outside, "secret.wav"), encodeWav(pcmOf(200), 16000));
  await symlink(join(outside, "secret.wav"), join(sounds, "link.wav"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function started(options: HarnessOptions = {}): Promise<Harness> {
  const h = new Harness({ playbook: NO_GREETING, soundsDir: sounds, ...options });
  await h.conv.start();
  await h.run(100);
  return h;
}

/** Lets real I/O (files, sockets) progress while the media clock runs, until `done` or ~3 s of real time. */
async function runUntil(h: Harness, done: () => boolean, maxSteps = 300): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    await h.run(20);
  }
}

const ended = (h: Harness, playId: string) => () => h.of("trackEnd").some((e) => e.playId === playId);

describe("play: sources confined to the sounds folder (§3.5)", () => {
  it("plays a relative path (also in a sub-folder, stereo 8 kHz mixed down) with trackStart/trackEnd", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav" });
    h.conv.handleCommand({ command: "play", url: "sub/stereo8k.wav", playId: "s", queue: true });
    await runUntil(h, ended(h, "s"));
    // The pacer starts the next utterance while the last frame of the previous one is in its lead.
    expect(h.names()).toEqual(["trackStart:a.wav", "trackStart:s", "trackEnd:a.wav", "trackEnd:s"]);
    const ends = h.of("trackEnd");
    expect(ends.map((e) => e.reason)).toEqual(["finished", "finished"]);
    expect(ends[0]?.duration).toBeCloseTo(200, -1);
    expect(ends[1]?.duration).toBeCloseTo(300, -1);
  });

  it("rejects .., absolute paths, other schemes and symlinks leading out with BAD_REQUEST (never read)", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav", playId: "keep" });
    await h.run(60);
    h.conv.handleCommand({ command: "play", url: "../outside/secret.wav" });
    h.conv.handleCommand({ command: "play", url: "sub/../../outside/secret.wav" });
    h.conv.handleCommand({ command: "play", url: join(outside, "secret.wav") });
    h.conv.handleCommand({ command: "play", url: "file:///etc/passwd" });
    // These four fail before anything happens: what plays is not replaced.
    expect(h.of("error").map((e) => [e.code, e.sender])).toEqual(Array(4).fill(["BAD_REQUEST", "command"]));
    expect(h.of("trackEnd")).toEqual([]);
    h.conv.handleCommand({ command: "play", url: "link.wav", playId: "link", queue: true });
    await runUntil(h, ended(h, "link"));
    expect(h.of("error")[4]).toMatchObject({ code: "BAD_REQUEST" });
    expect(h.of("error")[4]?.error).toMatch(/outside the sounds folder/);
    expect(h.of("trackEnd").find((e) => e.playId === "link")).toMatchObject({ reason: "error", duration: 0 });
    expect(h.of("trackStart").map((e) => e.playId)).toEqual(["keep"]);
    expect(h.leg.captured.some((f) => f.playId === "link")).toBe(false);
    await runUntil(h, ended(h, "keep"));
    expect(h.of("trackEnd").find((e) => e.playId === "keep")?.reason).toBe("finished");
  });
});

describe("play: formats", () => {
  it("raw .pcm/.raw are s16le 16 kHz mono", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "b.raw" });
    h.conv.handleCommand({ command: "play", url: "c.pcm", queue: true });
    await runUntil(h, ended(h, "c.pcm"));
    expect(h.of("trackEnd").map((e) => [e.playId, e.reason, Math.round(e.duration / 10) * 10])).toEqual([
      ["b.raw", "finished", 100],
      ["c.pcm", "finished", 100],
    ]);
  });

  it("an MP3 or undecodable file: error PLAYBACK_ERROR, trackEnd error, then the next queued utterance plays", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "song.mp3" });
    h.conv.handleCommand({ command: "play", url: "junk.wav", queue: true });
    h.conv.handleCommand({ command: "play", url: "missing.wav", queue: true });
    h.conv.handleCommand({ command: "play", url: "a.wav", queue: true });
    await runUntil(h, ended(h, "a.wav"));
    expect(h.names()).toEqual([
      "error",
      "trackEnd:song.mp3",
      "error",
      "trackEnd:junk.wav",
      "error",
      "trackEnd:missing.wav",
      "trackStart:a.wav",
      "trackEnd:a.wav",
    ]);
    expect(h.of("error").map((e) => e.code)).toEqual(["PLAYBACK_ERROR", "PLAYBACK_ERROR", "PLAYBACK_ERROR"]);
    expect(h.of("error")[0]?.error).toMatch(/MP3/);
    expect(h.of("trackEnd").map((e) => e.reason)).toEqual(["error", "error", "error", "finished"]);
  });

  it("a failing queued play does not cut the utterance playing before it", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav" });
    await h.run(40);
    h.conv.handleCommand({ command: "play", url: "song.mp3", queue: true });
    await runUntil(h, ended(h, "a.wav"));
    expect(h.of("trackEnd").map((e) => [e.playId, e.reason])).toEqual([
      ["song.mp3", "error"],
      ["a.wav", "finished"],
    ]);
    expect(h.of("trackEnd")[1]?.duration).toBeCloseTo(200, -1);
  });
});

describe("play: loop", () => {
  it("loop 3 plays three times the file's duration", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav", loop: 3 });
    await runUntil(h, ended(h, "a.wav"));
    expect(h.of("trackEnd")[0]).toMatchObject({ reason: "finished" });
    expect(h.of("trackEnd")[0]?.duration).toBeCloseTo(600, -1);
    expect(h.leg.captured.filter((f) => f.playId === "a.wav").length).toBe(30);
  });

  it("loop 0 keeps playing until an interrupt, without queueing more than about a second ahead", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav", loop: 0, playId: "bg" });
    await runUntil(h, () => false, 250); // 5 s of media time
    expect(h.of("trackEnd")).toEqual([]);
    const status = h.leg.status("bg");
    expect(status?.playedMs).toBeGreaterThan(4500);
    expect((status?.totalMs ?? 0) - (status?.playedMs ?? 0)).toBeLessThanOrEqual(1300);
    h.conv.handleCommand({ command: "interrupt" });
    await h.run(100);
    expect(h.of("trackEnd")[0]).toMatchObject({ playId: "bg", reason: "interrupted" });
    const frames = h.leg.captured.filter((f) => f.playId === "bg").length;
    await h.run(500);
    expect(h.leg.captured.filter((f) => f.playId === "bg").length).toBe(frames);
  });

  it("loop must be a non-negative integer", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav", loop: -1 });
    h.conv.handleCommand({ command: "play", url: "a.wav", loop: 1.5 });
    expect(h.of("error").map((e) => e.code)).toEqual(["BAD_REQUEST", "BAD_REQUEST"]);
  });
});

describe("play: pbx:<target> with a PBX player", () => {
  it("plays after what is queued before it, reports trackStart/trackEnd from the PBX, loops, and an interrupt stops it on the PBX", async () => {
    const pbx = new TestPbxPlayer();
    const h = await started({ pbxPlayer: pbx });
    h.conv.handleCommand({ command: "play", url: "a.wav", playId: "first" });
    h.conv.handleCommand({ command: "play", url: "pbx:tone_stream://%(100,100,440)", playId: "tone", queue: true, loop: 2 });
    await runUntil(h, () => h.of("trackStart").length > 0);
    // The PBX is not asked while the leg still plays the file queued before it.
    expect(pbx.plays).toHaveLength(0);
    await runUntil(h, () => pbx.plays.length > 0);
    expect(h.names().slice(0, 2)).toEqual(["trackStart:first", "trackEnd:first"]);
    expect(pbx.plays[0]).toMatchObject({ target: "tone_stream://%(100,100,440)", playId: "tone" });
    pbx.plays[0]?.start();
    await runUntil(h, () => h.of("trackStart").some((e) => e.playId === "tone"));
    pbx.plays[0]?.finish("done");
    await runUntil(h, () => pbx.plays.length === 2);
    pbx.plays[1]?.start();
    pbx.plays[1]?.finish("done");
    await runUntil(h, ended(h, "tone"));
    expect(h.names()).toEqual(["trackStart:first", "trackEnd:first", "trackStart:tone", "trackEnd:tone"]);
    expect(h.of("trackEnd")[1]?.reason).toBe("finished");

    h.conv.handleCommand({ command: "play", url: "pbx:/usr/share/freeswitch/sounds/hold.wav", playId: "hold", loop: 0 });
    await runUntil(h, () => pbx.plays.length === 3);
    pbx.plays[2]?.start();
    await runUntil(h, () => h.of("trackStart").some((e) => e.playId === "hold"));
    // pause/resume reach the PBX while its playback is the current utterance, once each.
    h.conv.handleCommand({ command: "pause" });
    h.conv.handleCommand({ command: "pause" });
    h.conv.handleCommand({ command: "resume" });
    expect(pbx.pauses).toEqual([true, false]);
    h.conv.handleCommand({ command: "interrupt" });
    await runUntil(h, ended(h, "hold"));
    expect(pbx.stops).toBe(1);
    expect(h.of("trackEnd").find((e) => e.playId === "hold")?.reason).toBe("interrupted");
    // An endless loop stopped by the PBX does not start again.
    await h.run(200);
    expect(pbx.plays).toHaveLength(3);
  });
});

describe("play: pbx:<target>", () => {
  it("is UNSUPPORTED on this engine and leaves what plays alone", async () => {
    const h = await started();
    h.conv.handleCommand({ command: "play", url: "a.wav", playId: "keep" });
    await runUntil(h, () => h.of("trackStart").length > 0);
    h.conv.handleCommand({ command: "play", url: "pbx:tone_stream://%(100,100,440)" });
    expect(h.of("error")).toMatchObject([{ code: "UNSUPPORTED", sender: "command" }]);
    await runUntil(h, ended(h, "keep"));
    expect(h.names()).toEqual(["trackStart:keep", "error", "trackEnd:keep"]);
    expect(h.of("trackEnd")[0]?.reason).toBe("finished");
  });
});

// ------------------------------------------------------------------------------------------------ http(s)

interface TestServer {
  url: string;
  requests: { path: string; ifNoneMatch: string | undefined }[];
  /** Bytes written by the endless / slow routes before the client went away. */
  sent: { endless: number; closedSlow: boolean };
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const wav = Buffer.from(encodeWav(pcmOf(200), 16000));
  const requests: TestServer["requests"] = [];
  const sent = { endless: 0, closedSlow: false };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    const inm = req.headers["if-none-match"];
    requests.push({ path, ifNoneMatch: typeof inm === "string" ? inm : undefined });
    if (path === "/a.wav") {
      if (inm === '"v1"') {
        res.writeHead(304, { etag: '"v1"' }).end();
        return;
      }
      res.writeHead(200, { "content-type": "audio/wav", etag: '"v1"', "content-length": wav.length }).end(wav);
    } else if (path === "/noetag.raw") {
      res.writeHead(200).end(rawBytes(pcmOf(100)));
    } else if (path === "/big.wav") {
      res.writeHead(200, { "content-length": 5_000_000 }).end(Buffer.alloc(5_000_000));
    } else if (path === "/endless.wav") {
      res.writeHead(200, { "content-type": "audio/wav" });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && sent.endless < 64 * 1024 * 1024) {
          sent.endless += chunk.length;
          if (!res.write(chunk)) {
            res.once("drain", pump);
            return;
          }
        }
        if (!res.destroyed) res.end();
      };
      pump();
    } else if (path === "/slow.wav") {
      res.on("close", () => (sent.closedSlow = true));
      res.writeHead(200);
      res.write(Buffer.from("RIFF"));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("play: http(s) downloads", () => {
  let srv: TestServer;
  let cache: string;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv.close();
  });
  afterEach(async () => {
    srv.requests.length = 0;
    if (cache) await rm(cache, { recursive: true, force: true });
  });

  it("limits are 10 s and 20 MB", () => {
    expect(DOWNLOAD_TIMEOUT_MS).toBe(10_000);
    expect(DOWNLOAD_MAX_BYTES).toBe(20 * 1024 * 1024);
  });

  it("downloads, caches by URL, and revalidates with If-None-Match (304 uses the cached file)", async () => {
    cache = await mkdtemp(join(tmpdir(), "play-cache-"));
    const h = await started({ cacheDir: join(cache, "sub") });
    h.conv.handleCommand({ command: "play", url: `${srv.url}/a.wav`, playId: "one" });
    await runUntil(h, ended(h, "one"));
    expect(h.of("trackEnd")[0]).toMatchObject({ playId: "one", reason: "finished" });
    expect(h.of("trackEnd")[0]?.duration).toBeCloseTo(200, -1);
    expect((await readdir(join(cache, "sub"))).sort()).toHaveLength(2);

    h.conv.handleCommand({ command: "play", url: `${srv.url}/a.wav`, playId: "two" });
    await runUntil(h, ended(h, "two"));
    expect(h.of("trackEnd")[1]).toMatchObject({ playId: "two", reason: "finished" });
    expect(h.of("trackEnd")[1]?.duration).toBeCloseTo(200, -1);
    expect(srv.requests).toEqual([
      { path: "/a.wav", ifNoneMatch: undefined },
      { path: "/a.wav", ifNoneMatch: '"v1"' },
    ]);
    expect(h.of("error")).toEqual([]);
  });

  it("a response without ETag is played but not cached; no cacheDir means no cache", async () => {
    cache = await mkdtemp(join(tmpdir(), "play-cache-"));
    const signal = new AbortController().signal;
    expect((await download(`${srv.url}/noetag.raw`, signal, { cacheDir: cache })).length).toBe(3200);
    expect(await readdir(cache)).toEqual([]);
    await download(`${srv.url}/a.wav`, signal, {});
    await download(`${srv.url}/a.wav`, signal, {});
    expect(srv.requests.map((r) => r.ifNoneMatch)).toEqual([undefined, undefined, undefined]);
  });

  it("refuses bodies over the maximum, declared or streamed, and stops reading", async () => {
    const signal = new AbortController().signal;
    await expect(download(`${srv.url}/big.wav`, signal, { maxBytes: 1_000_000 })).rejects.toMatchObject({ code: "PLAYBACK_ERROR" });
    await expect(download(`${srv.url}/endless.wav`, signal, { maxBytes: 1_000_000 })).rejects.toMatchObject({
      code: "PLAYBACK_ERROR",
      message: expect.stringMatching(/larger than 1000000 bytes/),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(srv.sent.endless).toBeLessThan(16 * 1024 * 1024);
  });

  it("times out (PLAYBACK_ERROR) and 404 is a PLAYBACK_ERROR", async () => {
    const signal = new AbortController().signal;
    await expect(download(`${srv.url}/slow.wav`, signal, { timeoutMs: 200 })).rejects.toMatchObject({ code: "PLAYBACK_ERROR", message: expect.stringMatching(/200 ms/) });
    await expect(download(`${srv.url}/nope.wav`, signal)).rejects.toMatchObject({ code: "PLAYBACK_ERROR", message: expect.stringMatching(/HTTP 404/) });
  });

  it("the download stops when the utterance is interrupted, and when the call ends", async () => {
    const h = await started();
    srv.sent.closedSlow = false;
    h.conv.handleCommand({ command: "play", url: `${srv.url}/slow.wav`, playId: "slow" });
    await runUntil(h, () => srv.requests.length > 0);
    h.conv.handleCommand({ command: "interrupt" });
    await runUntil(h, () => srv.sent.closedSlow, 100);
    expect(srv.sent.closedSlow).toBe(true);
    expect(h.of("error")).toEqual([]);

    srv.sent.closedSlow = false;
    h.conv.handleCommand({ command: "play", url: `${srv.url}/slow.wav`, playId: "slow2" });
    await runUntil(h, () => srv.requests.length > 1);
    await h.conv.stop();
    for (let i = 0; i < 100 && !srv.sent.closedSlow; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(srv.sent.closedSlow).toBe(true);
    expect(h.of("error")).toEqual([]);
  });
});
