// Test helpers: the Asterisk ARI recordings (../shared/fixtures/asterisk beside the repository) and a fake ARI
// server (HTTP + events WebSocket on one port). Not imported by app code.
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { sharedFixtures } from "../../../../test/shared-fixtures.js";

export const ASTERISK_FIXTURES = sharedFixtures("asterisk");

export interface RestRecord {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string> | null;
  body: unknown;
  status: number;
  content_type: string | null;
  response: unknown;
}

export interface AriRun {
  name: string;
  rest: RestRecord[];
  /** Event frames byte-for-byte. */
  events: string[];
}

function lines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "");
}

export function loadRun(name: string): AriRun {
  const dir = join(ASTERISK_FIXTURES, name);
  return {
    name,
    rest: lines(join(dir, "ari-rest.jsonl")).map((l) => JSON.parse(l) as RestRecord),
    events: lines(join(dir, "ari-events.jsonl")),
  };
}

export function allRuns(): AriRun[] {
  return readdirSync(ASTERISK_FIXTURES).filter((f) => f.startsWith("run")).sort().map(loadRun);
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  rawQuery: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface SeenUpgrade {
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
}

/** A fake Asterisk: `reply` answers REST calls, `sockets` are the accepted events sockets. */
export class FakeAri {
  readonly requests: SeenRequest[] = [];
  readonly upgrades: SeenUpgrade[] = [];
  readonly sockets: WebSocket[] = [];
  reply: (req: SeenRequest) => Reply = () => ({ status: 404, body: { message: "Resource not found" } });
  /** Status to refuse the upgrade with (e.g. 401); undefined = accept. */
  refuseUpgrade: number | undefined;
  private readonly server = http.createServer((req, res) => this.onRequest(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  private socketWaiters: (() => void)[] = [];

  async listen(): Promise<string> {
    this.server.on("upgrade", (req, socket, head) => {
      const u = new URL(req.url ?? "/", "http://x");
      this.upgrades.push({ path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers });
      if (this.refuseUpgrade !== undefined) {
        socket.end(`HTTP/1.1 ${this.refuseUpgrade} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.push(ws);
        const w = this.socketWaiters;
        this.socketWaiters = [];
        for (const f of w) f();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves when `n` events sockets have been accepted in total. */
  async waitSockets(n: number): Promise<WebSocket> {
    while (this.sockets.length < n) await new Promise<void>((r) => this.socketWaiters.push(r));
    return this.sockets[n - 1] as WebSocket;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://x");
      const seen: SeenRequest = {
        method: req.method ?? "",
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        rawQuery: u.search,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      this.requests.push(seen);
      const r = this.reply(seen);
      const send = (): void => {
        if (res.destroyed) return;
        if (r.body === undefined || r.body === null) {
          res.writeHead(r.status).end();
        } else {
          res.writeHead(r.status, { "Content-Type": "application/json" }).end(JSON.stringify(r.body));
        }
      };
      if (r.delayMs) setTimeout(send, r.delayMs);
      else send();
    });
  }
}
