/**
 * What the ASR said about each utterance so far (its latest partial, its final, whether it failed), indexed by
 * the session's utterance number. The turn detector asks it for "the best text we have" and "is it final".
 */
import type { AsrResult } from "../../providers/types.js";

interface Entry {
  partial: string;
  final: string | undefined;
  failed: boolean;
  /** When the final or failure arrived. */
  doneAtMs: number;
}

export class UtteranceTranscripts {
  private readonly entries = new Map<number, Entry>();

  /** Records a result. Returns false for a result about an utterance that was already finished (ignored). */
  apply(result: AsrResult, atMs: number): boolean {
    const e = this.entry(result.utterance);
    if (e.final !== undefined || e.failed) return false;
    if (result.type === "partial") e.partial = result.text;
    else if (result.type === "final") e.final = result.text;
    else e.failed = true;
    if (result.type !== "partial") e.doneAtMs = atMs;
    return true;
  }

  /** When the utterance was done (see isDone), or undefined. */
  doneAtMs(utterance: number): number | undefined {
    return this.isDone(utterance) ? this.entries.get(utterance)?.doneAtMs : undefined;
  }

  /** A final (possibly empty) or a failure arrived: nothing more will come for this utterance. */
  isDone(utterance: number): boolean {
    const e = this.entries.get(utterance);
    return e !== undefined && (e.final !== undefined || e.failed);
  }

  hasFinal(utterance: number): boolean {
    return this.entries.get(utterance)?.final !== undefined;
  }

  /** The final text, else the latest partial (also after a failure: it is the best we have), else "". */
  best(utterance: number): string {
    const e = this.entries.get(utterance);
    return e === undefined ? "" : (e.final ?? e.partial).trim();
  }

  /** Drops what is known about these utterances (their turn was decided; late results are then ignored). */
  forget(utterances: readonly number[]): void {
    for (const u of utterances) this.entries.set(u, { partial: "", final: "", failed: false, doneAtMs: 0 });
  }

  clear(): void {
    this.entries.clear();
  }

  private entry(utterance: number): Entry {
    let e = this.entries.get(utterance);
    if (e === undefined) {
      e = { partial: "", final: undefined, failed: false, doneAtMs: 0 };
      this.entries.set(utterance, e);
    }
    return e;
  }
}
