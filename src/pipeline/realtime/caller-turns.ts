/**
 * The Realtime conversation's caller side: where the caller's turns start and end and what they said. The server
 * decides (`speech_started` / `speech_stopped`, `input_audio_transcription`), or with `turnDetection: local` our
 * own VAD and the serial pipeline's TurnDetector do (`vad` mode: a turn ends `silenceDurationMs` after the speech
 * stopped, pauses shorter than that continue it; then we commit the audio and ask for the answer ourselves). Each
 * speech segment reports `speaking`/`silence` (the barge-in policy hears them), each turn end `eou`. A turn's
 * history entry is placed when the turn ends (a placeholder, so the history stays in order) and filled when its
 * transcript comes.
 * It reports; the conversation acts (barge-in, collectors, the answer a protected session owes).
 */
import type { MediaClock, TimerHandle } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { HistoryEntry } from "../../playbook/runner/index.js";
import { DEFAULT_DETECTOR_OPTIONS, type SpeechDetectorOptions, type VadEngine } from "../../vad/index.js";
import { CallerVad, type EventBody } from "../core/index.js";
import { TurnDetector, type TurnOutput } from "../turn/turn-detector.js";
import type { RealtimeScenes } from "./scenes.js";

export interface CallerTurnsHost {
  readonly leg: MediaLeg;
  readonly clock: MediaClock;
  readonly callId: string;
  readonly scenes: Pick<RealtimeScenes, "add">;
  emit(e: EventBody): void;
  /** Caller speech or words: the follow-up countdown stops and its count starts again. */
  resetFollowup(): void;
  /** The caller started speaking at `startMs` (leg clock): the barge-in policy hears it. */
  speaking(startMs: number): void;
  /** The caller's speech ended. */
  silence(): void;
  /** A caller transcript, for the barge-in policy: deltas (`final` false) and every final, empty ones too. */
  transcript(final: boolean, text: string): void;
  /** The caller's turn ended (after its events and its history placeholder). */
  turnEnded(): void;
  /** `turnDetection: local`: our VAD ended the turn; the audio is committed and the answer asked for. */
  localTurnEnd(): void;
}

/** How often the local turn detector hears the time (ms, media clock). */
const TICK_MS = 20;

export class CallerTurns {
  private vad: CallerVad | undefined;
  /** `turnDetection: local`: where a turn ends. */
  private turnsLocal: TurnDetector | undefined;
  private ticker: TimerHandle | undefined;
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

  /** `turnDetection: local`: our VAD for the speech, the turn detector for the end of turn after `silenceMs`. */
  async setupVad(silenceMs: number, vad: { engine?: VadEngine; type?: string; detector?: SpeechDetectorOptions } | undefined): Promise<void> {
    const vadMinSilenceMs = vad?.detector?.minSilenceMs ?? DEFAULT_DETECTOR_OPTIONS.minSilenceMs;
    this.vad = await CallerVad.create({ callerRate: this.h.leg.callerRate, engine: vad?.engine, type: vad?.type, detector: { ...vad?.detector, minSilenceMs: vadMinSilenceMs } });
    this.turnsLocal = new TurnDetector({ mode: "vad", silenceMs: Math.max(silenceMs, vadMinSilenceMs), vadMinSilenceMs });
    this.scheduleTick();
  }

  /** The end: no more ticks. */
  stop(): void {
    if (this.ticker) this.h.clock.clearTimer(this.ticker);
    this.ticker = undefined;
    this.turnsLocal = undefined;
  }

  /** The turn's end is due `silenceMs` after the speech stopped, caller frames or not: the detector is ticked. */
  private scheduleTick(): void {
    this.ticker = this.h.clock.setTimer(() => {
      this.ticker = undefined;
      const turns = this.turnsLocal;
      if (!turns) return;
      this.onTurn(turns.tick(this.h.leg.nowMs));
      this.scheduleTick();
    }, TICK_MS);
  }

  /** A caller frame (mute and collector silence applied): with local turn detection, our VAD decides speech and turn end. */
  frame(pcm: Int16Array): void {
    const turns = this.turnsLocal;
    if (!this.vad || !turns) return;
    const now = this.h.leg.nowMs;
    for (const e of this.vad.push(pcm)) {
      if (e.type === "speaking") {
        this.speech(now - (e.atMs - e.startMs));
        this.onTurn(turns.process({ type: "speaking", atMs: now }));
      } else {
        this.segmentEnd();
        this.onTurn(turns.process({ type: "silence", atMs: now }));
      }
    }
    this.onTurn(turns.tick(now));
  }

  /** The turn detector ended the turn: the audio is the model's to answer (its transcript comes from the server). */
  private onTurn(outputs: readonly TurnOutput[]): void {
    for (const o of outputs) {
      if (o.type !== "endUtterance") continue;
      this.turnOver(undefined);
      this.h.localTurnEnd();
    }
  }

  /** The caller started speaking (`onsetMs`: when, on the leg's clock; now for the server's `speech_started`). */
  speech(onsetMs = this.h.leg.nowMs): void {
    this.speechStartMs = this.h.leg.nowMs;
    this.h.resetFollowup();
    this.h.emit({ event: "speaking", trackId: this.h.callId, startTime: this.speechStartMs });
    this.h.speaking(Math.min(onsetMs, this.speechStartMs));
  }

  /** The server's `speech_stopped`: the speech and the turn end together; `itemId` is the server's input item. */
  turnEnd(itemId: string | undefined): void {
    this.segmentEnd();
    this.turnOver(itemId);
  }

  /** A speech segment ended: `silence`, and the barge-in policy hears it. */
  private segmentEnd(): void {
    const start = this.speechStartMs ?? this.h.leg.nowMs;
    this.speechStartMs = undefined;
    this.h.emit({ event: "silence", trackId: this.h.callId, startTime: start, duration: Math.max(0, this.h.leg.nowMs - start), reason: "vad" });
    this.h.silence();
  }

  /** The caller's turn is over: `eou`, its history placeholder, and the conversation acts. */
  private turnOver(itemId: string | undefined): void {
    this.speechStoppedAt = this.h.clock.now();
    this.count++;
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
      this.h.transcript(false, text);
      return;
    }
    this.h.transcript(true, text);
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
