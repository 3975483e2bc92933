import { describe, expect, it } from "vitest";
import { editDistance, suggest } from "./suggest.js";

describe("suggest", () => {
  it("computes edit distances", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
  it("finds a typo, across snake_case and camelCase", () => {
    expect(suggest("esl_pasword", ["esl_host", "esl_password", "esl_port"])).toBe("esl_password");
    expect(suggest("temprature", ["temperature", "model"])).toBe("temperature");
    expect(suggest("min_speech_ms", ["minSpeechMs", "minSilenceMs"])).toBe("minSpeechMs");
  });
  it("suggests nothing for an unrelated word", () => {
    expect(suggest("frobnicate", ["addr", "token", "console"])).toBeUndefined();
  });
});
