import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signBody, verifySignature } from "./hmac.js";

describe("webhook signatures", () => {
  it("is sha256= and the hex HMAC of the raw body", () => {
    const body = '{"event":"call.ended"}';
    const hex = createHmac("sha256", "k").update(body).digest("hex");
    expect(signBody("k", body)).toBe(`sha256=${hex}`);
    expect(signBody("k", Buffer.from(body))).toBe(`sha256=${hex}`);
  });
  it("verifies only the exact body and secret", () => {
    const sig = signBody("k", "abc");
    expect(verifySignature("k", "abc", sig)).toBe(true);
    expect(verifySignature("k", "abd", sig)).toBe(false);
    expect(verifySignature("other", "abc", sig)).toBe(false);
    expect(verifySignature("k", "abc", undefined)).toBe(false);
    expect(verifySignature("k", "abc", "sha256=00")).toBe(false);
  });
});
