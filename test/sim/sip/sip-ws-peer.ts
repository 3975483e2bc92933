/**
 * A fake PBX for the /phone page: SIP over secure WebSocket (RFC 7118, subprotocol "sip") as the lab's
 * FreeSWITCH (wss-binding :7443) and Asterisk (/ws on 8089) speak it. It challenges REGISTER with 401 and INVITE
 * with 407 (MD5 digest, qop=auth, checked for real: a wrong password gets 403), answers the INVITE with
 * 100/180/200 and an SDP answer (ICE and DTLS attributes as a WebRTC endpoint sends them), and records every
 * request so a test can assert what the browser sent. No media: the answer's candidate is a UDP socket that
 * never replies, which is all a signalling test needs.
 */
import { createHash, randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export interface SipRequest {
  method: string;
  uri: string;
  /** Header names lower-cased; repeated headers joined by ", ". */
  headers: Record<string, string>;
  body: string;
}

export interface SipWsPeerOptions {
  cert: string;
  key: string;
  users: Record<string, string>;
  realm?: string;
  /** The numbers an INVITE may reach (user part of the request URI); others get 404. Default: any. */
  numbers?: string[];
}

const md5 = (s: string): string => createHash("md5").update(s).digest("hex");

/** One SIP message from a WebSocket text frame (a whole message per frame, RFC 7118 §5). */
export function parseSipRequest(text: string): SipRequest | undefined {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  const lines = head.split("\r\n");
  const m = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(lines[0] ?? "");
  if (!m) return undefined; // a response (the browser's answers to our requests): not recorded
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const length = Number(headers["content-length"] ?? 0);
  const body = split < 0 ? "" : Buffer.from(text.slice(split + 4)).subarray(0, length).toString();
  return { method: m[1] as string, uri: m[2] as string, headers, body };
}

/** The parameters of a `Digest k=v, k="v"` header. */
export function digestParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^Digest\s+/i, "").matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) out[(m[1] as string).toLowerCase()] = m[2] ?? m[3] ?? "";
  return out;
}

export class SipWsPeer {
  readonly requests: SipRequest[] = [];
  /** Digest checks: who, which method, and whether the response matched the password. */
  readonly auth: { user: string; method: string; ok: boolean }[] = [];
  private readonly realm: string;
  private readonly nonces = new Set<string>();
  private readonly sockets = new Set<WebSocket>();
  private https?: Server;
  private wss?: WebSocketServer;
  private rtp?: Socket;

  constructor(private readonly options: SipWsPeerOptions) {
    this.realm = options.realm ?? "lab";
  }

  async start(): Promise<number> {
    this.rtp = createSocket("udp4");
    await new Promise<void>((r) => this.rtp!.bind(0, "127.0.0.1", r));
    this.https = createServer({ cert: this.options.cert, key: this.options.key });
    this.wss = new WebSocketServer({ server: this.https, handleProtocols: (p) => (p.has("sip") ? "sip" : false) });
    this.wss.on("connection", (ws) => {
      this.sockets.add(ws);
      ws.on("close", () => this.sockets.delete(ws));
      ws.on("message", (data, isBinary) => {
        if (!isBinary) this.onMessage(ws, data.toString());
      });
    });
    await new Promise<void>((r) => this.https!.listen(0, "127.0.0.1", r));
    return (this.https.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss?.close();
    await new Promise((r) => (this.https ? this.https.close(r) : r(undefined)));
    this.rtp?.close();
  }

  /** Requests of `method`, in order. */
  of(method: string): SipRequest[] {
    return this.requests.filter((r) => r.method === method);
  }

  private onMessage(ws: WebSocket, text: string): void {
    const req = parseSipRequest(text);
    if (!req) return;
    this.requests.push(req);
    switch (req.method) {
      case "REGISTER": {
        if (!this.authorized(ws, req, "authorization", 401)) return;
        const contact = req.headers["contact"] ?? "";
        const expires = req.headers["expires"] ?? "600";
        this.respond(ws, req, 200, "OK", [`Contact: ${contact};expires=${expires}`, `Expires: ${expires}`]);
        return;
      }
      case "INVITE": {
        if (!this.authorized(ws, req, "proxy-authorization", 407)) return;
        const number = /^sips?:([^@;]+)@/.exec(req.uri)?.[1] ?? "";
        if (this.options.numbers && !this.options.numbers.includes(number)) {
          this.respond(ws, req, 404, "Not Found", [], "", randomBytes(4).toString("hex"));
          return;
        }
        const tag = randomBytes(4).toString("hex");
        this.respond(ws, req, 100, "Trying");
        this.respond(ws, req, 180, "Ringing", [], "", tag);
        const sdp = this.answer(req.body);
        this.respond(ws, req, 200, "OK", [`Contact: <sip:agent@127.0.0.1;transport=ws>`, "Content-Type: application/sdp"], sdp, tag);
        return;
      }
      case "ACK":
        return; // no response to ACK
      case "INFO":
      case "BYE":
      case "OPTIONS":
        this.respond(ws, req, 200, "OK");
        return;
      default:
        this.respond(ws, req, 405, "Method Not Allowed", ["Allow: INVITE, ACK, BYE, INFO, OPTIONS, REGISTER"]);
    }
  }

  /** Checks the digest in `header`; without one (or with a wrong one) answers `challenge` or 403 and returns false. */
  private authorized(ws: WebSocket, req: SipRequest, header: string, challenge: 401 | 407): boolean {
    const given = req.headers[header];
    if (given === undefined) {
      const nonce = randomBytes(12).toString("hex");
      this.nonces.add(nonce);
      const name = challenge === 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
      this.respond(ws, req, challenge, challenge === 401 ? "Unauthorized" : "Proxy Authentication Required", [
        `${name}: Digest realm="${this.realm}", nonce="${nonce}", algorithm=MD5, qop="auth"`,
      ]);
      return false;
    }
    const p = digestParams(given);
    const password = this.options.users[p.username ?? ""];
    const ha1 = md5(`${p.username}:${this.realm}:${password ?? ""}`);
    const ha2 = md5(`${req.method}:${p.uri}`);
    const expected = p.qop ? md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
    const ok = password !== undefined && this.nonces.has(p.nonce ?? "") && p.realm === this.realm && p.response === expected;
    this.auth.push({ user: p.username ?? "", method: req.method, ok });
    if (!ok) this.respond(ws, req, 403, "Forbidden");
    return ok;
  }

  /** An SDP answer to a WebRTC offer: its first audio m-line, PCMU, ICE-lite, DTLS passive. */
  private answer(offer: string): string {
    const mid = /a=mid:(\S+)/.exec(offer)?.[1] ?? "0";
    const port = (this.rtp!.address() as AddressInfo).port;
    const fingerprint = Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
    return [
      "v=0",
      `o=- ${Date.now()} 1 IN IP4 127.0.0.1`,
      "s=sip-ws-peer",
      "t=0 0",
      "a=ice-lite",
      `a=group:BUNDLE ${mid}`,
      `m=audio ${port} UDP/TLS/RTP/SAVPF 0`,
      "c=IN IP4 127.0.0.1",
      "a=rtcp-mux",
      `a=mid:${mid}`,
      "a=rtpmap:0 PCMU/8000",
      `a=ice-ufrag:${randomBytes(4).toString("hex")}`,
      `a=ice-pwd:${randomBytes(12).toString("hex")}`,
      `a=fingerprint:sha-256 ${fingerprint}`,
      "a=setup:passive",
      `a=candidate:1 1 udp 2130706431 127.0.0.1 ${port} typ host`,
      "a=end-of-candidates",
      "a=sendrecv",
      "",
    ].join("\r\n");
  }

  private respond(ws: WebSocket, req: SipRequest, status: number, reason: string, extra: string[] = [], body = "", toTag?: string): void {
    const h = req.headers;
    const to = toTag && !/;tag=/.test(h["to"] ?? "") ? `${h["to"]};tag=${toTag}` : h["to"];
    const lines = [
      `SIP/2.0 ${status} ${reason}`,
      `Via: ${h["via"]}`,
      `From: ${h["from"]}`,
      `To: ${to}`,
      `Call-ID: ${h["call-id"]}`,
      `CSeq: ${h["cseq"]}`,
      "Server: sip-ws-peer",
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ];
    ws.send(lines.join("\r\n"));
  }
}
