import { describe, expect, it } from "vitest";
import { EslHeaders, EslParser, decodeUrlValue, parseEvent, serializeMessage, type EslMessage } from "./parser.js";
import { allSessions, randomSplit, rng, type Session } from "./testutil.js";

const sessions = allSessions();

/** Message counts and Content-Type tallies, counted independently from the .bin files (python, by hand). */
const EXPECTED: Record<string, { count: number; types: Record<string, number> }> = {
  "inbound-esl-errors-after-auth": {
    count: 11,
    types: { "auth/request": 1, "command/reply": 5, "api/response": 4, "text/disconnect-notice": 1 },
  },
  "inbound-esl-errors": { count: 3, types: { "auth/request": 1, "command/reply": 1, "text/disconnect-notice": 1 } },
  "esl-inbound-json-ptime30/inbound-esl": {
    count: 62,
    types: { "auth/request": 1, "command/reply": 5, "api/response": 16, "text/event-json": 39, "text/disconnect-notice": 1 },
  },
  "esl-inbound-json-without-send_silence/inbound-esl": {
    count: 68,
    types: { "auth/request": 1, "command/reply": 5, "api/response": 19, "text/event-json": 42, "text/disconnect-notice": 1 },
  },
  "esl-inbound-json/inbound-esl": {
    count: 69,
    types: { "auth/request": 1, "command/reply": 5, "api/response": 20, "text/event-json": 42, "text/disconnect-notice": 1 },
  },
  "inbound-esl-modesl-status": {
    count: 8,
    types: { "auth/request": 1, "command/reply": 3, "api/response": 3, "text/disconnect-notice": 1 },
  },
  "inbound-esl-plain-all": {
    count: 42,
    types: { "auth/request": 1, "command/reply": 4, "text/event-plain": 34, "api/response": 2, "text/disconnect-notice": 1 },
  },
  "outbound-esl-ext101": { count: 22, types: { "command/reply": 6, "text/event-json": 14, "text/disconnect-notice": 2 } },
  "esl-outbound-plain-ext100/outbound-esl": {
    count: 34,
    types: { "command/reply": 10, "api/response": 1, "text/event-plain": 21, "text/disconnect-notice": 2 },
  },
};

function expectedFor(s: Session): { count: number; types: Record<string, number> } {
  const e = EXPECTED[s.name] ?? EXPECTED[`${s.folder}/${s.name}`];
  if (!e) throw new Error(`no expectation for ${s.folder}/${s.name}`);
  return e;
}

function feed(pieces: Buffer[]): { messages: EslMessage[]; parser: EslParser } {
  const parser = new EslParser();
  const messages: EslMessage[] = [];
  for (const p of pieces) messages.push(...parser.push(p));
  return { messages, parser };
}

/** Everything observable about a message, for equality across chunkings. */
function summary(m: EslMessage): unknown {
  return { h: m.headers.entries(), b: m.body?.toString("base64") ?? null, ct: m.contentType };
}

function tally(ms: EslMessage[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of ms) out[m.contentType] = (out[m.contentType] ?? 0) + 1;
  return out;
}

const DISCONNECT_BODY = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

describe("EslParser against the FreeSWITCH recordings", () => {
  it("finds every recorded session", () => {
    expect(sessions.length).toBe(9);
  });

  for (const s of sessions) {
    describe(`${s.folder}/${s.name}`, () => {
      const recorded = s.chunks.filter((c) => c.dir === "s2c").map((c) => c.data);
      const reference = feed([s.s2c]).messages;

      it("concatenated chunks reproduce the .bin", () => {
        expect(Buffer.concat(recorded).equals(s.s2c)).toBe(true);
      });

      it("parses the recorded TCP chunking: message count, types, no errors, nothing left over", () => {
        const { messages, parser } = feed(recorded);
        const exp = expectedFor(s);
        expect(messages.length).toBe(exp.count);
        expect(tally(messages)).toEqual(exp.types);
        expect(parser.errors).toBe(0);
        expect(parser.buffered).toBe(0);
        expect(messages.map(summary)).toEqual(reference.map(summary));
      });

      it("gives the same messages when split at every single byte", () => {
        const bytes: Buffer[] = [];
        for (let i = 0; i < s.s2c.length; i++) bytes.push(s.s2c.subarray(i, i + 1));
        const { messages, parser } = feed(bytes);
        expect(parser.errors).toBe(0);
        expect(messages.map(summary)).toEqual(reference.map(summary));
      });

      it("gives the same messages under random splits", () => {
        const r = rng(0xe51 + s.s2c.length);
        for (let round = 0; round < 5; round++) {
          const { messages } = feed(randomSplit(s.s2c, r, [3, 50, 700, 5000, 70000][round] ?? 100));
          expect(messages.map(summary)).toEqual(reference.map(summary));
        }
      });

      it("disconnect notices carry the exact 67-byte body or are empty lingers", () => {
        for (const m of reference.filter((x) => x.contentType === "text/disconnect-notice")) {
          const disp = m.headers.get("content-disposition");
          if (disp === "linger") {
            expect(m.body?.length).toBe(0);
          } else {
            expect(m.body?.length).toBe(67);
            expect(m.body?.toString("utf8")).toBe(DISCONNECT_BODY);
          }
        }
      });

      if (s.events) {
        const events = s.events;
        it("parses the events exactly as events.json records them (name, Unique-ID, body, all headers)", () => {
          const parsed = reference.map(parseEvent).filter((e) => e !== undefined);
          expect(parsed.length).toBe(events.length);
          parsed.forEach((ev, i) => {
            const want = events[i] as Record<string, string>;
            expect(ev.name).toBe(want["Event-Name"]);
            expect(ev.uniqueId).toBe(want["Unique-ID"]);
            expect(ev.subclass).toBe(want["Event-Subclass"]);
            expect(ev.body).toBe(want["_body"]);
            const { _body: _ignored, ...headers } = want;
            expect(ev.headers).toEqual(headers);
          });
        });
      }
    });
  }

  it("the outbound connect reply is one message without a body; Reply-Text %2BOK%0A decodes to +OK\\n", () => {
    for (const s of sessions.filter((x) => x.folder.startsWith("esl-outbound"))) {
      const first = s.chunks.find((c) => c.dir === "s2c");
      expect(first).toBeDefined();
      const { messages } = feed([s.s2c]);
      const connect = messages[0] as EslMessage;
      expect(connect.contentType).toBe("command/reply");
      expect(connect.body).toBeUndefined();
      expect(connect.headers.has("Content-Length")).toBe(false);
      expect(connect.headers.get("Reply-Text")).toBe("%2BOK%0A");
      expect(decodeUrlValue(connect.headers.get("reply-text") ?? "")).toBe("+OK\n");
      const decoded = connect.headers.decoded();
      expect(decoded.get("Event-Name")).toBe("CHANNEL_DATA");
      expect(decoded.get("Socket-Mode")).toBe("async");
      expect(decoded.get("Control")).toBe("full");
      expect(decoded.get("Unique-ID")).toMatch(/^[0-9a-f-]{36}$/);
      expect(connect.headers.size).toBeGreaterThan(100);
      // The message after it is the next reply, not swallowed by the connect reply.
      expect(messages[1]?.contentType).toBe("command/reply");
    }
  });

  it("plain events are URL-decoded with nested bodies (inbound plain ALL)", () => {
    const s = sessions.find((x) => x.name === "inbound-esl-plain-all") as Session;
    const evs = feed([s.s2c]).messages.map(parseEvent).filter((e) => e !== undefined);
    expect(evs.length).toBe(34);
    expect(evs.every((e) => !Object.values(e.headers).some((v) => /%[0-9A-F]{2}/.test(v) && v.includes("%3A")))).toBe(true);
    const withBody = evs.filter((e) => e.body !== undefined);
    for (const e of withBody) expect(Buffer.byteLength(e.body ?? "", "utf8")).toBe(Number(e.headers["Content-Length"]));
    expect(new Set(evs.map((e) => e.name))).toContain("HEARTBEAT");
  });
});

describe("decodeUrlValue", () => {
  it("decodes %XX runs as UTF-8 and keeps malformed escapes literally", () => {
    expect(decodeUrlValue("%2BOK%0A")).toBe("+OK\n");
    expect(decodeUrlValue("fd00%3A%3A2")).toBe("fd00::2");
    expect(decodeUrlValue("Jos%C3%A9%20%E2%82%AC")).toBe("José €");
    expect(decodeUrlValue("100%")).toBe("100%");
    expect(decodeUrlValue("%zz%4")).toBe("%zz%4");
    expect(decodeUrlValue("a%FFb")).toBe("a%FFb");
    expect(decodeUrlValue("%C3")).toBe("%C3");
    expect(decodeUrlValue("a+b")).toBe("a+b");
    expect(decodeUrlValue("tone_stream://%(100,0,440)")).toBe("tone_stream://%(100,0,440)");
  });
});

describe("EslHeaders", () => {
  it("is case-insensitive, keeps order and the first of duplicates", () => {
    const h = new EslHeaders([["Content-Type", "a"], ["X", "1"], ["x", "2"]]);
    expect(h.get("content-type")).toBe("a");
    expect(h.has("CONTENT-TYPE")).toBe(true);
    expect(h.get("X")).toBe("1");
    expect(h.entries()).toEqual([["Content-Type", "a"], ["X", "1"], ["x", "2"]]);
    expect(h.toObject()).toEqual({ "Content-Type": "a", X: "1", x: "2" });
  });
});

describe("EslParser framing edge cases", () => {
  it("counts Content-Length in bytes (multibyte body split inside a character)", () => {
    const body = Buffer.from("héllo wörld €𝄞", "utf8");
    const wire = serializeMessage([["Content-Type", "api/response"]], body);
    for (let cut = 0; cut <= wire.length; cut++) {
      const { messages, parser } = feed([wire.subarray(0, cut), wire.subarray(cut)]);
      expect(parser.errors).toBe(0);
      expect(messages.length).toBe(1);
      expect(messages[0]?.body?.equals(body)).toBe(true);
    }
  });

  it("accepts headers in any order and Content-Length: 0", () => {
    const wire = Buffer.from("Content-Length: 0\nContent-Disposition: linger\nContent-Type: text/disconnect-notice\n\n");
    const { messages } = feed([wire, wire]);
    expect(messages.length).toBe(2);
    expect(messages[0]?.body?.length).toBe(0);
    expect(messages[0]?.contentType).toBe("text/disconnect-notice");
  });

  it("treats a Content-Length above the cap as a protocol error without buffering it", () => {
    const parser = new EslParser({ maxBodyBytes: 1000 });
    const out = parser.push(Buffer.from("Content-Type: api/response\nContent-Length: 99999999999\n\nContent-Type: auth/request\n\n"));
    expect(parser.errors).toBe(1);
    expect(out.map((m) => m.contentType)).toEqual(["auth/request"]);
    expect(parser.buffered).toBe(0);
  });

  it("drops a header block that never ends once it passes the cap", () => {
    const parser = new EslParser({ maxHeaderBytes: 1024 });
    for (let i = 0; i < 100; i++) parser.push(Buffer.from("X: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n"));
    expect(parser.errors).toBeGreaterThan(0);
    expect(parser.buffered).toBeLessThanOrEqual(1024 + 64);
    expect(parser.push(Buffer.from("\n\nContent-Type: auth/request\n\n")).map((m) => m.contentType)).toContain("auth/request");
  });

  it("is linear on a large body delivered in small chunks", () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 0x61);
    const wire = serializeMessage([["Content-Type", "api/response"]], body);
    const t0 = performance.now();
    const parser = new EslParser();
    let got: EslMessage[] = [];
    for (let i = 0; i < wire.length; i += 1024) got = got.concat(parser.push(wire.subarray(i, i + 1024)));
    expect(got.length).toBe(1);
    expect(got[0]?.body?.length).toBe(body.length);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("parseEvent: JSON values become strings, _body is the body; garbage is undefined", () => {
    const json = serializeMessage(
      [["Content-Type", "text/event-json"]],
      JSON.stringify({ "Event-Name": "CUSTOM", "Event-Subclass": "x::y", n: 5, _body: "hi" }),
    );
    const ev = parseEvent(feed([json]).messages[0] as EslMessage);
    expect(ev).toEqual({ name: "CUSTOM", subclass: "x::y", headers: { "Event-Name": "CUSTOM", "Event-Subclass": "x::y", n: "5" }, body: "hi" });
    const bad = serializeMessage([["Content-Type", "text/event-json"]], "{not json");
    expect(parseEvent(feed([bad]).messages[0] as EslMessage)).toBeUndefined();
    const plain = serializeMessage(
      [["Content-Type", "text/event-plain"]],
      "Event-Name: CUSTOM\nUnique-ID: u1\nCaller-Caller-ID-Name: Jos%C3%A9%20100%\nContent-Length: 5\n\nh€",
    );
    const pe = parseEvent(feed([plain]).messages[0] as EslMessage);
    expect(pe?.headers["Caller-Caller-ID-Name"]).toBe("José 100%");
    expect(pe?.body).toBe("h€");
    expect(pe?.uniqueId).toBe("u1");
  });
});
