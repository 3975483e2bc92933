/**
 * The seam between the ARI simulator (ari-sim.ts) and the Asterisk-side media peers (media-peers.ts): when the
 * controller asks for `POST /channels/externalMedia`, the simulator asks a SimMediaFactory for the Asterisk end of
 * that media channel (RTP socket, chan_websocket server end, AudioSocket client). The peer plays Asterisk's part
 * on the wire exactly as the recordings in ../shared/fixtures/asterisk show it.
 */
import type { WebSocket } from "ws";

/** The query of `POST /channels/externalMedia` as the simulator received it (media-protocols.md §3.5-3.7). */
export interface ExternalMediaRequest {
  channelId: string;
  app: string;
  format: string;
  transport: string;
  encapsulation: string;
  /** `host:port` (RTP, AudioSocket). */
  externalHost?: string | undefined;
  /** AudioSocket: the UUID the peer sends first. */
  data?: string | undefined;
  /** chan_websocket: `server` (we connect to Asterisk) or `client`. */
  connectionType?: string | undefined;
  /** chan_websocket: e.g. `f(json)`. */
  transportData?: string | undefined;
}

/** Asterisk's end of one externalMedia channel. */
export interface SimMediaEndpoint {
  /** `channelvars` of the externalMedia response (UNICASTRTP_LOCAL_*, MEDIA_WEBSOCKET_*). */
  readonly channelvars: Record<string, string>;
  /** chan_websocket: the simulator hands over the upgraded `/media/<connection id>` socket (subprotocol `media`). */
  acceptWebSocket?(ws: WebSocket): void;
  /** Resolves when the media path is up (RTP: at once; websocket: MEDIA_START sent; AudioSocket: UUID sent). */
  readonly ready: Promise<void>;
  /**
   * Caller audio into the call: PCM16 at `rate` (resampled to the channel's format by the peer), sent in real
   * time with the caller's packetisation (`packetMs`, default the recorded one: 30 ms ulaw, 20 ms slin16).
   */
  sendCaller(pcm: Int16Array, rate: number, packetMs?: number): Promise<void>;
  /** While muted the peer sends no caller audio (a playback on the bridged caller channel, §3.9). */
  setCallerMuted(muted: boolean): void;
  /** Agent audio the peer played to the caller so far, PCM16 at `rate` of the channel's format. */
  agentAudio(): { pcm: Int16Array; rate: number };
  /** Wire-level facts for assertions (flushes, marks, partial frames dropped, XOFF sent...). */
  readonly stats: Record<string, number>;
  /** Asterisk hangs up the media channel (closes its socket / stops RTP). */
  close(): void;
}

export type SimMediaFactory = (request: ExternalMediaRequest) => SimMediaEndpoint | Promise<SimMediaEndpoint>;
