// Replays of the recorded FreeSWITCH sessions over real sockets: our client must send byte-identical commands.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useCleanups } from "../../../../test/wait.js";
import { AppError } from "../../../errors.js";
import { EslConnection } from "./connection.js";
import { EslOutboundServer, type OutboundSession } from "./outbound-server.js";
import type { EslEvent } from "./parser.js";
import { ReplayPeer, loadSession, type Session } from "./testutil.js";

const cleanup = useCleanups();

/** A TCP server playing FreeSWITCH's side of `session`. */
async function fakeFreeSwitch(session: Session): Promise<{ port: number; peer: Promise<ReplayPeer>; closed: Promise<void> }> {
  let resolvePeer!: (p: ReplayPeer) => void;
  let resolveClosed!: () => void;
  const peer = new Promise<ReplayPeer>((r) => (resolvePeer = r));
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const server = net.createServer((socket) => {
    resolvePeer(new ReplayPeer(socket, session.chunks, "s2c", { closeWhenDone: true }));
    socket.on("close", () => resolveClosed());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup(() => new Promise<void>((r) => server.close(() => r())));
  const addr = server.address() as net.AddressInfo;
  return { port: addr.port, peer, closed };
}

describe("replay esl-inbound-modesl-status", () => {
  it("sends exactly the recorded bytes and gets the recorded api bodies", async () => {
    const s = loadSession("esl-inbound-modesl-status", "inbound-esl-modesl-status");
    const fs = await fakeFreeSwitch(s);
    const conn = await EslConnection.connectInbound({ host: "127.0.0.1", port: fs.port, password: "ClueCon" });
    const notices: string[] = [];
    conn.events.on("disconnectNotice", (n) => notices.push(`${n.disposition}:${n.body.length}`));
    // modesl pipelines: `api status` goes out before the `event` reply arrives (the replay enforces that order).
    const sub = conn.subscribe(["BACKGROUND_JOB", "CHANNEL_EXECUTE_COMPLETE"]);
    const status = conn.api("status");
    await sub;
    const version = conn.api("version");
    const modules = conn.api("show modules mod_audio_fork");
    const bodies = await Promise.all([status, version, modules]);
    expect(bodies[0]).toMatch(/^UP 0 years, 0 days, 0 hours, 4 minutes/);
    expect(Buffer.byteLength(bodies[0] ?? "")).toBe(369);
    expect(bodies[1]).toBe(
      "FreeSWITCH Version 1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit (git a88d069 2024-08-02 21:02:27Z 64bit)\n",
    );
    expect(bodies[2]).toBe(
      "type,name,ikey,filename\napi,uuid_audio_fork,mod_audio_fork,/usr/lib/freeswitch/install/lib/freeswitch/mod/mod_audio_fork.so\n\n1 total.\n",
    );
    await conn.close();
    await fs.closed;
    const peer = await fs.peer;
    expect(peer.received.toString("latin1")).toBe(s.c2s.toString("latin1"));
    expect(peer.received.equals(s.c2s)).toBe(true);
    expect(conn.closed).toBe(true);
    // The inbound `exit` notice carries no Content-Disposition header (as recorded).
    expect(notices).toEqual([":67"]);
  });
});

describe("replay esl-inbound-errors", () => {
  it("bad auth rejects with PBX_ERROR after sending exactly `auth WrongPassword`", async () => {
    const s = loadSession("esl-inbound-errors", "inbound-esl-errors");
    const fs = await fakeFreeSwitch(s);
    const err = await EslConnection.connectInbound({ host: "127.0.0.1", port: fs.port, password: "WrongPassword" }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("PBX_ERROR");
    expect((err as AppError).details).toEqual({ pbxReply: "-ERR invalid" });
    await fs.closed;
    expect((await fs.peer).received.equals(s.c2s)).toBe(true);
  });

  it("-ERR / -USAGE replies surface as resolved replies; subscribe rejects on -ERR", async () => {
    const s = loadSession("esl-inbound-errors", "inbound-esl-errors-after-auth");
    const fs = await fakeFreeSwitch(s);
    const conn = await EslConnection.connectInbound({ host: "127.0.0.1", port: fs.port, password: "ClueCon" });
    const bad = "11111111-2222-3333-4444-555555555555";
    expect(await conn.api("nosuchcommand arg")).toBe("-ERR nosuchcommand Command not found!\n");
    expect((await conn.command("bogus command")).get("Reply-Text")).toBe("-ERR command not found");
    expect(await conn.api(`uuid_kill ${bad}`)).toBe("-ERR No such channel!\n");
    expect(await conn.api("uuid_audio_fork")).toMatch(/^-USAGE: <uuid> \[start \| stop/);
    expect(await conn.api(`uuid_break ${bad}`)).toBe("-ERR No such channel!\n");
    const reply = await conn.sendmsg(bad, {
      "call-command": "execute",
      "execute-app-name": "playback",
      "execute-app-arg": "tone_stream://%(100,0,440)",
    });
    expect(reply.get("Reply-Text")).toBe(`-ERR invalid session id [${bad}]`);
    const subErr = await conn.subscribe(["NOSUCHEVENT"]).catch((e: unknown) => e);
    expect((subErr as AppError).code).toBe("PBX_ERROR");
    expect((subErr as AppError).details).toEqual({ pbxReply: "-ERR no keywords supplied" });
    await conn.close();
    await fs.closed;
    expect((await fs.peer).received.toString("latin1")).toBe(s.c2s.toString("latin1"));
  });
});

describe("replay esl-outbound-json-ext101 through EslOutboundServer", () => {
  it("connect / myevents json / linger 5 / three sendmsg: byte-identical, channel data decoded, events delivered", async () => {
    const s = loadSession("esl-outbound-json-ext101", "outbound-esl-ext101");
    const sessions: OutboundSession[] = [];
    const events: EslEvent[] = [];
    const notices: { disposition: string; lingerTime?: number; body: string }[] = [];
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    const replies: string[] = [];
    const server = new EslOutboundServer({
      allow: ["127.0.0.0/8", "::1/128"],
      onSession: (session) => {
        sessions.push(session);
        const c = session.connection;
        c.events.on("event", (e) => events.push(e));
        c.events.on("disconnectNotice", (n) => notices.push(n));
        c.events.on("close", () => closedResolve());
        void (async () => {
          replies.push((await c.command("myevents json")).get("Reply-Text") ?? "");
          replies.push((await c.command("linger 5")).get("Reply-Text") ?? "");
          const r1 = c.sendmsg(undefined, { "call-command": "execute", "execute-app-name": "answer", "event-lock": "true" });
          replies.push((await r1).get("Reply-Text") ?? "");
          const r2 = c.sendmsg(undefined, {
            "call-command": "execute",
            "execute-app-name": "playback",
            "execute-app-arg": "tone_stream://%(500,500,440);loops=3",
            "event-lock": "true",
          });
          replies.push((await r2).get("Reply-Text") ?? "");
          const r3 = c.sendmsg(undefined, { "call-command": "execute", "execute-app-name": "park" });
          replies.push((await r3).get("Reply-Text") ?? "");
        })();
      },
    });
    const { port } = await server.listen("127.0.0.1", 0);
    cleanup(() => server.close());
    const socket = net.connect({ host: "127.0.0.1", port });
    const peer = new ReplayPeer(socket, s.chunks, "s2c", { closeWhenDone: true });
    await peer.done;
    await closed;
    expect(peer.received.toString("latin1")).toBe(s.c2s.toString("latin1"));
    expect(sessions.length).toBe(1);
    const session = sessions[0] as OutboundSession;
    expect(session.uuid).toBe("bfb6527f-e228-460c-a7c1-88c80286847c");
    expect(session.channel.get("Reply-Text")).toBe("+OK\n");
    expect(session.channel.get("Socket-Mode")).toBe("async");
    expect(session.channel.get("Control")).toBe("full");
    expect(session.channel.get("FreeSWITCH-IPv6")).toBe("fd00::2");
    expect(replies).toEqual(["+OK Events Enabled", "+OK will linger 5 seconds", "+OK", "+OK", "+OK"]);
    expect(events.length).toBe(s.events?.length);
    expect(events.map((e) => e.name)).toEqual(s.events?.map((e) => e["Event-Name"]));
    expect(notices.map((n) => n.disposition)).toEqual(["linger", "disconnect"]);
    expect(notices[0]?.lingerTime).toBe(5);
    expect(session.connection.closed).toBe(true);
  });

  it("closes connections from addresses outside the allow list at once", async () => {
    let called = false;
    const server = new EslOutboundServer({ allow: ["10.0.0.0/8"], onSession: () => (called = true) });
    const { port } = await server.listen("127.0.0.1", 0);
    cleanup(() => server.close());
    const socket = net.connect({ host: "127.0.0.1", port });
    const received: Buffer[] = [];
    socket.on("data", (d: Buffer) => received.push(d));
    socket.on("error", () => undefined);
    await new Promise<void>((r) => socket.on("close", () => r()));
    expect(called).toBe(false);
    expect(Buffer.concat(received).length).toBe(0);
  });

  it("rejects an invalid CIDR", () => {
    expect(() => new EslOutboundServer({ allow: ["10.0.0.0/33"], onSession: () => undefined })).toThrow(AppError);
    expect(() => new EslOutboundServer({ allow: ["nonsense"], onSession: () => undefined })).toThrow(AppError);
  });
});
