/**
 * A playbook transfer on the realtime pipeline: while it is pending the call is ending (keys and follow-ups wait);
 * when the call layer reports that it failed, the model hears why and answers, and the call is the agent's again.
 */
import { afterEach, expect, it } from "vitest";
import { ManualClock } from "../../media/clock.js";
import { MemoryLeg } from "../../media/memory-leg.js";
import type { ConversationEvent } from "../conversation.js";
import { runCaller } from "../serial/testutil.js";
import type { RealtimeConversation } from "./realtime-conversation.js";
import { fakeRealtimeCall } from "./testutil.js";

const live: RealtimeConversation[] = [];
afterEach(async () => {
  for (const c of live.splice(0)) await c.stop();
});

const advance = (clock: ManualClock, leg: MemoryLeg, ms: number): Promise<void> => runCaller(leg, clock, ms);

it("a failed transfer: the model is told and asked to answer; a key action works again", async () => {
  const clock = new ManualClock();
  const leg = new MemoryLeg({ clock, leadMs: 20 });
  const { conv, provider } = fakeRealtimeCall(
    leg,
    clock,
    '---\nrealtime: { provider: openai, apiKey: sk-test }\ngreeting: false\ndtmf:\n  "0": { action: refer, target: "sip:desk@example.com" }\n  "2": { action: hangup }\n---\nBe brief.\n',
    { call: { callType: "freeswitch" } },
  );
  live.push(conv);
  const events: ConversationEvent[] = [];
  const controls: unknown[] = [];
  conv.events.on("event", (e) => events.push(e));
  conv.events.on("control", (c) => controls.push(c));
  await conv.start();
  await advance(clock, leg, 100);
  const session = provider.sessions[0]!;

  conv.transferFailed("nothing pending"); // no transfer was asked for: nothing happens
  expect(session.creates).toBe(0);

  leg.pushDtmf("0");
  await advance(clock, leg, 200);
  expect(controls).toEqual([{ command: "refer", callee: "sip:desk@example.com" }]);
  leg.pushDtmf("2"); // ignored while the transfer is pending
  await advance(clock, leg, 200);
  expect(events.some((e) => e.event === "hangup")).toBe(false);

  conv.transferFailed("486 Busy Here");
  expect(session.messages.at(-1)).toEqual({ role: "system", text: "[the transfer failed: 486 Busy Here]" });
  expect(session.creates).toBe(1);
  session.push({ type: "response_started", responseId: "r1" });
  session.push({ type: "response_done", responseId: "r1", status: "completed" });
  await advance(clock, leg, 100);
  leg.pushDtmf("2");
  await advance(clock, leg, 200);
  expect(events.find((e) => e.event === "hangup")).toMatchObject({ reason: "agent" });
});
