/**
 * Builds a call's Conversation from its playbook (after option overrides) and the config: providers from the
 * registry, VAD/turn/interruption settings as the playbook and `[defaults]` give them, and the per-call paths.
 * One place, so every call type (websocket, Twilio, PBX) gets the same pipeline for the same playbook.
 */
import { resolve } from "node:path";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MediaLeg } from "../media/leg.js";
import type { Conversation } from "../pipeline/conversation.js";
import { SerialConversation } from "../pipeline/serial/serial-conversation.js";
import { interruptionOptions } from "../pipeline/turn/interruption.js";
import { turnDetectorOptions } from "../pipeline/turn/turn-detector.js";
import type { Playbook } from "../playbook/types.js";
import type { PbxPlayer } from "../pbx/call-control.js";
import type { CallFacts } from "../playbook/variables.js";
import { resolveAsr, resolveLlm, resolveTts } from "../providers/registry.js";

/** Rate TTS is asked for; the conversation resamples to the leg's rate at the edge. */
const TTS_RATE = 16000;

export interface ConversationRequest {
  leg: MediaLeg;
  playbook: Playbook;
  call: CallFacts;
  /** Variable layers above the playbook's own (handler rule, then the call's). */
  variables: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** false: an application drives the call; caller turns are never answered (no playbook, no `llm` option). */
  respond: boolean;
  inactivityTimeoutMs: number;
  log: Logger;
  /** `pbx:` playback on PBX calls. */
  pbxPlayer?: PbxPlayer | undefined;
}

export type ConversationFactory = (request: ConversationRequest) => Promise<Conversation>;

/** The production factory: the serial pipeline (the realtime pipeline is issue 10: UNSUPPORTED until then). */
export function serialConversationFactory(config: Config): ConversationFactory {
  return async (r) => {
    const pb = r.playbook;
    if (pb.pipeline !== "serial") throw new AppError("UNSUPPORTED", `${pb.name} uses the realtime pipeline, which this build does not run yet`);
    const s = pb.settings;
    const [asr, tts, llm] = await Promise.all([
      resolveAsr(s.asr, config),
      resolveTts(s.tts, config, { sampleRate: TTS_RATE }),
      resolveLlm(s.llm, config),
    ]);
    const vad = { ...config.defaults.vad, ...s.vad };
    const detector = {
      threshold: vad.threshold,
      minSpeechMs: vad.minSpeechMs,
      minSilenceMs: vad.minSilenceMs,
      speechPadMs: vad.speechPadMs,
      ...(vad.negThreshold !== undefined ? { negThreshold: vad.negThreshold } : {}),
    };
    const language = s.asr?.language ?? config.defaults.asr.language;
    return new SerialConversation({
      leg: r.leg,
      callId: r.call.callId,
      asr,
      tts,
      llm,
      runner: {
        playbook: pb,
        call: r.call,
        variables: r.variables,
        respond: r.respond,
        log: r.log,
        ...(config.log.timezone !== "" ? { timeZone: config.log.timezone } : {}),
      },
      vad: { type: vad.type, detector, ...(vad.silenceTimeoutMs !== undefined ? { silenceTimeoutMs: vad.silenceTimeoutMs } : {}) },
      eou: turnDetectorOptions(s.eou, vad.minSilenceMs),
      interruption: interruptionOptions({ ...config.defaults.interruption, ...s.interruption }, language),
      inactivityTimeoutMs: r.inactivityTimeoutMs,
      pbxPlayer: r.pbxPlayer,
      onProviderError: config.calls.on_provider_error,
      soundsDir: resolve(config.paths.sounds),
      cacheDir: resolve(config.paths.cache),
      recordingsDir: resolve(config.paths.recordings),
      recorder: config.recorder,
      log: r.log,
    });
  };
}
