/** What a SerialConversation is built from: its providers, the runner's options and the per-call settings. */
import type { AudioFrame } from "../../audio/index.js";
import type { Logger } from "../../log.js";
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import type { RunnerOptions } from "../../playbook/runner/index.js";
import type { AsrProvider, LlmProvider, TtsProvider } from "../../providers/types.js";
import type { SpeechDetectorOptions, VadEngine } from "../../vad/index.js";
import type { ProcessorRegistry } from "../audio/index.js";
import type { InterruptionOptions, TurnDetectorOptions } from "../turn/index.js";

/** A caller-audio processor chain (e.g. pipeline/audio ProcessorChain): in place, same length and rate. */
export interface CallerProcessor {
  process(frame: AudioFrame): AudioFrame;
}

export interface SerialConversationOptions {
  leg: MediaLeg;
  /** The call id: `trackId` of caller-side events. */
  callId?: string;
  /** `trackId` of agent-side events (default "server-side-track"). */
  agentTrackId?: string;
  asr: AsrProvider;
  tts: TtsProvider;
  llm: Pick<LlmProvider, "chat"> & { readonly name?: string };
  /** The runner's own options (playbook, call facts, variables...); llm, sink and scheduler are supplied here. */
  runner: Omit<RunnerOptions, "llm" | "sink" | "scheduler">;
  /** A VAD engine, or the engine type for createVadEngine (default tinysilero). */
  vad?: {
    engine?: VadEngine;
    type?: string;
    detector?: SpeechDetectorOptions;
    /** `vad.silenceTimeoutMs` (default: the playbook's; 0 = off): `silence {reason:"timeout"}` per silent period. */
    silenceTimeoutMs?: number;
  };
  eou?: Partial<TurnDetectorOptions>;
  interruption?: Partial<InterruptionOptions>;
  /**
   * `inactivityTimeoutMs`: end the call (`inactivity` event, hangup reason `inactivityTimeout`) when no caller
   * audio frame arrives for this long; 0 = off (the default here; the call layer passes the call type's default).
   */
  inactivityTimeoutMs?: number;
  /** `[calls] on_provider_error` (default continue). */
  onProviderError?: "continue" | "hangup";
  /** Longest wait for a sentence's audio before it counts as a TTS stall (TIMEOUT). Default 10 000 ms. */
  ttsTimeoutMs?: number;
  clock?: MediaClock;
  /** Event timestamps (default Date.now). */
  wallClock?: () => number;
  processors?: CallerProcessor;
  /** Where relative `play` urls are read from (default the working directory). */
  soundsDir?: string;
  /** Loads a `play` url (default: loadSoundSource: a file under soundsDir or an http(s) download). */
  loadSound?: (url: string, signal: AbortSignal) => Promise<AudioFrame>;
  /** Plays `pbx:` urls on the PBX (PBX calls); without it they answer UNSUPPORTED. */
  pbxPlayer?: PbxPlayer | undefined;
  /** Config `[paths] cache`: http(s) `play` downloads are cached here by URL and ETag (no cache when unset). */
  cacheDir?: string;
  log?: Logger;
  /** Tick period of the turn/interruption timers (default 20 ms). */
  tickMs?: number;
  /** Longest wait for the LLM's first event and between events when the playbook sets no `llm.timeoutMs` (default 15 000 ms, the playbook default). */
  llmTimeoutMs?: number;
  /**
   * Config `[recorder]`: `enabled` records every call; `file`/`samplerate`/`stereo` are the defaults a playbook
   * `recorder` section overrides.
   */
  recorder?: { enabled?: boolean; file?: string; samplerate?: 8000 | 16000; stereo?: boolean };
  /** `[paths] recordings`: recordings are written inside this folder, never outside it (default "recordings"). */
  recordingsDir?: string;
  /** Caller-audio processors (`denoise` ...); default createProcessorRegistry(). */
  processorRegistry?: ProcessorRegistry;
}
