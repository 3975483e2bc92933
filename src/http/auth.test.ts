import { describe, expect, it } from "vitest";
import { isOpenPath, presentedToken, tokenMatches } from "./auth.js";

describe("auth", () => {
  it("matches only the exact token, whatever the lengths", () => {
    expect(tokenMatches("abc", "abc")).toBe(true);
    expect(tokenMatches("abc", "abcd")).toBe(false);
    expect(tokenMatches("abc", "")).toBe(false);
    expect(tokenMatches("abc", undefined)).toBe(false);
  });
  it("reads a bearer header before the query parameter", () => {
    expect(presentedToken("Bearer h", "/x?token=q")).toBe("h");
    expect(presentedToken(undefined, "/x?a=1&token=q%20r")).toBe("q r");
    expect(presentedToken("Basic zzz", "/x")).toBeUndefined();
  });
  it("leaves only liveness, readiness, the audio fork and the Twilio stream (checked by its route) open", () => {
    expect(isOpenPath("/health")).toBe(true);
    expect(isOpenPath("/ready")).toBe(true);
    expect(isOpenPath("/media/fork/abc")).toBe(true);
    expect(isOpenPath("/healthz")).toBe(false);
    expect(isOpenPath("/media/twilio")).toBe(true);
    expect(isOpenPath("/media/twilio/x")).toBe(false);
    expect(isOpenPath("/call")).toBe(false);
    expect(isOpenPath("/")).toBe(false);
  });
});
