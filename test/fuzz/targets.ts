/**
 * Fuzz targets: every parser that reads bytes or text from outside the process, driven through the same public
 * functions production calls. A target's `check` runs one input and throws `Violation` when a property breaks;
 * the harness (`fuzzProperty`) adds the rule shared by all of them: the parser returns a result, or rejects with a
 * *named* error (an AppError with a catalogue code, or the module's documented error type). Anything else thrown
 * (TypeError, RangeError, a stack overflow, a plain Error), or a case slower than `FUZZ_HANG_MS`, is a failure.
 *
 * Streaming parsers (ESL, AudioSocket, the /call binary decoder) also get the chunking property: the same bytes
 * split at random boundaries give exactly what the unsplit input gives.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, readdirSync, writeFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { COMMANDS, dtmfCommand, parseCallOption, parseFields, referCommand, rejectCommand, transferCommand } from "../../src/call/call-option.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { TomlSyntaxError } from "../../src/config/toml.js";
import { AppError, ERROR_CODES } from "../../src/errors.js";
import { TEXT_LIMIT_BYTES } from "../../src/http/ws-call.js";
import { AudioSocketLeg, AUDIOSOCKET_KIND_RATES } from "../../src/media/audiosocket-leg.js";
import { parseChanWebsocketControl } from "../../src/media/chan-websocket-leg.js";
import { ManualClock } from "../../src/media/clock.js";
import { decodeRtpPayload, newRtpHeader, parseRtp, rtpSamplesIn, RTP_FORMATS, type RtpFormat } from "../../src/media/rtp-packet.js";
import { parseTwilioMessage, TwilioLeg } from "../../src/media/twilio-leg.js";
import { checkWireFormat, WIRE_CODECS, WireDecoder, type WireCodec } from "../../src/media/wire-codec.js";
import { EslParser, parseEvent, serializeMessage, type EslEvent, type EslMessage } from "../../src/pbx/freeswitch/esl/parser.js";
import { allSessions } from "../../src/pbx/freeswitch/esl/testutil.js";
import { isKnownAriEvent, KNOWN_ARI_EVENT_TYPES, parseAriEvent } from "../../src/pbx/asterisk/ari/events.js";
import { pcmFromBase64, speakableText, validateCommand } from "../../src/pipeline/core/commands.js";
import type { ConversationCommand } from "../../src/pipeline/conversation.js";
import { DIAGNOSTIC_CODES } from "../../src/playbook/diagnostics.js";
import { resolveSoundFile } from "../../src/playbook/files.js";
import { parsePlaybook } from "../../src/playbook/parse.js";
import { TemplateSyntaxError } from "../../src/playbook/template.js";
import { sharedFixtures } from "../shared-fixtures.js";
import { cuts, deepNesting, mutatedBytes, mutatedJsonText, mutatedLines, mutatedText, randomText, splitAt, withDeepField } from "./mutate.js";

/** A broken property (as opposed to a parser's own, named, rejection). */
export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Violation";
  }
}

export interface FuzzTarget<T = unknown> {
  name: string;
  /** What the parser is and which production function is driven. */
  what: string;
  arbitrary: fc.Arbitrary<T>;
  /** Runs one input; throws Violation for a broken property; may throw a named error (a rejection). */
  check: (input: T) => void | Promise<void>;
  async?: boolean;
  /** Inputs that once crashed the parser: always run first (fast-check `examples`). */
  regressions?: T[];
}

/** A rejection we accept: an AppError with a catalogue code, or a documented parser error type. */
export function isNamedError(err: unknown): boolean {
  if (err instanceof AppError) return Object.hasOwn(ERROR_CODES, err.code);
  return err instanceof TomlSyntaxError || err instanceof TemplateSyntaxError;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message.slice(0, 300)}${err.stack ? `\n${err.stack.split("\n").slice(1, 6).join("\n")}` : ""}`;
  return `non-Error thrown: ${String(err).slice(0, 200)}`;
}

/** A single case slower than this counts as a hang. */
export const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 3000);

/** The shared rule around a target's check: named rejections pass, anything else (or a hang) is a failure. */
export async function guarded<T>(target: FuzzTarget<T>, input: T): Promise<void> {
  const t0 = performance.now();
  try {
    await target.check(input);
  } catch (err) {
    if (err instanceof Violation) throw err;
    if (!isNamedError(err)) throw new Violation(`unnamed exception: ${describeError(err)}`);
  }
  const ms = performance.now() - t0;
  if (ms > HANG_MS) throw new Violation(`case took ${ms.toFixed(0)} ms (> ${HANG_MS} ms: a hang)`);
}

export function guardedSync<T>(target: FuzzTarget<T>, input: T): void {
  const t0 = performance.now();
  try {
    void target.check(input);
  } catch (err) {
    if (err instanceof Violation) throw err;
    if (!isNamedError(err)) throw new Violation(`unnamed exception: ${describeError(err)}`);
  }
  const ms = performance.now() - t0;
  if (ms > HANG_MS) throw new Violation(`case took ${ms.toFixed(0)} ms (> ${HANG_MS} ms: a hang)`);
}

/** The fast-check property of a target (async targets get an async property). */
export function fuzzProperty<T>(target: FuzzTarget<T>): fc.IProperty<[T]> | fc.IAsyncProperty<[T]> {
  return target.async ? fc.asyncProperty(target.arbitrary, (input) => guarded(target, input)) : fc.property(target.arbitrary, (input) => guardedSync(target, input));
}

function expect(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Violation(message);
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStringMap = (v: unknown): boolean => isObj(v) && Object.values(v).every((x) => typeof x === "string");

/** JSON lines of every Asterisk recording folder's `file`. */
function asteriskJsonl(file: string): Record<string, unknown>[] {
  const dir = sharedFixtures("asterisk");
  const out: Record<string, unknown>[] = [];
  for (const folder of readdirSync(dir).sort()) {
    let text: string;
    try {
      text = readFileSync(join(dir, folder, file), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) if (line.trim() !== "") out.push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

// Seeds are read once, on first use (the vitest file and the CLI both import this module).
const lazy = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

// =============================================================================================== ESL

/** One run of the production path (EslConnection: `parser.push(chunk)` then `parseEvent` per message). */
function eslRun(pieces: readonly Buffer[], parser: EslParser): { msgs: EslMessage[]; events: (EslEvent | undefined)[] } {
  const msgs: EslMessage[] = [];
  for (const p of pieces) msgs.push(...parser.push(p));
  return { msgs, events: msgs.map((m) => parseEvent(m)) };
}

function checkEslShapes(msgs: readonly EslMessage[], events: readonly (EslEvent | undefined)[]): void {
  msgs.forEach((m, i) => {
    expect(typeof m.contentType === "string" && m.headers.get("Content-Type") !== undefined, "message without Content-Type");
    expect(m.body === undefined || Buffer.isBuffer(m.body), "body is not a Buffer");
    const ev = events[i];
    if (ev) {
      expect(typeof ev.name === "string", "event name not a string");
      expect(isStringMap(ev.headers), "event headers not all strings");
      expect(ev.body === undefined || typeof ev.body === "string", "event body not a string");
    }
  });
}

const eslSeeds = lazy(() => {
  const seeds: Buffer[] = allSessions().map((s) => s.s2c);
  seeds.push(
    serializeMessage([["Content-Type", "text/event-json"]], JSON.stringify({ "Event-Name": "CHANNEL_ANSWER", "Unique-ID": "u1", _body: "hi", n: 1, o: { a: [1] } })),
    serializeMessage([["Content-Type", "text/event-plain"]], serializeMessage([["Event-Name", "CUSTOM"], ["Event-Subclass", "mod_audio_fork%3A%3Ajson"]], "body")),
  );
  return seeds;
});

const eslInput = fc.oneof(
  { weight: 5, arbitrary: fc.constant(null).chain(() => mutatedBytes(eslSeeds(), { window: 4000 })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)) },
  // A JSON event whose body nests deeply: the event decoder must not overflow the stack.
  {
    weight: 1,
    arbitrary: withDeepField([{ "Event-Name": "CUSTOM", "Unique-ID": "u" }]).map((body) => serializeMessage([["Content-Type", "text/event-json"]], body)),
  },
);

const esl: FuzzTarget<{ input: Buffer; cuts: number[] }> = {
  name: "esl",
  what: "FreeSWITCH ESL byte stream: EslParser.push + parseEvent (src/pbx/freeswitch/esl/parser.ts)",
  arbitrary: fc.record({ input: eslInput, cuts }),
  regressions: [
    // RangeError from JSON.stringify in parseJsonEvent (a header value nested 6000 levels deep).
    { input: serializeMessage([["Content-Type", "text/event-json"]], `{"Event-Name":"CUSTOM","a":${"[".repeat(6000)}${"]".repeat(6000)}}`), cuts: [7, 100] },
  ],
  check({ input, cuts: points }) {
    const whole = new EslParser();
    const a = eslRun([input], whole);
    checkEslShapes(a.msgs, a.events);
    const split = new EslParser();
    const b = eslRun(splitAt(input, points), split);
    expect(a.msgs.length === b.msgs.length, `chunking changed the message count: ${a.msgs.length} unsplit, ${b.msgs.length} split`);
    a.msgs.forEach((m, i) => {
      const n = b.msgs[i] as EslMessage;
      expect(isDeepStrictEqual(m.headers.entries(), n.headers.entries()), `chunking changed the headers of message ${i}`);
      expect((m.body === undefined) === (n.body === undefined) && (m.body === undefined || m.body.equals(n.body as Buffer)), `chunking changed the body of message ${i}`);
    });
    expect(isDeepStrictEqual(a.events, b.events), "chunking changed the parsed events");
    expect(whole.errors === split.errors && whole.buffered === split.buffered, `chunking changed errors/buffered: ${whole.errors}/${whole.buffered} vs ${split.errors}/${split.buffered}`);
    // Small caps exercise the oversize paths (not chunking-invariant by design: an oversize block is dropped
    // as soon as it is seen to be oversize); they must still never throw and must bound memory.
    const capped = new EslParser({ maxBodyBytes: 512, maxHeaderBytes: 512 });
    const c = eslRun(splitAt(input, points), capped);
    checkEslShapes(c.msgs, c.events);
    expect(capped.buffered <= 512 * 2 + input.length, "capped parser holds more than its caps");
  },
};

// =============================================================================================== ARI

const ariSeeds = lazy(() => asteriskJsonl("ari-events.jsonl"));

const ari: FuzzTarget<string> = {
  name: "ari-event",
  what: "Asterisk ARI WebSocket event frame: parseAriEvent (src/pbx/asterisk/ari/events.ts)",
  arbitrary: fc.constant(null).chain(() =>
    fc.oneof(
      { weight: 6, arbitrary: mutatedJsonText(ariSeeds()) },
      { weight: 1, arbitrary: mutatedText(ariSeeds().slice(0, 40).map((e) => JSON.stringify(e))) },
      { weight: 1, arbitrary: withDeepField(ariSeeds().slice(0, 10)) },
      { weight: 1, arbitrary: randomText },
    ),
  ),
  check(text) {
    const ev = parseAriEvent(text);
    if (ev === undefined) return;
    expect(typeof ev.type === "string", "event type not a string");
    if (isKnownAriEvent(ev)) {
      expect(KNOWN_ARI_EVENT_TYPES.includes(ev.type), `known event of unknown type ${ev.type}`);
      expect(typeof ev.application === "string" && typeof ev.timestamp === "string", "known event without application/timestamp strings");
      const withChannel = ev as { channel?: { id?: unknown; name?: unknown; caller?: unknown } };
      if (withChannel.channel !== undefined) expect(typeof withChannel.channel.id === "string" && isObj(withChannel.channel.caller), "known event with a malformed channel");
    } else {
      expect(isObj(ev.raw) && ev.raw.type === ev.type, "unknown event without its raw object");
    }
  },
};

// =============================================================================================== /call commands

const commandSeeds: Record<string, unknown>[] = [
  { command: "invite", option: { codec: "pcmu", sampleRate: 8000, ptime: 20, caller: "alice", variables: { a: 1 }, asr: { provider: "scripted" }, sip: { headers: { "X-A": "1" } } } },
  { command: "accept", option: { codec: "pcm", sampleRate: 16000, outputCodec: "g722", tts: { provider: "scripted", speed: 1.1 }, inactivityTimeout: 30 } },
  { command: "reject", reason: "busy", code: 486 },
  { command: "ringing", earlyMedia: true },
  { command: "tts", text: "Hello **there** 😀", playId: "p1", streaming: true, endOfStream: false, waitInputTimeout: 5000, option: { voice: "alloy" } },
  { command: "tts", text: "AAECAwQF", base64: true, option: { sampleRate: 16000 } },
  { command: "play", url: "https://example.com/a.wav", loop: 2, interruptible: true },
  { command: "play", url: "bank/welcome.wav" },
  { command: "interrupt", graceful: true, fadeOutMs: 200 },
  { command: "hangup", reason: "done", initiator: "agent", headers: { "X-Reason": "ok" }, afterPlayout: true },
  { command: "refer", callee: "sip:bob@example.com", options: { headers: { "X-B": "2" }, timeoutMs: 5000 } },
  { command: "transfer", target: "1000", context: "default", mode: "dialplan" },
  { command: "dtmf", digits: "12#*A", durationMs: 100, gapMs: 50 },
  { command: "mute", trackId: "t1" },
  { command: "unmute" },
  { command: "history", text: "user said hi", requestId: "r1" },
  { command: "pause" },
  { command: "resume" },
];

/**
 * A text frame of the /call and /call/pbx sockets, checked as production checks it: the 64 KiB limit and
 * JSON.parse of ws-call.ts `parseText`, then CallSession.execute's gates (object, `command` string, known command)
 * and per command the same validators in the same order (parseCallOption + the /call codec negotiation,
 * parseFields with the call-level schemas, validateCommand), then what the conversation does with tts text
 * (speakableText, or pcmFromBase64 for base64). CallSession.execute is private and has side effects, so its
 * dispatch is restated here; the validators are the production ones.
 */
function decodeCommand(text: string): void {
  if (Buffer.byteLength(text) > TEXT_LIMIT_BYTES) return; // closed 1009 by ws-call.ts
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AppError("BAD_COMMAND", "the message is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new AppError("BAD_COMMAND", "a command must be a JSON object");
  const c = raw as Record<string, unknown>;
  if (typeof c.command !== "string") throw new AppError("BAD_COMMAND", 'a command needs a "command" field');
  if (!COMMANDS.has(c.command)) throw new AppError("UNKNOWN_COMMAND", `unknown command ${JSON.stringify(c.command).slice(0, 80)}`);
  switch (c.command) {
    case "invite":
    case "accept": {
      const option = parseCallOption(c.option);
      expect(isObj(option.variables) && isObj(option.settings), "parseCallOption returned a malformed option");
      // ws-call.ts negotiate(): the codec checks of the /call leg factory.
      const input = checkWireFormat({ codec: option.codec ?? "pcm", sampleRate: option.sampleRate });
      if (input.ok) checkWireFormat({ codec: option.outputCodec ?? input.format.codec, sampleRate: option.outputSampleRate }, { codec: "outputCodec", sampleRate: "outputSampleRate" });
      return;
    }
    case "reject":
      parseFields(rejectCommand, c);
      return;
    case "ringing":
      return;
    case "refer":
      parseFields(referCommand, c);
      return;
    case "transfer":
      parseFields(transferCommand, c);
      return;
    case "dtmf":
      parseFields(dtmfCommand, c);
      return;
    default: {
      const cmd = c as unknown as ConversationCommand;
      validateCommand(cmd);
      if (cmd.command === "tts") {
        if (cmd.base64 === true) pcmFromBase64(cmd.text, undefined);
        else expect(typeof speakableText(cmd.text) === "string", "speakableText did not return a string");
      }
    }
  }
}

const wsCommand: FuzzTarget<string> = {
  name: "ws-command",
  what: "/call WebSocket JSON command: parseCallOption, parseFields, validateCommand (src/call/call-option.ts, src/pipeline/core/commands.ts)",
  arbitrary: fc.oneof(
    { weight: 6, arbitrary: mutatedJsonText(commandSeeds) },
    { weight: 1, arbitrary: mutatedText(commandSeeds.map((c) => JSON.stringify(c))) },
    { weight: 1, arbitrary: withDeepField(commandSeeds) },
    { weight: 1, arbitrary: fc.record({ command: fc.constantFrom(...COMMANDS), option: fc.jsonValue({ maxDepth: 3 }), text: fc.string({ unit: "grapheme", maxLength: 200 }), url: fc.string() }, { requiredKeys: ["command"] }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: randomText },
  ),
  check: decodeCommand,
};

// =============================================================================================== /call binary

const wireFormats = (Object.keys(WIRE_CODECS) as WireCodec[]).flatMap((codec) => WIRE_CODECS[codec].map((sampleRate) => ({ codec, sampleRate })));

const wsBinary: FuzzTarget<{ format: { codec: WireCodec; sampleRate: number }; input: Uint8Array; cuts: number[] }> = {
  name: "ws-binary",
  what: "/call binary audio frames: WireDecoder.decode as WsCallLeg.pushCallerBytes calls it (src/media/wire-codec.ts)",
  arbitrary: fc.record({ format: fc.constantFrom(...wireFormats), input: fc.uint8Array({ maxLength: 1200 }), cuts }),
  check({ format, input, cuts: points }) {
    const whole = new WireDecoder(format).decode(input).slice();
    const dec = new WireDecoder(format);
    const parts = splitAt(input, points).map((p) => dec.decode(p).slice());
    const joined = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.length;
    }
    const expected = format.codec === "pcm" ? input.length >> 1 : format.codec === "g722" ? input.length * 2 : input.length;
    expect(whole.length === expected, `${format.codec}: ${whole.length} samples from ${input.length} bytes, expected ${expected}`);
    expect(isDeepStrictEqual(whole, joined), `${format.codec}: chunking changed the decoded audio`);
  },
};

// =============================================================================================== RTP

interface RtpSpec {
  marker: boolean;
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  csrc: number[];
  ext: { profile: number; words: number[] } | null;
  payload: Uint8Array;
  pad: number | null;
}

const rtpSpec: fc.Arbitrary<RtpSpec> = fc.record({
  marker: fc.boolean(),
  pt: fc.integer({ min: 0, max: 127 }),
  seq: fc.integer({ min: 0, max: 0xffff }),
  ts: fc.integer({ min: 0, max: 0xffffffff }),
  ssrc: fc.integer({ min: 0, max: 0xffffffff }),
  csrc: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 15 }),
  ext: fc.option(fc.record({ profile: fc.integer({ min: 0, max: 0xffff }), words: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 6 }) })),
  payload: fc.uint8Array({ maxLength: 640 }),
  pad: fc.option(fc.integer({ min: 1, max: 40 })),
});

function buildRtp(s: RtpSpec): Buffer {
  const ext = s.ext ? 4 + s.ext.words.length * 4 : 0;
  const pad = s.pad ?? 0;
  const b = Buffer.alloc(12 + s.csrc.length * 4 + ext + s.payload.length + pad);
  b[0] = 0x80 | (s.pad ? 0x20 : 0) | (s.ext ? 0x10 : 0) | s.csrc.length;
  b[1] = (s.marker ? 0x80 : 0) | s.pt;
  b.writeUInt16BE(s.seq, 2);
  b.writeUInt32BE(s.ts, 4);
  b.writeUInt32BE(s.ssrc, 8);
  let o = 12;
  for (const c of s.csrc) o = b.writeUInt32BE(c, o);
  if (s.ext) {
    b.writeUInt16BE(s.ext.profile, o);
    b.writeUInt16BE(s.ext.words.length, o + 2);
    o += 4;
    for (const w of s.ext.words) o = b.writeUInt32BE(w, o);
  }
  Buffer.from(s.payload).copy(b, o);
  if (s.pad) b[b.length - 1] = s.pad;
  return b;
}

const rtpFormats = Object.keys(RTP_FORMATS) as RtpFormat[];

const rtp: FuzzTarget<{ spec: RtpSpec | undefined; packet: Buffer }> = {
  name: "rtp",
  what: "RTP packet from Asterisk externalMedia: parseRtp + decodeRtpPayload (src/media/rtp-packet.ts)",
  arbitrary: fc.oneof(
    { weight: 3, arbitrary: rtpSpec.map((spec) => ({ spec, packet: buildRtp(spec) })) },
    { weight: 3, arbitrary: rtpSpec.chain((spec) => mutatedBytes([buildRtp(spec)], { maxOps: 3 })).map((packet) => ({ spec: undefined, packet })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1500 }).map((b) => ({ spec: undefined, packet: Buffer.from(b) })) },
  ),
  check({ spec, packet }) {
    const h = newRtpHeader();
    const ok = parseRtp(packet, packet.length, h);
    if (spec && !(spec.pt >= 72 && spec.pt <= 76)) {
      // A packet we built by the RFC must parse back to exactly its fields.
      expect(ok, "a well-formed RTP packet was refused");
      const extBytes = spec.ext ? 4 + spec.ext.words.length * 4 : 0;
      expect(
        h.seq === spec.seq && h.timestamp === spec.ts && h.ssrc === spec.ssrc && h.payloadType === spec.pt && h.marker === spec.marker && h.csrcCount === spec.csrc.length,
        "header fields differ from the packet's",
      );
      expect(h.payloadOffset === 12 + spec.csrc.length * 4 + extBytes && h.payloadLength === spec.payload.length, "payload bounds differ from the packet's");
    }
    if (!ok) return;
    expect(h.version === 2, "accepted a non-v2 packet");
    expect(h.payloadOffset >= 12 + h.csrcCount * 4 && h.payloadLength >= 0 && h.payloadOffset + h.payloadLength <= packet.length, "payload outside the packet");
    for (const format of rtpFormats) {
      const out = new Int16Array(h.payloadLength);
      const n = decodeRtpPayload(format, packet, h.payloadOffset, h.payloadLength, out);
      expect(n === rtpSamplesIn(format, h.payloadLength), `${format}: ${n} samples decoded, ${rtpSamplesIn(format, h.payloadLength)} expected`);
    }
  },
};

// =============================================================================================== AudioSocket

/** Just enough of net.Socket for AudioSocketLeg (it only reads events and writes frames). */
class FakeSocket extends EventEmitter {
  destroyed = false;
  writable = true;
  writableLength = 0;
  setNoDelay(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  write(_b: Uint8Array, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  end(): this {
    this.writable = false;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    this.writable = false;
    return this;
  }
}

/** The leg as production builds it, with the decoded caller PCM recorded as well as passed on. */
class ProbeLeg extends AudioSocketLeg {
  // `declare`d, not initialised: the base constructor already decodes `initial`, before subclass fields exist.
  declare recorded: Int16Array[] | undefined;
  get pcm(): Int16Array[] {
    return this.recorded ?? [];
  }
  protected override pushCallerPcm(pcm: Int16Array): void {
    (this.recorded ??= []).push(pcm.slice());
    super.pushCallerPcm(pcm);
  }
}

interface AudioSocketRun {
  pcm: Int16Array;
  stats: AudioSocketLeg["stats"];
  errors: unknown[];
  close: unknown[];
}

/**
 * One leg fed `pieces`. With `viaInitial` the first piece is the `initial` of the hand-over (the bytes the server
 * read past the UUID message), decoded inside the constructor: events it causes fire before anyone can listen
 * (see the fuzz report), so only stats and audio are compared for that variant.
 */
async function audioSocketRun(format: "slin16" | "slin", pieces: readonly Buffer[], viaInitial = false): Promise<AudioSocketRun> {
  const socket = new FakeSocket();
  const [initial = Buffer.alloc(0), ...rest] = viaInitial ? pieces : [Buffer.alloc(0), ...pieces];
  const errors: unknown[] = [];
  const close: unknown[] = [];
  const leg = new ProbeLeg({
    id: "fuzz",
    connection: { uuid: "00000000-0000-0000-0000-000000000000", socket: socket as unknown as Socket, initial },
    format,
    leadMs: 40,
    clock: new ManualClock(),
    callerGapFill: false,
  });
  leg.events.on("error", (e) => errors.push(e instanceof AppError ? { code: e.code, details: e.details } : { unnamed: describeError(e) }));
  leg.events.on("close", (e) => close.push(e));
  // The leg decodes the `initial` bytes on the next turn (so listeners attached after construction see them),
  // holding the socket paused until then: later data arrives after that turn, as on a real socket.
  await new Promise((r) => setImmediate(r));
  for (const p of rest) socket.emit("data", p);
  const stats = { ...leg.stats };
  const total = leg.pcm.reduce((n, p) => n + p.length, 0);
  const pcm = new Int16Array(total);
  let o = 0;
  for (const p of leg.pcm) {
    pcm.set(p, o);
    o += p.length;
  }
  void leg.close();
  return { pcm, stats, errors, close };
}

/** What a correct framer must see: messages up to the first hangup, and the incomplete tail ignored. */
function audioSocketReference(input: Buffer): { audioIn: number; dtmf: number; errors: number; hangup: boolean; samples: number; kinds: Set<number> } {
  const r = { audioIn: 0, dtmf: 0, errors: 0, hangup: false, samples: 0, kinds: new Set<number>() };
  let pos = 0;
  while (input.length - pos >= 3) {
    const kind = input[pos] as number;
    const len = input.readUInt16BE(pos + 1);
    if (input.length - pos < 3 + len) break;
    if (kind >= 0x10 && kind <= 0x18) {
      r.audioIn++;
      r.samples += len >> 1;
      r.kinds.add(kind);
    } else if (kind === 0x00) {
      r.hangup = true;
      break;
    } else if (kind === 0x03) r.dtmf++;
    else if (kind === 0xff) r.errors++;
    pos += 3 + len;
  }
  return r;
}

const audioSocketMessage = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom(0x10, 0x12), payload: fc.uint8Array({ maxLength: 640 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom(0x01, 0x03, 0xff, 0x02, 0x7f), payload: fc.uint8Array({ maxLength: 32 }) }) },
  // Another audio kind than configured: the leg follows it (and builds resamplers, which is what costs here).
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom(0x11, 0x13, 0x16, 0x18), payload: fc.uint8Array({ maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant(0x00), payload: fc.constant(new Uint8Array(0)) }) },
);

function frameAudioSocket(messages: readonly { kind: number; payload: Uint8Array }[]): Buffer {
  return Buffer.concat(
    messages.map(({ kind, payload }) => {
      const head = Buffer.from([kind, payload.length >> 8, payload.length & 0xff]);
      return Buffer.concat([head, payload]);
    }),
  );
}

const audioSocketStream = fc.oneof(
  { weight: 4, arbitrary: fc.array(audioSocketMessage, { maxLength: 12 }).map(frameAudioSocket) },
  { weight: 3, arbitrary: fc.array(audioSocketMessage, { minLength: 1, maxLength: 8 }).chain((m) => mutatedBytes([frameAudioSocket(m)], { maxOps: 3 })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)) },
  // One maximal message (65535 bytes), the rx buffer's edge.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0x10, 0x12, 0xff), fc.integer({ min: 60_000, max: 0xffff })).map(([k, n]) => frameAudioSocket([{ kind: k, payload: new Uint8Array(n) }, { kind: 0x10, payload: new Uint8Array(320) }])) },
);

const audioSocket: FuzzTarget<{ format: "slin16" | "slin"; input: Buffer; cuts: number[] }> = {
  name: "audiosocket",
  what: "Asterisk AudioSocket TCP stream: AudioSocketLeg framing and decoding (src/media/audiosocket-leg.ts)",
  arbitrary: fc.record({ format: fc.constantFrom("slin16" as const, "slin" as const), input: audioSocketStream, cuts }),
  async: true,
  async check({ format, input, cuts: points }) {
    const whole = await audioSocketRun(format, [input]);
    const split = await audioSocketRun(format, splitAt(input, points));
    expect(isDeepStrictEqual(whole.stats, split.stats), `chunking changed the stats: ${JSON.stringify(whole.stats)} vs ${JSON.stringify(split.stats)}`);
    expect(isDeepStrictEqual(whole.pcm, split.pcm), "chunking changed the caller audio");
    expect(isDeepStrictEqual(whole.errors, split.errors) && isDeepStrictEqual(whole.close, split.close), "chunking changed the events");
    const handedOver = await audioSocketRun(format, splitAt(input, points), true);
    expect(isDeepStrictEqual(whole.stats, handedOver.stats) && isDeepStrictEqual(whole.pcm, handedOver.pcm), "bytes handed over as `initial` were decoded differently");
    for (const e of whole.errors) expect(!(isObj(e) && "unnamed" in e), `an error event that is not an AppError: ${JSON.stringify(e)}`);
    const ref = audioSocketReference(input);
    expect(whole.stats.audioIn === ref.audioIn && whole.stats.dtmfIgnored === ref.dtmf && whole.stats.errors === ref.errors, `framing differs from the reference: ${JSON.stringify(whole.stats)} vs ${JSON.stringify(ref)}`);
    const configured = format === "slin16" ? 0x12 : 0x10;
    if ([...ref.kinds].every((k) => k === configured)) expect(whole.pcm.length === ref.samples, `${whole.pcm.length} caller samples, ${ref.samples} expected`);
    expect([...ref.kinds].every((k) => AUDIOSOCKET_KIND_RATES[k] !== undefined), "reference saw an audio kind without a rate");
  },
};

// =============================================================================================== chan_websocket

const chanSeeds = lazy(() => {
  const texts = [...asteriskJsonl("chan_websocket-json.jsonl"), ...asteriskJsonl("chan_websocket-plain.jsonl")]
    .filter((r) => r.kind === "rx_text" && typeof r.text === "string")
    .map((r) => r.text as string);
  texts.push("MEDIA_MARK_PROCESSED m1", "STATUS queue_length:0 xon_level:800 xoff_level:900 queue_full:false bulk_media:false media_paused:false", "MEDIA_XOFF", "MEDIA_XON");
  return [...new Set(texts)];
});

const chanWebsocket: FuzzTarget<string> = {
  name: "chan-websocket",
  what: "Asterisk chan_websocket control message (plain and JSON): parseChanWebsocketControl (src/media/chan-websocket-leg.ts)",
  arbitrary: fc.constant(null).chain(() => {
    const json = chanSeeds().filter((t) => t.trim().startsWith("{")).map((t) => JSON.parse(t) as unknown);
    return fc.oneof(
      { weight: 3, arbitrary: mutatedText(chanSeeds()) },
      { weight: 3, arbitrary: mutatedJsonText(json) },
      { weight: 1, arbitrary: withDeepField(json) },
      { weight: 1, arbitrary: randomText },
    );
  }),
  // RangeError from JSON.stringify of a field nested 6000 levels deep.
  regressions: [`{"event":"MEDIA_START","x":${"[".repeat(6000)}${"]".repeat(6000)}}`],
  check(text) {
    const c = parseChanWebsocketControl(text);
    if (c === undefined) return;
    expect(typeof c.event === "string" && c.event === c.event.toUpperCase(), `event ${JSON.stringify(c.event)} is not an upper-case string`);
    expect(isStringMap(c.fields), "a control field is not a string");
    expect(c.arg === undefined || typeof c.arg === "string", "arg is not a string");
  },
};

// =============================================================================================== Twilio

const twilioSeeds: Record<string, unknown>[] = [
  { event: "connected", protocol: "Call", version: "1.0.0" },
  {
    event: "start",
    sequenceNumber: "1",
    start: { accountSid: "AC1", streamSid: "MZ1", callSid: "CA1", tracks: ["inbound"], mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 }, customParameters: { token: "t", playbook: "hello.md" } },
    streamSid: "MZ1",
  },
  { event: "media", sequenceNumber: "3", media: { track: "inbound", chunk: "1", timestamp: "5", payload: Buffer.alloc(160, 0xff).toString("base64") }, streamSid: "MZ1" },
  { event: "dtmf", streamSid: "MZ1", sequenceNumber: "5", dtmf: { track: "inbound_track", digit: "1" } },
  { event: "mark", sequenceNumber: "4", streamSid: "MZ1", mark: { name: "m1" } },
  { event: "stop", sequenceNumber: "5", streamSid: "MZ1", stop: { accountSid: "AC1", callSid: "CA1" } },
  { event: "start", stream_sid: "MZ2", start: { call_sid: "CA2", media_format: { encoding: "audio/x-mulaw", sample_rate: "8000" }, custom_parameters: { a: true, b: 2 } } },
];

const TWILIO_EVENTS = new Set(["connected", "start", "media", "dtmf", "mark", "stop"]);

const twilio: FuzzTarget<string> = {
  name: "twilio",
  what: "Twilio Media Streams text frame: parseTwilioMessage + TwilioLeg.handleMessage (src/media/twilio-leg.ts)",
  arbitrary: fc.oneof(
    { weight: 6, arbitrary: mutatedJsonText(twilioSeeds) },
    { weight: 1, arbitrary: mutatedText(twilioSeeds.map((s) => JSON.stringify(s))) },
    { weight: 1, arbitrary: withDeepField(twilioSeeds) },
    { weight: 1, arbitrary: randomText },
  ),
  check(text) {
    const msg = parseTwilioMessage(text);
    if ("error" in msg) {
      expect(typeof msg.error === "string" && msg.error !== "", "an error result without a message");
      return;
    }
    expect(TWILIO_EVENTS.has(msg.event), `unexpected event ${String(msg.event)}`);
    if (msg.event === "start") {
      expect(typeof msg.start.streamSid === "string" && msg.start.tracks.every((t) => typeof t === "string") && isStringMap(msg.start.customParameters), "malformed start");
      return; // the call layer's business (ws-call.ts), not the leg's
    }
    if (msg.event === "connected") return;
    // What ws-call.ts hands the leg: media, dtmf, mark (stop hangs the call up).
    const leg = new TwilioLeg({ id: "fuzz", streamSid: "MZ1", clock: new ManualClock(), send: () => {} });
    leg.events.on("error", () => {});
    leg.handleMessage(msg);
    void leg.close();
  },
};

// =============================================================================================== playbooks

const playbookSeeds = lazy(() => {
  const dirs = [join(ROOT, "playbooks"), join(ROOT, "test/fixtures/playbooks/broken")];
  return dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".md")).sort().map((f) => readFileSync(join(d, f), "utf8")));
});

const PLAYBOOK_SNIPPETS = [
  "---", "# Scene: a", "## Scene: b", "# Scene: a", "<dtmf digit=\"1\" action=\"goto\" scene=\"b\"/>", "<dtmf digit=\"*\" action=\"hangup\"/>",
  "<play file=\"hello.wav\"/>", "<goto scene=\"nowhere\"/>", "{{ caller }}", "{{ unknown_var }}", "{% if x %}", "{% endif %}", "{{", "{#", "#}",
  "llm: { provider: openai, model: gpt-4o }", "llm:", "  provider: scripted", "realtime: { provider: openai }", "greeting: false", "greeting: { text: hi, play: a.wav }",
  "vad: { type: silero }", "tools:", "  - name: t", "    parameters: { type: object, properties: { a: { type: string } } }", "    parameters: { type: wat }",
  "dtmfCollectors: { pin: { digits: 4 } }", "variables: { a: 1 }", "key: ${UNSET}", "key: ${OPENAI_API_KEY}", "&a [*a]", "!!binary x", "? [a]: b", "\t- tab",
  "a: &x { b: *x }", "followup: { timeoutMs: 100, max: 2 }", "interruption: { mode: vad }", "x: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
];

const playbook: FuzzTarget<string | Uint8Array> = {
  name: "playbook",
  what: "Markdown + YAML playbook: parsePlaybook as PlaybookStore.parse calls it (src/playbook/parse.ts)",
  arbitrary: fc.constant(null).chain(() =>
    fc.oneof(
      { weight: 5, arbitrary: mutatedLines(playbookSeeds(), PLAYBOOK_SNIPPETS) },
      { weight: 2, arbitrary: mutatedBytes(playbookSeeds().map((s) => Buffer.from(s, "utf8"))).map((b) => new Uint8Array(b)) },
      { weight: 1, arbitrary: deepNesting({ open: "[", close: "]", min: 100, max: 5000 }).map((d) => `---\nllm: { provider: scripted }\nx: ${d}\n---\nHello.\n`) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom("{% if a %}", "{{ (", "{% for x in y %}"), fc.integer({ min: 10, max: 2000 })).map(([t, n]) => `---\nllm: { provider: scripted }\n---\n${t.repeat(n)}\n`) },
      { weight: 1, arbitrary: randomText.map((t) => `---\n${t}\n---\n${t}`) },
    ),
  ),
  check(input) {
    const file = "fuzz.md";
    const r = parsePlaybook(input, { file, env: { OPENAI_API_KEY: "sk-test" }, resolveSound: (f) => resolveSoundFile(f, undefined) });
    expect(Array.isArray(r.diagnostics), "diagnostics is not an array");
    let errors = 0;
    for (const d of r.diagnostics) {
      expect(d.file === file && Number.isInteger(d.line) && d.line >= 1 && Number.isInteger(d.column) && d.column >= 1, `diagnostic at a bad position ${JSON.stringify(d)}`);
      expect((d.severity === "error" || d.severity === "warning") && DIAGNOSTIC_CODES.includes(d.code), `diagnostic with a bad severity/code ${JSON.stringify(d)}`);
      expect(typeof d.message === "string" && d.message !== "", "diagnostic without a message");
      if (d.severity === "error") errors++;
    }
    // playbook.md: a playbook with any error is not returned, and one that is not returned says why.
    expect((r.playbook !== undefined) === (errors === 0), `playbook ${r.playbook ? "returned" : "missing"} with ${errors} error(s)`);
    if (r.playbook) expect(r.playbook.scenes.has(r.playbook.initialScene) && r.playbook.name === file, "playbook without its initial scene");
  },
};

// =============================================================================================== TOML config

const tomlSeeds = lazy(() => ["config/active-call.example.toml", "config/lab.toml"].map((f) => readFileSync(join(ROOT, f), "utf8")));

const TOML_SNIPPETS = [
  "[http]", "[[handler.rules]]", "[freeswitch]", "[asterisk]", "[defaults.llm]", "[defaults.asr]", "[calls]", "[a.b.c]", "[http]", "[[http]]",
  "port = 8080", "port = 99999999", "port = \"x\"", "addr = \"0.0.0.0:8080\"", "token = \"${TOKEN}\"", "token = \"${UNSET}\"", "token = \"${UNSET:-d}\"",
  "level = \"debug\"", "max_concurrent = -1", "x = 1979-05-27T07:32:00Z", "x = inf", "x = nan", "x = 0x1F", "x = 1_000", "x = [1, \"a\"]",
  "x = { a = 1, a = 2 }", "\"__proto__\" = 1", "[__proto__]", "constructor = 1", "a.b = 1", "a = \"\"\"", "k = '''", "= 1", "key =", "[", "]]",
  "apiKey = \"k\"", "api_key = \"k\"", "provider = \"openai\"", "model = 42", "caller = \"^1[\"", "playbook = \"../x.md\"",
];

let configDir: string | undefined;

const config: FuzzTarget<string> = {
  name: "toml-config",
  what: "TOML config file: loadConfig (src/config/load.ts, toml.ts, schema.ts)",
  async: true,
  arbitrary: fc.constant(null).chain(() =>
    fc.oneof(
      { weight: 5, arbitrary: mutatedLines(tomlSeeds(), TOML_SNIPPETS) },
      { weight: 2, arbitrary: mutatedText(tomlSeeds()) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom("[", "{ a = "), fc.integer({ min: 50, max: 5000 })).map(([o, n]) => `x = ${o.repeat(n)}1${(o === "[" ? "]" : "}").repeat(n)}\n`) },
      { weight: 1, arbitrary: fc.integer({ min: 10, max: 3000 }).map((n) => `[${Array.from({ length: n }, (_, i) => `k${i % 7}`).join(".")}]\nv = 1\n`) },
      { weight: 1, arbitrary: randomText },
    ),
  ),
  regressions: [
    // RangeError from the recursive walks (parseTomlDocument's visitValue, loadConfig's expandStrings).
    `x = ${"[".repeat(1500)}1${"]".repeat(1500)}\n`,
    `x = ${"[".repeat(3000)}1${"]".repeat(3000)}\n`,
    `[${Array.from({ length: 3000 }, (_, i) => `k${i}`).join(".")}]\nv = 1\n`,
  ],
  async check(text) {
    // A RAM disk when there is one: 100k config files through a real disk would dominate the run.
    if (configDir === undefined) {
      const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "active-call-fuzz-"));
      process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
      configDir = dir;
    }
    writeFileSync(join(configDir, "fuzz.toml"), text);
    let loaded;
    try {
      loaded = await loadConfig({ confPath: "fuzz.toml", env: { TOKEN: "tok-123456" }, cwd: configDir });
    } catch (err) {
      // The documented rejection: ConfigError (CONFIG_INVALID / USAGE) naming the problems.
      if (err instanceof ConfigError) {
        expect(err.problems.length > 0 && err.problems.every((p) => typeof p === "string" && p !== ""), "ConfigError without problems");
        return;
      }
      throw err;
    }
    expect(isObj(loaded.config) && typeof loaded.file === "string" && Array.isArray(loaded.secrets), "loadConfig resolved with a malformed result");
  },
};

/** Every target, in the order `npm run fuzz` prints them. */
export const TARGETS = [esl, ari, wsCommand, wsBinary, rtp, audioSocket, chanWebsocket, twilio, playbook, config] as unknown as readonly FuzzTarget<unknown>[];
