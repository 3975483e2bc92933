/**
 * Post-call hooks survive `kill -9`: a hook is spooled (fsynced) before its call is reported ended, and a
 * controller killed while deliveries are in flight delivers them after a restart. Delivery is at least once: a
 * hook may arrive twice, always with the same `X-Active-Call-Delivery` id, and none is lost.
 * The binary part needs `npm run build` first (npm test does it).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CallClient } from "../src/client/index.js";
import { configSchema } from "../src/config.js";
import { CallManager } from "../src/call/manager.js";
import { conversationFactory } from "../src/call/conversation-factory.js";
import type { WireEvent } from "../src/call/session.js";
import { createLogger } from "../src/log.js";
import { realClock } from "../src/media/clock.js";
import { MemoryLeg } from "../src/media/memory-leg.js";
import { PosthookDelivery } from "../src/playbook/posthook/delivery.js";
import { PlaybookStore } from "../src/playbook/store.js";
import { BIN, startController, tmp, within, writeConf } from "./controller-process.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const quietLog = () => createLogger({ level: "error", format: "json", redactPersonal: true, secrets: [], tty: false, noColor: true, destination: { write: () => true } });

describe("a call is reported ended only once its hook is on disk", () => {
  it("the hangup event, the ended state and `ended` come after the spool write has completed", async () => {
    const dir = tmp("ac-hook-order-");
    dirs.push(dir);
    const config = configSchema.parse({
      calls: { dump_events: false },
      posthook: { url: "http://127.0.0.1:9/hook" },
      paths: { playbooks: dir, sounds: dir, dumps: dir, recordings: dir, cache: dir, spool: dir },
      defaults: { tts: { provider: "scripted" }, asr: { provider: "scripted" }, llm: { provider: "scripted" } },
    });
    const log = quietLog();
    // A real spool (its write is slow on purpose): when does the session see it as done?
    const delivery = new PosthookDelivery({ spoolRoot: dir, secret: "", retries: 0, backoffInitialMs: 10, backoffMaxMs: 10, concurrency: 1, userAgent: "t", log });
    await delivery.start();
    const timeline: string[] = [];
    let stateAtSubmit = "";
    const posthooks = {
      submit: async (hook: Parameters<PosthookDelivery["submit"]>[0]) => {
        stateAtSubmit = call.state;
        timeline.push("submit");
        await new Promise((r) => setTimeout(r, 100));
        const id = await delivery.submit(hook);
        timeline.push(`spooled ${readdirSync(join(dir, "posthook")).filter((n) => n.endsWith(".json")).length}`);
        return id;
      },
    };
    const playbooks = new PlaybookStore({ dir, soundsDir: dir, env: {}, config });
    const calls = new CallManager({ config, log, playbooks, conversations: conversationFactory(config), posthooks });
    const leg = new MemoryLeg({ id: "s1", clock: realClock });
    const call = calls.create({ id: "s1", callType: "websocket", direction: "inbound", legFactory: () => ({ leg, media: { leg: "memory", codec: "pcm", sampleRate: 16000 } }) });
    call.subscribe((e: WireEvent) => {
      if (e.event === "hangup") timeline.push(`hangup event (state ${call.state})`);
    });
    void call.ended.then(() => timeline.push("ended"));
    await call.command({ command: "invite" });
    call.hangup({ reason: "client", initiator: "client" });
    await call.ended;
    expect(stateAtSubmit).toBe("ending");
    expect(timeline).toEqual(["submit", "spooled 1", "hangup event (state ending)", "ended"]);
    expect(call.state).toBe("ended");
    await delivery.stop();
  });
});

interface Hit {
  id: string;
  attempt: number;
  callId: string;
  bodyDeliveryId: string;
}

/** A hook receiver on loopback: `hold` keeps requests open (never answered); otherwise 200 at once. */
async function startReceiver() {
  const hits: Hit[] = [];
  const held: ServerResponse[] = [];
  const state = { hold: true };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const h: IncomingHttpHeaders = req.headers;
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { callId: string; deliveryId: string };
      hits.push({ id: String(h["x-active-call-delivery"]), attempt: Number(h["x-active-call-attempt"]), callId: body.callId, bodyDeliveryId: body.deliveryId });
      if (state.hold) held.push(res);
      else res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    state,
    close: () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const until = async (what: string, ok: () => boolean, timeoutMs: number, detail: () => string = () => "") => {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; ${detail()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe("kill -9 while post-call hooks are being delivered", () => {
  it("after a restart on the same spool the receiver has every call's hook, once per delivery id", async () => {
    const receiver = await startReceiver();
    const dir = tmp("ac-hook-crash-");
    dirs.push(dir);
    const playbooks = join(dir, "playbooks");
    mkdirSync(playbooks);
    writeFileSync(
      join(playbooks, "hook.md"),
      `---\ngreeting: false\nasr:\n  provider: scripted\ntts:\n  provider: scripted\nllm:\n  provider: scripted\n` +
        `posthook:\n  url: "${receiver.origin}/hook"\n  timeoutMs: 30000\n---\n# Scene: main\nHi\n`,
    );
    // Two parallel deliveries: with six calls, two are in flight (held by the receiver) and four wait their turn.
    const conf = writeConf(dir, "[posthook]\nconcurrency = 2\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n", playbooks);
    const args = [BIN, "--conf", conf, "--http", "127.0.0.1:0", "--log-format", "json"];
    const spooled = () => readdirSync(join(dir, "spool/posthook")).filter((n) => n.endsWith(".json"));
    try {
      const first = await startController(process.execPath, args, { cwd: dir });
      const callIds: string[] = [];
      for (let i = 0; i < 6; i++) {
        const client = await CallClient.connect(`ws://${first.listening.addr}`);
        client.invite({ playbook: "hook.md" });
        const answer = await client.waitFor("answer");
        callIds.push(answer.trackId);
        client.hangup();
        await client.waitFor("hangup");
        // Reported ended, so its hook is on disk already (kill -9 from here on loses nothing); none was delivered.
        expect(spooled()).toHaveLength(i + 1);
      }
      await until("two deliveries in flight", () => receiver.hits.length >= 2, 5000);
      expect(spooled()).toHaveLength(6);
      first.child.kill("SIGKILL");
      expect(await first.exited).toBe("SIGKILL");
      const beforeRestart = receiver.hits.length;
      expect(beforeRestart).toBe(2); // the held ones; none was answered

      receiver.state.hold = false;
      const second = await startController(process.execPath, args, { cwd: dir });
      const ids = () => new Set(receiver.hits.map((h) => h.id));
      await until("every hook delivered", () => ids().size >= 6 && spooled().length === 0, 10_000, () => JSON.stringify(receiver.hits));
      second.child.kill("SIGTERM");
      expect(await within(second.exited, 5000, "still running")).toBe(0);

      // Dedupe by delivery id: one id per call, one call per id, and every id's copies agree.
      const byId = new Map<string, Hit[]>();
      for (const h of receiver.hits) byId.set(h.id, [...(byId.get(h.id) ?? []), h]);
      expect(byId.size).toBe(6);
      for (const [id, copies] of byId) {
        expect(new Set(copies.map((c) => c.callId)).size, id).toBe(1);
        expect(copies.every((c) => c.bodyDeliveryId === id)).toBe(true);
      }
      const callOf = [...byId.values()].map((copies) => copies[0]?.callId);
      expect(new Set(callOf).size).toBe(6);
      expect([...callOf].sort()).toEqual([...callIds].sort());
      // The two held at the kill came again (at least once), as a later attempt under the same id.
      const repeated = [...byId.values()].filter((copies) => copies.length > 1);
      expect(repeated).toHaveLength(2);
      for (const copies of repeated) expect(copies.map((c) => c.attempt)).toEqual([1, 2]);
    } finally {
      await receiver.close();
    }
  }, 40_000);
});
