import { describe, expect, it } from "vitest";
import { asteriskSupports, parseAsteriskVersion } from "./version.js";

describe("Asterisk feature gates", () => {
  it("reads release, certified and unreadable version strings", () => {
    expect(parseAsteriskVersion("23.4.1")).toEqual([23, 4]);
    expect(parseAsteriskVersion("certified-20.7-cert5")).toEqual([20, 7]);
    expect(parseAsteriskVersion("GIT-master-1a2b3c")).toBeUndefined();
  });

  it("opens chan_websocket at 20.16 / 21.11 / 22.6 / 23.0", () => {
    expect(asteriskSupports("20.15.2", "chanWebsocket")).toBe(false);
    expect(asteriskSupports("20.16.0", "chanWebsocket")).toBe(true);
    expect(asteriskSupports("21.10.0", "chanWebsocket")).toBe(false);
    expect(asteriskSupports("21.11.0", "chanWebsocket")).toBe(true);
    expect(asteriskSupports("22.5.9", "chanWebsocket")).toBe(false);
    expect(asteriskSupports("23.0.0", "chanWebsocket")).toBe(true);
    expect(asteriskSupports("18.26.0", "chanWebsocket")).toBe(false);
    expect(asteriskSupports("24.0.0", "chanWebsocket")).toBe(true);
  });

  it("opens JSON control and MARK_MEDIA at 20.18 / 22.8 / 23.2 only (not on 21)", () => {
    expect(asteriskSupports("23.1.0", "markMedia")).toBe(false);
    expect(asteriskSupports("23.2.0", "markMedia")).toBe(true);
    expect(asteriskSupports("23.4.1", "jsonControl")).toBe(true);
    expect(asteriskSupports("21.12.0", "jsonControl")).toBe(false);
    expect(asteriskSupports("22.8.0", "jsonControl")).toBe(true);
  });

  it("assumes a current Asterisk when the version cannot be read", () => {
    expect(asteriskSupports(undefined, "progress")).toBe(true);
  });
});
