/**
 * `play` sources (ws-call-api.md §3.5): a file confined to the sounds folder, or an http(s) download (10 s, 20 MB
 * maximum) cached under the cache folder by URL and revalidated with its ETag. Decodes WAV (any of decodeWav's
 * encodings, mixed down to mono) and raw `.pcm`/`.raw` (s16le, 16 kHz, mono). All file I/O is asynchronous and
 * every step honours the utterance's abort signal.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { extname, join } from "node:path";
import type { AudioFrame } from "../../audio/index.js";
import { decodeWav, downmixToMono, resample } from "../../audio/index.js";
import { AppError, isAppError } from "../../errors.js";
import { resolveSoundFile, resolveSoundFileAsync } from "../../playbook/files.js";
import { deadline } from "../../util/deadline.js";

export const DOWNLOAD_TIMEOUT_MS = 10_000;
export const DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024;
/** Raw `.pcm`/`.raw` files: s16le mono at this rate. */
export const RAW_PCM_RATE = 16_000;

export interface SoundSourceOptions {
  /** Relative urls are read from here (default the working directory). */
  soundsDir?: string | undefined;
  /** Downloads are cached here by URL (with their ETag); no caching when unset. */
  cacheDir?: string | undefined;
  timeoutMs?: number | undefined;
  maxBytes?: number | undefined;
}

export const isHttpUrl = (url: string): boolean => /^https?:\/\//i.test(url);
export const isPbxUrl = (url: string): boolean => /^pbx:/i.test(url);

/**
 * The synchronous shape check of a `play` url (no I/O): BAD_REQUEST for an absolute path, `..`, a template or an
 * unknown scheme. `pbx:` and http(s) urls pass.
 */
export function checkPlayUrl(url: string): void {
  if (isHttpUrl(url) || isPbxUrl(url)) {
    if (isHttpUrl(url)) {
      try {
        new URL(url);
      } catch {
        throw badUrl(`play url ${url} is not a valid URL`);
      }
    }
    return;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) || /^file:/i.test(url)) throw badUrl(`play url ${url}: unsupported scheme (use a sounds-folder path, http(s):// or pbx:)`);
  if (/\{[{%]/.test(url)) throw badUrl(`play url ${url} is a template`);
  const shape = resolveSoundFile(url, undefined);
  if (!shape.ok) throw badUrl(`play url ${url} ${shape.problem}`);
}

const badUrl = (message: string): AppError => new AppError("BAD_REQUEST", message, { details: { fields: [{ path: "url", message }] } });

/**
 * A `play` url as PCM at `rate` (the leg's agent rate), for either pipeline; `load` defaults to loadSoundSource.
 * Any failure is PLAYBACK_ERROR naming the url (an AppError from the loader keeps its own code).
 */
export async function loadSoundPcm(
  url: string,
  signal: AbortSignal,
  rate: number,
  options: SoundSourceOptions = {},
  load: (url: string, signal: AbortSignal) => Promise<AudioFrame> = (u, s) => loadSoundSource(u, s, options),
): Promise<Int16Array> {
  let frame: AudioFrame;
  try {
    frame = await load(url, signal);
  } catch (err) {
    throw isAppError(err) ? err : new AppError("PLAYBACK_ERROR", `cannot play ${url}: ${(err as Error).message}`, { cause: err });
  }
  return frame.sampleRate === rate ? frame.pcm : resample(frame.pcm, frame.sampleRate, rate);
}

/** Loads and decodes a `play` url (not `pbx:`): mono PCM16 at the file's rate. */
export async function loadSoundSource(url: string, signal: AbortSignal, options: SoundSourceOptions = {}): Promise<AudioFrame> {
  let bytes: Uint8Array;
  let name: string;
  if (isHttpUrl(url)) {
    bytes = await download(url, signal, options);
    name = new URL(url).pathname;
  } else {
    checkPlayUrl(url);
    const soundsDir = options.soundsDir ?? ".";
    const file = await resolveSoundFileAsync(url, soundsDir);
    if (!file.ok) {
      // Missing files are a playback error; a path leading out of the folder is a bad request (never read).
      if (/leads outside/.test(file.problem)) throw badUrl(`play url ${url} ${file.problem}`);
      throw new AppError("PLAYBACK_ERROR", `cannot play ${url}: ${file.problem}`);
    }
    if (file.path === undefined) throw badUrl(`play url ${url} is a template`);
    signal.throwIfAborted();
    try {
      bytes = await readFile(file.path, { signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new AppError("PLAYBACK_ERROR", `cannot open ${url}: ${(err as Error).message}`, { cause: err });
    }
    name = url;
  }
  signal.throwIfAborted();
  return decodeSound(bytes, name);
}

/** WAV (by its RIFF header) or raw s16le 16 kHz mono (`.pcm`/`.raw`); anything else is PLAYBACK_ERROR. */
export function decodeSound(bytes: Uint8Array, name: string): AudioFrame {
  const ext = extname(name).toLowerCase();
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 4)).toString("latin1");
  if (head === "RIFF" || ext === ".wav") {
    try {
      const wav = decodeWav(bytes, name);
      const pcm = wav.channels > 1 ? downmixToMono(wav.pcm, wav.channels) : wav.pcm;
      return { pcm, sampleRate: wav.sampleRate, timestampMs: 0 };
    } catch (err) {
      throw new AppError("PLAYBACK_ERROR", `cannot decode ${name}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (ext === ".pcm" || ext === ".raw") {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pcm = new Int16Array(bytes.length >> 1);
    for (let i = 0; i < pcm.length; i++) pcm[i] = view.getInt16(i * 2, true);
    return { pcm, sampleRate: RAW_PCM_RATE, timestampMs: 0 };
  }
  const mp3 = ext === ".mp3" || head.startsWith("ID3") || (bytes.length > 1 && bytes[0] === 0xff && ((bytes[1] as number) & 0xe0) === 0xe0);
  if (mp3) throw new AppError("PLAYBACK_ERROR", `cannot play ${name}: MP3 is not supported yet`);
  throw new AppError("PLAYBACK_ERROR", `cannot play ${name}: unknown audio format (WAV, .pcm or .raw expected)`);
}

interface CacheMeta {
  url: string;
  etag: string;
}

/** Downloads `url` (revalidating a cached copy by ETag when `cacheDir` is set). */
export async function download(url: string, signal: AbortSignal, options: SoundSourceOptions = {}): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? DOWNLOAD_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DOWNLOAD_MAX_BYTES;
  const key = createHash("sha256").update(url).digest("hex");
  const cacheDir = options.cacheDir;
  const bodyPath = cacheDir !== undefined ? join(cacheDir, `${key}.bin`) : undefined;
  const metaPath = cacheDir !== undefined ? join(cacheDir, `${key}.json`) : undefined;
  let meta: CacheMeta | undefined;
  if (metaPath !== undefined) {
    try {
      const m = JSON.parse(await readFile(metaPath, { encoding: "utf8", signal })) as Partial<CacheMeta>;
      if (m.url === url && typeof m.etag === "string") meta = { url, etag: m.etag };
    } catch {
      meta = undefined;
    }
  }
  const limit = deadline(timeoutMs, signal);
  const all = limit.signal;
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers: Record<string, string> = {};
      if (meta && attempt === 0) headers["if-none-match"] = meta.etag;
      const res = await fetch(url, { signal: all, headers, redirect: "follow" });
      if (res.status === 304 && meta && bodyPath !== undefined) {
        await res.body?.cancel();
        try {
          return await readFile(bodyPath, { signal: all });
        } catch (err) {
          if (all.aborted) throw err;
          meta = undefined; // the cached body is gone: fetch it again, unconditionally
          continue;
        }
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new AppError("PLAYBACK_ERROR", `cannot download ${url}: HTTP ${res.status}`);
      }
      const body = await readLimited(res, maxBytes, url);
      const etag = res.headers.get("etag");
      if (cacheDir !== undefined && bodyPath !== undefined && metaPath !== undefined && etag) {
        await store(cacheDir, bodyPath, metaPath, body, { url, etag }).catch(() => undefined);
      }
      return body;
    }
    throw new AppError("PLAYBACK_ERROR", `cannot download ${url}: the cached copy vanished`);
  } catch (err) {
    if (signal.aborted) throw err;
    if (limit.timedOut) throw new AppError("PLAYBACK_ERROR", `cannot download ${url}: no complete answer within ${timeoutMs} ms`, { cause: err });
    if (isAppError(err)) throw err;
    throw new AppError("PLAYBACK_ERROR", `cannot download ${url}: ${(err as Error).message}`, { cause: err });
  } finally {
    limit.clear();
  }
}

/** The response body, refusing (and no longer reading) anything beyond `maxBytes`. */
async function readLimited(res: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const tooBig = (): AppError => new AppError("PLAYBACK_ERROR", `cannot download ${url}: larger than ${maxBytes} bytes`);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw tooBig();
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooBig();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/** Writes the body and its ETag atomically (temporary file + rename). */
async function store(cacheDir: string, bodyPath: string, metaPath: string, body: Uint8Array, meta: CacheMeta): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const tmp = `.${randomUUID()}.tmp`;
  const bodyTmp = `${bodyPath}${tmp}`;
  const metaTmp = `${metaPath}${tmp}`;
  try {
    await writeFile(bodyTmp, body);
    await writeFile(metaTmp, JSON.stringify(meta));
    await rename(bodyTmp, bodyPath);
    await rename(metaTmp, metaPath);
  } finally {
    await unlink(bodyTmp).catch(() => undefined);
    await unlink(metaTmp).catch(() => undefined);
  }
}
