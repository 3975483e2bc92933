/**
 * One agent utterance of the serial pipeline (ws-call-api §3.4: one playId): a `tts` (text split into
 * sentences, each synthesised in turn, or `base64` PCM chunks) or a `play` (a file, an http(s) URL, a `pbx:`
 * target). Its fields are the state the conversation, the voice worker and the barge-in share about it.
 */
import type { AlignedResampler } from "../../audio/index.js";
import type { TimerHandle } from "../../media/clock.js";
import { AppError } from "../../errors.js";
import type { ConversationCommand } from "../conversation.js";
import { SentenceSplitter, type SpokenSentence } from "../turn/index.js";
import { pcmFromBase64, speakableText } from "../core/commands.js";

export interface Utterance {
  playId: string;
  kind: "tts" | "play";
  url: string | undefined;
  /** `play`: times to play (0 = until stopped). */
  loop: number;
  fromRunner: boolean;
  interruptible: boolean;
  /** `interruptible` was given explicitly (else it follows `!autoHangup`). */
  interruptibleSet: boolean;
  autoHangup: boolean;
  /** ms of no caller input after trackEnd before `silence {reason:"waitInputTimeout"}` (0 = off). */
  waitInputTimeout: number;
  /** TTS voice override (`speaker` / `option.voice`). */
  voice: string | undefined;
  /** `base64` utterance: raw PCM chunks at pcmRate instead of text. */
  pcm: Int16Array[] | undefined;
  pcmRate: number;
  /** Streams `base64` chunks to the leg's rate across chunk edges (created when the rates differ). */
  pcmResampler?: AlignedResampler | undefined;
  /** More text may come (streaming `tts`). */
  open: boolean;
  /** Closes the open utterance after 30 s without text. */
  idleTimer: TimerHandle | undefined;
  splitter: SentenceSplitter;
  sentences: SpokenSentence[];
  /** Next sentence to synthesise. */
  next: number;
  ctrl: AbortController;
  /** Audio of the sentences before the current pacer play (after a resume: the start of the cut sentence). */
  baseMs: number;
  /** All audio written and endPlay called. */
  synthDone: boolean;
  writtenSamples: number;
  /** trackStart reported. */
  started: boolean;
  /** Played by the PBX (`pbx:` url), not through the leg. */
  pbx?: boolean;
  /** When the PBX started playing it (leg media ms): what a cut reports as played. */
  pbxStartedAtMs?: number;
  /** trackEnd reported (finished or stopped). */
  ended: boolean;
  /** Stopped for good by an interrupt/replace/error/barge-in. */
  stopped: boolean;
  /** Held after a VAD barge-in until the verdict (false interruption -> resume). */
  suspended: boolean;
  heldHeard: string | undefined;
  /** Utterance audio played when it was last cut (ms from its start). */
  cutAtMs: number;
  /** Resolves when the audio released before the last cut has played out (the cleared mark). */
  cleared: Promise<unknown> | undefined;
}

/** A new utterance; `interruptible` defaults to `!autoHangup` (ws-call-api §3.4). */
export function newUtterance(playId: string, kind: "tts" | "play", fromRunner: boolean, interruptible: boolean | undefined, autoHangup: boolean, url: string | undefined): Utterance {
  return {
    playId,
    kind,
    url,
    loop: 1,
    fromRunner,
    interruptible: interruptible ?? !autoHangup,
    interruptibleSet: interruptible !== undefined,
    autoHangup,
    waitInputTimeout: 0,
    voice: undefined,
    pcm: undefined,
    pcmRate: 16000,
    open: false,
    idleTimer: undefined,
    splitter: new SentenceSplitter(),
    sentences: [],
    next: 0,
    ctrl: new AbortController(),
    baseMs: 0,
    synthDone: false,
    writtenSamples: 0,
    started: false,
    ended: false,
    stopped: false,
    suspended: false,
    heldHeard: undefined,
    cutAtMs: 0,
    cleared: undefined,
  };
}

/** §3.4: a `tts` naming an open utterance updates it (last value wins); base64 cannot change mid-stream. */
export function updateOpenUtterance(u: Utterance, c: Extract<ConversationCommand, { command: "tts" }>): void {
  if ((u.pcm !== undefined) !== (c.base64 === true)) {
    throw new AppError("INVALID_STATE", `utterance ${u.playId} is open as ${u.pcm ? "base64 audio" : "text"}; base64 cannot change mid-stream`);
  }
  if (c.autoHangup !== undefined) u.autoHangup = c.autoHangup;
  if (c.interruptible !== undefined) {
    u.interruptible = c.interruptible;
    u.interruptibleSet = true;
  } else if (!u.interruptibleSet) u.interruptible = !u.autoHangup;
  if (c.waitInputTimeout !== undefined) u.waitInputTimeout = c.waitInputTimeout;
}

/** More of an utterance: base64 PCM (the odd trailing byte carried per playId in `carries`), or text split into sentences. */
export function appendToUtterance(u: Utterance, text: string, carries: Map<string, number>): void {
  if (u.pcm) {
    const { samples, carry } = pcmFromBase64(text, carries.get(u.playId));
    if (carry === undefined) carries.delete(u.playId);
    else carries.set(u.playId, carry);
    if (samples.length > 0) u.pcm.push(samples);
    return;
  }
  for (const s of u.splitter.push(speakableText(text))) u.sentences.push({ text: s, durationMs: undefined });
}
