import { describe, expect, it } from "vitest";
import { flush, Harness } from "./testutil.js";

describe("inactivity timeout", () => {
  it("ends the call when no caller audio frame arrives for inactivityTimeoutMs, and not while frames arrive", async () => {
    const h = new Harness({ inactivityTimeoutMs: 1000 });
    await h.conv.start();
    await h.run(2500); // caller silence frames keep arriving: audio, even silent, is activity
    expect(h.of("inactivity")).toHaveLength(0);
    // The last frame arrived at 2480 ms (each step pushes a frame, then advances 20 ms); none from here on.
    h.clock.advance(960);
    await flush(4);
    expect(h.of("inactivity")).toHaveLength(0);
    h.clock.advance(40);
    await flush(4);
    expect(h.of("inactivity")).toHaveLength(1);
    expect(h.of("hangup")).toEqual([expect.objectContaining({ reason: "inactivityTimeout", initiator: "system" })]);
    const end = await h.conv.closed;
    expect(end.reason).toBe("inactivityTimeout");
  });

  it("is off by default", async () => {
    const h = new Harness();
    await h.conv.start();
    h.clock.advance(120_000);
    await flush(4);
    expect(h.of("inactivity")).toHaveLength(0);
    await h.conv.stop();
  });
});
