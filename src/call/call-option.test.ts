import { describe, expect, it } from "vitest";
import type { AppError } from "../errors.js";
import { mergeSettings, parseCallOption } from "./call-option.js";

function fields(fn: () => unknown): { code: string; paths: string[]; message: string } {
  try {
    fn();
  } catch (err) {
    const e = err as AppError;
    return { code: e.code, paths: ((e.details.fields as { path: string }[]) ?? []).map((f) => f.path), message: e.message };
  }
  throw new Error("expected a throw");
}

describe("parseCallOption", () => {
  it("takes the media fields, merges extra and variables (variables win) and converts inactivityTimeout seconds", () => {
    const o = parseCallOption({
      codec: "pcmu",
      sampleRate: 8000,
      ptime: 40,
      extra: { customer: "Ada", tier: 1 },
      variables: { tier: 2 },
      inactivityTimeout: 12.5,
      offer: "v=0…",
      enableIpv6: true,
    });
    expect(o).toMatchObject({ codec: "pcmu", sampleRate: 8000, ptime: 40, variables: { customer: "Ada", tier: 2 }, inactivityTimeoutMs: 12500 });
    expect(parseCallOption(undefined)).toEqual({ variables: {}, settings: {} });
  });

  it("validates pipeline sections with the playbook schema and renames their aliases", () => {
    const o = parseCallOption({ tts: { speaker: "slt", speed: 1.2 }, vad: { type: "silero" }, interruption: { volumeFadeMs: 80 } });
    expect(o.settings.tts).toEqual({ voice: "slt", speed: 1.2 });
    expect(o.settings.interruption).toEqual({ fadeOutMs: 80 });
    expect(o.settings.vad?.type).toBeDefined();
  });

  it("names the failing field: option.<path>", () => {
    expect(fields(() => parseCallOption({ ptime: 25 }))).toMatchObject({ code: "BAD_REQUEST", paths: ["option.ptime"] });
    expect(fields(() => parseCallOption({ tts: { speed: 9 } })).paths).toEqual(["option.tts.speed"]);
    expect(fields(() => parseCallOption({ playbook: "../etc/passwd" })).paths).toEqual(["option.playbook"]);
    expect(fields(() => parseCallOption({ asr: { nonsense: 1 } })).message).toMatch(/option/);
    expect(fields(() => parseCallOption({ extra: { nested: { a: 1 } } })).paths[0]).toMatch(/^option\.extra/);
  });

  it("sip.hangup_headers is accepted as hangupHeaders", () => {
    expect(parseCallOption({ sip: { hangup_headers: { "X-Reason": "done" } } }).sip).toEqual({ hangupHeaders: { "X-Reason": "done" } });
  });
});

describe("mergeSettings", () => {
  it("overlays option sections field by field; the option wins", () => {
    const merged = mergeSettings({ tts: { provider: "flite", voice: "rms" }, llm: { temperature: 0.2 } }, { tts: { voice: "slt" } });
    expect(merged).toEqual({ tts: { provider: "flite", voice: "slt" }, llm: { temperature: 0.2 } });
  });
});
