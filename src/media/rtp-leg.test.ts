import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import { describe, expect, it } from "vitest";
import { collectCallerAudio, signal } from "../../test/pcm.js";
import { RtpMediaPeer } from "../../test/sim/asterisk/media-peers.js";
import { sleep, until, useCleanups } from "../../test/wait.js";
import { aLawDecode, aLawEncode, muLawDecode, muLawEncode } from "../audio/index.js";
import { AppError } from "../errors.js";
import type { RtpFormat } from "./rtp-leg.js";
import { RtpLeg } from "./rtp-leg.js";
import { RtpPortPool } from "./rtp-port-pool.js";

const RATES: Record<RtpFormat, number> = { ulaw: 8000, alaw: 8000, slin16: 16000, slin: 8000 };

/** What a signal looks like after the format's wire round trip. */
function throughWire(format: RtpFormat, pcm: Int16Array): Int16Array {
  if (format === "ulaw") return muLawDecode(muLawEncode(pcm));
  if (format === "alaw") return aLawDecode(aLawEncode(pcm));
  return pcm;
}

function portBase(): number {
  return 20000 + 2 * randomInt(0, 15000);
}

function pool(pairs: number): RtpPortPool {
  const base = portBase();
  return new RtpPortPool(base, base + 2 * pairs - 1);
}

const cleanup = useCleanups();

async function setup(format: RtpFormat, gapFill = false, payloadType?: number) {
  const ports = pool(20);
  const leg = await RtpLeg.open({ id: "rtp-test", format, bindIp: "127.0.0.1", ports, leadMs: 40, callerGapFill: gapFill ? { jitterMs: 150, aheadMs: 150 } : false }); // generous: a loaded CI box stalls
  cleanup(() => leg.close());
  const peer = await RtpMediaPeer.create(
    { channelId: "m", app: "a", format, transport: "udp", encapsulation: "rtp", externalHost: `127.0.0.1:${leg.localPort}` },
    { payloadType },
  );
  cleanup(() => peer.close());
  leg.setRemote(peer.channelvars.UNICASTRTP_LOCAL_ADDRESS as string, Number(peer.channelvars.UNICASTRTP_LOCAL_PORT));
  const callerPcm = collectCallerAudio(leg);
  return { ports, leg, peer, callerPcm };
}

describe("RtpLeg", () => {
  for (const format of ["ulaw", "alaw", "slin16", "slin"] as const) {
    it(`round-trips caller and agent audio exactly in ${format}`, async () => {
      const rate = RATES[format];
      const { leg, peer, callerPcm } = await setup(format);
      expect(leg.callerRate).toBe(rate);
      expect(leg.agentRate).toBe(rate);
      expect(leg.localPort % 2).toBe(0);

      // caller: Asterisk's packetisation (30 ms ulaw/alaw, 20 ms L16), big-endian L16
      const caller = signal(rate / 5); // 200 ms
      await peer.sendCaller(caller, rate);
      await until("caller audio", () => callerPcm().length >= caller.length, 5000, 5);
      expect(Array.from(callerPcm().subarray(0, caller.length))).toEqual(Array.from(throughWire(format, caller)));

      // agent: 20 ms packets, recorded header fields
      const agent = signal(rate / 10, 7); // 100 ms = 5 packets
      leg.write("u1", agent);
      leg.endPlay("u1");
      await until("agent packets", () => peer.agentPackets.length >= 5, 5000, 5);
      const pk = peer.agentPackets;
      if (format === "slin16") {
        // PT 118 has no static mapping and a UnicastRTP channel no receive map: Asterisk drops it (fact 4).
        expect(pk.map((p) => p.dropped)).toEqual(Array(5).fill("unknownPayloadType"));
        expect(peer.agentAudio().pcm.length).toBe(0);
      } else {
        await until("agent audio", () => peer.agentAudio().pcm.length >= agent.length, 5000, 5);
        expect(Array.from(peer.agentAudio().pcm)).toEqual(Array.from(throughWire(format, agent)));
      }
      expect(pk).toHaveLength(5);
      expect(pk.map((p) => p.payloadType)).toEqual(Array(5).fill({ ulaw: 0, alaw: 8, slin16: 118, slin: 11 }[format]));
      expect(pk.map((p) => p.marker)).toEqual([true, false, false, false, false]);
      expect(pk.map((p) => p.payloadLength)).toEqual(Array(5).fill((rate / 50) * (format === "ulaw" || format === "alaw" ? 1 : 2)));
      for (let i = 1; i < pk.length; i++) {
        expect(pk[i]?.seq).toBe(((pk[i - 1]?.seq as number) + 1) & 0xffff);
        expect(pk[i]?.timestamp).toBe(((pk[i - 1]?.timestamp as number) + rate / 50) >>> 0);
        expect(pk[i]?.ssrc).toBe(pk[0]?.ssrc);
      }
      // sent from the socket external_host names (strict RTP on Asterisk's side learns it)
      expect(pk[0]?.from).toBe(`127.0.0.1:${leg.localPort}`);
      expect(peer.stats.packetsFromUnknownSource ?? 0).toBe(0);
    });
  }

  it("marks the first packet of each talk spurt and advances the timestamp across the pause", async () => {
    const { leg, peer } = await setup("ulaw");
    leg.write("a", signal(160));
    leg.endPlay("a");
    await until("first spurt", () => peer.agentPackets.length >= 1, 5000, 5);
    await sleep(100);
    leg.write("b", signal(320));
    leg.endPlay("b");
    await until("second spurt", () => peer.agentPackets.length >= 3, 5000, 5);
    const [a, b1, b2] = peer.agentPackets;
    expect([a?.marker, b1?.marker, b2?.marker]).toEqual([true, true, false]);
    expect(b1?.seq).toBe(((a?.seq as number) + 1) & 0xffff);
    // the timestamp jumps by the silence, not by one packet
    expect(((b1?.timestamp as number) - (a?.timestamp as number)) >>> 0).toBeGreaterThan(160);
  });

  it("decodes slin by format whatever the PT, and answers with the PT Asterisk uses (10)", async () => {
    const { leg, peer, callerPcm } = await setup("slin", false, 10);
    const caller = signal(800);
    await peer.sendCaller(caller, 8000);
    await until("caller audio", () => callerPcm().length >= caller.length, 5000, 5);
    expect(Array.from(callerPcm().subarray(0, caller.length))).toEqual(Array.from(caller));
    leg.write("u", signal(160));
    leg.endPlay("u");
    await until("agent packet", () => peer.agentPackets.length === 1, 5000, 5);
    expect(peer.agentPackets[0]?.payloadType).toBe(10);
    expect(peer.stats.payloadTypeMismatch ?? 0).toBe(0);
  });

  it("puts reordered packets back in sequence and drops duplicates", async () => {
    const { leg, peer, callerPcm } = await setup("slin16");
    const caller = signal(16000 / 5); // 10 packets of 20 ms
    const packets = peer.buildCallerPackets(caller, 16000, 20);
    const order = [0, 1, 3, 2, 4, 4, 6, 5, 7, 1, 8, 9];
    await peer.sendPackets(order.map((i) => packets[i] as Buffer), 2);
    await until("caller audio", () => callerPcm().length >= caller.length, 5000, 5);
    await sleep(100);
    expect(Array.from(callerPcm())).toEqual(Array.from(caller));
    expect(leg.stats.reordered).toBe(2);
    expect(leg.stats.duplicates + leg.stats.latePackets).toBe(2);
  });

  it("gives up on a packet that never comes", async () => {
    const { leg, peer, callerPcm } = await setup("slin16");
    const caller = signal(16000 / 10); // 5 packets
    const packets = peer.buildCallerPackets(caller, 16000, 20);
    await peer.sendPackets([0, 1, 3, 4].map((i) => packets[i] as Buffer), 2);
    await until("caller audio", () => callerPcm().length >= 4 * 320, 5000, 5);
    const expected = new Int16Array(4 * 320);
    expected.set(caller.subarray(0, 640));
    expected.set(caller.subarray(960), 640);
    expect(Array.from(callerPcm())).toEqual(Array.from(expected));
    expect(leg.stats.lostPackets).toBe(1);
  });

  it("accepts caller RTP only from the remote", async () => {
    const { leg, peer, callerPcm } = await setup("slin16");
    const [p] = peer.buildCallerPackets(signal(320), 16000, 20);
    await peer.sendFromStranger(p as Buffer);
    await until("stranger packet", () => leg.stats.packetsFromUnknownSource === 1, 5000, 5);
    expect(callerPcm()).toHaveLength(0);
  });

  it("drops agent audio before setRemote", async () => {
    const ports = pool(5);
    const leg = await RtpLeg.open({ id: "r", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    cleanup(() => leg.close());
    leg.write("x", signal(320));
    leg.endPlay("x");
    await until("dropped frames", () => leg.stats.droppedBeforeRemote === 2, 5000, 5);
    expect(leg.stats.packetsOut).toBe(0);
  });

  it("keeps the caller stream going with silence while Asterisk sends nothing", async () => {
    const { leg, peer, callerPcm } = await setup("slin16", true);
    const first = signal(16000 / 10, 3); // 100 ms
    await peer.sendCaller(first, 16000);
    await until("caller audio", () => callerPcm().some((s) => s !== 0), 5000, 5);
    const before = leg.callerMs;
    // nothing on the wire for a while: the stream must keep moving, as silence
    await sleep(400);
    const during = leg.callerMs - before;
    expect(during).toBeGreaterThanOrEqual(200);
    expect(leg.callerGapStats?.filledMs).toBeGreaterThan(0);
    const pcm = callerPcm();
    const lastLoud = pcm.findLastIndex((s) => s !== 0);
    expect(pcm.length - 1 - lastLoud).toBeGreaterThanOrEqual(16000 / 5);
    // and speech that comes back is delivered, not double-counted
    const second = signal(16000 / 10, 9);
    await peer.sendCaller(second, 16000);
    await until("second burst", () => leg.callerGapStats !== undefined && callerPcm().length > pcm.length + second.length / 2, 5000, 5);
    await sleep(100);
    const all = callerPcm();
    const start = all.findIndex((s, i) => i > lastLoud && s !== 0);
    expect(Array.from(all.subarray(start, start + 1000))).toEqual(Array.from(second.subarray(0, 1000)));
  });

  it("emits pbx DTMF from pushDtmf", () => {
    return (async () => {
      const { leg } = await setup("ulaw");
      const seen: unknown[] = [];
      leg.events.on("dtmf", (e) => seen.push(e));
      leg.pushDtmf("5", 120);
      expect(seen).toEqual([{ digit: "5", durationMs: 120, source: "pbx", atMs: expect.any(Number) as number }]);
    })();
  });

  it("closes: reason local, port back to the pool", async () => {
    const ports = pool(5);
    const leg = await RtpLeg.open({ id: "r", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    const closes: unknown[] = [];
    leg.events.on("close", (e) => closes.push(e));
    expect(ports.inUse).toBe(1);
    await leg.close();
    await leg.close();
    expect(closes).toEqual([{ reason: "local" }]);
    expect(ports.inUse).toBe(0);
  });
});

describe("RtpPortPool", () => {
  it("hands out even ports, reuses released ones, and throws CAPACITY when exhausted", async () => {
    const base = portBase();
    const ports = new RtpPortPool(base, base + 3); // pairs (base, base+1), (base+2, base+3)
    expect(ports.size).toBe(2);
    const a = await RtpLeg.open({ id: "a", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    const b = await RtpLeg.open({ id: "b", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    expect([a.localPort, b.localPort].sort()).toEqual([base, base + 2]);
    const err = await RtpLeg.open({ id: "c", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("CAPACITY");
    await a.close();
    const c = await RtpLeg.open({ id: "c", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    expect(c.localPort).toBe(a.localPort);
    await b.close();
    await c.close();
    expect(ports.inUse).toBe(0);
  });

  it("skips ports another process holds", async () => {
    const base = portBase();
    const squatter = createSocket("udp4");
    await new Promise<void>((r) => squatter.bind(base + 1, "127.0.0.1", () => r())); // the RTCP half of the first pair
    cleanup(() => squatter.close());
    const ports = new RtpPortPool(base, base + 5);
    const leg = await RtpLeg.open({ id: "a", format: "ulaw", bindIp: "127.0.0.1", ports, leadMs: 40 });
    cleanup(() => leg.close());
    expect(leg.localPort).toBe(base + 2);
    expect(ports.inUse).toBe(1);
  });

  it("rejects a range without a pair", () => {
    expect(() => new RtpPortPool(10001, 10001)).toThrow(RangeError);
  });
});
