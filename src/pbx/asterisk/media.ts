/**
 * The externalMedia channel of one Asterisk call and the media leg on our side of it (media-protocols.md
 * §3.5-3.7): RTP over UDP, chan_websocket (we connect to Asterisk), or AudioSocket (Asterisk connects to us).
 * Whatever this creates is removed by the call's clean-up (`DELETE /channels/ac-<id>-m`).
 */
import { randomUUID } from "node:crypto";
import type { Config } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { AudioSocketServer } from "../../media/audiosocket-server.js";
import { AudioSocketLeg } from "../../media/audiosocket-leg.js";
import { ChanWebsocketLeg } from "../../media/chan-websocket-leg.js";
import { RtpLeg } from "../../media/rtp-leg.js";
import type { RtpPortPool } from "../../media/rtp-port-pool.js";
import type { AriClient } from "./ari/client.js";
import type { AriChannel } from "./ari/models.js";
import { asteriskSupports } from "./version.js";

type AstConfig = Config["asterisk"];
export type AsteriskMediaMode = AstConfig["media"];
type Format = NonNullable<AstConfig["format"]>;

/**
 * The externalMedia format of a call in `mode`. Over RTP only formats with a static payload type reach the
 * caller: a UnicastRTP channel has no SDP, so its receive map is empty and Asterisk resolves only the static
 * types (0 ulaw, 8 alaw, 10/11 slin); slin16's PT 118 is dropped without a log line, and the caller hears nothing
 * (live-2026-12-06 fact 4, res_rtp_asterisk.c / rtp_engine.c). So RTP takes ulaw unless told slin, alaw or ulaw;
 * chan_websocket and AudioSocket carry slin16 fine and default to it.
 */
export function mediaFormat(mode: AsteriskMediaMode, configured: AstConfig["format"]): Format {
  if (mode === "rtp") return configured === undefined || configured === "slin16" ? "ulaw" : configured;
  return configured ?? "slin16";
}

/** Said once at start-up when the configuration asks for what Asterisk cannot carry (see `mediaFormat`). */
export function mediaFormatWarning(config: Pick<AstConfig, "media" | "format">): string | undefined {
  if (config.media !== "rtp" || config.format !== "slin16") return undefined;
  return 'Asterisk drops slin16 RTP sent to an externalMedia channel (PT 118 has no static payload type and the channel has no SDP), so the caller would hear nothing: media = "rtp" uses format "ulaw"; set format = "ulaw", "alaw" or "slin" to silence this, or media = "websocket" for 16 kHz';
}

/** RTP has no queue in Asterisk beyond what we send ahead (§0): the same small lead as AudioSocket's default. */
const RTP_LEAD_MS = 40;
/** Asterisk must connect its AudioSocket / send MEDIA_START this soon after externalMedia. */
const MEDIA_CONNECT_TIMEOUT_MS = 5000;

export interface AsteriskMediaDeps {
  ports: RtpPortPool;
  /** The AudioSocket listener, started on first use (most setups never need it). */
  audioSockets: () => Promise<AudioSocketServer>;
}

/** The media legs of an Asterisk call; each takes DTMF from ARI (`pushDtmf`). */
export type AsteriskLeg = RtpLeg | ChanWebsocketLeg | AudioSocketLeg;

export interface AsteriskMedia {
  leg: AsteriskLeg;
  media: { leg: "rtp" | "chanWebsocket" | "audioSocket"; codec: string; sampleRate: number };
}

export interface StartMediaOptions {
  ari: AriClient;
  config: AstConfig;
  deps: AsteriskMediaDeps;
  mode: AsteriskMediaMode;
  callId: string;
  mediaChannelId: string;
  version: string | undefined;
  log: Logger;
}

export function formatRate(format: Format): number {
  return format === "slin16" ? 16000 : 8000;
}

function codecOf(format: Format): string {
  return format === "ulaw" ? "PCMU" : format === "alaw" ? "PCMA" : "L16";
}

export async function startAsteriskMedia(o: StartMediaOptions): Promise<AsteriskMedia> {
  const c = o.config;
  const format = mediaFormat(o.mode, c.format);
  const describe = (leg: AsteriskMedia["media"]["leg"]): AsteriskMedia["media"] => ({ leg, codec: codecOf(format), sampleRate: formatRate(format) });
  switch (o.mode) {
    case "rtp": {
      const leg = await RtpLeg.open({ id: o.callId, format, bindIp: c.rtp_bind_ip, ports: o.deps.ports, leadMs: RTP_LEAD_MS, log: o.log });
      try {
        const ch = await o.ari.externalMedia({
          channelId: o.mediaChannelId,
          externalHost: `${c.rtp_advertise_ip}:${leg.localPort}`,
          format,
          encapsulation: "rtp",
          transport: "udp",
        });
        // Asterisk sends from there and, with strict RTP, only accepts our packets there (§3.5).
        const address = (await channelVar(o.ari, ch, "UNICASTRTP_LOCAL_ADDRESS")) ?? "";
        const port = Number(await channelVar(o.ari, ch, "UNICASTRTP_LOCAL_PORT"));
        if (!Number.isInteger(port) || port <= 0) throw new AppError("PBX_ERROR", "externalMedia gave no UNICASTRTP_LOCAL_PORT");
        // A wildcard address (Asterisk bound to 0.0.0.0) is learned by the leg from Asterisk's own packets.
        leg.setRemote(address, port);
        return { leg, media: describe("rtp") };
      } catch (err) {
        await leg.close("externalMedia failed");
        throw err;
      }
    }
    case "websocket": {
      if (!asteriskSupports(o.version, "chanWebsocket")) {
        throw new AppError("UNSUPPORTED", `chan_websocket needs Asterisk >= 20.16 / 21.11 / 22.6 / 23.0 (this is ${o.version ?? "unknown"}); set [asterisk] media = "rtp"`);
      }
      let control = c.websocket_control;
      if (control === "json" && !asteriskSupports(o.version, "jsonControl")) {
        o.log.warn({ callId: o.callId, version: o.version }, "JSON control needs Asterisk >= 20.18 / 22.8 / 23.2; using plain text");
        control = "plain";
      }
      const ch = await o.ari.externalMedia({
        channelId: o.mediaChannelId,
        format,
        transport: "websocket",
        encapsulation: "none",
        connectionType: "server",
        ...(control === "json" ? { transportData: "f(json)" } : {}),
      });
      const connectionId = await channelVar(o.ari, ch, "MEDIA_WEBSOCKET_CONNECTION_ID");
      if (!connectionId) throw new AppError("PBX_ERROR", "externalMedia gave no MEDIA_WEBSOCKET_CONNECTION_ID");
      const leg = await ChanWebsocketLeg.connect({
        id: o.callId,
        url: `${c.ari_url.replace(/^http/i, "ws").replace(/\/+$/, "")}/media/${encodeURIComponent(connectionId)}`,
        format,
        control,
        leadMs: c.websocket_lead_ms,
        marks: asteriskSupports(o.version, "markMedia"),
        connectTimeoutMs: MEDIA_CONNECT_TIMEOUT_MS,
        log: o.log,
      });
      return { leg, media: describe("chanWebsocket") };
    }
    case "audiosocket": {
      if (format !== "slin16" && format !== "slin") throw new AppError("CONFIG_INVALID", `[asterisk] format "${format}" cannot be used with media = "audiosocket" (slin16 or slin)`);
      const server = await o.deps.audioSockets();
      // The UUID maps Asterisk's TCP connection to this call (§3.7); it must parse as a UUID.
      const uuid = randomUUID();
      const connection = server.expect(uuid, MEDIA_CONNECT_TIMEOUT_MS);
      try {
        await o.ari.externalMedia({
          channelId: o.mediaChannelId,
          externalHost: c.audiosocket_advertise,
          format,
          encapsulation: "audiosocket",
          transport: "tcp",
          data: uuid,
        });
      } catch (err) {
        server.cancel(uuid);
        connection.catch(() => undefined);
        throw err;
      }
      const leg = new AudioSocketLeg({ id: o.callId, connection: await connection, format, leadMs: c.audiosocket_lead_ms, log: o.log });
      return { leg, media: describe("audioSocket") };
    }
  }
}

/** A channel variable of the externalMedia channel: from the response's `channelvars`, else asked for (§3.5). */
async function channelVar(ari: AriClient, ch: AriChannel, name: string): Promise<string | undefined> {
  return ch.channelvars?.[name] ?? (await ari.getChannelVar(ch.id, name));
}
