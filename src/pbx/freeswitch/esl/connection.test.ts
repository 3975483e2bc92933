import net from "node:net";
import { describe, expect, it } from "vitest";
import { useCleanups } from "../../../../test/wait.js";
import { AppError } from "../../../errors.js";
import { EslConnection } from "./connection.js";
import { serializeMessage } from "./parser.js";

const cleanup = useCleanups();

/** A scripted FreeSWITCH: hands each complete command (up to its blank line) to `onCommand`. */
interface FakeFs {
  socket: net.Socket;
  commands: string[];
  send(headers: [string, string][], body?: string): void;
  event(obj: Record<string, string>): void;
}

async function connectPair(
  onCommand: (cmd: string, fs: FakeFs) => void,
  options: { apiTimeoutMs?: number } = {},
): Promise<{ conn: EslConnection; fs: Promise<FakeFs> }> {
  let resolveFs!: (f: FakeFs) => void;
  const fsReady = new Promise<FakeFs>((r) => (resolveFs = r));
  const server = net.createServer((socket) => {
    let buf = "";
    const fs: FakeFs = {
      socket,
      commands: [],
      send: (headers, body) => socket.write(serializeMessage(headers, body)),
      event: (obj) => fs.send([["Content-Type", "text/event-json"]], JSON.stringify(obj)),
    };
    socket.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const cmd = buf.slice(0, i);
        buf = buf.slice(i + 2);
        fs.commands.push(cmd);
        onCommand(cmd, fs);
      }
    });
    socket.on("error", () => undefined);
    resolveFs(fs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((r) => socket.once("connect", r));
  const conn = new EslConnection(socket, options);
  cleanup(async () => {
    conn.destroy();
    (await fsReady).socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { conn, fs: fsReady };
}

const reply = (text: string, extra: [string, string][] = []): [string, string][] => [
  ["Content-Type", "command/reply"],
  ["Reply-Text", text],
  ...extra,
];

describe("EslConnection reply matching", () => {
  it("matches 100 concurrent api calls FIFO, interleaved with commands and events", async () => {
    const { conn } = await connectPair((cmd, fs) => {
      if (cmd.startsWith("api ")) {
        fs.event({ "Event-Name": "HEARTBEAT" });
        fs.send([["Content-Type", "api/response"]], `+OK ${cmd.slice(4)}\n`);
      } else fs.send(reply(`+OK ${cmd}`));
    });
    const seen: string[] = [];
    conn.events.on("event", (e) => seen.push(e.name));
    const apis = Array.from({ length: 100 }, (_, i) => conn.api(`echo ${i} ünïcødé`));
    const cmds = Array.from({ length: 10 }, (_, i) => conn.command(`noevents ${i}`));
    const got = await Promise.all(apis);
    got.forEach((body, i) => expect(body).toBe(`+OK echo ${i} ünïcødé\n`));
    const replies = await Promise.all(cmds);
    replies.forEach((h, i) => expect(h.get("Reply-Text")).toBe(`+OK noevents ${i}`));
    expect(seen.length).toBe(100);
  });

  it("correlates bgapi by Job-UUID when BACKGROUND_JOB arrives before or after other replies", async () => {
    const { conn, fs } = await connectPair(() => undefined);
    const f = await fs;
    const p1 = conn.bgapi("status", "job-1");
    const p2 = conn.api("version");
    const p3 = conn.bgapi("originate x &park()", "job-2");
    await waitFor(() => f.commands.length === 3);
    expect(f.commands).toEqual(["bgapi status\nJob-UUID: job-1", "api version", "bgapi originate x &park()\nJob-UUID: job-2"]);
    // job-2's result arrives before even its own command/reply.
    f.event({ "Event-Name": "BACKGROUND_JOB", "Job-UUID": "job-2", "Content-Length": "17", _body: "-ERR USER_BUSY\n" });
    f.send(reply("+OK Job-UUID: job-1", [["Job-UUID", "job-1"]]));
    f.event({ "Event-Name": "BACKGROUND_JOB", "Job-UUID": "someone-else", _body: "+OK nope\n" });
    f.send([["Content-Type", "api/response"]], "FreeSWITCH Version 1.10\n");
    f.event({ "Event-Name": "BACKGROUND_JOB", "Job-UUID": "job-1", _body: "UP 0 years\n" });
    f.send(reply("+OK Job-UUID: job-2", [["Job-UUID", "job-2"]]));
    expect(await p2).toBe("FreeSWITCH Version 1.10\n");
    expect(await p1).toBe("UP 0 years\n");
    expect(await p3).toBe("-ERR USER_BUSY\n");
  });

  it("bgapi rejects with PBX_ERROR when the immediate reply is -ERR (outbound socket without `full`)", async () => {
    const { conn } = await connectPair((_cmd, fs) => fs.send(reply("-ERR command not found")));
    const err = await conn.bgapi("status").catch((e: unknown) => e);
    expect((err as AppError).code).toBe("PBX_ERROR");
  });

  it("execute resolves with the CHANNEL_EXECUTE_COMPLETE whose Application-UUID matches", async () => {
    const { conn, fs } = await connectPair((_cmd, f) => f.send(reply("+OK")));
    const f = await fs;
    const a = conn.execute("playback", "/tmp/a.wav", { uuid: "u1", eventLock: true, eventUuid: "play-1:1" });
    const b = conn.execute("answer", undefined, { uuid: "u1" });
    await waitFor(() => f.commands.length === 2);
    expect(f.commands[0]).toBe(
      "sendmsg u1\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: /tmp/a.wav\nevent-lock: true\nevent-uuid: play-1:1",
    );
    const bUuid = /event-uuid: (.*)$/m.exec(f.commands[1] ?? "")?.[1] ?? "";
    expect(bUuid).toMatch(/^[0-9a-f-]{36}$/);
    const complete = (appUuid: string, app: string): void =>
      f.event({ "Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": "u1", Application: app, "Application-UUID": appUuid, "Application-Response": "FILE PLAYED" });
    complete("not-ours", "playback");
    complete(bUuid, "answer");
    complete("play-1:1", "playback");
    const [ea, eb] = await Promise.all([a, b]);
    expect(ea.headers["Application-UUID"]).toBe("play-1:1");
    expect(ea.headers.Application).toBe("playback");
    expect(eb.headers.Application).toBe("answer");
  });

  it("sendmsg with a body sends content-length in bytes", async () => {
    const { conn, fs } = await connectPair(() => undefined);
    const f = await fs;
    let raw = Buffer.alloc(0);
    f.socket.on("data", (d: Buffer) => (raw = Buffer.concat([raw, d])));
    const p = conn.sendmsg("u1", { "call-command": "unicast" }, "héllo");
    await waitFor(() => raw.length > 0 && raw.toString().endsWith("héllo"));
    expect(raw.toString("utf8")).toBe("sendmsg u1\ncall-command: unicast\ncontent-length: 6\n\nhéllo");
    f.send(reply("+OK"));
    expect((await p).get("Reply-Text")).toBe("+OK");
  });

  it("subscribe puts CUSTOM subclasses last", async () => {
    const { conn, fs } = await connectPair((_c, f) => f.send(reply("+OK event listener enabled json")));
    await conn.subscribe(["mod_audio_fork::connect", "CHANNEL_PARK", "CUSTOM sofia::notify_refer", "DTMF", "CHANNEL_PARK"]);
    expect((await fs).commands).toEqual(["event json CHANNEL_PARK DTMF CUSTOM mod_audio_fork::connect sofia::notify_refer"]);
  });
});

describe("EslConnection failure handling", () => {
  it("rejects command lines and headers containing a newline before sending anything", async () => {
    const { conn, fs } = await connectPair((_c, f) => f.send(reply("+OK")));
    for (const p of [
      conn.api("status\nexit"),
      conn.bgapi("status\n"),
      conn.command("event json X\n\nexit"),
      conn.sendmsg("u1", { "execute-app-arg": "a\nb" }),
      conn.execute("playback", "x\ny"),
      conn.command("noevents", { "x": "y\r" }),
    ]) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe("BAD_REQUEST");
    }
    await conn.command("noevents");
    expect((await fs).commands).toEqual(["noevents"]);
  });

  it("on close every pending promise rejects with PBX_ERROR 'ESL connection closed'", async () => {
    const { conn, fs } = await connectPair((cmd, f) => {
      if (cmd.startsWith("bgapi")) f.send(reply("+OK Job-UUID: j"));
    });
    const closeEvents: unknown[] = [];
    conn.events.on("close", (e) => closeEvents.push(e));
    const pending = [conn.api("status"), conn.bgapi("status", "j"), conn.command("linger"), conn.execute("park", undefined)];
    const f = await fs;
    await waitFor(() => f.commands.length === 4);
    f.socket.destroy();
    for (const p of pending) {
      const err = await p.catch((e: unknown) => e);
      expect((err as AppError).code).toBe("PBX_ERROR");
      expect((err as AppError).message).toBe("ESL connection closed");
    }
    expect(conn.closed).toBe(true);
    expect(closeEvents.length).toBe(1);
    const after = await conn.api("status").catch((e: unknown) => e);
    expect((after as AppError).message).toBe("ESL connection closed");
  });

  it("api times out with TIMEOUT, and the late reply is consumed without shifting later replies", async () => {
    const { conn, fs } = await connectPair(() => undefined, { apiTimeoutMs: 50 });
    const f = await fs;
    const slow = conn.api("slow");
    const err = await slow.catch((e: unknown) => e);
    expect((err as AppError).code).toBe("TIMEOUT");
    const next = conn.api("fast");
    await waitFor(() => f.commands.length === 2);
    f.send([["Content-Type", "api/response"]], "late\n");
    f.send([["Content-Type", "api/response"]], "fast\n");
    expect(await next).toBe("fast\n");
  });

  it("text/rude-rejection closes the connection with an error; log/data is ignored", async () => {
    const { conn, fs } = await connectPair(() => undefined);
    const closed = new Promise<{ error?: Error }>((r) => conn.events.once("close", r));
    const f = await fs;
    f.send([["Content-Type", "log/data"]], "some log line\n");
    f.send([["Content-Type", "text/rude-rejection"]], "Access Denied, go away.\n");
    const { error } = await closed;
    expect((error as AppError).code).toBe("PBX_ERROR");
    expect(error?.message).toContain("Access Denied");
  });

  it("emits disconnect notices with Linger-Time", async () => {
    const { conn, fs } = await connectPair(() => undefined);
    const notice = new Promise<unknown>((r) => conn.events.once("disconnectNotice", r));
    (await fs).send(
      [["Content-Type", "text/disconnect-notice"], ["Controlled-Session-UUID", "u1"], ["Content-Disposition", "linger"], ["Linger-Time", "-1"], ["Content-Length", "0"]],
      "",
    );
    expect(await notice).toEqual({ disposition: "linger", lingerTime: -1, body: "" });
  });

  it("close() sends exit, then ends the socket", async () => {
    const { conn, fs } = await connectPair((cmd, f) => {
      if (cmd === "exit") {
        f.send(reply("+OK bye"));
        f.socket.end();
      }
    });
    await conn.close();
    expect(conn.closed).toBe(true);
    expect((await fs).commands).toEqual(["exit"]);
    await conn.close();
  });

  it("connectInbound rejects with PBX_UNAVAILABLE when nothing listens", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    const err = await EslConnection.connectInbound({ host: "127.0.0.1", port, password: "x", timeoutMs: 2000 }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe("PBX_UNAVAILABLE");
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}
