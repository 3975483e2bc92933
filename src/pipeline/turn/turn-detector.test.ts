import { describe, expect, it } from "vitest";
import type { AsrResult } from "../../providers/types.js";
import { AppError } from "../../errors.js";
import { TurnDetector, turnDetectorOptions, type TurnDetectorOptions, type TurnInput, type TurnOutput } from "./turn-detector.js";

type Step = TurnInput | { type: "tick"; atMs: number };

const speaking = (atMs: number): Step => ({ type: "speaking", atMs });
const silence = (atMs: number): Step => ({ type: "silence", atMs });
const tick = (atMs: number): Step => ({ type: "tick", atMs });
const partial = (atMs: number, utterance: number, text: string): Step => ({
  type: "asr",
  atMs,
  result: { type: "partial", utterance, text, delta: text } satisfies AsrResult,
});
const final = (atMs: number, utterance: number, text: string): Step => ({ type: "asr", atMs, result: { type: "final", utterance, text } });
const failed = (atMs: number, utterance: number): Step => ({
  type: "asr",
  atMs,
  result: { type: "error", utterance, error: new AppError("PROVIDER_ERROR", "asr failed") },
});

function brief(o: TurnOutput): string {
  switch (o.type) {
    case "endUtterance":
      return `endUtterance u${o.utterance} @${o.atMs}`;
    case "eou":
      return `eou ${o.completed} @${o.atMs}`;
    case "speculate":
      return `speculate "${o.text}" @${o.atMs}`;
    case "discard":
      return `discard ${o.reason} @${o.atMs}`;
    case "commit":
      return `commit "${o.text}" @${o.atMs}`;
    case "reply":
      return `reply ${o.source} "${o.text}" @${o.atMs}`;
    case "drop":
      return `drop @${o.atMs}`;
  }
}

/** Runs the script; returns every output in order, briefly. */
function run(steps: readonly Step[], options: Partial<TurnDetectorOptions>, detector = new TurnDetector(options)): string[] {
  const out: string[] = [];
  for (const s of steps) out.push(...(s.type === "tick" ? detector.tick(s.atMs) : detector.process(s)).map(brief));
  return out;
}

describe("TurnDetector, eou.type vad", () => {
  const vad = { mode: "vad" } as const;

  it("ends the turn silenceMs after the speech stopped, then replies on the final", () => {
    const d = new TurnDetector(vad);
    // The VAD reports silence at 1000, i.e. 100 ms (vadMinSilenceMs) after the speech stopped at 900.
    expect(run([speaking(0), partial(500, 0, "hel"), silence(1000), tick(1499)], vad, d)).toEqual([]);
    expect(run([tick(1500)], vad, d)).toEqual(["endUtterance u0 @1500", "eou true @1500"]);
    const outs = d.process({ type: "asr", atMs: 1700, result: { type: "final", utterance: 0, text: "Hello there" } });
    expect(outs).toEqual([
      { type: "reply", turn: 0, text: "Hello there", source: "final", atMs: 1700, timing: { speechEndMs: 900, eouAtMs: 1500, transcriptAtMs: 1700 } },
    ]);
    expect(d.stats).toEqual({ turns: 1, speculations: 0, hits: 0, misses: 0, dropped: 0 });
  });

  it("a pause shorter than silenceMs does not end the turn; the turn is one utterance", () => {
    expect(
      run([speaking(0), silence(1000), tick(1400), speaking(1450), tick(1600), silence(2000), tick(2499), tick(2530), final(2700, 0, "one two")], vad),
    ).toEqual(["endUtterance u0 @2500", "eou true @2500", 'reply final "one two" @2700']);
  });

  it("times are exact whatever the tick rate (a late tick reports the due time)", () => {
    expect(run([speaking(0), silence(1000), tick(5000)], vad)).toEqual(["endUtterance u0 @1500", "eou true @1500", "drop @3500"]);
  });

  it("maxWaitMs without a final: the latest partial is used; a late final is ignored", () => {
    const d = new TurnDetector(vad);
    expect(run([speaking(0), partial(400, 0, "book a"), partial(800, 0, "book a table"), silence(1000), tick(1500), tick(3499)], vad, d)).toEqual([
      "endUtterance u0 @1500",
      "eou true @1500",
    ]);
    expect(run([tick(3500), final(3600, 0, "book a table for two")], vad, d)).toEqual(['reply partial "book a table" @3500']);
  });

  it("maxWaitMs without a final or a partial: the turn is dropped", () => {
    const d = new TurnDetector(vad);
    expect(run([speaking(0), silence(1000), tick(1500), tick(3400), tick(3500)], vad, d)).toEqual([
      "endUtterance u0 @1500",
      "eou true @1500",
      "drop @3500",
    ]);
    expect(d.stats.dropped).toBe(1);
  });

  it("an empty final drops the turn; a failed utterance falls back to its partial", () => {
    expect(run([speaking(0), silence(1000), tick(1500), final(1600, 0, "  ")], vad)).toEqual(["endUtterance u0 @1500", "eou true @1500", "drop @1600"]);
    expect(run([speaking(0), partial(700, 0, "yes"), silence(1000), tick(1500), failed(1600, 0)], vad)).toEqual([
      "endUtterance u0 @1500",
      "eou true @1500",
      'reply partial "yes" @1600',
    ]);
  });

  it("turns are numbered and decided in order, even when the next one starts before the first is decided", () => {
    const d = new TurnDetector(vad);
    const steps = [speaking(0), silence(1000), tick(1500), speaking(1600), silence(2000), tick(2500), final(2600, 0, "first"), final(2700, 1, "second")];
    const outs: TurnOutput[] = [];
    for (const s of steps) outs.push(...(s.type === "tick" ? d.tick(s.atMs) : d.process(s)));
    expect(outs.filter((o) => o.type === "reply").map((o) => [o.turn, o.type === "reply" && o.text])).toEqual([
      [0, "first"],
      [1, "second"],
    ]);
  });

  it("isDecided: the utterances of decided turns, so late results can be kept from the interruption policy", () => {
    const d = new TurnDetector(vad);
    run([speaking(0), silence(1000), tick(1500)], vad, d);
    expect(d.isDecided(0)).toBe(false);
    run([tick(3500)], vad, d);
    expect(d.isDecided(0)).toBe(true);
    expect(d.isDecided(1)).toBe(false);
  });

  it("does not speculate and never emits eou false", () => {
    const outs = run([speaking(0), partial(500, 0, "hi"), silence(1000), speaking(1200), silence(2000), tick(2500), final(2600, 0, "hi there")], vad);
    expect(outs.some((o) => o.startsWith("speculate") || o.startsWith("eou false"))).toBe(false);
  });
});

describe("TurnDetector, eou.type early", () => {
  const early = { mode: "early" } as const;

  it("hit: speculates at the VAD silence on the partial, the final matches (case and punctuation ignored), commit at the turn end", () => {
    const d = new TurnDetector(early);
    expect(run([speaking(0), partial(800, 0, "i want a taxi"), silence(1000)], early, d)).toEqual([
      "endUtterance u0 @1000",
      'speculate "i want a taxi" @1000',
    ]);
    expect(run([final(1200, 0, "I want a taxi."), tick(1499)], early, d)).toEqual([]);
    expect(run([tick(1500)], early, d)).toEqual(["eou true @1500", 'commit "I want a taxi." @1500']);
    expect(d.stats).toEqual({ turns: 1, speculations: 1, hits: 1, misses: 0, dropped: 0 });
  });

  it("hit when the final arrives after the turn end: commit when it arrives", () => {
    const d = new TurnDetector(early);
    expect(run([speaking(0), partial(800, 0, "你好"), silence(1000), tick(1500), final(1700, 0, "你好。")], early, d)).toEqual([
      "endUtterance u0 @1000",
      'speculate "你好" @1000',
      "eou true @1500",
      'commit "你好。" @1700',
    ]);
    expect(d.stats.hits).toBe(1);
  });

  it("non-streaming ASR: speculates when the segment's final arrives during the silence", () => {
    expect(run([speaking(0), silence(1000), final(1300, 0, "Hello"), tick(1500)], early)).toEqual([
      "endUtterance u0 @1000",
      'speculate "Hello" @1300',
      "eou true @1500",
      'commit "Hello" @1500',
    ]);
  });

  it("miss: speech resumes before silenceMs; the next speculation covers the whole turn and hits", () => {
    const d = new TurnDetector(early);
    const outs = run(
      [
        speaking(0),
        partial(900, 0, "I want"),
        silence(1000),
        speaking(1200),
        final(1300, 0, "I want"),
        partial(1500, 1, "to pay"),
        silence(2000),
        final(2200, 1, "to pay"),
        tick(2500),
      ],
      early,
      d,
    );
    expect(outs).toEqual([
      "endUtterance u0 @1000",
      'speculate "I want" @1000',
      "eou false @1200",
      "discard speechResumed @1200",
      "endUtterance u1 @2000",
      'speculate "I want to pay" @2000',
      "eou true @2500",
      'commit "I want to pay" @2500',
    ]);
    expect(d.stats).toEqual({ turns: 1, speculations: 2, hits: 1, misses: 1, dropped: 0 });
  });

  it("miss: the final differs after the turn end: discard, then reply on the final", () => {
    const d = new TurnDetector(early);
    expect(run([speaking(0), partial(800, 0, "I want a taxi"), silence(1000), tick(1500), final(1800, 0, "I want a taxi now")], early, d)).toEqual([
      "endUtterance u0 @1000",
      'speculate "I want a taxi" @1000',
      "eou true @1500",
      "discard transcriptChanged @1800",
      'reply final "I want a taxi now" @1800',
    ]);
    expect(d.stats).toEqual({ turns: 1, speculations: 1, hits: 0, misses: 1, dropped: 0 });
  });

  it("miss: the final differs before the turn end: restart the speculation at once, then hit", () => {
    const d = new TurnDetector(early);
    expect(run([speaking(0), partial(800, 0, "eye want"), silence(1000), final(1100, 0, "I want"), tick(1500)], early, d)).toEqual([
      "endUtterance u0 @1000",
      'speculate "eye want" @1000',
      "discard transcriptChanged @1100",
      'speculate "I want" @1100',
      "eou true @1500",
      'commit "I want" @1500',
    ]);
    expect(d.stats).toMatchObject({ speculations: 2, hits: 1, misses: 1 });
  });

  it("an empty final after a speculation: discard and drop", () => {
    const d = new TurnDetector(early);
    expect(run([speaking(0), partial(800, 0, "uh"), silence(1000), tick(1500), final(1600, 0, "")], early, d)).toEqual([
      "endUtterance u0 @1000",
      'speculate "uh" @1000',
      "eou true @1500",
      "discard noTranscript @1600",
      "drop @1600",
    ]);
    expect(d.stats).toMatchObject({ misses: 1, dropped: 1 });
  });

  it("maxWaitMs with a speculation: compares against the partial", () => {
    expect(run([speaking(0), partial(800, 0, "yes please"), silence(1000), tick(1500), tick(3500)], early)).toEqual([
      "endUtterance u0 @1000",
      'speculate "yes please" @1000',
      "eou true @1500",
      'commit "yes please" @3500',
    ]);
  });

  it("joins CJK segments without a space and Latin ones with one", () => {
    expect(
      run([speaking(0), silence(1000), final(1050, 0, "我想"), speaking(1100), silence(2000), final(2050, 1, "订票"), tick(2500)], early).at(-1),
    ).toBe('commit "我想订票" @2500');
    expect(
      run([speaking(0), silence(1000), final(1050, 0, "I'd like"), speaking(1100), silence(2000), final(2050, 1, "a ticket"), tick(2500)], early).at(-1),
    ).toBe(`commit "I'd like a ticket" @2500`);
  });

  it("silenceMs equal to the VAD minSilenceMs ends the turn at the silence event itself", () => {
    const o = { mode: "early" as const, silenceMs: 100 };
    expect(run([speaking(0), partial(500, 0, "ok"), silence(1000)], o)).toEqual([
      "endUtterance u0 @1000",
      'speculate "ok" @1000',
      "eou true @1000",
    ]);
  });
});

describe("turnDetectorOptions", () => {
  it("fills the playbook defaults and checks silenceMs against the VAD", () => {
    expect(turnDetectorOptions()).toEqual({ mode: "early", silenceMs: 600, maxWaitMs: 2000, vadMinSilenceMs: 100 });
    expect(turnDetectorOptions({ type: "vad", silenceMs: 800 }, 200)).toEqual({ mode: "vad", silenceMs: 800, maxWaitMs: 2000, vadMinSilenceMs: 200 });
    expect(() => new TurnDetector(turnDetectorOptions({ silenceMs: 50 }))).toThrow(/silenceMs/);
  });
});
