/**
 * The post-call hook spool (config.md §2.12): one JSON file per delivery under `<paths.spool>/posthook/`,
 * written atomically and fsynced before the first attempt, so a crash or restart loses no hook.
 * Files that fail for good (or cannot be read back) move to `failed/`.
 */
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

export interface HookEntry {
  deliveryId: string;
  url: string;
  method: "POST" | "PUT";
  headers: Record<string, string>;
  timeoutMs: number;
  /** The payload of playbook.md §6; `summary` stays null until the summary is made. */
  payload: Record<string, unknown>;
  /** What the summariser needs; present while the summary is still to be made (also after a restart). */
  pendingSummary?: Record<string, unknown> | undefined;
  /** Attempts made so far. */
  attempts: number;
  createdAt: string;
}

const ID = /^[A-Za-z0-9._-]{1,128}$/;

export class HookSpool {
  readonly dir: string;
  readonly failedDir: string;

  constructor(spoolRoot: string) {
    this.dir = join(spoolRoot, "posthook");
    this.failedDir = join(this.dir, "failed");
  }

  async init(): Promise<void> {
    await mkdir(this.failedDir, { recursive: true });
  }

  /**
   * Writes (or rewrites) an entry atomically (temp file, rename). `durable` (the default) also fsyncs the file and
   * the folder, so the entry survives a power loss, not only a crash of the process: a new hook and its summary
   * are written so. A rewrite of the attempt count is not: the page cache keeps it through a `kill -9`, and losing
   * it to a power cut only repeats an attempt number (the delivery id still dedupes). Two fsyncs fewer per
   * attempt is what keeps delivery ahead of hundreds of calls ending a minute.
   */
  async write(entry: HookEntry, durable = true): Promise<void> {
    const file = this.pathOf(entry.deliveryId);
    const tmp = `${file}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(JSON.stringify(entry));
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    if (durable) await syncDir(this.dir);
  }

  async remove(deliveryId: string): Promise<void> {
    await rm(this.pathOf(deliveryId), { force: true });
  }

  async moveToFailed(deliveryId: string): Promise<void> {
    await rename(this.pathOf(deliveryId), join(this.failedDir, `${deliveryId}.json`)).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  /** Every pending entry; unreadable files are moved to failed/ and reported through `onBad`. */
  async list(onBad: (file: string, err: unknown) => void): Promise<HookEntry[]> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith(".json")).sort();
    const out: HookEntry[] = [];
    for (const name of names) {
      const file = join(this.dir, name);
      try {
        const entry = JSON.parse(await readFile(file, "utf8")) as HookEntry;
        if (!ID.test(entry.deliveryId) || typeof entry.url !== "string" || typeof entry.payload !== "object") throw new Error("not a hook entry");
        out.push(entry);
      } catch (err) {
        onBad(file, err);
        await rename(file, join(this.failedDir, name)).catch(() => undefined);
      }
    }
    return out;
  }

  private pathOf(deliveryId: string): string {
    // Ids are made by us, but a file name must never be able to leave the spool folder.
    if (!ID.test(deliveryId)) throw new Error(`invalid delivery id ${JSON.stringify(deliveryId)}`);
    return join(this.dir, `${deliveryId}.json`);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
