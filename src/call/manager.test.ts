import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../config.js";
import { isAppError } from "../errors.js";
import { createLogger } from "../log.js";
import { MemoryLeg } from "../media/memory-leg.js";
import { realClock } from "../media/clock.js";
import { PlaybookStore } from "../playbook/store.js";
import { conversationFactory } from "./conversation-factory.js";
import { CallManager } from "./manager.js";
import type { WireEvent } from "./session.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function manager(calls: Record<string, unknown> = {}, now?: () => number): CallManager {
  const dir = mkdtempSync(join(tmpdir(), "calls-"));
  dirs.push(dir);
  const config = configSchema.parse({
    calls: { dump_events: false, ...calls },
    paths: { playbooks: dir, sounds: dir, dumps: dir, recordings: dir, cache: dir, spool: dir },
    defaults: { tts: { provider: "scripted" }, asr: { provider: "scripted" }, llm: { provider: "scripted" } },
  });
  const log = createLogger({ level: "error", format: "json", redactPersonal: true, secrets: [], tty: false, noColor: true, destination: { write: () => true } });
  const playbooks = new PlaybookStore({ dir, soundsDir: dir, env: {}, config });
  return new CallManager({ config, log, playbooks, conversations: conversationFactory(config), ...(now ? { now } : {}) });
}

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return isAppError(err) ? err.code : "not an AppError";
  }
  return undefined;
};

describe("CallManager", () => {
  it("refuses a live id, a bad id, and calls beyond max_concurrent", async () => {
    const m = manager({ max_concurrent: 2 });
    const a = m.create({ id: "a", callType: "websocket", direction: "inbound" });
    expect(code(() => m.create({ id: "a", callType: "websocket", direction: "inbound" }))).toBe("ALREADY_ATTACHED");
    expect(code(() => m.create({ id: "bad id", callType: "websocket", direction: "inbound" }))).toBe("BAD_REQUEST");
    m.create({ id: "b", callType: "websocket", direction: "inbound" });
    expect(code(() => m.create({ id: "c", callType: "websocket", direction: "inbound" }))).toBe("CAPACITY");
    a.hangup({ reason: "client", initiator: "client" });
    await a.ended;
    // The ended call frees its place, and its id can be reused.
    expect(m.create({ id: "a", callType: "websocket", direction: "inbound" }).id).toBe("a");
    expect(m.liveCount).toBe(2);
  });

  it("keeps only ended_retention ended calls, newest first", async () => {
    const m = manager({ ended_retention: 2 });
    for (const id of ["x1", "x2", "x3"]) {
      const c = m.create({ id, callType: "websocket", direction: "inbound" });
      c.hangup({ reason: "client", initiator: "client" });
      await c.ended;
    }
    expect(m.list("ended", 10).map((c) => c.id)).toEqual(["x3", "x2"]);
    expect(m.get("x1")).toBeUndefined();
    expect(m.get("x2")?.hangupInfo).toEqual({ reason: "client", initiator: "client" });
    expect(m.list("ended", 1).map((c) => c.id)).toEqual(["x3"]);
  });

  it("a pending playbook run is taken once, and not after its TTL", async () => {
    let now = 1_000_000;
    const m = manager({ pending_playbook_ttl_ms: 1000 }, () => now);
    const pb = await m.deps.playbooks.parseContent("---\ngreeting: false\n---\nHi\n");
    const run = m.addPending(pb, { a: 1 });
    expect(run.id).toMatch(/^s\.[0-9a-f-]{36}$/);
    expect(m.takePending(run.id)?.variables).toEqual({ a: 1 });
    expect(m.takePending(run.id)).toBeUndefined();
    const late = m.addPending(pb, {});
    now += 1001;
    expect(m.takePending(late.id)).toBeUndefined();
  });

  it("drain refuses new calls and waits for live ones to end by themselves, at most the grace", async () => {
    const m = manager();
    const leg = new MemoryLeg({ id: "s1", clock: realClock });
    const call = m.create({ id: "s1", callType: "websocket", direction: "inbound", legFactory: () => ({ leg, media: { leg: "memory", codec: "pcm", sampleRate: 16000 } }) });
    await call.command({ command: "invite" });
    let t0 = Date.now();
    await m.drain(150); // nobody ends it: the grace runs out and the call is still live
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(call.state).toBe("active");
    expect(code(() => m.create({ id: "s2", callType: "websocket", direction: "inbound" }))).toBe("CAPACITY");
    t0 = Date.now();
    setTimeout(() => call.hangup({ reason: "client", initiator: "client" }), 30);
    await m.drain(5000); // it ends by itself: drain resolves then, long before the grace
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(call.state).toBe("ended");
    t0 = Date.now();
    await m.drain(5000); // nothing live: at once
    expect(Date.now() - t0).toBeLessThan(50);
  });

  it("shutdown ends every live call with reason shutdown and refuses new ones", async () => {
    const m = manager();
    const leg = new MemoryLeg({ id: "s1", clock: realClock });
    const call = m.create({ id: "s1", callType: "websocket", direction: "inbound", legFactory: () => ({ leg, media: { leg: "memory", codec: "pcm", sampleRate: 16000 } }) });
    const events: WireEvent[] = [];
    call.subscribe((e) => events.push(e));
    await call.command({ command: "invite" });
    expect(call.state).toBe("active");
    await m.shutdown();
    expect(call.state).toBe("ended");
    expect(events.map((e) => e.event)).toEqual(["answer", "hangup"]);
    expect(events[1]).toMatchObject({ reason: "shutdown", initiator: "system" });
    expect(leg.closed).toBe(true);
    expect(code(() => m.create({ id: "s2", callType: "websocket", direction: "inbound" }))).toBe("CAPACITY");
  });
});
