import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AppError, ERROR_CODES, toAppError, type ErrorCode } from "./errors.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("error catalogue", () => {
  it("every code appears in the README table with its HTTP status and retryability", () => {
    const rows = new Map<string, { http: string; retryable: string }>();
    for (const m of readme.matchAll(/^\| `([A-Z_]+)` \| (\d+|—) \| (yes|no) \|/gm)) {
      rows.set(m[1] as string, { http: m[2] as string, retryable: m[3] as string });
    }
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code), `README row for ${code}`).toEqual({ http: info.http === undefined ? "—" : String(info.http), retryable: info.retryable ? "yes" : "no" });
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it("AppError carries code, retryable, details and the REST body", () => {
    const cause = new Error("socket hang up");
    const e = new AppError("PROVIDER_ERROR", "openai failed", { cause, details: { provider: "openai", status: 503 } });
    expect(e.retryable).toBe(true);
    expect(e.httpStatus).toBe(502);
    expect(e.cause).toBe(cause);
    expect(e.toBody()).toEqual({ error: { code: "PROVIDER_ERROR", message: "openai failed", retryable: true, details: { provider: "openai", status: 503 } } });
    expect(new AppError("PROVIDER_ERROR", "bad request", { retryable: false }).retryable).toBe(false);
    expect(new AppError("BAD_COMMAND", "x").httpStatus).toBe(500);
  });

  it("toAppError keeps AppErrors and wraps anything else", () => {
    const e = new AppError("TIMEOUT", "slow");
    expect(toAppError(e)).toBe(e);
    const wrapped = toAppError("oops", "TOOL_ERROR" satisfies ErrorCode);
    expect(wrapped.code).toBe("TOOL_ERROR");
    expect(wrapped.message).toBe("oops");
  });
});
