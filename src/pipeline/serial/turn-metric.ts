/**
 * The `turn` metric (ws-call-api §4): for a decided caller turn, the time from the caller's stop to the first
 * agent audio frame sent, with its parts: end-of-turn detection, the ASR's final, the LLM's first text and the
 * TTS's first audio. All times are on the leg's media clock.
 */
import type { EventBody } from "../core/index.js";
import type { TurnTiming } from "../turn/index.js";

interface PendingTurn {
  timing: TurnTiming;
  early: boolean;
  llmFirstAtMs?: number;
  ttsTtfbMs?: number;
}

export class TurnMetric {
  /** The decided caller turn waiting for its first agent audio. */
  private turn: PendingTurn | undefined;

  /** A caller turn was decided (`early`: the speculative reply was committed). */
  decided(timing: TurnTiming, early: boolean): void {
    this.turn = { timing, early };
  }

  /** The runner's first reply text after the turn: llmTtftMs. */
  llmResponded(atMs: number): void {
    const t = this.turn;
    if (t && t.llmFirstAtMs === undefined) t.llmFirstAtMs = atMs;
  }

  /** The reply's first sentence, asked of the TTS now: a function to call with its first audio (ttsTtfbMs). */
  ttsRequested(requestedAtMs: number): ((atMs: number) => void) | undefined {
    const t = this.turn;
    if (!t || t.ttsTtfbMs !== undefined) return undefined;
    return (atMs) => {
      if (this.turn === t && t.ttsTtfbMs === undefined) t.ttsTtfbMs = atMs - requestedAtMs;
    };
  }

  /** The reply's first audio frame was sent at `atMs`: the metric, once per turn. */
  firstAudio(atMs: number): EventBody | undefined {
    const t = this.turn;
    if (!t) return undefined;
    this.turn = undefined;
    const { speechEndMs, eouAtMs, transcriptAtMs } = t.timing;
    return {
      event: "metrics",
      key: "turn",
      duration: atMs - speechEndMs,
      data: {
        eouMs: eouAtMs - speechEndMs,
        asrMs: transcriptAtMs - eouAtMs,
        llmTtftMs: t.llmFirstAtMs !== undefined ? Math.max(0, t.llmFirstAtMs - transcriptAtMs) : null,
        ttsTtfbMs: t.ttsTtfbMs ?? null,
        early: t.early,
      },
    };
  }
}
