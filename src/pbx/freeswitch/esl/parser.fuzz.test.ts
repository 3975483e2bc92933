import { describe, expect, it } from "vitest";
import { EslParser, parseEvent, serializeMessage, type EslMessage } from "./parser.js";
import { allSessions, randomSplit, rng } from "./testutil.js";

const CAP = 16 * 1024;
const seeds = allSessions().map((s) => s.s2c);

function mutate(r: ReturnType<typeof rng>): Buffer {
  const base = r.pick(seeds);
  const start = r.int(base.length);
  let buf: Buffer = Buffer.from(base.subarray(start, start + 1 + r.int(4000)));
  const kind = r.int(9);
  switch (kind) {
    case 0: // byte flips
      for (let i = 0, n = 1 + r.int(20); i < n && buf.length > 0; i++) buf[r.int(buf.length)] = r.int(256);
      break;
    case 1: // truncation
      buf = buf.subarray(0, r.int(buf.length + 1));
      break;
    case 2: // huge / negative / junk Content-Length
      buf = Buffer.concat([
        Buffer.from(`Content-Type: api/response\nContent-Length: ${r.pick(["99999999999999", "-5", "1e9", "0x10", "17000000", " 12", ""])}\n\n`),
        buf,
      ]);
      break;
    case 3: // missing blank line
      buf = Buffer.from(buf.toString("latin1").replace(/\n\n/g, "\n"), "latin1");
      break;
    case 4: // binary garbage
      buf = Buffer.from(Array.from({ length: r.int(3000) }, () => r.int(256)));
      break;
    case 5: // multibyte UTF-8 inside headers and bodies
      buf = serializeMessage(
        [["Content-Type", "text/event-plain"], ["X-Name", "Jos\u00e9 \u20ac \ud834\udd1e"]],
        Buffer.from(`Event-Name: CUSTOM\nX: %E2%82%AC%\n\n\u00e9\u20ac`, "utf8"),
      );
      break;
    case 6: // newlines only / colons only
      buf = Buffer.from(r.pick(["\n\n\n\n", ":\n:\n\n", ": : :\n\n", "\r\n\r\n", "Content-Type:\n\n"]).repeat(1 + r.int(50)));
      break;
    case 7: // insertions of \n\n at random spots
      for (let i = 0, n = 1 + r.int(5); i < n; i++) {
        const at = r.int(buf.length + 1);
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from("\n\n"), buf.subarray(at)]);
      }
      break;
    default: // a header block that never ends
      buf = Buffer.from(`Content-Type: x\n${"A".repeat(r.int(CAP * 2))}`);
  }
  return buf;
}

describe("EslParser fuzz (seeded)", () => {
  it("survives 20k random/mutated inputs: never throws, bounded memory, stays usable", () => {
    const r = rng(20261123);
    const stats = { messages: 0, errors: 0, events: 0, maxBuffered: 0 };
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const parser = new EslParser({ maxBodyBytes: CAP, maxHeaderBytes: CAP });
      const input = mutate(r);
      for (const piece of randomSplit(input, r, 1 + r.int(600))) {
        const out = parser.push(piece);
        stats.messages += out.length;
        for (const m of out) {
          expect(typeof m.contentType).toBe("string");
          if (parseEvent(m)) stats.events++;
        }
        stats.maxBuffered = Math.max(stats.maxBuffered, parser.buffered);
      }
      stats.errors += parser.errors;
      // Memory bound: never more than a header block + a capped body (+ one piece) held.
      expect(parser.buffered).toBeLessThanOrEqual(2 * CAP + 4000);
      // Resynchronises: a body is at most CAP bytes, so after CAP+2 newlines the next message is parsed.
      const tail = parser.push(Buffer.concat([Buffer.alloc(CAP + 2, "\n"), Buffer.from("Content-Type: auth/request\n\n")]));
      expect(tail.at(-1)?.contentType).toBe("auth/request");
      expect(parser.buffered).toBe(0);
    }
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(stats.errors).toBeGreaterThan(0);
    expect(stats.messages).toBeGreaterThan(0);
    console.info("fuzz stats", stats);
  });

  it("property: random messages serialised then parsed with random chunking are equal", () => {
    const r = rng(42);
    const alphabet = ["a", "Z", "-", "_", "0", " ", "é", "€", "𝄞", "%", "%41", ":", "日本"];
    const str = (n: number): string => Array.from({ length: n }, () => r.pick(alphabet)).join("");
    for (let round = 0; round < 500; round++) {
      const msgs: { headers: [string, string][]; body: Buffer | undefined }[] = [];
      for (let k = 0, n = 1 + r.int(8); k < n; k++) {
        const headers: [string, string][] = [];
        for (let h = 0, m = r.int(6); h < m; h++) headers.push([`X-${h}-${str(3).replace(/[: ]/g, "b")}`, str(r.int(12)).trim()]);
        headers.splice(r.int(headers.length + 1), 0, ["Content-Type", r.pick(["api/response", "command/reply", "text/event-json"])]);
        const body = r.int(3) === 0 ? undefined : Buffer.from(str(r.int(200)), "utf8");
        msgs.push({ headers, body });
      }
      const wire = Buffer.concat(msgs.map((m) => serializeMessage(m.headers, m.body)));
      const parser = new EslParser();
      const got: EslMessage[] = [];
      for (const piece of randomSplit(wire, r, 1 + r.int(64))) got.push(...parser.push(piece));
      expect(parser.errors).toBe(0);
      expect(got.length).toBe(msgs.length);
      got.forEach((g, i) => {
        const want = msgs[i] as (typeof msgs)[number];
        const gotHeaders = g.headers.entries().filter(([n]) => n !== "Content-Length");
        expect(gotHeaders).toEqual(want.headers);
        if (want.body === undefined) expect(g.body).toBeUndefined();
        else expect(g.body?.equals(want.body)).toBe(true);
      });
    }
  });
});
