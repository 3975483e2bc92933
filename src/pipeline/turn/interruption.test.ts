import { describe, expect, it } from "vitest";
import { AppError } from "../../errors.js";
import { FillerFilter, fillerWordsFor } from "./filler.js";
import {
  InterruptionPolicy,
  interruptionOptions,
  type InterruptionInput,
  type InterruptionOptions,
  type InterruptionOutput,
} from "./interruption.js";

type Step = InterruptionInput | { type: "tick"; atMs: number };

const CONFIG_FILLERS = { en: ["uh", "um", "er", "ah", "hmm", "mm", "mhm", "uh-huh"], zh: ["嗯", "啊", "哦", "额"] };

const start = (atMs: number, interruptible = true, playId = "turn-1"): Step => ({ type: "trackStart", atMs, playId, interruptible });
const end = (atMs: number, playId = "turn-1"): Step => ({ type: "trackEnd", atMs, playId });
/** VAD `speaking` arrives vad.minSpeechMs (250) after the onset. */
const speech = (onsetMs: number): Step => ({ type: "speaking", atMs: onsetMs + 250, startMs: onsetMs });
const silence = (atMs: number): Step => ({ type: "silence", atMs });
const tick = (atMs: number): Step => ({ type: "tick", atMs });
const partial = (atMs: number, utterance: number, text: string): Step => ({ type: "asr", atMs, result: { type: "partial", utterance, text, delta: text } });
const final = (atMs: number, utterance: number, text: string): Step => ({ type: "asr", atMs, result: { type: "final", utterance, text } });

function brief(o: InterruptionOutput): string {
  switch (o.type) {
    case "bargeIn":
      return `bargeIn ${o.playId} ${o.trigger} @${o.atMs}${o.text ? ` "${o.text}"` : ""}`;
    case "falseInterruption":
      return `false ${o.playId} resume=${o.resume} @${o.atMs}`;
    case "interruptionConfirmed":
      return `confirmed ${o.playId} "${o.text}" @${o.atMs}`;
  }
}

function run(steps: readonly Step[], options: Partial<InterruptionOptions> = {}, policy = new InterruptionPolicy(options)): string[] {
  const out: string[] = [];
  for (const s of steps) out.push(...(s.type === "tick" ? policy.tick(s.atMs) : policy.process(s)).map(brief));
  return out;
}

describe("InterruptionPolicy strategies", () => {
  // Speech from 2000 (well after the 800 ms protection of a track started at 0), "stop" recognised at 2400.
  const script = [start(0), speech(2000), tick(2280), tick(2299), tick(2300), partial(2400, 0, "stop"), tick(2500)];

  it("vad: speech lasting minSpeechMs interrupts, exactly minSpeechMs after its onset", () => {
    expect(run(script, { strategy: "vad" })).toEqual(['bargeIn turn-1 vad @2300', 'confirmed turn-1 "stop" @2400']);
  });

  it("asr: the first transcript with minWords words interrupts", () => {
    expect(run(script, { strategy: "asr" })).toEqual(['bargeIn turn-1 asr @2400 "stop"']);
    expect(run(script, { strategy: "asr", minWords: 2 })).toEqual([]);
    expect(run([...script, partial(2600, 0, "stop please")], { strategy: "asr", minWords: 2 })).toEqual(['bargeIn turn-1 asr @2600 "stop please"']);
  });

  it("both: whichever comes first", () => {
    expect(run(script, { strategy: "both" })).toEqual(['bargeIn turn-1 vad @2300', 'confirmed turn-1 "stop" @2400']);
    expect(run(script, { strategy: "both", minSpeechMs: 1000 })).toEqual(['bargeIn turn-1 asr @2400 "stop"']);
  });

  it("none: never", () => {
    expect(run([...script, tick(9000), final(9100, 0, "stop stop stop")], { strategy: "none" })).toEqual([]);
  });

  it("a non-streaming ASR's final interrupts too (asr strategy)", () => {
    expect(run([start(0), speech(2000), silence(2500), final(2900, 0, "hold on")], { strategy: "asr" })).toEqual([
      'bargeIn turn-1 asr @2900 "hold on"',
    ]);
  });

  it("speech shorter than minSpeechMs does not interrupt (vad)", () => {
    expect(run([start(0), speech(2000), silence(2290), tick(3000)], { strategy: "vad" })).toEqual([]);
  });

  it("interrupts once per utterance, and not after its trackEnd", () => {
    const p = new InterruptionPolicy({ strategy: "both" });
    expect(run([start(0), speech(2000), tick(2300), tick(2400), partial(2500, 0, "wait")], {}, p)).toEqual([
      "bargeIn turn-1 vad @2300",
      'confirmed turn-1 "wait" @2500',
    ]);
    expect(run([start(0, true, "turn-2"), end(1000, "turn-2"), speech(2000), tick(3000), partial(3100, 1, "hello")], {}, new InterruptionPolicy())).toEqual([]);
    expect(p.stats).toEqual({ bargeIns: 1, falseInterruptions: 0 });
  });
});

describe("InterruptionPolicy protection period (ignoreFirstMs from trackStart)", () => {
  it("no barge-in during the first ignoreFirstMs; speech still going when it ends interrupts then", () => {
    // Track starts at 1000: protected until 1800. Speech from 1100 reaches 300 ms at 1400.
    expect(run([start(1000), speech(1100), tick(1400), tick(1799)], { strategy: "vad" })).toEqual([]);
    expect(run([start(1000), speech(1100), tick(1400), tick(1799), tick(1800)], { strategy: "vad" })).toEqual(["bargeIn turn-1 vad @1800"]);
    // A coarse tick still reports the moment the protection ended.
    expect(run([start(1000), speech(1100), tick(2000)], { strategy: "vad" })).toEqual(["bargeIn turn-1 vad @1800"]);
  });

  it("speech that ended inside the protection period is ignored, and so is a final that arrived in it", () => {
    expect(run([start(1000), speech(1100), silence(1500), final(1600, 0, "yes"), tick(3000)], { strategy: "both" })).toEqual([]);
  });

  it("an unfinished transcript still there when the period ends is judged then", () => {
    expect(run([start(1000), partial(1200, 0, "no wait"), tick(1700), tick(1800)], { strategy: "asr" })).toEqual(['bargeIn turn-1 asr @1800 "no wait"']);
  });

  it("each utterance has its own protection period", () => {
    const p = new InterruptionPolicy({ strategy: "vad" });
    expect(run([start(0), end(3000), start(5000, true, "turn-2"), speech(5100), tick(5799), tick(5800)], {}, p)).toEqual(["bargeIn turn-2 vad @5800"]);
  });

  it("ignoreFirstMs 0: speech interrupts as soon as it lasts minSpeechMs", () => {
    expect(run([start(1000), speech(1000), tick(1300)], { strategy: "vad", ignoreFirstMs: 0 })).toEqual(["bargeIn turn-1 vad @1300"]);
  });
});

describe("InterruptionPolicy filler words", () => {
  const en = { strategy: "asr" as const, fillerWordFilter: true, fillerWords: fillerWordsFor(CONFIG_FILLERS, "en-US") };
  const zh = { strategy: "asr" as const, fillerWordFilter: true, fillerWords: fillerWordsFor(CONFIG_FILLERS, "zh") };

  it("English backchannels do not interrupt with fillerWordFilter on; real words do", () => {
    for (const text of ["uh-huh", "Mm.", "Uh, um...", "mhm mhm", "HMM!"]) {
      expect(run([start(0), speech(2000), partial(2300, 0, text), final(2600, 0, text)], en)).toEqual([]);
    }
    expect(run([start(0), speech(2000), partial(2300, 0, "uh"), partial(2500, 0, "uh wait")], en)).toEqual(['bargeIn turn-1 asr @2500 "uh wait"']);
  });

  it("Chinese backchannels do not interrupt with fillerWordFilter on, even written together", () => {
    for (const text of ["嗯", "嗯嗯", "嗯，啊。", "哦哦哦"]) {
      expect(run([start(0), speech(2000), final(2600, 0, text)], zh)).toEqual([]);
    }
    expect(run([start(0), speech(2000), final(2600, 0, "嗯，等一下")], zh)).toEqual(['bargeIn turn-1 asr @2600 "嗯，等一下"']);
  });

  it("without the filter, a filler is a word like any other", () => {
    expect(run([start(0), speech(2000), partial(2300, 0, "uh-huh")], { strategy: "asr" })).toEqual(['bargeIn turn-1 asr @2300 "uh-huh"']);
  });

  it("minWords counts only the words that are not fillers", () => {
    expect(run([start(0), partial(2300, 0, "um er okay")], { ...en, minWords: 2 })).toEqual([]);
    expect(run([start(0), partial(2300, 0, "um okay stop")], { ...en, minWords: 2 })).toEqual(['bargeIn turn-1 asr @2300 "um okay stop"']);
  });

  it("a short backchannel under minSpeechMs does not interrupt with strategy both", () => {
    const both = { ...en, strategy: "both" as const };
    expect(run([start(0), speech(2000), silence(2250), final(2500, 0, "uh-huh"), tick(4000)], both)).toEqual([]);
  });
});

describe("InterruptionPolicy non-interruptible utterances", () => {
  it("are never cut, whatever the caller does; a later interruptible one is", () => {
    const p = new InterruptionPolicy({ strategy: "both" });
    expect(run([start(0, false), speech(2000), tick(5000), partial(5100, 0, "hello hello"), silence(5150), final(5200, 0, "hello hello are you there")], {}, p)).toEqual([]);
    expect(run([end(6000), start(7000, true, "turn-2"), speech(8000), tick(8300)], {}, p)).toEqual(["bargeIn turn-2 vad @8300"]);
  });

  it("interruptible changed while streaming: the last value wins", () => {
    const steps: Step[] = [start(0, true), { type: "interruptible", atMs: 500, playId: "turn-1", interruptible: false }, speech(2000), tick(3000)];
    expect(run(steps)).toEqual([]);
    steps.push({ type: "interruptible", atMs: 3100, playId: "turn-1", interruptible: true });
    expect(run(steps)).toEqual(["bargeIn turn-1 vad @3100"]);
  });
});

describe("InterruptionPolicy false interruptions", () => {
  const fillers = { fillerWordFilter: true, fillerWords: fillerWordsFor(CONFIG_FILLERS, "") };

  it("a VAD barge-in whose final is empty: false interruption, resume", () => {
    const p = new InterruptionPolicy({ strategy: "vad" });
    expect(run([start(0), speech(2000), tick(2300), silence(2600), final(2900, 0, "")], {}, p)).toEqual([
      "bargeIn turn-1 vad @2300",
      "false turn-1 resume=true @2900",
    ]);
    expect(p.stats).toEqual({ bargeIns: 1, falseInterruptions: 1 });
  });

  it("a filler-only final (en and zh lists when the language is empty) is a false interruption too", () => {
    expect(run([start(0), speech(2000), tick(2300), partial(2400, 0, "uh"), final(2900, 0, "uh-huh")], { strategy: "both", ...fillers })).toEqual([
      "bargeIn turn-1 vad @2300",
      "false turn-1 resume=true @2900",
    ]);
    expect(run([start(0), speech(2000), tick(2300), final(2900, 0, "嗯嗯")], { strategy: "both", ...fillers })).toEqual([
      "bargeIn turn-1 vad @2300",
      "false turn-1 resume=true @2900",
    ]);
  });

  it("resumeOnFalse false: counted, not resumed", () => {
    expect(run([start(0), speech(2000), tick(2300), final(2900, 0, "")], { resumeOnFalse: false })).toEqual([
      "bargeIn turn-1 vad @2300",
      "false turn-1 resume=false @2900",
    ]);
  });

  it("real words confirm it, from a partial already", () => {
    expect(run([start(0), speech(2000), tick(2300), partial(2500, 0, "actually"), final(2900, 0, "")], { strategy: "vad" })).toEqual([
      "bargeIn turn-1 vad @2300",
      'confirmed turn-1 "actually" @2500',
    ]);
  });

  it("results of utterances finished before the barge-in do not decide it", () => {
    expect(run([final(100, 0, ""), start(1000), speech(3000), tick(3300), final(3400, 0, "late"), final(3900, 1, "")], { strategy: "vad" })).toEqual([
      "bargeIn turn-1 vad @3300",
      "false turn-1 resume=true @3900",
    ]);
  });

  it("no transcript within verdictTimeoutMs after the speech ended: false interruption; speech resuming restarts the wait", () => {
    expect(run([start(0), speech(2000), tick(2300), silence(2600), tick(5599), tick(5600)], { strategy: "vad" })).toEqual([
      "bargeIn turn-1 vad @2300",
      "false turn-1 resume=true @5600",
    ]);
    expect(run([start(0), speech(2000), tick(2300), silence(2600), speech(4000), tick(6000)], { strategy: "vad" })).toEqual(["bargeIn turn-1 vad @2300"]);
  });

  it("an ASR barge-in has words by definition: no verdict follows", () => {
    expect(run([start(0), partial(2300, 0, "stop"), final(2600, 0, "")], { strategy: "asr" })).toEqual(['bargeIn turn-1 asr @2300 "stop"']);
  });

  it("an ASR failure counts as a final with the partial's text", () => {
    const failed: Step = { type: "asr", atMs: 2900, result: { type: "error", utterance: 0, error: new AppError("PROVIDER_ERROR", "x") } };
    expect(run([start(0), speech(2000), tick(2300), failed], { strategy: "vad" })).toEqual(["bargeIn turn-1 vad @2300", "false turn-1 resume=true @2900"]);
  });
});

describe("interruptionOptions and fillers", () => {
  it("fills the playbook defaults and picks the filler list of the language", () => {
    expect(interruptionOptions({}, "en")).toEqual({
      strategy: "both",
      minSpeechMs: 300,
      minWords: 1,
      ignoreFirstMs: 800,
      fillerWordFilter: false,
      fillerWords: [],
      fadeOutMs: 20,
      resumeOnFalse: true,
      verdictTimeoutMs: 3000,
    });
    const o = interruptionOptions({ strategy: "asr", fillerWordFilter: true, fillerWords: CONFIG_FILLERS, fadeOutMs: 200 }, "zh-CN");
    expect(o).toMatchObject({ strategy: "asr", fillerWordFilter: true, fillerWords: CONFIG_FILLERS.zh, fadeOutMs: 200 });
  });

  it("fillerWordsFor: exact key, primary subtag, all lists when empty, none for an unknown language", () => {
    expect(fillerWordsFor(CONFIG_FILLERS, "en")).toEqual(CONFIG_FILLERS.en);
    expect(fillerWordsFor(CONFIG_FILLERS, "EN-gb")).toEqual(CONFIG_FILLERS.en);
    expect(fillerWordsFor(CONFIG_FILLERS, "")).toEqual([...CONFIG_FILLERS.en, ...CONFIG_FILLERS.zh]);
    expect(fillerWordsFor(CONFIG_FILLERS, "de")).toEqual([]);
    expect(fillerWordsFor(["ok"], "de")).toEqual(["ok"]);
  });

  it("FillerFilter: whole words only for Latin text, concatenations for CJK", () => {
    const f = new FillerFilter([...CONFIG_FILLERS.en, ...CONFIG_FILLERS.zh]);
    expect(f.isFillerOnly("Uh-huh.")).toBe(true);
    expect(f.isFillerOnly("um, uh")).toBe(true);
    expect(f.isFillerOnly("umbrella")).toBe(false);
    expect(f.isFillerOnly("uhum")).toBe(false);
    expect(f.isFillerOnly("嗯啊")).toBe(true);
    expect(f.isFillerOnly("嗯好")).toBe(false);
    expect(f.isFillerOnly("")).toBe(false);
    expect(f.contentWordCount("嗯，我要退款")).toBe(4);
  });
});
