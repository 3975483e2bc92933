import { describe, expect, it } from "vitest";
import { merge, ReplyParser, TagStream, type ReplyItem } from "./tag-stream.js";

const REPLIES: [string, ReplyItem[]][] = [
  ["Hello there.", [{ type: "text", text: "Hello there." }]],
  [
    'Sure, one moment. <goto scene="billing"/>Welcome to billing.',
    [
      { type: "text", text: "Sure, one moment. " },
      { type: "tag", name: "goto", attrs: { scene: "billing" }, raw: '<goto scene="billing"/>' },
      { type: "text", text: "Welcome to billing." },
    ],
  ],
  [
    "Goodbye!<hangup/>",
    [
      { type: "text", text: "Goodbye!" },
      { type: "tag", name: "hangup", attrs: {}, raw: "<hangup/>" },
    ],
  ],
  ["Since 3 < 5 and 7 > 2, yes.", [{ type: "text", text: "Since 3 < 5 and 7 > 2, yes." }]],
  ["Use <b>bold</b> and a <hangover>.", [{ type: "text", text: "Use <b>bold</b> and a <hangover>." }]],
  [
    "Saved.<set_var name='note' value=\"a &quot;b&quot; > c\" />Next<play file=\"a.wav\"/>",
    [
      { type: "text", text: "Saved." },
      { type: "tag", name: "set_var", attrs: { name: "note", value: 'a "b" > c' }, raw: "<set_var name='note' value=\"a &quot;b&quot; > c\" />" },
      { type: "text", text: "Next" },
      { type: "tag", name: "play", attrs: { file: "a.wav" }, raw: '<play file="a.wav"/>' },
    ],
  ],
  [
    'Transferring you now <transfer context="bank" to="operator"/> thanks </hangup> <refer',
    [
      { type: "text", text: "Transferring you now " },
      { type: "tag", name: "transfer", attrs: { context: "bank", to: "operator" }, raw: '<transfer context="bank" to="operator"/>' },
      { type: "text", text: " thanks  <refer" },
    ],
  ],
  [
    "a <goto scene=x/> b",
    [
      { type: "text", text: "a " },
      { type: "error", message: 'the value of "scene" in <goto> must be quoted', raw: "<goto scene=x/>" },
      { type: "text", text: " b" },
    ],
  ],
  ["x <", [{ type: "text", text: "x <" }]],
];

function runSplit(text: string, cuts: number[]): ReplyItem[] {
  const s = new TagStream();
  const out: ReplyItem[] = [];
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    out.push(...s.push(text.slice(prev, c)));
    prev = c;
  }
  out.push(...s.end());
  return merge(out);
}

const TAG_PREFIX = /<\/?(hangup|refer|transfer|goto|play|set_var|collect|http)\b/;

describe("TagStream", () => {
  it.each(REPLIES)("parses %j whole", (text, expected) => {
    expect(runSplit(text, [])).toEqual(expected);
  });

  it.each(REPLIES)("gives the same items for every split point of %j", (text, expected) => {
    for (let i = 0; i <= text.length; i++) expect(runSplit(text, [i]), `split at ${i}`).toEqual(expected);
    for (let i = 1; i < text.length; i++) for (let j = i + 1; j < text.length; j += 3) expect(runSplit(text, [i, j])).toEqual(expected);
    // One character at a time.
    expect(runSplit(text, [...Array(text.length).keys()].slice(1))).toEqual(expected);
  });

  it("never emits part of a tag as text while streaming", () => {
    const text = 'Okay <goto scene="card"/> and <hangup reason="done"/>';
    for (let i = 1; i < text.length; i++) {
      const s = new TagStream();
      const first = s.push(text.slice(0, i));
      for (const item of first) if (item.type === "text") expect(item.text).not.toMatch(TAG_PREFIX);
      // Text before a partial tag is released at once.
      const released = first.filter((x) => x.type === "text").map((x) => (x as { text: string }).text).join("");
      const plain = text.slice(0, i).replace(/<[^>]*\/>/g, "");
      expect(plain.startsWith(released)).toBe(true);
      expect(plain.slice(released.length)).toMatch(/^(<[^>]*)?$/);
    }
  });

  it("speaks a known tag name that never closes within 200 characters as text", () => {
    const long = `<goto ${"x".repeat(250)} done`;
    const s = new TagStream();
    const items = [...s.push(long.slice(0, 100)), ...s.push(long.slice(100)), ...s.end()];
    expect(merge(items)).toEqual([{ type: "text", text: long }]);
    // Before 200 characters it is held.
    const t = new TagStream();
    expect(t.push("<goto scene")).toEqual([]);
  });

  it("finds a tag after a '<' that turned out to be text", () => {
    expect(runSplit("a <5 <hangup/>", [])).toEqual([
      { type: "text", text: "a <5 " },
      { type: "tag", name: "hangup", attrs: {}, raw: "<hangup/>" },
    ]);
  });
});

describe("ReplyParser (compatibility JSON replies)", () => {
  const parse = (text: string, cut?: number) => {
    const p = new ReplyParser();
    const items = cut === undefined ? [...p.push(text), ...p.end()] : [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut)), ...p.end()];
    return merge(items);
  };

  it("buffers a JSON reply and turns it into text then tools, for every split point", () => {
    const text = ' {"text":"Bye now.","tools":[{"name":"set_var","key":"k","value":"v"},{"name":"refer","callee":"sip:a@b"},{"name":"hangup"}]}';
    const expected = [
      { type: "text", text: "Bye now." },
      { type: "tag", name: "set_var", attrs: { key: "k", value: "v" }, raw: '{"name":"set_var","key":"k","value":"v"}' },
      { type: "tag", name: "refer", attrs: { to: "sip:a@b" }, raw: '{"name":"refer","callee":"sip:a@b"}' },
      { type: "tag", name: "hangup", attrs: {}, raw: '{"name":"hangup"}' },
    ];
    for (let i = 0; i <= text.length; i++) expect(parse(text, i)).toEqual(expected);
  });

  it("accepts a ```json fence", () => {
    expect(parse('```json\n{"text":"Hi","tools":[{"name":"goto","scene":"menu"}]}\n```')).toEqual([
      { type: "text", text: "Hi" },
      { type: "tag", name: "goto", attrs: { scene: "menu" }, raw: '{"name":"goto","scene":"menu"}' },
    ]);
  });

  it("speaks a reply that starts with { but is not JSON as text", () => {
    expect(parse("{not json} ok")).toEqual([{ type: "text", text: "{not json} ok" }]);
  });

  it("a backtick that is not a json fence is text", () => {
    for (let i = 0; i < 8; i++) expect(parse("`code` here", i)).toEqual([{ type: "text", text: "`code` here" }]);
  });
});
