import { describe, expect, it } from "vitest";
import { concatPcm } from "../../audio/index.js";
import { FliteTts } from "../../providers/local/tts.js";
import { createVadEngine } from "../../vad/index.js";
import { Harness } from "./testutil.js";

describe("SerialConversation with real speech (flite -> TinySilero)", () => {
  it("a caller sentence spoken by flite is detected, answered and played back", async () => {
    const flite = new FliteTts({ binary: "flite", voice: "slt", sampleRate: 16000 });
    const chunks: Int16Array[] = [];
    for await (const f of flite.synthesize("Hello, I would like to book a table for two.")) chunks.push(f.pcm.slice());
    const speech = concatPcm(chunks);
    const h = new Harness({ script: ["book a table"], vad: { engine: await createVadEngine("tinysilero") } });
    await h.conv.start();
    await h.run(600);
    await h.run(Math.ceil((speech.length / 16) / 20) * 20, speech);
    await h.run(3000);
    const names = h.names();
    expect(names.indexOf("speaking")).toBeGreaterThan(names.indexOf("trackEnd:greeting"));
    expect(names).toContain("asrFinal");
    expect(h.of("eou").at(-1)?.completed).toBe(true);
    expect(names.filter((n) => n !== "metrics").slice(-2)).toEqual(["trackStart:r-1", "trackEnd:r-1"]);
    expect(h.of("metrics").find((m) => m.key === "turn")).toBeDefined();
    expect(h.conv.snapshot().runner?.history.at(-1)?.message).toEqual({ role: "assistant", content: "You said: book a table" });
  });
});
