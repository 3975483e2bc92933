import { describe, expect, it } from "vitest";
import { expandEnv } from "./env-expand.js";

const env: Record<string, string> = { A: "alpha", EMPTY: "" };
const lookup = (n: string) => env[n];

describe("expandEnv", () => {
  it("replaces set variables and leaves other text alone", () => {
    expect(expandEnv("x-${A}-y ${A}", lookup)).toEqual({ ok: true, value: "x-alpha-y alpha" });
    expect(expandEnv("no vars $A {A}", lookup)).toEqual({ ok: true, value: "no vars $A {A}" });
  });
  it("uses the default when unset or empty, and allows an empty default", () => {
    expect(expandEnv("${B:-beta}", lookup)).toEqual({ ok: true, value: "beta" });
    expect(expandEnv("${EMPTY:-d}", lookup)).toEqual({ ok: true, value: "d" });
    expect(expandEnv("[${B:-}]", lookup)).toEqual({ ok: true, value: "[]" });
  });
  it("keeps an empty but set variable without a default", () => {
    expect(expandEnv("[${EMPTY}]", lookup)).toEqual({ ok: true, value: "[]" });
  });
  it("treats $${ as a literal ${", () => {
    expect(expandEnv("$${A} and ${A}", lookup)).toEqual({ ok: true, value: "${A} and alpha" });
  });
  it("reports the first unset variable and its offset", () => {
    expect(expandEnv("ab ${NOPE} ${ALSO}", lookup)).toEqual({ ok: false, unset: { name: "NOPE", offset: 3 } });
  });
});
