/** Public API of the media layer: the MediaLeg seam, the agent pacer, clocks, and the in-memory leg. */

export type { MediaClock, TimerHandle } from "./clock.js";
export { ManualClock, realClock } from "./clock.js";
export type { EventMap } from "./emitter.js";
export { TypedEmitter } from "./emitter.js";
export type { DtmfEvent, DtmfSource, LegCloseEvent, LegCloseReason, MediaLeg, MediaLegEvents } from "./leg.js";
export type {
  AgentAudio,
  AgentPacerEvents,
  AgentPacerOptions,
  ClearOptions,
  ClearResult,
  FrameSink,
  FrameTransform,
  MarkResult,
  PacedFrameInfo,
  PlayOptions,
  PlayOutcome,
  PlayStatus,
  PlaySummary,
  TrackEndEvent,
  TrackEndReason,
  TrackStartEvent,
} from "./pacer.js";
export { AgentPacer } from "./pacer.js";
export type { CapturedFrame, MemoryLegOptions } from "./memory-leg.js";
export { MemoryLeg } from "./memory-leg.js";
export type { PacedLegOptions } from "./paced-leg.js";
export { PacedLeg } from "./paced-leg.js";
export type { WireCodec, WireFieldNames, WireFormat, WireFormatCheck } from "./wire-codec.js";
export { WIRE_CODECS, WireDecoder, WireEncoder, checkWireFormat, defaultWireRate, isWireCodec, wireBytesForSamples } from "./wire-codec.js";
export type { WsCallLegOptions, WsPtime } from "./ws-call-leg.js";
export { WsCallLeg } from "./ws-call-leg.js";
export type {
  TwilioConnected,
  TwilioDtmf,
  TwilioInbound,
  TwilioLegEvents,
  TwilioLegOptions,
  TwilioMark,
  TwilioMarkEcho,
  TwilioMedia,
  TwilioMediaFormat,
  TwilioStart,
  TwilioStop,
} from "./twilio-leg.js";
export { TwilioLeg, isTwilioMulaw, parseTwilioMessage } from "./twilio-leg.js";
export type { CallerGapFillOptions, CallerGapFillerOptions, CallerGapStats } from "./caller-gap-filler.js";
export { CallerGapFiller } from "./caller-gap-filler.js";
export type { RtpFormat, RtpFormatInfo } from "./rtp-packet.js";
export { RTP_FORMATS, isRtpFormat } from "./rtp-packet.js";
export type { RtpSocketPair } from "./rtp-port-pool.js";
export { RtpPortPool } from "./rtp-port-pool.js";
export type { RtpLegOptions, RtpLegStats } from "./rtp-leg.js";
export { RtpLeg } from "./rtp-leg.js";
export type {
  ChanWebsocketFormat,
  ChanWebsocketLegEvents,
  ChanWebsocketLegOptions,
  ChanWebsocketMediaStart,
  ChanWebsocketStatus,
} from "./chan-websocket-leg.js";
export { ChanWebsocketLeg, MEDIA_SUBPROTOCOL, parseChanWebsocketControl } from "./chan-websocket-leg.js";
export type { AudioSocketConnection } from "./audiosocket-server.js";
export { AudioSocketServer, normalizeUuid } from "./audiosocket-server.js";
export type { AudioSocketLegOptions, AudioSocketLegStats } from "./audiosocket-leg.js";
export { AUDIOSOCKET_KIND_RATES, AudioSocketLeg } from "./audiosocket-leg.js";
