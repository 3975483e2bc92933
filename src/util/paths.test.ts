import { describe, expect, it } from "vitest";
import { isInside } from "./paths.js";

describe("isInside", () => {
  it("accepts files below the root only", () => {
    expect(isInside("/srv/sounds", "/srv/sounds/a.wav")).toBe(true);
    expect(isInside("/srv/sounds", "/srv/sounds/x/../b.wav")).toBe(true);
    expect(isInside("/srv/sounds", "/srv/sounds")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/other/a.wav")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/sounds/../secret")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/soundsX/a.wav")).toBe(false);
    expect(isInside("/srv/sounds", "/srv/sounds/..hidden")).toBe(true);
  });
});
