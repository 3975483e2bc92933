import { describe, expect, it } from "vitest";
import type { ChatRequest, LlmEvent } from "../../providers/types.js";
import { Harness, watchUnhandledRejections } from "./testutil.js";

const rejections = watchUnhandledRejections();

/** An LLM that sends its first sentence, then holds the rest until the test opens the gate. */
function gatedLlm() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let finished = false;
  return {
    open: () => open(),
    get finished() {
      return finished;
    },
    chat(request: ChatRequest): AsyncIterable<LlmEvent> {
      return (async function* () {
        yield { type: "text", delta: "First, the good news. " } as LlmEvent;
        await gate;
        request.signal?.throwIfAborted();
        yield { type: "text", delta: "Then the rest of the answer." } as LlmEvent;
        finished = true;
        yield { type: "done", finishReason: "stop" } as LlmEvent;
      })();
    },
  };
}

describe("streaming", () => {
  it("speaks the first sentence while the LLM is still generating the rest, in one utterance", async () => {
    const llm = gatedLlm();
    const h = new Harness({ script: ["tell me"], llm });
    await h.conv.start();
    await h.run(600);
    await h.run(700, Harness.speech(700));
    await h.run(1500);
    // The reply has started playing although the model has not finished.
    expect(llm.finished).toBe(false);
    expect(h.names()).toContain("trackStart:r-1");
    expect(h.names()).not.toContain("trackEnd:r-1");
    const firstAudioAt = h.leg.agentEndMs;
    llm.open();
    await h.run(6000);
    expect(llm.finished).toBe(true);
    expect(h.names().filter((n) => n.endsWith(":r-1"))).toEqual(["trackStart:r-1", "trackEnd:r-1"]);
    // Both sentences were played as one utterance, the second after the first.
    expect(h.leg.agentEndMs).toBeGreaterThan(firstAudioAt);
    const hist = h.conv.snapshot().runner?.history.map((e) => e.message);
    expect(hist?.at(-1)).toEqual({ role: "assistant", content: "First, the good news. Then the rest of the answer." });
    expect(rejections).toEqual([]);
  });
});
