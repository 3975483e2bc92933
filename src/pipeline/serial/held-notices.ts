/**
 * After a barge-in the runner learns what was heard (and cuts its history to it) only once the audio released
 * before the clear has played out: the cleared mark. Until then its notice is held here, and the runner's late
 * text for that playId is dropped; at hangup every held notice runs at once.
 */
export class HeldNotices {
  private readonly all = new Set<() => void>();
  private readonly byPlayId = new Map<string, () => void>();

  /** Runs `notify` once `after` resolves (or at `flush`, whichever is first). */
  hold(playId: string, after: Promise<unknown>, notify: () => void): void {
    let done = false;
    const run = (): void => {
      if (done) return;
      done = true;
      this.all.delete(run);
      if (this.byPlayId.get(playId) === run) this.byPlayId.delete(playId);
      notify();
    };
    this.all.add(run);
    this.byPlayId.set(playId, run);
    void after.then(run);
  }

  /** A notice for `playId` is still held. */
  has(playId: string): boolean {
    return this.byPlayId.has(playId);
  }

  flush(): void {
    for (const run of [...this.all]) run();
  }
}
