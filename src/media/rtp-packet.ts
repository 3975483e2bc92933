/**
 * RTP (RFC 3550) header build/parse and the payload codecs of Asterisk externalMedia (media-protocols.md §3.5).
 *
 * | format | PT (what Asterisk sends) | rate  | payload            |
 * |--------|--------------------------|-------|--------------------|
 * | ulaw   | 0                        | 8000  | G.711 µ-law        |
 * | alaw   | 8                        | 8000  | G.711 A-law        |
 * | slin16 | 118                      | 16000 | L16 **big-endian** |
 * | slin   | 11 (10 seen too)         | 8000  | L16 **big-endian** |
 *
 * The payload type is informational: Asterisk's dynamic/odd PTs (10/11 are 44.1 kHz in the static table) mean the
 * receiver keys on the configured format, never on the PT. Everything here works in place on caller-provided
 * buffers (no allocation per packet).
 */

import { aLawDecodeSample, aLawEncodeSample, muLawDecodeSample, muLawEncodeSample } from "../audio/index.js";

export type RtpFormat = "slin16" | "slin" | "ulaw" | "alaw";

export interface RtpFormatInfo {
  payloadType: number;
  sampleRate: number;
  /** Bytes per sample on the wire (1 for G.711, 2 for L16). */
  bytesPerSample: 1 | 2;
}

export const RTP_FORMATS: Readonly<Record<RtpFormat, RtpFormatInfo>> = {
  ulaw: { payloadType: 0, sampleRate: 8000, bytesPerSample: 1 },
  alaw: { payloadType: 8, sampleRate: 8000, bytesPerSample: 1 },
  slin16: { payloadType: 118, sampleRate: 16000, bytesPerSample: 2 },
  slin: { payloadType: 11, sampleRate: 8000, bytesPerSample: 2 },
};

export function isRtpFormat(format: unknown): format is RtpFormat {
  return typeof format === "string" && Object.prototype.hasOwnProperty.call(RTP_FORMATS, format);
}

export const RTP_HEADER_BYTES = 12;

/** A parsed header (reused by the parser: fields are overwritten on every `parseRtp`). */
export interface RtpHeader {
  version: number;
  padding: boolean;
  extension: boolean;
  csrcCount: number;
  marker: boolean;
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  /** Offset of the payload in the packet (after CSRCs and the header extension). */
  payloadOffset: number;
  /** Payload bytes (padding removed). */
  payloadLength: number;
}

export function newRtpHeader(): RtpHeader {
  return { version: 0, padding: false, extension: false, csrcCount: 0, marker: false, payloadType: 0, seq: 0, timestamp: 0, ssrc: 0, payloadOffset: 0, payloadLength: 0 };
}

/** Parses `packet` into `out`. Returns false for anything that is not a well-formed RTP v2 packet. */
export function parseRtp(packet: Uint8Array, length: number, out: RtpHeader): boolean {
  if (length < RTP_HEADER_BYTES) return false;
  const b0 = packet[0] as number;
  const b1 = packet[1] as number;
  out.version = b0 >> 6;
  if (out.version !== 2) return false;
  out.padding = (b0 & 0x20) !== 0;
  out.extension = (b0 & 0x10) !== 0;
  out.csrcCount = b0 & 0x0f;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  // RTCP shares the first bits; PT 72-76 with the marker bit set are RTCP packet types 200-204 (RFC 5761).
  if (out.payloadType >= 72 && out.payloadType <= 76) return false;
  out.seq = ((packet[2] as number) << 8) | (packet[3] as number);
  out.timestamp = (((packet[4] as number) << 24) | ((packet[5] as number) << 16) | ((packet[6] as number) << 8) | (packet[7] as number)) >>> 0;
  out.ssrc = (((packet[8] as number) << 24) | ((packet[9] as number) << 16) | ((packet[10] as number) << 8) | (packet[11] as number)) >>> 0;
  let offset = RTP_HEADER_BYTES + out.csrcCount * 4;
  if (out.extension) {
    if (offset + 4 > length) return false;
    const words = ((packet[offset + 2] as number) << 8) | (packet[offset + 3] as number);
    offset += 4 + words * 4;
  }
  let end = length;
  if (out.padding) {
    const pad = packet[length - 1] as number;
    if (pad === 0) return false;
    end -= pad;
  }
  if (offset > end) return false;
  out.payloadOffset = offset;
  out.payloadLength = end - offset;
  return true;
}

/** Writes a 12-byte header (V=2, no padding, extension or CSRC) at the start of `packet`. */
export function writeRtpHeader(packet: Uint8Array, marker: boolean, payloadType: number, seq: number, timestamp: number, ssrc: number): void {
  packet[0] = 0x80;
  packet[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  packet[2] = (seq >> 8) & 0xff;
  packet[3] = seq & 0xff;
  packet[4] = (timestamp >>> 24) & 0xff;
  packet[5] = (timestamp >>> 16) & 0xff;
  packet[6] = (timestamp >>> 8) & 0xff;
  packet[7] = timestamp & 0xff;
  packet[8] = (ssrc >>> 24) & 0xff;
  packet[9] = (ssrc >>> 16) & 0xff;
  packet[10] = (ssrc >>> 8) & 0xff;
  packet[11] = ssrc & 0xff;
}

/** Samples in `bytes` payload bytes of `format` (an odd L16 byte is ignored). */
export function rtpSamplesIn(format: RtpFormat, bytes: number): number {
  return RTP_FORMATS[format].bytesPerSample === 2 ? bytes >> 1 : bytes;
}

/** Decodes `length` payload bytes at `offset` into `out` (large enough); returns the samples written. */
export function decodeRtpPayload(format: RtpFormat, packet: Uint8Array, offset: number, length: number, out: Int16Array): number {
  switch (format) {
    case "slin16":
    case "slin": {
      const n = length >> 1;
      for (let i = 0, o = offset; i < n; i++, o += 2) out[i] = ((packet[o] as number) << 8) | (packet[o + 1] as number); // big-endian; Int16Array wraps
      return n;
    }
    case "ulaw":
      for (let i = 0; i < length; i++) out[i] = muLawDecodeSample(packet[offset + i] as number);
      return length;
    case "alaw":
      for (let i = 0; i < length; i++) out[i] = aLawDecodeSample(packet[offset + i] as number);
      return length;
  }
}

/** Encodes `pcm` into `packet` at `offset`; returns the payload bytes written. */
export function encodeRtpPayload(format: RtpFormat, pcm: Int16Array, packet: Uint8Array, offset: number): number {
  const n = pcm.length;
  switch (format) {
    case "slin16":
    case "slin":
      for (let i = 0, o = offset; i < n; i++, o += 2) {
        const s = pcm[i] as number;
        packet[o] = (s >> 8) & 0xff;
        packet[o + 1] = s & 0xff;
      }
      return n * 2;
    case "ulaw":
      for (let i = 0; i < n; i++) packet[offset + i] = muLawEncodeSample(pcm[i] as number);
      return n;
    case "alaw":
      for (let i = 0; i < n; i++) packet[offset + i] = aLawEncodeSample(pcm[i] as number);
      return n;
  }
}

/** Signed distance from sequence number `a` to `b` modulo 2^16 (positive: b is after a). */
export function seqDelta(a: number, b: number): number {
  const d = (b - a) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}
