import { describe, expect, it } from "vitest";
import { SentenceSplitter, splitSentences, type SentenceSplitterOptions } from "./sentence-splitter.js";

function feed(chunks: readonly string[], options?: SentenceSplitterOptions): string[] {
  const s = new SentenceSplitter(options);
  const out: string[] = [];
  for (const c of chunks) out.push(...s.push(c));
  out.push(...s.flush());
  return out;
}

/** Every way of cutting `text` in two, in three at pseudo-random points, and one character at a time. */
function chunkings(text: string): string[][] {
  const all: string[][] = [];
  for (let k = 0; k <= text.length; k++) all.push([text.slice(0, k), text.slice(k)]);
  all.push([...text]);
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let r = 0; r < 30; r++) {
    const a = rnd(text.length + 1);
    const b = rnd(text.length + 1);
    const [x, y] = a < b ? [a, b] : [b, a];
    all.push([text.slice(0, x), text.slice(x, y), text.slice(y)]);
  }
  return all;
}

const CASES: Array<{ name: string; text: string; expected: string[]; options?: SentenceSplitterOptions }> = [
  {
    name: "English, with abbreviations, decimals and an ellipsis",
    text: "Hello there! Dr. Smith will see you at 3.14 p.m. today, e.g. after lunch. Is that OK? Well... I think so.",
    expected: ["Hello there!", "Dr. Smith will see you at 3.14 p.m. today, e.g. after lunch.", "Is that OK?", "Well...", "I think so."],
  },
  {
    name: "Chinese, no spaces",
    text: "您好，欢迎致电。请问有什么可以帮您？我们的营业时间是九点到五点；周末休息！",
    expected: ["您好，欢迎致电。", "请问有什么可以帮您？", "我们的营业时间是九点到五点；", "周末休息！"],
  },
  {
    name: "mixed scripts, quotes and brackets after punctuation, newline",
    text: "He said \"I'm done.\" Then he left (really!) 然后他走了。」好的 OK.\nNext line without end",
    expected: ["He said \"I'm done.\"", "Then he left (really!)", "然后他走了。」", "好的 OK.", "Next line without end"],
  },
  {
    name: "URLs, version numbers and amounts do not split",
    text: "Visit example.com for v2.5 details. It costs $4.99 per month.",
    expected: ["Visit example.com for v2.5 details.", "It costs $4.99 per month."],
  },
  {
    name: "short sentences merge forward; the last may stay short",
    text: "Hi. OK. 1. Go to the menu. 嗯。好。Yes.",
    expected: ["Hi. OK.", "1. Go to the menu.", "嗯。好。Yes."],
  },
  {
    name: "a long sentence is cut at a comma in the second half of the window, else at a space",
    text: "one two three four five six, seven eight nine ten eleven twelve thirteen",
    options: { maxChars: 30 },
    expected: ["one two three four five six,", "seven eight nine ten eleven", "twelve thirteen"],
  },
  {
    name: "a long run without spaces is cut hard at maxChars",
    text: "这是一个非常非常长的没有标点的句子它需要被切开才行。",
    options: { maxChars: 10 },
    expected: ["这是一个非常非常长的", "没有标点的句子它需要", "被切开才行。"],
  },
];

describe("SentenceSplitter", () => {
  for (const c of CASES) {
    it(`${c.name}: the same sentences for every chunking`, () => {
      expect(splitSentences(c.text, c.options)).toEqual(c.expected);
      for (const chunks of chunkings(c.text)) expect(feed(chunks, c.options)).toEqual(c.expected);
    });
  }

  it("emits a sentence as soon as the character after it arrives, before flush", () => {
    const s = new SentenceSplitter();
    expect(s.push("Sure, I can help")).toEqual([]);
    expect(s.push(" with that.")).toEqual([]);
    expect(s.push(" What")).toEqual(["Sure, I can help with that."]);
    expect(s.push("好的。")).toEqual([]); // a closing quote could still follow the 。
    expect(s.push("我")).toEqual(["What好的。"]);
    expect(s.flush()).toEqual(["我"]);
  });

  it("abbreviations and decimals are not ends, even when the delta ends right after the dot", () => {
    const s = new SentenceSplitter();
    expect(s.push("Ask Dr.")).toEqual([]);
    expect(s.push(" Lee about pi, 3.")).toEqual([]);
    expect(s.push("14159, and i.e.")).toEqual([]);
    expect(s.push(" the rest. Done")).toEqual(["Ask Dr. Lee about pi, 3.14159, and i.e. the rest."]);
    expect(s.flush()).toEqual(["Done"]);
  });

  it("a sentence is never longer than maxChars; short ones are not merged past it", () => {
    const text = "Ok. " + "word ".repeat(80) + "end. Fine, thanks. A.";
    const out = splitSentences(text, { maxChars: 60, minChars: 5 });
    for (const s of out) expect(s.length).toBeLessThanOrEqual(60);
    expect(out[0]).toBe("Ok.");
    expect(out.join(" ").replace(/\s+/g, " ")).toBe(text.trim().replace(/\s+/g, " "));
  });

  it("minChars merges, and custom abbreviations apply", () => {
    expect(splitSentences("A. B. Cde fgh.", { minChars: 1 })).toEqual(["A.", "B.", "Cde fgh."]);
    expect(splitSentences("A. B. Cde fgh.", { minChars: 6 })).toEqual(["A. B. Cde fgh."]);
    expect(splitSentences("Call Acme Corp. today.", { abbreviations: ["corp"] })).toEqual(["Call Acme Corp. today."]);
    expect(splitSentences("Call Acme Corp. Today.")).toEqual(["Call Acme Corp.", "Today."]);
  });

  it("white space only, empty deltas and flush twice give nothing", () => {
    const s = new SentenceSplitter();
    expect(s.push("")).toEqual([]);
    expect(s.push("  \n ")).toEqual([]);
    expect(s.flush()).toEqual([]);
    expect(s.flush()).toEqual([]);
    expect(s.push("Again. ")).toEqual(["Again."]);
    expect(s.push("Once more")).toEqual([]);
    expect(s.flush()).toEqual(["Once more"]);
  });
});
