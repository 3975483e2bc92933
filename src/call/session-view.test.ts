import { describe, expect, it } from "vitest";
import type { Config } from "../config.js";
import type { Playbook } from "../playbook/types.js";
import type { CallView } from "./session-types.js";
import { callDetail, callSummary, hangupEvent, hookTarget } from "./session-view.js";

const T0 = Date.parse("2026-12-07T10:00:00.000Z");
const call = (over: Partial<CallView> = {}): CallView => ({
  id: "c1",
  callType: "freeswitch",
  direction: "inbound",
  createdAt: T0,
  caller: "1000",
  callee: "7700",
  state: "active",
  answeredAt: T0 + 1000,
  ringingAt: T0 + 200,
  firstAudioAt: undefined,
  endedAt: undefined,
  playbook: undefined,
  scene: undefined,
  media: undefined,
  turns: 2,
  lastTurn: { eouMs: 600, other: 1, asrMs: undefined },
  speaking: { agent: true, caller: false },
  hangupInfo: undefined,
  recording: undefined,
  variables: { customer: "ada", api_token: "s3cret", _internal: "x" },
  conversation: undefined,
  attached: false,
  ...over,
});

describe("call views", () => {
  it("summary: duration runs from the answer to now while live, to the end once ended", () => {
    expect(callSummary(call(), T0 + 4000)).toMatchObject({ id: "c1", durationMs: 3000, answeredAt: "2026-12-07T10:00:01.000Z" });
    expect(callSummary(call({ endedAt: T0 + 2500 }), T0 + 9000)).toMatchObject({ durationMs: 1500, endedAt: "2026-12-07T10:00:02.500Z" });
    expect(callSummary(call({ answeredAt: undefined }), T0 + 9000).durationMs).toBe(0);
  });

  it("detail: masks variables that look like secrets, only on request, and keeps only the known lastTurn figures", () => {
    const d = callDetail(call(), T0 + 4000, true);
    expect(d.variables).toEqual({ customer: "ada", api_token: "***", _internal: "x" });
    expect(d.lastTurn).toEqual({ eouMs: 600 });
    expect(d.pipeline).toBe("none");
    expect(callDetail(call(), T0, false)).not.toHaveProperty("variables");
  });

  it("hangup event: the call's times and numbers, and its variables without the `_` ones", () => {
    const e = hangupEvent(call({ endedAt: T0 + 5000 }), { reason: "caller", initiator: "caller" }, 4000);
    expect(e).toEqual({
      event: "hangup",
      trackId: "c1",
      reason: "caller",
      initiator: "caller",
      startTime: "2026-12-07T10:00:00.000Z",
      ringingTime: "2026-12-07T10:00:00.200Z",
      answerTime: "2026-12-07T10:00:01.000Z",
      hangupTime: "2026-12-07T10:00:05.000Z",
      durationMs: 4000,
      from: { number: "1000" },
      to: { number: "7700" },
      extra: { customer: "ada", api_token: "s3cret" },
    });
  });

  it("hook target: the playbook's posthook wins over [posthook]; no URL anywhere means no hook", () => {
    const cfg = { url: "https://hooks.example/cfg", timeout_ms: 5000 } as Config["posthook"];
    expect(hookTarget(undefined, cfg)).toMatchObject({ url: "https://hooks.example/cfg", method: "POST", timeoutMs: 5000, includeHistory: true });
    const pb = { settings: { posthook: { url: "https://hooks.example/pb", method: "PUT", includeHistory: false } } } as unknown as Playbook;
    expect(hookTarget(pb, cfg)).toMatchObject({ url: "https://hooks.example/pb", method: "PUT", timeoutMs: 5000, includeHistory: false });
    expect(hookTarget(undefined, { ...cfg, url: "" })).toBeUndefined();
  });
});
