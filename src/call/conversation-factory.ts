/**
 * Builds a call's Conversation from its playbook (after option overrides) and the config: providers from the
 * registry, VAD/turn/interruption settings as the playbook and `[defaults]` give them, and the per-call paths.
 * One place, so every call type (websocket, Twilio, PBX) gets the same pipeline for the same playbook: the serial
 * pipeline, or the Realtime one when the playbook (or the invite option) has a `realtime` section.
 */
import { resolve } from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { MediaLeg } from "../media/leg.js";
import type { Conversation } from "../pipeline/conversation.js";
import { RealtimeConversation } from "../pipeline/realtime/index.js";
import { SerialConversation } from "../pipeline/serial/serial-conversation.js";
import { interruptionOptions } from "../pipeline/turn/interruption.js";
import { turnDetectorOptions } from "../pipeline/turn/turn-detector.js";
import type { Playbook } from "../playbook/types.js";
import type { PbxPlayer } from "../pbx/call-control.js";
import type { CallFacts } from "../playbook/variables.js";
import { resolveAsr, resolveLlm, resolveRealtime, resolveTts } from "../providers/registry.js";

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
  /** The leg's wire codecs when known (`pcmu` both ways on an 8 kHz leg lets Realtime run µ-law end to end). */
  codec?: string | undefined;
  outputCodec?: string | undefined;
}

export type ConversationFactory = (request: ConversationRequest) => Promise<Conversation>;

/** The production factory: the serial pipeline, or the Realtime pipeline for a playbook with `realtime`. */
export function conversationFactory(config: Config): ConversationFactory {
  return async (r) => {
    const pb = r.playbook;
    if (pb.pipeline === "realtime" || pb.settings.realtime !== undefined) return realtimeConversation(config, r);
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

/** A Realtime call: the provider from the registry, `[defaults.realtime]` under the playbook's section. */
async function realtimeConversation(config: Config, r: ConversationRequest): Promise<Conversation> {
  const pb = r.playbook;
  const s = pb.settings;
  const provider = await resolveRealtime(s.realtime, config);
  const realtime = { ...config.defaults.realtime, ...s.realtime };
  const vad = { ...config.defaults.vad, ...s.vad };
  const interruption = { ...config.defaults.interruption, ...s.interruption };
  return new RealtimeConversation({
    leg: r.leg,
    provider,
    playbook: { ...pb, settings: { ...s, realtime } },
    call: r.call,
    variables: r.variables,
    callId: r.call.callId,
    wire: { codec: r.codec, outputCodec: r.outputCodec },
    inactivityTimeoutMs: r.inactivityTimeoutMs,
    interruption: interruptionOptions(interruption, realtime.inputTranscription ? realtime.inputTranscription.language : undefined),
    vad: {
      type: vad.type === "none" ? "tinysilero" : vad.type,
      detector: { threshold: vad.threshold, minSpeechMs: vad.minSpeechMs, minSilenceMs: vad.minSilenceMs, speechPadMs: vad.speechPadMs, ...(vad.negThreshold !== undefined ? { negThreshold: vad.negThreshold } : {}) },
    },
    soundsDir: resolve(config.paths.sounds),
    cacheDir: resolve(config.paths.cache),
    ...(r.pbxPlayer ? { pbxPlayer: r.pbxPlayer } : {}),
    ...(config.log.timezone !== "" ? { timeZone: config.log.timezone } : {}),
    log: r.log,
  });
}
