import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { configSchema } from "../config.js";
import { createLogger } from "../log.js";
import { realClock } from "../media/clock.js";
import { MemoryLeg } from "../media/memory-leg.js";
import { PlaybookStore } from "../playbook/store.js";
import { conversationFactory } from "./conversation-factory.js";
import { admitInbound } from "./inbound.js";
import { CallManager } from "./manager.js";
import { InboundRouter, type IncomingCall } from "./router.js";
import type { WireEvent } from "./session.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const log = createLogger({ level: "error", format: "json", redactPersonal: true, secrets: [], tty: false, noColor: true, destination: { write: () => true } });

function setup(handler: Record<string, unknown>, calls: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "inbound-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "sales.md"), '---\ngreeting: "Sales, hello."\n---\nYou sell.\n');
  const config = configSchema.parse({
    handler,
    calls: { dump_events: false, ...calls },
    paths: { playbooks: dir, sounds: dir, dumps: dir, recordings: dir, cache: dir, spool: dir },
    defaults: { tts: { provider: "scripted" }, asr: { provider: "scripted" }, llm: { provider: "scripted" } },
  });
  const playbooks = new PlaybookStore({ dir, soundsDir: dir, env: {}, config });
  const manager = new CallManager({ config, log, playbooks, conversations: conversationFactory(config) });
  const router = new InboundRouter({ handler: config.handler, playbooks, log, userAgent: "test" });
  return { manager, router };
}

function incoming(callId: string, callee: string): IncomingCall {
  return { callId, callType: "freeswitch", direction: "inbound", caller: "+15550001111", callee, createdAt: new Date().toISOString(), headers: {}, variables: { source: "test" }, attachUrl: `/call/pbx?id=${callId}` };
}

function memoryLeg(id: string): { leg: MemoryLeg; legFactory: () => { leg: MemoryLeg; media: { leg: "memory"; codec: string; sampleRate: number } } } {
  const leg = new MemoryLeg({ id, clock: realClock });
  return { leg, legFactory: () => ({ leg, media: { leg: "memory", codec: "pcm", sampleRate: 16000 } }) };
}

describe("admitInbound", () => {
  it("a matching rule answers at once and runs its playbook on the leg", async () => {
    const { manager, router } = setup({ rules: [{ callee: "^2\\d\\d$", playbook: "sales.md", variables: { team: "sales" } }] });
    const { leg, legFactory } = memoryLeg("in-1");
    const { call, decision } = await admitInbound(manager, router, incoming("in-1", "200"), { legFactory });
    expect(decision.action).toBe("playbook");
    expect(call.state).toBe("active");
    expect(call.playbook?.name).toBe("sales.md");
    expect(call.variables).toMatchObject({ team: "sales", source: "test" });
    const events: WireEvent[] = [];
    call.subscribe((e) => events.push(e));
    await new Promise<void>((resolve) => call.subscribe((e) => e.event === "trackEnd" && resolve()));
    expect(events.map((e) => e.event)).toEqual(["trackStart", "trackEnd"]);
    expect(leg.captured.some((f) => f.pcm.some((s) => s !== 0))).toBe(true);
    call.hangup({ reason: "caller", initiator: "caller" });
    await call.ended;
  });

  it("no rule and no default: the call is recorded as rejected and never answered", async () => {
    const { manager, router } = setup({ rules: [{ callee: "^2\\d\\d$", playbook: "sales.md" }] });
    const { leg, legFactory } = memoryLeg("in-2");
    const { call, decision } = await admitInbound(manager, router, incoming("in-2", "999"), { legFactory });
    expect(decision).toMatchObject({ action: "reject", code: 503 });
    await call.ended;
    expect(call.hangupInfo).toMatchObject({ reason: "rejected", initiator: "system" });
    expect(call.answeredAt).toBeUndefined();
    expect(leg.captured).toHaveLength(0);
  });

  it("a webhook that says attach parks the call; unaccepted it ends with noAnswer, accepted it runs", async () => {
    const hook: Server = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    cleanups.push(() => hook.close());
    const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/incoming`;
    const { manager, router } = setup({ type: "webhook", url }, { accept_timeout_ms: 300 });

    const parked = await admitInbound(manager, router, incoming("in-3", "100"), memoryLeg("in-3"));
    expect(parked.decision.action).toBe("attach");
    expect(parked.call.state).toBe("pending");
    await parked.call.ended;
    expect(parked.call.hangupInfo).toMatchObject({ reason: "noAnswer", initiator: "system" });

    const accepted = await admitInbound(manager, router, incoming("in-4", "100"), memoryLeg("in-4"));
    await accepted.call.command({ command: "accept", option: { playbook: "sales.md" } });
    expect(accepted.call.state).toBe("active");
    await new Promise((r) => setTimeout(r, 400)); // past the accept timeout: an answered call is not ended by it
    expect(accepted.call.state).toBe("active");
    accepted.call.hangup({ reason: "client", initiator: "client" });
    await accepted.call.ended;
  });
});
