import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { callLogger, createLogger, makeRedactor, redactNumber } from "./log.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe("log", () => {
  it("masks secret keys at any depth and scrubs known secret values from every string", () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: "info", format: "json", redactPersonal: false, secrets: ["sk-live-123456"], destination });
    log.info({ providers: { openai: { api_key: "sk-live-123456" } }, headers: { Authorization: "Bearer abc" }, note: "key is sk-live-123456 ok" }, "configured");
    log.error({ err: new Error("request with sk-live-123456 failed") }, "failed with sk-live-123456");
    const text = JSON.stringify(lines);
    expect(text).not.toContain("sk-live-123456");
    expect(text).not.toContain("Bearer abc");
    expect(lines[0]).toMatchObject({ providers: { openai: { api_key: "***" } }, headers: { Authorization: "***" }, note: "key is *** ok" });
    expect(lines[1]).toMatchObject({ msg: "failed with ***", err: { message: "request with *** failed", type: "Error" } });
  });

  it("masks token query parameters and bearer credentials in any string, even when they are not config values", () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: "info", format: "json", redactPersonal: true, destination });
    log.warn({ url: "/media/fork/abc?token=one-time-XYZ&x=1", note: "sent Authorization: Bearer guessed-123 then", u: "/call?access_token=zz" }, "refused /call?id=1&token=qq");
    const text = JSON.stringify(lines);
    for (const leaked of ["one-time-XYZ", "guessed-123", "zz", "token=qq"]) expect(text).not.toContain(leaked);
    expect(lines[0]).toMatchObject({ url: "/media/fork/abc?token=***&x=1", note: "sent Authorization: Bearer *** then", u: "/call?access_token=***", msg: "refused /call?id=1&token=***" });
  });

  it("shortens caller and callee numbers unless personal redaction is off", () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: "info", format: "json", redactPersonal: true, destination });
    const call = callLogger(log, "s.1", { caller: "+15551234567" });
    call.info({ callee: "1001", to: "+442071234567" }, "ringing");
    expect(lines[0]).toMatchObject({ callId: "s.1", caller: "…4567", callee: "1001", to: "…4567" });
    expect(redactNumber("+15551234567")).toBe("…4567");

    const open = capture();
    createLogger({ level: "info", format: "json", redactPersonal: false, destination: open.destination }).info({ caller: "+15551234567" }, "x");
    expect(open.lines[0]).toMatchObject({ caller: "+15551234567" });
  });

  it("honours the level", () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: "warn", format: "json", redactPersonal: true, destination });
    log.info("hidden");
    log.warn("shown");
    expect(lines.map((l) => l.msg)).toEqual(["shown"]);
    expect(lines[0]?.level).toBe("warn");
  });

  it("redactor leaves plain data intact", () => {
    const redact = makeRedactor([], false);
    expect(redact({ a: 1, b: ["x", { c: true }], d: null })).toEqual({ a: 1, b: ["x", { c: true }], d: null });
    expect(redact({ pcm: new Int16Array(4) })).toEqual({ pcm: "<8 bytes>" });
  });
});
