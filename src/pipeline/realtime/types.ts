/** The realtime conversation's options and the records it keeps of responses, audio items and leg plays. */
import type { AlignedResampler } from "../../audio/index.js";
import type { Logger } from "../../log.js";
import type { MediaClock } from "../../media/clock.js";
import type { MediaLeg } from "../../media/leg.js";
import type { PbxPlayer } from "../../pbx/call-control.js";
import type { Playbook } from "../../playbook/types.js";
import type { CallFacts } from "../../playbook/variables.js";
import type { RealtimeProvider } from "../../providers/types.js";
import type { SpeechDetectorOptions, VadEngine } from "../../vad/index.js";
import type { InterruptionOptions } from "../turn/interruption.js";
import type { LegCodec } from "./audio-bridge.js";
import type { Terminal } from "./scenes.js";

export interface RealtimeConversationOptions {
  leg: MediaLeg;
  provider: RealtimeProvider;
  /** The playbook after option overrides; `settings.realtime` already laid over `[defaults.realtime]`. */
  playbook: Playbook;
  call: CallFacts;
  variables?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** `trackId` of caller-side events (default the call id). */
  callId?: string;
  /** `trackId` of agent-side events (default "server-side-track"). */
  agentTrackId?: string;
  /** The leg's wire codec, for `audioFormat: auto`. */
  wire?: LegCodec;
  /** No caller audio for this long ends the call (`inactivity`); 0 = off. */
  inactivityTimeoutMs?: number;
  /**
   * The barge-in policy (playbook §2.7, the effective section as `interruptionOptions` gives it); `enabled: false`
   * is `strategy: none`. With server turn detection only `strategy`, `fadeOutMs` and `resumeOnFalse` matter
   * (the server cuts at once); with `turnDetection: local` all of it applies.
   */
  interruption?: Partial<InterruptionOptions> & { enabled?: boolean };
  /** Our own VAD, for `turnDetection.type: local`. */
  vad?: { engine?: VadEngine; type?: string; detector?: SpeechDetectorOptions };
  clock?: MediaClock;
  wallClock?: () => number;
  soundsDir?: string;
  cacheDir?: string;
  /** Plays `pbx:` sounds on the PBX (FreeSWITCH, Asterisk); without it they are UNSUPPORTED. */
  pbxPlayer?: PbxPlayer;
  timeZone?: string;
  fetch?: typeof fetch;
  log?: Logger;
  /** Pause before the one reconnect after a drop (default 250 ms; §5.4 allows up to 3 s in all). */
  reconnectDelayMs?: number;
  /** Time allowed for the reconnect itself (default 3000 ms). */
  reconnectTimeoutMs?: number;
  /** Caller audio per `input_audio_buffer.append` (default 40 ms). */
  appendMs?: number;
}


/** One assistant audio item = one agent utterance on the leg. */
export interface Item {
  itemId: string;
  responseId: string;
  playId: string;
  /** Session audio received for it (ms): `truncate` never goes beyond it. */
  receivedMs: number;
  transcript: string;
  /** The final transcript came. */
  transcriptDone: boolean;
  written: boolean;
  audioDone: boolean;
  /** Its trackEnd came (played out or stopped). */
  ended: boolean;
  /** Its trackEnd said it played to its end. */
  playedOut: boolean;
  /** Cut by a barge-in: later audio of it is dropped. */
  cut: boolean;
  /** Its assistant history entry was written (after playout, or at the cut). */
  recorded: boolean;
  /** Caller speech may cut it (false: greeting with `interruptible: false`, collector prompts, `say`, goodbye). */
  interruptible: boolean;
}

export interface Response {
  id: string;
  cancelled: boolean;
  done: boolean;
  pendingTools: number;
  hadTools: boolean;
  sceneChanged: boolean;
  terminal: (Terminal & { trigger?: "tool" }) | undefined;
  /** `tts autoHangup`: hang up once it has played. */
  autoHangup: boolean;
  continued: boolean;
  /** playId for its first audio item (a `tts` command's). */
  playId: string | undefined;
  items: number;
  interruptible: boolean;
  /** A `collect_digits` call started a collector: its result, not this response, brings the next reply. */
  collecting: boolean;
}

export interface CreateRequest {
  instructions?: string | undefined;
  playId?: string | undefined;
  autoHangup?: boolean | undefined;
  /** false: caller speech never cuts it (default true). */
  interruptible?: boolean | undefined;
}

/** A sound played through the leg (a file, or `tts` base64 audio): not a model item. */
/** What a file play was asked with: enough to play it again from its start. */
export interface FilePlayRequest {
  url: string;
  playId?: string | undefined;
  autoHangup?: boolean | undefined;
  interruptible?: boolean | undefined;
  /** Times to play; 0 = until stopped (default 1). */
  loop?: number | undefined;
  /** Caller silence this long after it ends is reported (`silence {reason: waitInputTimeout}`). */
  waitInputTimeout?: number | undefined;
}

export interface LegPlay {
  interruptible: boolean;
  /** A file play's request (none for `tts base64`), and its PCM at the leg's rate once loaded. */
  file?: FilePlayRequest | undefined;
  pcm?: Int16Array | undefined;
  /** Stopped (barge-in, interrupt, replaced): its `autoHangup` is off. */
  cut?: boolean | undefined;
  /** `tts base64 streaming`: more chunks may follow (rate, resampler and odd byte carried across them). */
  open?: { rate: number; resampler: AlignedResampler | undefined; carry: number | undefined; autoHangup: boolean } | undefined;
  /** A `pbx:` sound the PBX plays beside the leg: stopped through `ctrl`, played since `startedAtMs` once it started. */
  pbx?: { ctrl: AbortController; startedAtMs: number | undefined } | undefined;
}
