/**
 * What the three Asterisk media legs cost the controller: N concurrent full-duplex real-time calls on each leg
 * (RtpLeg over UDP, ChanWebsocketLeg, AudioSocketLeg over TCP; slin16, the production leads and caller gap fill).
 * Caller audio comes from the Asterisk-side peers of the tests (test/sim/asterisk/media-peers.ts) and is consumed
 * by iterating `leg.callerAudio`; agent audio is written like a TTS stream (`leg.write` of 20 ms chunks kept
 * ~100 ms ahead) and played by the peer.
 *
 * Three kinds of process: this one drives; one long-lived child holds every peer (Asterisk's side); a fresh child
 * per run holds only the legs (or the reference sockets) and measures itself: process.cpuUsage(), RSS, and
 * monitorEventLoopDelay (p99 lateness beyond the sampling interval). The reference, measured in the same run, is
 * the same sockets (RTP port pair, media WebSocket, AudioSocket TCP connection) doing a plain passthrough: caller
 * audio received and discarded, pre-encoded agent packets sent on a 20 ms timer per call.
 *
 * Figures per leg and N (median of ROUNDS runs, leg and reference alternating): CPU per call (% of one core), RSS
 * per call, event-loop lag p99, caller audio delivered by the leg vs sent by the peer (gap-fill silence not
 * counted), agent frames received by the peer vs written. One file for all roles (`--role`), so bench/run-all.ts
 * runs only the driver. No assertions.
 *
 *   node --import tsx bench/asterisk-media.ts [N ...] [--seconds S] [--rounds R] [--modes rtp,websocket,audiosocket] [--json]
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import type { Socket as UdpSocket } from "node:dgram";
import type { Socket as TcpSocket } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { WebSocket as WsClient } from "ws";
import type { AudioSocketConnection } from "../src/media/audiosocket-server.js";
import type { AudioSocketServer } from "../src/media/audiosocket-server.js";
import type { PacedLeg } from "../src/media/paced-leg.js";
import type { RtpLeg } from "../src/media/rtp-leg.js";
import type { RtpPortPool } from "../src/media/rtp-port-pool.js";
import type { AudioSocketMediaPeer, ChanWebsocketMediaPeer, RtpMediaPeer } from "../test/sim/asterisk/media-peers.js";

type Mode = "rtp" | "websocket" | "audiosocket";
type Kind = "leg" | "ref";

const MODES: readonly Mode[] = ["rtp", "websocket", "audiosocket"];
const RATE = 16000; // slin16, the configured default
const FRAME = 320; // 20 ms at 16 kHz
const AHEAD_MS = 100; // how far the "TTS" writes ahead of real time
const SETTLE_MS = 1000; // after the calls start, before the measured window
const TAIL_MS = 250; // the window ends this long before the calls do
const DRAIN_MS = 400; // after the caller audio ended, before the frames are counted
const LAG_RESOLUTION_MS = 10;
/** What each leg gets in production (src/pbx/asterisk/media.ts and the config defaults). */
const LEAD_MS: Record<Mode, number> = { rtp: 40, websocket: 200, audiosocket: 40 };
/** Caller packetisation of the peers (as recorded: 20 ms slin16 RTP, 30 ms chan_websocket, 20 ms AudioSocket). */
const CALLER_PACKET_MS: Record<Mode, number> = { rtp: 20, websocket: 30, audiosocket: 20 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function speechLike(samples: number): Int16Array {
  const freqs = [180, 360, 540, 900, 1300, 2100, 3100];
  return Int16Array.from({ length: samples }, (_, i) => {
    const t = i / RATE;
    const envelope = 0.2 + 0.8 * Math.abs(Math.sin(2 * Math.PI * 3 * t)); // never silent
    let v = 0;
    freqs.forEach((f, k) => (v += Math.sin(2 * Math.PI * f * t + k) / (k + 1)));
    return Math.round(8000 * envelope * v);
  });
}

// --- IPC: request/response over the fork channel ------------------------------------------------------------

interface Request {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}
interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

class Rpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<void>;
  /** The child listens (messages sent before that would be lost). */
  private readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let ready = (): void => {};
    let failed = (_e: Error): void => {};
    this.ready = new Promise((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    this.ready.catch(() => {}); // reported to whoever calls
    child.on("error", (err) => failed(err));
    child.on("message", (m: Reply | { ready: true }) => {
      if ("ready" in m) return ready();
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    this.exited = new Promise((resolve) =>
      child.on("exit", (code) => {
        failed(new Error(`child exited (${code}) before it was ready`));
        for (const p of this.pending.values()) p.reject(new Error(`child exited (${code}) with a request pending`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  async call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    await this.ready;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args } satisfies Request);
    });
  }
}

function spawnRole(role: "peers" | "legs"): Rpc {
  const child = fork(fileURLToPath(import.meta.url), ["--role", role], { execArgv: process.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Rpc(child);
}

type Handler = (args: Record<string, unknown>) => unknown;

function serve(handlers: Record<string, Handler>): void {
  process.on("message", (m: Request) => {
    void (async () => {
      try {
        const handler = handlers[m.cmd];
        if (!handler) throw new Error(`unknown command ${m.cmd}`);
        process.send?.({ id: m.id, result: (await handler(m.args)) ?? null } satisfies Reply);
      } catch (err) {
        process.send?.({ id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply);
      }
    })();
  });
  process.send?.({ ready: true });
}

// --- peers: Asterisk's side, one long-lived process -----------------------------------------------------------

type AnyPeer = RtpMediaPeer | ChanWebsocketMediaPeer | AudioSocketMediaPeer;

async function peersMain(): Promise<void> {
  const sim = await import("../test/sim/asterisk/media-peers.js");
  const wsServer = await sim.MediaWebSocketServer.start();
  let peers: AnyPeer[] = [];
  let mode: Mode = "rtp";
  const peerLoop = monitorEventLoopDelay({ resolution: 1 });
  let peerStartLagMaxMs = 0;
  const pcms = new Map<number, Int16Array>();
  const callerPcm = (seconds: number): Int16Array => {
    const pcm = pcms.get(seconds) ?? speechLike(RATE * seconds);
    pcms.set(seconds, pcm);
    return pcm;
  };
  const request = (i: number) => ({ channelId: `bench-${i}-m`, app: "active-call", format: "slin16" });
  serve({
    open: async (a) => {
      mode = a.mode as Mode;
      const n = a.n as number;
      callerPcm(a.seconds as number);
      if (mode === "rtp") {
        const ports = a.ports as number[];
        peers = await Promise.all(ports.map((port, i) => sim.RtpMediaPeer.create({ ...request(i), transport: "udp", encapsulation: "rtp", externalHost: `127.0.0.1:${port}` })));
        return { remotes: peers.map((p) => ({ host: p.channelvars.UNICASTRTP_LOCAL_ADDRESS, port: Number(p.channelvars.UNICASTRTP_LOCAL_PORT) })) };
      }
      if (mode === "websocket") {
        const ws = Array.from({ length: n }, (_, i) => new sim.ChanWebsocketMediaPeer({ ...request(i), transport: "websocket", encapsulation: "none", connectionType: "server" }));
        peers = ws;
        return { urls: ws.map((p) => wsServer.register(p)) };
      }
      const uuids = a.uuids as string[];
      const as = uuids.map((uuid, i) => new sim.AudioSocketMediaPeer({ ...request(i), transport: "tcp", encapsulation: "audiosocket", externalHost: `127.0.0.1:${a.port as number}`, data: uuid }));
      peers = as;
      await Promise.all(as.map((p) => p.ready));
      return {};
    },
    go: async (a) => {
      const seconds = a.seconds as number;
      peerLoop.reset();
      peerLoop.enable();
      const pcm = callerPcm(seconds);
      // RTP packets are built before the first is sent (the other peers encode as they start).
      const rtpPackets = mode === "rtp" ? (peers as RtpMediaPeer[]).map((p) => p.buildCallerPackets(pcm, RATE, CALLER_PACKET_MS.rtp)) : [];
      // How late the simulated Asterisk itself runs (the first 500 ms, and the whole call).
      setTimeout(() => (peerStartLagMaxMs = peerLoop.max / 1e6 - 1), 500);
      // Calls start at phases spread over one 20 ms period, as independent calls would.
      await Promise.all(peers.map(async (p, i) => {
        await sleep((i * 20) / peers.length);
        if (mode === "rtp") {
          (p as RtpMediaPeer).sendRtcp();
          await (p as RtpMediaPeer).sendPackets(rtpPackets[i] as Buffer[], CALLER_PACKET_MS.rtp);
        } else await p.sendCaller(pcm, RATE, CALLER_PACKET_MS[mode]);
      }));
      peerLoop.disable();
      return {};
    },
    stats: () => {
      const sum: Record<string, number> = {};
      for (const p of peers) for (const [k, v] of Object.entries(p.stats)) sum[k] = (sum[k] ?? 0) + v;
      // Everything in 20 ms frames.
      const callerSent = mode === "rtp" ? (sum.packetsSent ?? 0) : mode === "websocket" ? ((sum.callerFramesSent ?? 0) * 30) / 20 : (sum.audioSent ?? 0);
      const agentReceived = mode === "rtp" ? (sum.packetsReceived ?? 0) : mode === "websocket" ? (sum.framesQueued ?? 0) : (sum.audioReceived ?? 0);
      sum.loopLagStartMaxMs = peerStartLagMaxMs;
      sum.loopLagP99Ms = peerLoop.percentile(99) / 1e6 - 1;
      sum.loopLagMaxMs = peerLoop.max / 1e6 - 1;
      return { callerSent, agentReceived, peerStats: sum };
    },
    close: () => {
      for (const p of peers) p.close();
      peers = [];
      return {};
    },
    exit: async () => {
      await wsServer.close();
      setImmediate(() => process.exit(0));
      return {};
    },
  });
}

// --- legs: the measured process, one per run ------------------------------------------------------------------

/** One call on the measured side: a leg driven like a live call, or the passthrough reference. */
interface BenchCall {
  start(t0: number, phaseMs: number, seconds: number): void;
  /** Caller audio delivered, in 20 ms frames (real audio only). */
  callerFrames(): number;
  agentWritten(): number;
  agentOnWire(): number;
  extra(): Record<string, number>;
  close(): Promise<void>;
}

/** Runs `tick(elapsedMs)` every 20 ms from `t0 + phaseMs` until `seconds`, then `done()`. */
function every20(t0: number, phaseMs: number, seconds: number, tick: (elapsedMs: number) => void, done: () => void): () => void {
  let timer: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    const start = performance.now();
    const step = (): void => {
      const elapsed = performance.now() - start;
      tick(elapsed);
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        timer = undefined;
        done();
      }
    };
    step();
    timer = setInterval(step, 20);
  }, Math.max(0, t0 + phaseMs - performance.now()));
  return () => {
    clearTimeout(first);
    if (timer) clearInterval(timer);
  };
}

function legCall(leg: PacedLeg, onWire: () => number, extra: () => Record<string, number>, agentChunks: Int16Array[]): BenchCall {
  let frames = 0;
  void (async () => {
    for await (const _f of leg.callerAudio) frames++;
  })();
  let written = 0;
  let stop = (): void => {};
  return {
    start(t0, phaseMs, seconds) {
      const total = seconds * 50;
      stop = every20(
        t0,
        phaseMs,
        seconds,
        // A TTS stream: 20 ms chunks written as they come, kept ~100 ms ahead of real time.
        (elapsed) => {
          while (written < total && written * 20 < elapsed + AHEAD_MS) leg.write("tts", agentChunks[written++ % agentChunks.length] as Int16Array);
        },
        () => leg.endPlay("tts"),
      );
    },
    callerFrames: () => {
      const gap = leg.callerGapStats;
      return frames - (gap?.filledMs ?? 0) / 20;
    },
    agentWritten: () => written,
    agentOnWire: onWire,
    extra: () => ({ ...extra(), callerFilledMs: leg.callerGapStats?.filledMs ?? 0, callerDroppedMs: leg.callerGapStats?.droppedMs ?? 0, callerChannelDropped: leg.droppedCallerFrames }),
    close: async () => {
      stop();
      await leg.close();
    },
  };
}

/** The reference: receive and discard; send one pre-encoded packet per 20 ms (caught up to wall clock, never ahead). */
function refCall(send: () => void, received: () => number, closeSockets: () => void): BenchCall {
  let sent = 0;
  let stop = (): void => {};
  return {
    start(t0, phaseMs, seconds) {
      const total = seconds * 50;
      stop = every20(
        t0,
        phaseMs,
        seconds,
        (elapsed) => {
          while (sent < total && sent * 20 <= elapsed) {
            send();
            sent++;
          }
        },
        () => {},
      );
    },
    callerFrames: received,
    agentWritten: () => sent,
    agentOnWire: () => sent,
    extra: () => ({}),
    close: () => {
      stop();
      closeSockets();
      return Promise.resolve();
    },
  };
}

async function legsMain(): Promise<void> {
  // The same modules are loaded for the legs and the reference, before the RSS baseline.
  const media = await import("../src/media/index.js");
  const { WebSocket } = await import("ws");
  const rss0 = process.memoryUsage.rss();
  const agentChunks: Int16Array[] = [];
  const agentPcm = speechLike(RATE);
  for (let i = 0; i + FRAME <= agentPcm.length; i += FRAME) agentChunks.push(agentPcm.subarray(i, i + FRAME));
  const first = agentChunks[0] as Int16Array;
  let mode: Mode = "rtp";
  let kind: Kind = "leg";
  let n = 0;
  let calls: BenchCall[] = [];
  let pool: RtpPortPool | undefined;
  let pairs: { port: number; rtp: UdpSocket; rtcp: UdpSocket }[] = [];
  let rtpLegs: RtpLeg[] = [];
  let audioServer: AudioSocketServer | undefined;
  let connections: Promise<AudioSocketConnection>[] = [];

  serve({
    prepare: async (a) => {
      mode = a.mode as Mode;
      kind = a.kind as Kind;
      n = a.n as number;
      if (mode === "rtp") {
        const base = 20000 + 2 * randomInt(0, 10000);
        pool = new media.RtpPortPool(base, base + 2 * n + 63);
        if (kind === "leg") {
          rtpLegs = await Promise.all(Array.from({ length: n }, (_, i) => media.RtpLeg.open({ id: `bench-${i}`, format: "slin16", bindIp: "127.0.0.1", ports: pool as RtpPortPool, leadMs: LEAD_MS.rtp })));
          return { ports: rtpLegs.map((l) => l.localPort) };
        }
        pairs = await Promise.all(Array.from({ length: n }, () => (pool as RtpPortPool).bind("127.0.0.1")));
        return { ports: pairs.map((p) => p.port) };
      }
      if (mode === "audiosocket") {
        audioServer = new media.AudioSocketServer({});
        const { port } = await audioServer.listen("127.0.0.1", 0);
        const uuids = Array.from({ length: n }, () => randomUUID());
        connections = uuids.map((u) => (audioServer as AudioSocketServer).expect(u, 5000));
        return { port, uuids };
      }
      return {};
    },
    connect: async (a) => {
      if (mode === "rtp") {
        const remotes = a.remotes as { host: string; port: number }[];
        if (kind === "leg") {
          calls = rtpLegs.map((leg, i) => {
            const r = remotes[i] as { host: string; port: number };
            leg.setRemote(r.host, r.port);
            return legCall(leg, () => leg.stats.packetsOut, () => ({ lostPackets: leg.stats.lostPackets, reordered: leg.stats.reordered, sendOverflows: leg.sendOverflows }), agentChunks);
          });
        } else {
          calls = pairs.map((pair, i) => {
            const r = remotes[i] as { host: string; port: number };
            const packet = Buffer.alloc(12 + FRAME * 2);
            packet[0] = 0x80;
            packet[1] = 118;
            packet.writeUInt32BE(randomInt(0, 0x1_0000_0000), 8);
            for (let k = 0; k < FRAME; k++) packet.writeInt16BE(first[k] as number, 12 + 2 * k);
            let rx = 0;
            pair.rtp.on("message", () => void rx++);
            pair.rtcp.on("message", () => {});
            return refCall(
              () => pair.rtp.send(packet, r.port, r.host),
              () => rx,
              () => {
                pair.rtp.close();
                pair.rtcp.close();
                pool?.release(pair.port);
              },
            );
          });
        }
        return {};
      }
      if (mode === "websocket") {
        const urls = a.urls as string[];
        if (kind === "leg") {
          const legs = await Promise.all(urls.map((url, i) => media.ChanWebsocketLeg.connect({ id: `bench-${i}`, url, format: "slin16", control: "plain", leadMs: LEAD_MS.websocket, marks: true })));
          calls = legs.map((leg) => legCall(leg, () => leg.sentFrames, () => ({ xoff: leg.xoffCount }), agentChunks));
        } else {
          const frame = Buffer.alloc(FRAME * 2);
          for (let k = 0; k < FRAME; k++) frame.writeInt16LE(first[k] as number, 2 * k);
          calls = await Promise.all(
            urls.map(
              (url) =>
                new Promise<BenchCall>((resolve, reject) => {
                  const ws: WsClient = new WebSocket(url, "media", { perMessageDeflate: false });
                  let rxMs = 0;
                  ws.on("error", reject);
                  ws.on("message", (data: Buffer, isBinary: boolean) => {
                    if (isBinary) rxMs += data.length / 32; // bytes of slin16 -> ms
                    else if (data.toString("utf8").startsWith("MEDIA_START")) resolve(refCall(() => ws.send(frame), () => rxMs / 20, () => ws.close(1000)));
                  });
                }),
            ),
          );
        }
        return {};
      }
      const conns = await Promise.all(connections);
      if (kind === "leg") {
        calls = conns.map((connection, i) => {
          const leg = new media.AudioSocketLeg({ id: `bench-${i}`, connection, format: "slin16", leadMs: LEAD_MS.audiosocket });
          return legCall(leg, () => leg.stats.audioOut, () => ({ droppedBackpressure: leg.stats.droppedBackpressure, sendOverflows: leg.sendOverflows }), agentChunks);
        });
      } else {
        const message = Buffer.alloc(3 + FRAME * 2);
        message[0] = 0x12;
        message.writeUInt16BE(FRAME * 2, 1);
        for (let k = 0; k < FRAME; k++) message.writeInt16LE(first[k] as number, 3 + 2 * k);
        calls = conns.map(({ socket, initial }) => {
          const s: TcpSocket = socket;
          let rxBytes = initial.length;
          s.setNoDelay(true);
          s.on("data", (chunk: Buffer) => void (rxBytes += chunk.length));
          s.on("error", () => {});
          s.resume();
          return refCall(
            () => void s.write(message),
            () => rxBytes / message.length, // the peer's caller messages are 20 ms of slin16 too
            () => s.end(Buffer.from([0, 0, 0])),
          );
        });
      }
      return {};
    },
    go: async (a) => {
      const seconds = a.seconds as number;
      const t0 = performance.now();
      calls.forEach((c, i) => c.start(t0, (i * 20) / calls.length, seconds));
      await sleep(SETTLE_MS);
      const loop = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
      loop.enable();
      const dropped = () => calls.reduce((s, c) => s + (c.extra().callerDroppedMs ?? 0), 0);
      const dropped0 = dropped();
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      await sleep(seconds * 1000 - SETTLE_MS - TAIL_MS);
      const cpu = process.cpuUsage(cpu0);
      const wallMs = performance.now() - w0;
      loop.disable();
      const rss = process.memoryUsage.rss();
      const droppedInWindow = dropped() - dropped0;
      // The histogram records each sampling timer's whole wait: lateness is what exceeds the resolution.
      const late = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS);
      return {
        cpuPctPerCall: ((cpu.user + cpu.system) / 1000 / wallMs) * (100 / n),
        rssMbPerCall: (rss - rss0) / 1048576 / n,
        rssMb: rss / 1048576,
        lagP50Ms: late(loop.percentile(50)),
        lagP99Ms: late(loop.percentile(99)),
        lagMaxMs: late(loop.max),
        callerDroppedMsBeforeWindow: dropped0,
        callerDroppedMsInWindow: droppedInWindow,
      };
    },
    stats: () => {
      const extra: Record<string, number> = {};
      for (const c of calls) for (const [k, v] of Object.entries(c.extra())) extra[k] = (extra[k] ?? 0) + v;
      const sum = (f: (c: BenchCall) => number) => calls.reduce((s, c) => s + f(c), 0);
      return { callerFrames: sum((c) => c.callerFrames()), agentWritten: sum((c) => c.agentWritten()), agentOnWire: sum((c) => c.agentOnWire()), legStats: extra };
    },
    close: async () => {
      await Promise.all(calls.map((c) => c.close()));
      await audioServer?.close();
      setImmediate(() => process.exit(0));
      return {};
    },
  });
}

// --- driver -------------------------------------------------------------------------------------------------

interface RunResult {
  mode: Mode;
  kind: Kind;
  n: number;
  round: number;
  cpuPctPerCall: number;
  rssMbPerCall: number;
  rssMb: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Caller audio the gap filler dropped as late (legs only): before the measured window, and within it. */
  callerDroppedMsBeforeWindow: number;
  callerDroppedMsInWindow: number;
  callerSent: number;
  callerDelivered: number;
  agentWritten: number;
  agentOnWire: number;
  agentReceived: number;
  legStats: Record<string, number>;
  peerStats: Record<string, number>;
}

/** One run; `afterWindow` is called once the measured window has ended (the calls are still draining). */
async function run(peers: Rpc, legs: Rpc, mode: Mode, kind: Kind, n: number, round: number, seconds: number, afterWindow: () => void): Promise<RunResult> {
  const prepared = await legs.call<Record<string, unknown>>("prepare", { mode, kind, n });
  const opened = await peers.call<Record<string, unknown>>("open", { mode, n, seconds, ...prepared });
  await legs.call("connect", opened);
  const callerDone = peers.call("go", { seconds });
  const measured = await legs.call<Pick<RunResult, "cpuPctPerCall" | "rssMbPerCall" | "rssMb" | "lagP50Ms" | "lagP99Ms" | "lagMaxMs" | "callerDroppedMsBeforeWindow" | "callerDroppedMsInWindow">>("go", { seconds });
  afterWindow();
  await callerDone;
  await sleep(DRAIN_MS);
  const [m, p] = await Promise.all([
    legs.call<{ callerFrames: number; agentWritten: number; agentOnWire: number; legStats: Record<string, number> }>("stats"),
    peers.call<{ callerSent: number; agentReceived: number; peerStats: Record<string, number> }>("stats"),
  ]);
  await legs.call("close");
  await peers.call("close");
  await legs.exited;
  return {
    mode,
    kind,
    n,
    round,
    ...measured,
    callerSent: p.callerSent,
    callerDelivered: m.callerFrames,
    agentWritten: m.agentWritten,
    agentOnWire: m.agentOnWire,
    agentReceived: p.agentReceived,
    legStats: m.legStats,
    peerStats: p.peerStats,
  };
}

async function driverMain(): Promise<void> {
  const options: Record<string, string> = {};
  const counts: number[] = [];
  let json = false;
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i] as string;
    if (a === "--json") json = true;
    else if (a.startsWith("--")) options[a.slice(2)] = process.argv[++i] ?? "";
    else if (/^\d+$/.test(a)) counts.push(Number(a));
    else throw new Error(`unknown argument ${a}`);
  }
  if (counts.length === 0) counts.push(10, 40);
  const seconds = Number(options.seconds ?? 4);
  const rounds = Number(options.rounds ?? 3);
  const modes = (options.modes?.split(",") ?? MODES) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (${MODES.join(", ")})`);
  if (!(seconds * 1000 > SETTLE_MS + TAIL_MS + 500)) throw new Error("--seconds is too short for the measured window");

  const started = performance.now();
  const peers = spawnRole("peers");
  const results: RunResult[] = [];
  // The measured process of the next run starts while the current one drains (its window is over by then).
  let next = spawnRole("legs");
  if (!json) {
    console.log(`asterisk media legs: ${seconds} s full-duplex slin16 calls (window ${((seconds * 1000 - SETTLE_MS - TAIL_MS) / 1000).toFixed(2)} s), median of ${rounds} runs`);
    console.log("reference = the same sockets doing a plain passthrough, measured in the same run (leg / reference alternating)");
    console.log("leg           N   CPU/call leg (ref)      ratio   RSS/call leg (ref)     loop lag p99 leg (ref)   caller in   agent out");
  }
  const summary: Record<string, unknown>[] = [];
  for (const mode of modes) {
    for (const n of counts) {
      const mine: RunResult[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const kind of r % 2 === 0 ? (["leg", "ref"] as const) : (["ref", "leg"] as const)) {
          // The next measured process starts (~1 s of tsx start-up) while this run drains, after its window.
          mine.push(await run(peers, next, mode, kind, n, r, seconds, () => (next = spawnRole("legs"))));
        }
      }
      results.push(...mine);
      const of = (kind: Kind) => mine.filter((x) => x.kind === kind);
      const med = (kind: Kind, f: (x: RunResult) => number) => median(of(kind).map(f));
      const cpu = med("leg", (x) => x.cpuPctPerCall);
      const ref = med("ref", (x) => x.cpuPctPerCall);
      const caller = of("leg").map((x) => (100 * x.callerDelivered) / x.callerSent);
      const agent = of("leg").map((x) => (100 * x.agentReceived) / x.agentWritten);
      const row = {
        mode,
        n,
        cpuPctPerCall: cpu,
        refCpuPctPerCall: ref,
        cpuRatio: cpu / ref,
        rssMbPerCall: med("leg", (x) => x.rssMbPerCall),
        refRssMbPerCall: med("ref", (x) => x.rssMbPerCall),
        lagP99Ms: med("leg", (x) => x.lagP99Ms),
        refLagP99Ms: med("ref", (x) => x.lagP99Ms),
        callerDeliveredPct: median(caller),
        callerDeliveredPctMin: Math.min(...caller),
        agentReceivedPct: median(agent),
        agentReceivedPctMin: Math.min(...agent),
        refCallerDeliveredPct: med("ref", (x) => (100 * x.callerDelivered) / x.callerSent),
        refAgentReceivedPct: med("ref", (x) => (100 * x.agentReceived) / x.agentWritten),
      };
      summary.push(row);
      if (!json) {
        const pct = (v: number) => `${v.toFixed(1)} %`;
        console.log(
          `${mode.padEnd(11)} ${String(n).padStart(3)}   ${cpu.toFixed(2).padStart(6)} % (${ref.toFixed(2)} %)   ${row.cpuRatio.toFixed(1).padStart(5)}   ${row.rssMbPerCall.toFixed(2).padStart(6)} MB (${row.refRssMbPerCall.toFixed(2)} MB)   ${row.lagP99Ms.toFixed(1).padStart(7)} ms (${row.refLagP99Ms.toFixed(1)} ms)   ${pct(row.callerDeliveredPct).padStart(9)}   ${pct(row.agentReceivedPct).padStart(9)}`,
        );
      }
    }
  }
  // Per call at a small N carries the process's fixed cost (timers, GC, JIT of a fresh process): the slope between
  // the smallest and largest N is the cost one more call adds.
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  const marginal: Record<string, { leg: number; ref: number; ratio: number }> = {};
  for (const mode of hi > lo ? modes : []) {
    const at = (n: number) => summary.find((x) => x.mode === mode && x.n === n) as { cpuPctPerCall: number; refCpuPctPerCall: number };
    const leg = (at(hi).cpuPctPerCall * hi - at(lo).cpuPctPerCall * lo) / (hi - lo);
    const ref = (at(hi).refCpuPctPerCall * hi - at(lo).refCpuPctPerCall * lo) / (hi - lo);
    marginal[mode] = { leg, ref, ratio: leg / ref };
    if (!json) console.log(`${mode.padEnd(11)} one more call (N ${lo} -> ${hi}): ${leg.toFixed(2)} % core (ref ${ref.toFixed(2)} %), ratio ${(leg / ref).toFixed(1)}`);
  }
  next.child.kill();
  await peers.call("exit");
  const totalS = (performance.now() - started) / 1000;
  if (json) {
    console.log(JSON.stringify({ seconds, rounds, counts, modes, windowMs: seconds * 1000 - SETTLE_MS - TAIL_MS, totalSeconds: totalS, summary, marginal, runs: results }, null, 2));
  } else {
    console.log("CPU: % of one core per call, the legs' process only (peers run in another process); lag: p99 lateness of a 10 ms timer");
    console.log("caller in: caller audio out of leg.callerAudio / audio the peer sent (gap-fill silence excluded); agent out: frames the peer received / frames written");
    console.log(`total ${totalS.toFixed(0)} s`);
  }
}

const roleAt = process.argv.indexOf("--role");
const role = roleAt >= 0 ? process.argv[roleAt + 1] : undefined;
if (role === "peers") await peersMain();
else if (role === "legs") await legsMain();
else await driverMain();
