/**
 * Command checks and text preparation for the serial conversation (ws-call-api.md §3.4-3.8, §3.12): a command
 * with bad fields is a BAD_REQUEST AppError (the conversation turns it into an `error` event), never a throw that
 * escapes `handleCommand`.
 */
import { AppError } from "../../errors.js";
import type { ConversationCommand } from "../conversation.js";
import { checkPlayUrl } from "./sound-source.js";

export const TTS_MAX_CHARS = 20_000;
export const WAIT_INPUT_MAX_MS = 600_000;
/** An open streaming utterance that receives no text for this long is closed (§3.4 rule 5). */
export const OPEN_UTTERANCE_IDLE_MS = 30_000;

const bad = (path: string, message: string): AppError => new AppError("BAD_REQUEST", message, { details: { fields: [{ path, message }] } });

function checkBool(c: Record<string, unknown>, ...keys: string[]): void {
  for (const k of keys) if (c[k] !== undefined && typeof c[k] !== "boolean") throw bad(k, `${k} must be a boolean`);
}

function checkPlayId(c: Record<string, unknown>): void {
  if (c.playId !== undefined && (typeof c.playId !== "string" || c.playId === "")) throw bad("playId", "playId must be a non-empty string");
}

/** `waitInputTimeout`: 0 (off) or 100..600 000 ms; 1-99 is rejected as a likely seconds value. */
export function checkWaitInputTimeout(v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw bad("waitInputTimeout", "waitInputTimeout must be a non-negative integer (ms)");
  if (v > 0 && v < 100) throw bad("waitInputTimeout", "waitInputTimeout is in milliseconds");
  if (v > WAIT_INPUT_MAX_MS) throw bad("waitInputTimeout", `waitInputTimeout must be at most ${WAIT_INPUT_MAX_MS} ms`);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Throws BAD_REQUEST for a command whose fields break §3; returns nothing when it is well formed. */
export function validateCommand(c: ConversationCommand): void {
  const r = c as unknown as Record<string, unknown>;
  switch (c.command) {
    case "tts": {
      if (typeof r.text !== "string") throw bad("text", "text is required and must be a string");
      if (c.text.length > TTS_MAX_CHARS) throw bad("text", `text is longer than ${TTS_MAX_CHARS} characters`);
      if (c.text === "" && c.endOfStream !== true) throw bad("text", 'text may be "" only with endOfStream:true');
      checkPlayId(r);
      checkBool(r, "streaming", "endOfStream", "autoHangup", "interruptible", "queue", "base64");
      checkWaitInputTimeout(c.waitInputTimeout);
      if (c.speaker !== undefined && (typeof c.speaker !== "string" || c.speaker === "")) throw bad("speaker", "speaker must be a non-empty string");
      if (c.cacheKey !== undefined && typeof c.cacheKey !== "string") throw bad("cacheKey", "cacheKey must be a string");
      const o = r.option;
      if (o !== undefined && (typeof o !== "object" || o === null || Array.isArray(o))) throw bad("option", "option must be an object");
      const opt = o as Record<string, unknown> | undefined;
      if (opt?.voice !== undefined && typeof opt.voice !== "string") throw bad("option.voice", "option.voice must be a string");
      const rate = opt?.sampleRate;
      if (rate !== undefined && (typeof rate !== "number" || !Number.isInteger(rate) || rate < 8000 || rate > 48000)) {
        throw bad("option.sampleRate", "option.sampleRate must be an integer between 8000 and 48000");
      }
      if (c.base64 === true && !BASE64.test(c.text.replace(/\s+/g, ""))) throw bad("text", "text is not valid base64");
      return;
    }
    case "play":
      if (typeof r.url !== "string" || c.url === "") throw bad("url", "url is required and must be a non-empty string");
      checkPlayId(r);
      checkBool(r, "autoHangup", "interruptible", "queue");
      checkWaitInputTimeout(c.waitInputTimeout);
      if (r.loop !== undefined && (typeof r.loop !== "number" || !Number.isInteger(r.loop) || r.loop < 0)) {
        throw bad("loop", "loop must be a non-negative integer (0 = until stopped)");
      }
      checkPlayUrl(c.url);
      return;
    case "interrupt":
      checkBool(r, "graceful");
      if (c.fadeOutMs !== undefined && (typeof c.fadeOutMs !== "number" || !Number.isInteger(c.fadeOutMs) || c.fadeOutMs < 0 || c.fadeOutMs > 2000)) {
        throw bad("fadeOutMs", "fadeOutMs must be an integer from 0 to 2000");
      }
      return;
    case "hangup": {
      checkBool(r, "afterPlayout");
      if (c.reason !== undefined && typeof c.reason !== "string") throw bad("reason", "reason must be a string");
      const i = r.initiator;
      if (i !== undefined && !["caller", "agent", "client", "system", "callee"].includes(i as string)) {
        throw bad("initiator", "initiator must be caller, agent, client or system");
      }
      const h = r.headers;
      if (h !== undefined && (typeof h !== "object" || h === null || Array.isArray(h) || Object.values(h).some((v) => typeof v !== "string"))) {
        throw bad("headers", "headers must be a map of strings");
      }
      return;
    }
    case "mute":
    case "unmute":
      if (c.trackId !== undefined && typeof c.trackId !== "string") throw bad("trackId", "trackId must be a string");
      return;
    case "history":
      if (typeof r.text !== "string") throw bad("text", "text is required and must be a string");
      return;
    case "pause":
    case "resume":
      return;
  }
}

// Emoji: pictographs with their modifiers, joiners, variation selectors, keycaps and regional-indicator flags.
const EMOJI = /(?:\p{Extended_Pictographic}|\p{Regional_Indicator}|[\u{1F3FB}-\u{1F3FF}])(?:[\uFE0E\uFE0F\u20E3\u200D]|[\u{1F3FB}-\u{1F3FF}]|\p{Extended_Pictographic})*|[\uFE0F\u20E3]/gu;
// Markdown emphasis: `*`, `~~`, and `_` at a word edge (so snake_case and e_mail stay intact).
const EMPHASIS = /\*+|~~|(?<![\p{L}\p{N}])_+|_+(?![\p{L}\p{N}])/gu;

/**
 * The text to synthesise (and to report as spoken): emoji and Markdown emphasis characters removed, and the
 * double spaces this leaves collapsed. Leading/trailing white space is kept, since a streamed chunk's edges
 * separate it from its neighbours.
 */
export function speakableText(text: string): string {
  const cleaned = text.replace(EMOJI, "").replace(EMPHASIS, "");
  if (cleaned === text) return text;
  return cleaned.replace(/([^\S\n])[^\S\n]+/g, "$1");
}

/** Raw PCM16 LE bytes (with the byte carried from the previous chunk) as samples, and the new odd byte, if any. */
export function pcmFromBase64(text: string, carry: number | undefined): { samples: Int16Array; carry: number | undefined } {
  const raw = Buffer.from(text.replace(/\s+/g, ""), "base64");
  const bytes = carry === undefined ? raw : Buffer.concat([Buffer.from([carry]), raw]);
  const even = bytes.length - (bytes.length % 2);
  const samples = new Int16Array(even / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
  return { samples, carry: even < bytes.length ? bytes[even] : undefined };
}
