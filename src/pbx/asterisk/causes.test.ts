import { describe, expect, it } from "vitest";
import { causeName, q850ForCause, q850ForSip, sipForQ850 } from "./causes.js";

describe("Asterisk causes (media-protocols.md §3.8)", () => {
  it("maps every SIP code of the table to the reason_code that makes Asterisk send it", () => {
    const table: [number, number][] = [
      [404, 1], [408, 18], [480, 19], [403, 21], [603, 21], [410, 22], [484, 28],
      [486, 17], [488, 58], [500, 127], [502, 27], [503, 34],
    ];
    for (const [sip, q850] of table) expect(q850ForSip(sip), `SIP ${sip}`).toBe(q850);
  });

  it("falls back by class for SIP codes Asterisk cannot produce exactly", () => {
    expect(q850ForSip(487)).toBe(19);
    expect(q850ForSip(504)).toBe(34);
    expect(q850ForSip(600)).toBe(21);
  });

  it("reads a failed originate's cause backwards, unlisted causes giving 480", () => {
    expect(sipForQ850(17)).toBe(486);
    expect(sipForQ850(19)).toBe(480);
    expect(sipForQ850(34)).toBe(503);
    expect(sipForQ850(1)).toBe(404);
    expect(sipForQ850(21)).toBe(403);
    expect(sipForQ850(20)).toBe(480);
    expect(sipForQ850(undefined)).toBe(480);
  });

  it("names causes as the call layer does and turns the names back into reason codes", () => {
    expect(causeName(16)).toBe("NORMAL_CLEARING");
    expect(causeName(0)).toBe("NORMAL_CLEARING");
    expect(causeName(17)).toBe("USER_BUSY");
    expect(causeName(19)).toBe("NO_ANSWER");
    expect(causeName(99)).toBe("Q850_99");
    for (const n of [1, 16, 17, 18, 19, 21, 34, 127, 99]) expect(q850ForCause(causeName(n))).toBe(n);
    expect(q850ForCause(undefined)).toBe(16);
    expect(q850ForCause("NOT_A_CAUSE")).toBe(16);
  });
});
