/**
 * The Realtime conversation's caller side: where the caller's turns start and end and what they said. The server
 * decides (`speech_started` / `speech_stopped`, `input_audio_transcription`), or with `turnDetection: local` our
 * own VAD does (then we commit the audio and ask for the answer ourselves). A turn's history entry is placed when
 * the turn ends (a placeholder, so the history stays in order) and filled when its transcript comes.
 * It reports; the conversation acts (barge-in, collectors, the answer a protected session owes).
 */
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { HistoryEntry } from "../../playbook/runner/index.js";
import type { SpeechDetectorOptions, VadEngine } from "../../vad/index.js";
import { CallerVad, type EventBody } from "../core/index.js";
import type { RealtimeScenes } from "./scenes.js";

export interface CallerTurnsHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly callId: string;
  readonly scenes: Pick<RealtimeScenes, "add">;
  emit(e: EventBody): void;
  /** Caller speech or words: the follow-up countdown stops and its count starts again. */
  resetFollowup(): void;
  /** The caller started speaking: a barge-in. */
  bargeIn(): void;
  /** The caller's turn ended (after its events and its history placeholder). */
  turnEnded(): void;
  /** `turnDetection: local`: our VAD ended the turn; the audio is committed and the answer asked for. */
  localTurnEnd(): void;
}

export class CallerTurns {
  private vad: CallerVad | undefined;
  private speechStartMs: number | undefined;
  private speechStoppedAt: number | undefined;
  private asrIndex = 0;
  /** Caller turns whose transcript has not come yet, by input item id (a placeholder keeps the history in order). */
  private readonly pendingUser = new Map<string, HistoryEntry>();
  private count = 0;

  constructor(private readonly h: CallerTurnsHost) {}

  /** Caller turns so far (the snapshot's `turns`). */
  get turns(): number {
    return this.count;
  }

  /** The caller is mid-speech. */
  get speaking(): boolean {
    return this.speechStartMs !== undefined;
  }

  /** `turnDetection: local`: our VAD, its end of turn after `silenceMs` of silence. */
  async setupVad(silenceMs: number, vad: { engine?: VadEngine; type?: string; detector?: SpeechDetectorOptions } | undefined): Promise<void> {
    this.vad = await CallerVad.create({
      callerRate: this.h.leg.callerRate,
      engine: vad?.engine,
      type: vad?.type,
      detector: { ...vad?.detector, minSilenceMs: silenceMs },
    });
  }

  /** A caller frame (mute and collector silence applied): with local turn detection, our VAD decides speech and turn end. */
  frame(pcm: Int16Array): void {
    if (!this.vad) return;
    for (const e of this.vad.push(pcm)) {
      if (e.type === "speaking") this.speech();
      else {
        this.turnEnd(undefined);
        this.h.localTurnEnd();
      }
    }
  }

  speech(): void {
    this.speechStartMs = this.h.leg.nowMs;
    this.h.resetFollowup();
    this.h.emit({ event: "speaking", trackId: this.h.callId, startTime: this.speechStartMs });
    this.h.bargeIn();
  }

  /** The end of a caller turn; `itemId` is the server's input item (none with local turn detection). */
  turnEnd(itemId: string | undefined): void {
    const start = this.speechStartMs ?? this.h.leg.nowMs;
    this.speechStartMs = undefined;
    this.speechStoppedAt = this.h.clock.now();
    this.count++;
    this.h.emit({ event: "silence", trackId: this.h.callId, startTime: start, duration: Math.max(0, this.h.leg.nowMs - start), reason: "vad" });
    this.h.emit({ event: "eou", trackId: this.h.callId, completed: true });
    if (itemId && !this.pendingUser.has(itemId)) this.pendingUser.set(itemId, this.h.scenes.add({ role: "user", content: "" }));
    this.h.turnEnded();
  }

  /** The first audio of an answer: the `realtime.response` metric, from the end of the caller's turn. */
  answered(responseId: string): void {
    if (this.speechStoppedAt === undefined) return;
    this.h.emit({ event: "metrics", key: "realtime.response", duration: Math.round(this.h.clock.now() - this.speechStoppedAt), data: { responseId } });
    this.speechStoppedAt = undefined;
  }

  /** The transcript of a caller turn: `asrDelta`s, then the final text into its history entry and `asrFinal`. */
  transcript(itemId: string, final: boolean, delta: string, text: string): void {
    const index = this.asrIndex;
    if (!final) {
      if (delta !== "") this.h.emit({ event: "asrDelta", trackId: this.h.callId, index, text });
      return;
    }
    const placeholder = this.pendingUser.get(itemId);
    this.pendingUser.delete(itemId);
    const t = text.trim();
    if (t === "") return; // the placeholder stays empty and is left out of the snapshot
    this.h.resetFollowup();
    this.asrIndex++;
    if (placeholder) placeholder.message = { role: "user", content: t };
    else this.h.scenes.add({ role: "user", content: t });
    this.h.emit({ event: "asrFinal", trackId: this.h.callId, index, text: t });
    this.h.emit({ event: "addHistory", speaker: "user", text: t });
  }
}
