/**
 * The per-call JSONL dump (ws-call-api.md §1.1 `dump`): every event and command of a call, one line each,
 * `{"type":"event"|"command","timestamp":<ms>,"content":<object>}`. Appended through one write stream, so a
 * call never waits on the disk; a write error disables the dump of that call (logged once), never the call.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { resolve } from "node:path";
import type { Logger } from "../log.js";

export class EventDump {
  readonly path: string;
  private stream: WriteStream | undefined;
  private failed = false;

  constructor(dir: string, callId: string, private readonly log: Logger) {
    // Call ids match ^[A-Za-z0-9._:@-]{1,128}$ (no separator), so the file cannot leave `dir`.
    this.path = resolve(dir, `${callId}.events.jsonl`);
    this.stream = createWriteStream(this.path, { flags: "a" });
    this.stream.on("error", (err) => {
      if (!this.failed) log.warn({ err, path: this.path }, "event dump failed; this call is no longer dumped");
      this.failed = true;
      this.stream = undefined;
    });
  }

  write(type: "event" | "command", content: unknown, timestamp = Date.now()): void {
    if (!this.stream || this.failed) return;
    this.stream.write(`${JSON.stringify({ type, timestamp, content })}\n`);
  }

  /** Flushes and closes; resolves when the file is complete. */
  close(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    if (!s) return Promise.resolve();
    return new Promise((done) => s.end(() => done()));
  }
}
