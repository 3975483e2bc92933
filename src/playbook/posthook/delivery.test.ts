import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../log.js";
import { verifySignature } from "../../util/hmac.js";
import { PosthookDelivery, type DeliveryOptions } from "./delivery.js";
import { HookSpool } from "./spool.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

/** A real HTTP receiver answering with the given statuses in turn (the last one repeats). */
async function receiver(statuses: number[], extraHeaders: Record<string, string> = {}) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)] as number;
      res.writeHead(status, extraHeaders).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  servers.push(server);
  return { url, received };
}

const servers: Server[] = [];
const deliveries: PosthookDelivery[] = [];
afterEach(async () => {
  for (const d of deliveries.splice(0)) await d.stop();
  for (const s of servers.splice(0)) s.close();
});

const quiet = createLogger({ level: "error", format: "json", redactPersonal: true, destination: new Writable({ write: (_c, _e, done) => done() }) });

async function delivery(overrides: Partial<DeliveryOptions> = {}) {
  const spoolRoot = await mkdtemp(join(tmpdir(), "ac-spool-"));
  const outcomes: string[] = [];
  const d = new PosthookDelivery({
    spoolRoot,
    secret: "hook-secret",
    retries: 3,
    backoffInitialMs: 10,
    backoffMaxMs: 100,
    concurrency: 2,
    userAgent: "active-call/test",
    log: quiet,
    onOutcome: (o) => outcomes.push(o),
    random: () => 0.5,
    ...overrides,
  });
  deliveries.push(d);
  await d.start();
  return { d, spoolRoot, outcomes };
}

const hook = (url: string) => ({ url, method: "POST" as const, headers: { "X-Custom": "1" }, timeoutMs: 2000, payload: { event: "call.ended", callId: "c1", summary: null } });

describe("posthook delivery", () => {
  it("retries a failing receiver with the same delivery id, signed, until it accepts", async () => {
    const r = await receiver([500, 503, 200]);
    const { d, spoolRoot, outcomes } = await delivery();
    const id = await d.submit(hook(r.url));
    await d.idle();
    expect(r.received).toHaveLength(3);
    expect(r.received.map((x) => x.headers["x-active-call-attempt"])).toEqual(["1", "2", "3"]);
    for (const x of r.received) {
      expect(x.headers["x-active-call-delivery"]).toBe(id);
      expect(x.headers["x-active-call-event"]).toBe("call.ended");
      expect(x.headers["user-agent"]).toBe("active-call/test");
      expect(x.headers["content-type"]).toBe("application/json");
      expect(x.headers["x-custom"]).toBe("1");
      expect(verifySignature("hook-secret", x.body, x.headers["x-signature"] as string)).toBe(true);
      expect(JSON.parse(x.body)).toMatchObject({ event: "call.ended", callId: "c1", deliveryId: id });
    }
    expect(outcomes).toEqual(["retry", "retry", "ok"]);
    expect(await readdir(join(spoolRoot, "posthook"))).toEqual(["failed"]);
    expect(d.pending).toBe(0);
  });

  it("writes the hook to the spool before the first attempt", async () => {
    let seenOnDisk: string[] = [];
    const { d, spoolRoot } = await delivery();
    const server = createServer(async (_req, res) => {
      seenOnDisk = await readdir(join(spoolRoot, "posthook"));
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    servers.push(server);
    const id = await d.submit(hook(`http://127.0.0.1:${(server.address() as { port: number }).port}/`));
    await d.idle();
    expect(seenOnDisk).toContain(`${id}.json`);
  });

  it("does not retry a 4xx other than 408/429: the hook moves to failed/", async () => {
    const r = await receiver([404]);
    const { d, spoolRoot, outcomes } = await delivery();
    const id = await d.submit(hook(r.url));
    await d.idle();
    expect(r.received).toHaveLength(1);
    expect(outcomes).toEqual(["failed"]);
    expect(await readdir(join(spoolRoot, "posthook", "failed"))).toEqual([`${id}.json`]);
  });

  it("retries 429 and 408, gives up after the configured retries, and keeps the hook in failed/", async () => {
    const r = await receiver([429, 408, 500]);
    const { d, spoolRoot, outcomes } = await delivery({ retries: 2 });
    const id = await d.submit(hook(r.url));
    await d.idle();
    expect(r.received).toHaveLength(3);
    expect(outcomes).toEqual(["retry", "retry", "failed"]);
    const failed = JSON.parse(await readFile(join(spoolRoot, "posthook", "failed", `${id}.json`), "utf8")) as { attempts: number };
    expect(failed.attempts).toBe(3);
  });

  it("retries when nothing listens (connection refused)", async () => {
    const { d, outcomes } = await delivery({ retries: 1 });
    await d.submit(hook("http://127.0.0.1:9/unreachable"));
    await d.idle();
    expect(outcomes).toEqual(["retry", "failed"]);
  });

  it("resumes what a previous run left in the spool, summarising a pending summary first", async () => {
    const r = await receiver([200]);
    const spoolRoot = await mkdtemp(join(tmpdir(), "ac-spool-"));
    const spool = new HookSpool(spoolRoot);
    await spool.init();
    await spool.write({ ...hook(r.url), deliveryId: "left-over-1", attempts: 2, createdAt: "2026-11-23T10:00:00.000Z", pendingSummary: { kind: "short" } });
    const summarised: string[] = [];
    const { d } = await (async () => {
      const dd = new PosthookDelivery({
        spoolRoot,
        secret: "",
        retries: 3,
        backoffInitialMs: 10,
        backoffMaxMs: 100,
        concurrency: 1,
        userAgent: "active-call/test",
        log: quiet,
        summarise: async (e) => {
          summarised.push(e.deliveryId);
          return { summary: "The caller asked about an order.", summaryError: null };
        },
      });
      deliveries.push(dd);
      await dd.start();
      return { d: dd };
    })();
    await d.idle();
    expect(summarised).toEqual(["left-over-1"]);
    expect(r.received).toHaveLength(1);
    expect(r.received[0]?.headers["x-active-call-attempt"]).toBe("3");
    expect(r.received[0]?.headers["x-signature"]).toBeUndefined();
    expect(JSON.parse(r.received[0]?.body ?? "{}")).toMatchObject({ summary: "The caller asked about an order.", summaryError: null });
  });

  it("moves an unreadable spool file to failed/ instead of crashing", async () => {
    const spoolRoot = await mkdtemp(join(tmpdir(), "ac-spool-"));
    const spool = new HookSpool(spoolRoot);
    await spool.init();
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(spoolRoot, "posthook", "broken.json"), "{not json");
    const { d } = await delivery({ spoolRoot });
    await d.idle();
    expect(await readdir(join(spoolRoot, "posthook", "failed"))).toEqual(["broken.json"]);
  });

  it("never has more attempts in flight than the concurrency", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const server = createServer((_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end();
      }, 20);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const { d } = await delivery({ concurrency: 2 });
    await Promise.all(Array.from({ length: 6 }, () => d.submit(hook(url))));
    await d.idle();
    expect(maxInFlight).toBe(2);
  });

  it("rejects delivery ids that could leave the spool folder", async () => {
    const { d } = await delivery();
    await expect(d.submit({ ...hook("http://127.0.0.1:9/"), deliveryId: "../escape" })).rejects.toThrow(/invalid delivery id/);
  });
});
