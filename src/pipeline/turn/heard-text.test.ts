import { describe, expect, it } from "vitest";
import { heardText, type SpokenSentence } from "./heard-text.js";

const en: SpokenSentence[] = [
  { text: "Hello there.", durationMs: 1000 }, // 12 characters
  { text: "Your order ships tomorrow morning.", durationMs: 2000 }, // 34 characters
  { text: "Anything else?", durationMs: 1000 },
];

describe("heardText", () => {
  it("nothing played: nothing heard, the first sentence is cut", () => {
    expect(heardText(en, 0)).toEqual({
      text: "",
      position: 0,
      fullText: "Hello there. Your order ships tomorrow morning. Anything else?",
      playedMs: 0,
      totalMs: 4000,
      complete: false,
      cutSentence: 0,
      cutSentenceStartMs: 0,
    });
  });

  it("cuts inside the sentence being played at the last whole word (proportional position)", () => {
    // 1000 ms into the 2000 ms second sentence: 17 of its 34 characters, "Your order ships |tomorrow" -> back
    // to the end of "ships" (16).
    const h = heardText(en, 2000);
    expect(h.text).toBe("Hello there. Your order ships");
    expect(h.position).toBe(13 + 16);
    expect(h.playedMs).toBe(2000);
    expect(h.totalMs).toBe(4000);
    expect(h.cutSentence).toBe(1);
    expect(h.cutSentenceStartMs).toBe(1000);
    expect(h.complete).toBe(false);
  });

  it("a word is heard only when its last character is within the played share", () => {
    // "Your order" ends at 10 of 34 characters: heard from 10/34 * 2000 = 588.2 ms into the sentence.
    expect(heardText(en, 1000 + 588).text).toBe("Hello there. Your");
    expect(heardText(en, 1000 + 589).text).toBe("Hello there. Your order");
  });

  it("a sentence played to its end is heard whole; the next one not at all", () => {
    const h = heardText(en, 1000);
    expect(h.text).toBe("Hello there.");
    expect(h.position).toBe(12);
    expect(h.cutSentence).toBe(1);
    expect(h.cutSentenceStartMs).toBe(1000);
  });

  it("all played (or more): complete, played clamped to the total", () => {
    const h = heardText(en, 9999);
    expect(h).toMatchObject({ complete: true, playedMs: 4000, totalMs: 4000, cutSentence: undefined, cutSentenceStartMs: 4000 });
    expect(h.text).toBe(h.fullText);
    expect(h.position).toBe(h.fullText.length);
  });

  it("CJK text cuts between characters and joins without spaces", () => {
    const zh: SpokenSentence[] = [
      { text: "您好。", durationMs: 600 },
      { text: "您的订单明天发货。", durationMs: 1800 }, // 9 characters, 200 ms each
    ];
    const h = heardText(zh, 600 + 900); // 4.5 characters
    expect(h.fullText).toBe("您好。您的订单明天发货。");
    expect(h.text).toBe("您好。您的订单");
    expect(h.position).toBe(7);
    expect(h).toMatchObject({ playedMs: 1500, totalMs: 2400, cutSentence: 1, cutSentenceStartMs: 600 });
  });

  it("uses word timings when the TTS gave them", () => {
    const s: SpokenSentence[] = [
      {
        text: "Call me back later.",
        durationMs: 2000,
        words: [
          { start: 0, end: 4, endMs: 300 },
          { start: 5, end: 7, endMs: 500 },
          { start: 8, end: 12, endMs: 1500 }, // "back" is slow: proportionally it would count as heard at 1300
          { start: 13, end: 19, endMs: 2000 },
        ],
      },
    ];
    expect(heardText(s, 1300).text).toBe("Call me");
    expect(heardText(s, 1500).text).toBe("Call me back");
  });

  it("sentences not synthesised yet are not heard and not in the total", () => {
    const s: SpokenSentence[] = [
      { text: "First part.", durationMs: 1000 },
      { text: "Second part.", durationMs: undefined },
      { text: "Third part.", durationMs: 800 },
    ];
    const h = heardText(s, 5000);
    expect(h).toMatchObject({ text: "First part.", position: 11, playedMs: 1000, totalMs: 1000, complete: false, cutSentence: 1 });
  });

  it("an empty utterance is complete and empty", () => {
    expect(heardText([], 100)).toMatchObject({ text: "", position: 0, totalMs: 0, playedMs: 0, complete: true });
  });
});
