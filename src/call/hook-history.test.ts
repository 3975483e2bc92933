import { describe, expect, it } from "vitest";
import { hookHistory } from "./hook-history.js";

describe("hookHistory", () => {
  it("gives the hook's {role, content} items: said text and tool results, without internal markers", () => {
    const at = Date.parse("2026-11-23T10:00:00.000Z");
    expect(
      hookHistory([
        { message: { role: "assistant", content: "Hi." }, at },
        { message: { role: "user", content: "Where is my order?" }, at: at + 1000 },
        { message: { role: "assistant", content: null, toolCalls: [{ id: "c1", name: "lookup", arguments: "{}" }] }, at },
        { message: { role: "tool", toolCallId: "c1", content: '{"status":200}' }, at, name: "lookup" },
        { message: { role: "system", content: "[scene changed to billing]" }, at },
        { message: { role: "assistant", content: "It has" }, at: 5_000, interrupted: true },
      ]),
    ).toEqual([
      { role: "assistant", content: "Hi.", timestamp: "2026-11-23T10:00:00.000Z" },
      { role: "user", content: "Where is my order?", timestamp: "2026-11-23T10:00:01.000Z" },
      { role: "tool", name: "lookup", content: '{"status":200}', timestamp: "2026-11-23T10:00:00.000Z" },
      { role: "assistant", content: "It has", interrupted: true },
    ]);
  });
});
