/**
 * Child processes for the local engines: spawned asynchronously, their output streamed, killed on abort.
 * A missing binary becomes PROVIDER_ERROR naming the path; a failing one carries the tail of its stderr.
 */
import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { providerError } from "../retry.js";

export interface RunOptions {
  provider: string;
  signal?: AbortSignal | undefined;
  /** Written to stdin, which is then closed. */
  stdin?: string | undefined;
  /** Receives the tail of stderr once the process exited successfully. */
  onStderr?: ((text: string) => void) | undefined;
}

const STDERR_LIMIT = 2000;

/** Runs `binary args`, yielding stdout chunks; throws if the process cannot start or exits non-zero. */
export async function* runStreaming(binary: string, args: readonly string[], options: RunOptions): AsyncGenerator<Uint8Array> {
  options.signal?.throwIfAborted();
  const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => {
    stderr = (stderr + s).slice(-STDERR_LIMIT);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, sig) => resolve({ code, signal: sig }));
  });
  exited.catch(() => {});
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  options.signal?.addEventListener("abort", kill, { once: true });
  child.stdin.on("error", () => {}); // EPIPE when the engine exits early; its exit status tells the story.
  child.stdin.end(options.stdin ?? "");
  try {
    // stdout ends when the process closes it; a failed spawn (ENOENT) surfaces through `exited`.
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    const { code, signal } = await exited;
    options.signal?.throwIfAborted();
    if (code !== 0) {
      throw providerError(options.provider, `${binary} exited with ${code === null ? `signal ${signal}` : `status ${code}`}: ${lastLines(stderr)}`, {
        retryable: false,
        details: { binary },
      });
    }
    options.onStderr?.(stderr);
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES") {
      throw providerError(options.provider, `${binary}: not found or not executable (install it, or set its path in [providers.${options.provider}])`, {
        cause: err,
        retryable: false,
        details: { binary },
      });
    }
    throw err;
  } finally {
    options.signal?.removeEventListener("abort", kill);
    kill();
  }
}

/** Runs to completion and returns stdout as text. */
export async function runCollect(binary: string, args: readonly string[], options: RunOptions): Promise<string> {
  const decoder = new TextDecoder();
  let out = "";
  for await (const chunk of runStreaming(binary, args, options)) out += decoder.decode(chunk, { stream: true });
  return out + decoder.decode();
}

function lastLines(text: string): string {
  const lines = text.trim().split("\n").slice(-3).join(" | ");
  return lines === "" ? "(no stderr)" : lines;
}

const probes = new Map<string, Promise<boolean>>();

/**
 * Whether `binary` can be started (a path, or a name looked up on PATH by the OS). Found by spawning it with
 * `args` and looking only at whether the spawn succeeded; the result is cached per binary.
 */
export function binaryExists(binary: string, args: readonly string[] = ["--version"]): Promise<boolean> {
  let probe = probes.get(binary);
  if (!probe) {
    probe = new Promise<boolean>((resolve) => {
      const child = spawn(binary, args, { stdio: "ignore" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      child.once("error", () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.once("spawn", () => {
        resolve(true);
        child.once("close", () => clearTimeout(timer));
      });
    });
    probes.set(binary, probe);
  }
  return probe;
}

/** Whether a file or directory exists. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
