import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpReceiver, type HttpReceiver } from "../../../test/sim/http-receiver.js";
import { useOpenAiSim } from "../../../test/sim/openai/use-sim.js";
import { configSchema, type ConfigInput } from "../../config/schema.js";
import { createLogger } from "../../log.js";
import { resolveLlm } from "../../providers/registry.js";
import { PosthookDelivery } from "./delivery.js";
import { buildHook, makeSummariser, summariseCall, SUMMARY_INSTRUCTIONS, type CallOutcome } from "./summary.js";

const sim = useOpenAiSim();

const llm = () =>
  resolveLlm({ provider: "openai", model: "gpt-4o-mini" }, configSchema.parse({ providers: { openai: { api_key: "sk-x", base_url: sim.url, max_retries: 0, timeout_ms: 2000 } } } as ConfigInput));

const history = [
  { role: "assistant" as const, content: "Hi, thanks for calling Northwind.", timestamp: "2026-11-23T10:00:01.300Z", interrupted: false },
  { role: "user" as const, content: "Where is my order 1234?", timestamp: "2026-11-23T10:00:04.000Z" },
  { role: "tool" as const, name: "lookup_order", content: '{"status":"shipped"}' },
  { role: "assistant" as const, content: "It shipped yesterday.", interrupted: true },
];

const call: CallOutcome = {
  callId: "7f2d",
  callType: "freeswitch",
  direction: "inbound",
  caller: "+15551230000",
  callee: "200",
  playbook: "support.md",
  scenes: ["default"],
  lastScene: "default",
  startedAt: "2026-11-23T10:00:00.000Z",
  answeredAt: "2026-11-23T10:00:01.200Z",
  endedAt: "2026-11-23T10:03:12.900Z",
  hangupReason: "agent",
  hangupInitiator: "agent",
  hangupDetail: null,
  history,
  variables: { customer_name: "Ada" },
  collected: {},
  transfers: [],
  recording: null,
  metrics: { turns: 2 },
};

describe("summariseCall", () => {
  it("sends the conversation then the kind's instruction, and parses a json summary (even in a code fence)", async () => {
    sim.chat.push({ text: '```json\n{"intent":"order status","keyPoints":["shipped"],"sentiment":"positive","resolved":true,"followUp":null}\n```' });
    const r = await summariseCall(await llm(), { kind: "json", history });
    expect(r).toEqual({ summary: { intent: "order status", keyPoints: ["shipped"], sentiment: "positive", resolved: true, followUp: null }, summaryError: null });
    const messages = sim.requests[0]?.body.messages as { role: string; content: string }[];
    expect(messages.at(-1)).toEqual({ role: "user", content: SUMMARY_INSTRUCTIONS.json });
    expect(messages[1]?.content).toContain("Caller: Where is my order 1234?");
    expect(messages[1]?.content).toContain("Agent: It shipped yesterday. [interrupted]");
    expect(messages[1]?.content).toContain('Tool lookup_order: {"status":"shipped"}');
  });

  it("keeps text for the other kinds and a custom prompt, and json that does not parse as a string", async () => {
    sim.chat.push({ text: "The caller asked where order 1234 is; it shipped." });
    expect(await summariseCall(await llm(), { kind: "short", history })).toEqual({ summary: "The caller asked where order 1234 is; it shipped.", summaryError: null });
    sim.chat.push({ text: "Order 1234" });
    expect((await summariseCall(await llm(), { kind: "Name the order number only.", history })).summary).toBe("Order 1234");
    expect((sim.requests.at(-1)?.body.messages as { content: string }[]).at(-1)?.content).toBe("Name the order number only.");
    sim.chat.push({ text: "not json at all" });
    expect(await summariseCall(await llm(), { kind: "json", history })).toEqual({ summary: "not json at all", summaryError: null });
  });

  it("reports a failed summary instead of throwing", async () => {
    sim.chat.push({ fault: "status", status: 400, body: { error: { message: "bad" } } });
    const r = await summariseCall(await llm(), { kind: "short", history });
    expect(r.summary).toBeNull();
    expect(r.summaryError).toMatch(/^summary failed: /);
  });
});

describe("buildHook", () => {
  it("builds the §6 payload, leaving history and variables out when asked", () => {
    const hook = buildHook(call, { url: "https://crm.example.com/h", method: "POST", headers: {}, timeoutMs: 5000, summary: "json", includeHistory: false, includeVariables: true }, new Date("2026-11-23T10:03:13.400Z"));
    expect(hook.payload).toMatchObject({ event: "call.ended", callId: "7f2d", sessionId: "7f2d", durationMs: 191700, summaryKind: "json", summary: null, variables: { customer_name: "Ada" }, timestamp: "2026-11-23T10:03:13.400Z" });
    expect(hook.payload).not.toHaveProperty("history");
    expect(hook.pendingSummary).toEqual({ kind: "json", model: undefined, history });
    const plain = buildHook(call, { url: "u", method: "PUT", headers: {}, timeoutMs: 1, includeHistory: true, includeVariables: false });
    expect(plain.pendingSummary).toBeUndefined();
    expect(plain.payload).toMatchObject({ summaryKind: null, history });
    expect(plain.payload).not.toHaveProperty("variables");
  });
});

describe("summary + delivery", () => {
  let receiver: HttpReceiver;
  const bodies = (): Record<string, unknown>[] => receiver.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  beforeAll(async () => {
    receiver = await startHttpReceiver(() => ({ status: 204 }));
  });
  afterAll(() => receiver.close());

  it("delivers the hook with the summary the LLM made", async () => {
    sim.chat.push({ text: "Order 1234 has shipped." });
    const delivery = new PosthookDelivery({
      spoolRoot: await mkdtemp(join(tmpdir(), "ac-sum-")),
      secret: "",
      retries: 0,
      backoffInitialMs: 10,
      backoffMaxMs: 10,
      concurrency: 1,
      userAgent: "active-call/test",
      log: createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, d) => d() }) }),
      summarise: makeSummariser(() => llm()),
    });
    await delivery.start();
    const url = `${receiver.origin}/`;
    await delivery.submit(buildHook(call, { url, method: "POST", headers: {}, timeoutMs: 2000, summary: "short", includeHistory: true, includeVariables: true }));
    await delivery.idle();
    await delivery.stop();
    expect(bodies().at(-1)).toMatchObject({ summaryKind: "short", summary: "Order 1234 has shipped.", summaryError: null, callId: "7f2d" });
  });
});
