/**
 * The model's speech on the leg: one assistant audio item = one agent utterance (playId), so `truncate`'s item and
 * the leg's play are the same thing. Session audio goes through AgentAudioOut to the leg (its pacer paces it, so
 * deltas that arrive faster than real time wait there, where a barge-in can drop them).
 *
 * The model's transcript runs ahead of its audio, so an item's agent turn enters the history when its audio has
 * played out (all of it) or was cut (the words heard, per the leg's ledger), never when the text arrives.
 */
import type { MediaLeg, PlaySummary, TrackEndEvent } from "../../media/leg.js";
import type { RealtimeSession } from "../../providers/types.js";
import type { CutReason, EventBody } from "../core/index.js";
import { heardText, type Heard } from "../turn/heard-text.js";
import { AgentAudioOut } from "./audio-bridge.js";
import type { Responses } from "./responses.js";
import type { RealtimeScenes } from "./scenes.js";
import type { Item } from "./types.js";

export interface AgentItemsHost {
  readonly leg: MediaLeg;
  /** The session's audio rate (24 kHz pcm16, 8 kHz G.711). */
  readonly sessionRate: number;
  readonly responses: Responses;
  readonly scenes: Pick<RealtimeScenes, "add">;
  session(): RealtimeSession | undefined;
  nextSeq(): number;
  emit(e: EventBody): void;
  writeAgent(playId: string, pcm: Int16Array): void;
  /** The first audio of an item of this response came (the response-time metric). */
  firstAudio(responseId: string): void;
  interruption(playId: string, reason: Exclude<CutReason, "error">, heard: Pick<Heard, "text" | "position" | "totalMs" | "playedMs">): void;
}

export class AgentItems {
  private readonly items = new Map<string, Item>();
  private readonly byPlayId = new Map<string, Item>();
  private readonly out: AgentAudioOut;

  constructor(private readonly h: AgentItemsHost) {
    this.out = new AgentAudioOut(h.sessionRate, h.leg.agentRate);
  }

  /** Items written to the leg and still playing, not cut: what a barge-in cuts. */
  live(): Item[] {
    return [...this.items.values()].filter((i) => i.written && !i.ended && !i.cut);
  }

  /** Some item is still playing on the leg (cut or not: its trackEnd has not come). */
  playing(): boolean {
    for (const i of this.items.values()) if (i.written && !i.ended) return true;
    return false;
  }

  /** A playing item caller speech may not cut. */
  uninterruptible(): boolean {
    for (const i of this.items.values()) if (i.written && !i.ended && !i.cut && !i.interruptible) return true;
    return false;
  }

  /** Whether the model item playing under this playId may be cut by the caller (undefined: no such item). */
  interruptibleOf(playId: string): boolean | undefined {
    return this.byPlayId.get(playId)?.interruptible;
  }

  /** The item's record, created at its first audio or transcript. */
  private item(responseId: string, itemId: string): Item {
    let item = this.items.get(itemId);
    if (item) return item;
    const r = this.h.responses.get(responseId);
    let playId = r && r.items === 0 && r.playId !== undefined ? r.playId : `rt-${this.h.nextSeq()}`;
    if (this.byPlayId.has(playId)) playId = `${playId}-${this.h.nextSeq()}`;
    if (r) r.items++;
    item = {
      itemId,
      responseId,
      playId,
      receivedMs: 0,
      transcript: "",
      transcriptDone: false,
      written: false,
      audioDone: false,
      ended: false,
      playedOut: false,
      cut: false,
      recorded: false,
      interruptible: r?.interruptible ?? true,
    };
    this.items.set(itemId, item);
    this.byPlayId.set(playId, item);
    return item;
  }

  audio(responseId: string, itemId: string, pcm: Int16Array): void {
    if (this.h.responses.get(responseId)?.cancelled) return;
    const item = this.item(responseId, itemId);
    if (item.cut || item.audioDone) return;
    if (!item.written) this.h.firstAudio(responseId);
    item.receivedMs += (pcm.length * 1000) / this.h.sessionRate;
    item.written = true;
    this.h.writeAgent(item.playId, this.out.process(pcm));
  }

  audioDone(itemId: string): void {
    const item = this.items.get(itemId);
    if (!item || item.cut || item.audioDone) return;
    this.endAudio(item);
  }

  /**
   * No more audio for the items of this response (a cancelled or failed response may end without `audio_done`),
   * or of any response (`undefined`: the socket dropped): the leg plays what it has.
   */
  endAudioOf(responseId: string | undefined): void {
    for (const item of this.items.values()) if ((responseId === undefined || item.responseId === responseId) && !item.audioDone && !item.cut) this.endAudio(item);
  }

  /** No more audio for this item: the resampler's tail, then endPlay (trackEnd follows its playout). */
  private endAudio(item: Item): void {
    item.audioDone = true;
    this.h.writeAgent(item.playId, this.out.end());
    if (item.written && !this.h.leg.closed) this.h.leg.endPlay(item.playId);
    else item.ended = true;
  }

  transcript(responseId: string, itemId: string, final: boolean, delta: string, text: string): void {
    const item = this.item(responseId, itemId);
    if (item.cut) return;
    item.transcript = text;
    if (!final) {
      if (delta !== "" && !this.h.responses.get(responseId)?.cancelled) this.h.emit({ event: "llmDelta", playId: item.playId, text: delta });
      return;
    }
    item.transcriptDone = true;
    if (item.ended && item.playedOut) this.record(item, text);
  }

  /** An item's trackEnd. */
  trackEnded(e: TrackEndEvent): void {
    const item = this.byPlayId.get(e.playId);
    if (!item) return;
    item.ended = true;
    item.playedOut = e.reason === "finished";
    // Played out: the whole transcript was heard. Without a final transcript (the socket dropped, or the
    // response was cut short) the words that came are what was said; otherwise wait for the final one.
    if (e.reason === "finished" && !item.cut && (item.transcriptDone || this.h.responses.get(item.responseId)?.done !== false)) this.record(item, item.transcript);
  }

  /**
   * Barge-in, after the leg's clear (`plays`): each item that was playing is truncated to what the caller heard of
   * it, per the leg's ledger (`clear()`'s played ms, which counts the audio already released ahead), never to what
   * was received or sent; what was heard enters the history, and the `interruption` says so.
   */
  cut(live: readonly Item[], plays: readonly PlaySummary[] | undefined, reason: Exclude<CutReason, "error"> | "hangup"): void {
    for (const item of live) {
      const play = plays?.find((p) => p.playId === item.playId);
      const playedMs = Math.min(play?.playedMs ?? 0, item.receivedMs);
      if (!item.audioDone) this.out.discard();
      item.cut = true;
      item.audioDone = true;
      this.h.session()?.truncate(item.itemId, Math.floor(playedMs));
      const heard = heardText([{ text: item.transcript, durationMs: item.receivedMs }], playedMs);
      this.record(item, heard.text, true);
      if (reason === "hangup") continue;
      this.h.interruption(item.playId, reason, {
        text: heard.text,
        position: heard.position,
        totalMs: Math.round(play?.totalMs ?? item.receivedMs),
        playedMs: Math.round(playedMs),
      });
    }
  }

  /** The agent turn of an item enters the history: what was heard of it (all of it when it played out). */
  private record(item: Item, text: string, interrupted = false): void {
    if (item.recorded || !item.written) return;
    item.recorded = true;
    const t = text.trim();
    if (t === "") return;
    this.h.scenes.add({ role: "assistant", content: t }, interrupted ? { interrupted: true } : {});
    this.h.emit({ event: "addHistory", speaker: "assistant", text: t });
  }
}
