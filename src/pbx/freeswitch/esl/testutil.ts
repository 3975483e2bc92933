// Test helpers: the FreeSWITCH ESL recordings (../shared/fixtures/freeswitch beside the repository), a seeded
// random generator and a replay peer. Not imported by app code.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type net from "node:net";
import { sharedFixtures } from "../../../../test/shared-fixtures.js";

export const FS_FIXTURES = sharedFixtures("freeswitch");

export interface Chunk {
  t_ms: number;
  dir: "c2s" | "s2c";
  offset: number;
  len: number;
  data: Buffer;
}

export interface Session {
  folder: string;
  name: string;
  c2s: Buffer;
  s2c: Buffer;
  chunks: Chunk[];
  /** events.json of the folder (one session per folder where present). */
  events: Record<string, string>[] | undefined;
}

export function loadSession(folder: string, name: string): Session {
  const dir = join(FS_FIXTURES, folder);
  const chunks = readFileSync(join(dir, `${name}.chunks.jsonl`), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const j = JSON.parse(l) as { t_ms: number; dir: "c2s" | "s2c"; offset: number; len: number; b64: string };
      return { t_ms: j.t_ms, dir: j.dir, offset: j.offset, len: j.len, data: Buffer.from(j.b64, "base64") };
    });
  const eventsPath = join(dir, "events.json");
  return {
    folder,
    name,
    c2s: readFileSync(join(dir, `${name}.c2s.bin`)),
    s2c: readFileSync(join(dir, `${name}.s2c.bin`)),
    chunks,
    events: existsSync(eventsPath) ? (JSON.parse(readFileSync(eventsPath, "utf8")) as Record<string, string>[]) : undefined,
  };
}

export function allSessions(): Session[] {
  const out: Session[] = [];
  for (const folder of readdirSync(FS_FIXTURES).filter((f) => f.startsWith("esl-")).sort()) {
    for (const f of readdirSync(join(FS_FIXTURES, folder)).sort()) {
      if (f.endsWith(".s2c.bin")) out.push(loadSession(folder, f.slice(0, -".s2c.bin".length)));
    }
  }
  return out;
}

/** mulberry32: a tiny seeded PRNG. */
export function rng(seed: number): { next(): number; int(n: number): number; pick<T>(a: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: <T>(arr: readonly T[]): T => arr[int(arr.length)] as T };
}

/** Splits `buf` at random points (1..maxLen bytes per piece). */
export function randomSplit(buf: Buffer, r: ReturnType<typeof rng>, maxLen: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + r.int(maxLen);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/**
 * Plays one side of a recorded session on a socket: each chunk of `playDir` is written once every byte the other
 * side sent before it (in the recording's order) has been received. Records everything received.
 */
export class ReplayPeer {
  received = Buffer.alloc(0);
  /** Resolves when every recorded chunk of ours is written. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private next = 0;
  private finished = false;
  private readonly socket: net.Socket;

  constructor(
    socket: net.Socket,
    private readonly chunks: Chunk[],
    private readonly playDir: "c2s" | "s2c",
    private readonly o: { closeWhenDone?: boolean } = {},
  ) {
    this.socket = socket;
    this.done = new Promise((r) => (this.resolveDone = r));
    socket.on("data", (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.pump();
    });
    socket.on("error", () => undefined);
    this.pump();
  }

  private pump(): void {
    let expected = 0;
    for (let i = 0; i < this.next; i++) {
      const c = this.chunks[i];
      if (c && c.dir !== this.playDir) expected += c.len;
    }
    while (this.next < this.chunks.length) {
      const c = this.chunks[this.next] as Chunk;
      if (c.dir !== this.playDir) {
        expected += c.len;
        this.next++;
        continue;
      }
      if (this.received.length < expected) return;
      this.socket.write(c.data);
      this.next++;
    }
    if (this.finished) return;
    this.finished = true;
    this.resolveDone();
    if (this.o.closeWhenDone) this.socket.end();
  }
}
