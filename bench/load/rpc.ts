/** A child process (bench/load/peers.ts or controller.ts) driven over IPC: `call(cmd, args)` -> its reply. */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export class Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  exitCode: number | null | undefined;
  private next = 1;
  private readonly pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();

  constructor(script: string, args: string[] = [], execArgv: string[] = []) {
    this.proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, { execArgv: [...process.execArgv, ...execArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.ready = new Promise((resolve) => this.proc.once("message", () => resolve()));
    this.proc.on("message", (m: { id?: number; result?: unknown; error?: string }) => {
      const p = m.id === undefined ? undefined : this.pending.get(m.id);
      if (!p || m.id === undefined) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.fail(new Error(m.error));
      else p.ok(m.result);
    });
    this.proc.on("exit", (code) => {
      this.exitCode = code;
      for (const p of this.pending.values()) p.fail(new Error(`${script} exited (${code})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  async call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    await this.ready;
    const id = this.next++;
    return new Promise<T>((ok, fail) => {
      this.pending.set(id, { ok: ok as (v: unknown) => void, fail });
      this.proc.send({ id, cmd, args });
    });
  }
}
