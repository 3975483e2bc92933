/**
 * FreeSWITCH Event Socket framing (media-protocols.md §1.2): header blocks `Name: value\n…\n\n`, then exactly
 * `Content-Length` BYTES of body. Works on bytes end to end (never decodes a chunk before framing), tolerates any
 * chunking, and never throws on garbage: malformed blocks are skipped and counted in `errors`.
 */

/** A header block: case-insensitive lookup, original names and order kept. */
export class EslHeaders {
  private readonly list: [string, string][];
  private readonly byName = new Map<string, string>();

  constructor(entries: Iterable<readonly [string, string]> = []) {
    this.list = [];
    for (const [name, value] of entries) {
      this.list.push([name, value]);
      const key = name.toLowerCase();
      // The first occurrence wins (FS never repeats a header; a repeated Content-Length must not shift framing).
      if (!this.byName.has(key)) this.byName.set(key, value);
    }
  }

  get(name: string): string | undefined {
    return this.byName.get(name.toLowerCase());
  }

  has(name: string): boolean {
    return this.byName.has(name.toLowerCase());
  }

  entries(): [string, string][] {
    return this.list.map(([n, v]) => [n, v]);
  }

  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, v] of this.list) if (!(n in out)) out[n] = v;
    return out;
  }

  /** A copy with every value URL-decoded (the outbound `connect` reply, `text/event-plain`). */
  decoded(): EslHeaders {
    return new EslHeaders(this.list.map(([n, v]) => [n, decodeUrlValue(v)] as const));
  }

  get size(): number {
    return this.list.length;
  }
}

export interface EslMessage {
  headers: EslHeaders;
  /** Undefined when the block had no Content-Length (e.g. the outbound `connect` reply). */
  body: Buffer | undefined;
  /** `Content-Type` header, "" when absent. */
  contentType: string;
}

export interface EslParserOptions {
  /** Largest accepted Content-Length; above it the block is a protocol error. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Largest header block; a longer one without its blank line is dropped as garbage. Default 1 MiB. */
  maxHeaderBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const HEADER_END = Buffer.from("\n\n");

/** A growable byte queue: amortised O(n) appends, no re-scanning, no quadratic concatenation. */
class ByteQueue {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.length;
      const need = live + chunk.length;
      if (need <= this.buf.length && this.start >= this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2, 4096));
        this.buf.copy(next, 0, this.start, this.end);
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  /** Drops leading LF / CR bytes; returns how many. */
  skipNewlines(): number {
    let i = this.start;
    const buf = this.buf;
    while (i < this.end && (buf[i] === LF || buf[i] === CR)) i++;
    const n = i - this.start;
    if (n > 0) this.skip(n);
    return n;
  }

  /** Offset (relative to the queue start) of `needle` at or after `from`, or -1. */
  indexOf(needle: Buffer, from: number): number {
    const i = this.buf.subarray(this.start, this.end).indexOf(needle, from);
    return i;
  }

  view(offset: number, len: number): Buffer {
    return this.buf.subarray(this.start + offset, this.start + offset + len);
  }

  /** A copy of the next `len` bytes (the store is reused, so views must not escape). */
  copy(offset: number, len: number): Buffer {
    return Buffer.from(this.view(offset, len));
  }

  skip(n: number): void {
    this.start += Math.min(n, this.length);
    if (this.start === this.end) this.clear();
  }

  clear(): void {
    this.start = 0;
    this.end = 0;
    // Give a large store back once it is empty.
    if (this.buf.length > 1024 * 1024) this.buf = Buffer.alloc(0);
  }
}

interface PendingBlock {
  headerBytes: number;
  headers: EslHeaders | undefined;
  bodyLength: number | undefined;
}

export class EslParser {
  /** Malformed blocks skipped so far (protocol errors). */
  errors = 0;
  /** Why the last block was skipped. */
  lastError: string | undefined;

  private readonly queue = new ByteQueue();
  private readonly maxBody: number;
  private readonly maxHeader: number;
  /** Where the search for the blank line resumes (relative to the queue start). */
  private scanFrom = 0;
  /** A header block already parsed, waiting for its body. */
  private pending: PendingBlock | undefined;

  constructor(options: EslParserOptions = {}) {
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** Bytes held, waiting for the rest of a message. */
  get buffered(): number {
    return this.queue.length;
  }

  push(chunk: Buffer): EslMessage[] {
    const out: EslMessage[] = [];
    this.queue.append(chunk);
    for (;;) {
      if (this.pending) {
        const p = this.pending;
        const need = p.headerBytes + (p.bodyLength ?? 0);
        if (this.queue.length < need) break;
        const body = p.bodyLength === undefined ? undefined : this.queue.copy(p.headerBytes, p.bodyLength);
        this.queue.skip(need);
        this.pending = undefined;
        this.scanFrom = 0;
        if (p.headers) out.push({ headers: p.headers, body, contentType: p.headers.get("Content-Type") ?? "" });
        continue;
      }
      // Blank lines between messages (and stray CRs) are tolerated.
      if (this.queue.skipNewlines() > 0) this.scanFrom = 0;
      if (this.queue.length === 0) break;
      const endAt = this.queue.indexOf(HEADER_END, Math.max(0, this.scanFrom - 1));
      if (endAt < 0) {
        if (this.queue.length > this.maxHeader) {
          this.fail(`header block longer than ${this.maxHeader} bytes without a blank line`);
          this.queue.clear();
          this.scanFrom = 0;
          break;
        }
        this.scanFrom = this.queue.length;
        break;
      }
      const headerBytes = endAt + HEADER_END.length;
      this.pending = this.parseBlock(this.queue.view(0, endAt), headerBytes);
    }
    return out;
  }

  private parseBlock(raw: Buffer, headerBytes: number): PendingBlock {
    const text = raw.toString("utf8");
    const entries: [string, string][] = [];
    let malformed: string | undefined;
    for (const rawLine of text.split("\n")) {
      const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
      if (line === "") continue;
      const colon = line.indexOf(":");
      if (colon <= 0) {
        malformed ??= "header line without a name";
        continue;
      }
      const name = line.slice(0, colon);
      const value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1);
      entries.push([name, value]);
    }
    const headers = new EslHeaders(entries);
    const cl = headers.get("Content-Length");
    let bodyLength: number | undefined;
    if (cl !== undefined) {
      const trimmed = cl.trim();
      if (!/^\d{1,12}$/.test(trimmed)) {
        this.fail(`invalid Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
        return { headerBytes, headers: undefined, bodyLength: undefined };
      }
      bodyLength = Number(trimmed);
      if (bodyLength > this.maxBody) {
        this.fail(`Content-Length ${bodyLength} above the ${this.maxBody}-byte cap`);
        return { headerBytes, headers: undefined, bodyLength: undefined };
      }
    }
    if (malformed === undefined && !headers.has("Content-Type")) malformed = "no Content-Type";
    if (malformed !== undefined) {
      // Framing is still known (Content-Length was valid): skip the block and its body.
      this.fail(malformed);
      return { headerBytes, headers: undefined, bodyLength };
    }
    return { headerBytes, headers, bodyLength };
  }

  private fail(reason: string): void {
    this.errors++;
    this.lastError = reason;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Events

export interface EslEvent {
  name: string;
  subclass?: string;
  uniqueId?: string;
  /** All headers (JSON: as sent; plain: URL-decoded), without the body. */
  headers: Record<string, string>;
  body?: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const utf8Fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * Tolerant URL-decoding: `%XX` runs become bytes decoded as UTF-8; a malformed `%` (or a run that is not valid
 * UTF-8) is kept literally. `+` is kept (FreeSWITCH encodes spaces as `%20`). Never throws.
 */
export function decodeUrlValue(s: string): string {
  if (!s.includes("%")) return s;
  let out = "";
  let i = 0;
  while (i < s.length) {
    const pct = s.indexOf("%", i);
    if (pct < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, pct);
    // Collect a run of %XX escapes.
    const bytes: number[] = [];
    let j = pct;
    while (j + 2 < s.length + 0 && s[j] === "%" && HEX.test(s.slice(j + 1, j + 3))) {
      bytes.push(parseInt(s.slice(j + 1, j + 3), 16));
      j += 3;
    }
    if (bytes.length === 0) {
      out += "%";
      i = pct + 1;
      continue;
    }
    try {
      out += utf8Fatal.decode(Uint8Array.from(bytes));
    } catch {
      out += s.slice(pct, j);
    }
    i = j;
  }
  return out;
}

function makeEvent(headers: Record<string, string>, body: string | undefined): EslEvent | undefined {
  const name = headers["Event-Name"];
  if (name === undefined) return undefined;
  const ev: EslEvent = { name, headers };
  const subclass = headers["Event-Subclass"];
  if (subclass !== undefined) ev.subclass = subclass;
  const uniqueId = headers["Unique-ID"];
  if (uniqueId !== undefined) ev.uniqueId = uniqueId;
  if (body !== undefined) ev.body = body;
  return ev;
}

/** FreeSWITCH event values are strings (or flat arrays); anything this deep is not an event. */
const MAX_JSON_DEPTH = 64;

/** Whether a parsed JSON value nests arrays/objects more than `limit` levels (iterative: no stack). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

function parseJsonEvent(body: Buffer): EslEvent | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return undefined;
  // JSON.parse accepts nesting that JSON.stringify below cannot walk back (RangeError: call stack, at a depth
  // that varies with the stack in use): such an event is malformed, decided by a fixed limit, never a throw.
  if (nestedDeeperThan(obj, MAX_JSON_DEPTH)) return undefined;
  const headers: Record<string, string> = {};
  let evBody: string | undefined;
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const value = typeof v === "string" ? v : v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    if (k === "_body") evBody = value;
    else headers[k] = value;
  }
  return makeEvent(headers, evBody);
}

function parsePlainEvent(body: Buffer): EslEvent | undefined {
  const end = body.indexOf(HEADER_END);
  const headerPart = end < 0 ? body : body.subarray(0, end);
  const headers: Record<string, string> = {};
  for (const rawLine of headerPart.toString("utf8").split("\n")) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    if (name in headers) continue;
    headers[name] = decodeUrlValue(line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1));
  }
  let evBody: string | undefined;
  const cl = headers["Content-Length"];
  if (end >= 0 && cl !== undefined && /^\d+$/.test(cl.trim())) {
    const start = end + HEADER_END.length;
    evBody = body.subarray(start, start + Number(cl.trim())).toString("utf8");
  }
  return makeEvent(headers, evBody);
}

/** The event carried by a `text/event-json` or `text/event-plain` message; undefined otherwise or if malformed. */
export function parseEvent(msg: EslMessage): EslEvent | undefined {
  if (!msg.body) return undefined;
  const ct = msg.contentType.trim().toLowerCase();
  if (ct === "text/event-json") return parseJsonEvent(msg.body);
  if (ct === "text/event-plain") return parsePlainEvent(msg.body);
  return undefined;
}

/** Serialises a message the way FreeSWITCH frames it (tests and simulators). */
export function serializeMessage(headers: readonly (readonly [string, string])[], body?: Buffer | string): Buffer {
  const bodyBuf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  let head = "";
  for (const [n, v] of headers) head += `${n}: ${v}\n`;
  if (bodyBuf !== undefined && !headers.some(([n]) => n.toLowerCase() === "content-length")) {
    head += `Content-Length: ${bodyBuf.length}\n`;
  }
  head += "\n";
  return bodyBuf === undefined ? Buffer.from(head, "utf8") : Buffer.concat([Buffer.from(head, "utf8"), bodyBuf]);
}
