/**
 * The events side of the ARI simulator: one events WebSocket per app name, Asterisk's delivery rules, and
 * ApplicationReplaced.
 *
 * Delivery (res_stasis as recorded and as media-protocols.md §3.1/§3.9 describe it):
 * - subscribeAll=false: an app gets the events of channels it is subscribed to (inbound: from StasisStart; channels
 *   it originated or created with externalMedia: from the dial on) and of bridges it created.
 * - subscribeAll=true: every event, and bridge playback events twice (the recording shows each PlaybackStarted /
 *   PlaybackFinished of a bridge playback delivered twice; channel playbacks once).
 * - Nothing is queued while an app has no socket: Asterisk drops those events.
 */
import { WebSocket } from "ws";
import { ariTimestamp, type Json, type SimBridgeState, type SimChannelState } from "./ari-sim-model.js";

export interface EventConn {
  readonly ws: WebSocket;
  readonly app: string;
  readonly subscribeAll: boolean;
  /** False once another client took the app name: Asterisk stops sending to it. */
  active: boolean;
}

export interface EventTopics {
  channel?: SimChannelState | undefined;
  /** A second channel the event concerns (Dial caller). */
  other?: SimChannelState | undefined;
  bridge?: SimBridgeState | undefined;
  /** Bridge playback events: delivered twice with subscribeAll=true (recorded). */
  doubleOnSubscribeAll?: boolean;
}

/** Every event as it was sent, for assertions (the `application` it went to included). */
export interface SentEvent {
  app: string;
  event: Json;
}

export class EventHub {
  readonly conns: EventConn[] = [];
  readonly sent: SentEvent[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly asteriskId: string) {}

  /** Called after every delivery (waiters re-check their predicates). */
  onSent(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** The app of the most recent active connection (where `placeCall` sends calls by default). */
  defaultApp(): string | undefined {
    for (let i = this.conns.length - 1; i >= 0; i--) {
      const c = this.conns[i] as EventConn;
      if (c.active && c.ws.readyState === WebSocket.OPEN) return c.app;
    }
    return this.conns.at(-1)?.app;
  }

  isRegistered(app: string): boolean {
    return this.conns.some((c) => c.app === app && c.active && c.ws.readyState === WebSocket.OPEN);
  }

  apps(): string[] {
    return [...new Set(this.conns.filter((c) => c.active && c.ws.readyState === WebSocket.OPEN).map((c) => c.app))];
  }

  subscribeAllFor(app: string): boolean {
    return this.conns.some((c) => c.app === app && c.active && c.subscribeAll && c.ws.readyState === WebSocket.OPEN);
  }

  /** A new events socket for `app`: the previous owner of the name gets ApplicationReplaced and goes quiet. */
  connect(ws: WebSocket, app: string, subscribeAll: boolean): EventConn {
    for (const old of this.conns) {
      if (old.app === app && old.active) this.replaceConn(old);
    }
    const conn: EventConn = { ws, app, subscribeAll, active: true };
    this.conns.push(conn);
    ws.on("close", () => {
      const i = this.conns.indexOf(conn);
      if (i >= 0) this.conns.splice(i, 1);
      this.poke();
    });
    this.poke();
    return conn;
  }

  /** Another client registered `app` (every app when undefined): the sockets we serve go quiet. */
  replace(app?: string): void {
    for (const c of this.conns) {
      if (c.active && (app === undefined || c.app === app)) this.replaceConn(c);
    }
  }

  openSockets(): number {
    return this.conns.filter((c) => c.ws.readyState === WebSocket.OPEN).length;
  }

  /** Closes every events socket abruptly, as an Asterisk restart or a network cut does. */
  dropAll(): void {
    for (const c of [...this.conns]) c.ws.terminate();
  }

  /**
   * Publishes one event. `body` holds the event's own fields in recorded key order; `pre` fields go before `type`
   * (ChannelVarset and ChannelHangupRequest put theirs first). `application` is added per receiving app, last.
   */
  publish(type: string, body: Json, topics: EventTopics, pre: Json = {}): void {
    const ev: Json = { ...pre, type, timestamp: ariTimestamp(), ...body, asterisk_id: this.asteriskId };
    for (const c of this.conns) {
      if (!c.active || c.ws.readyState !== WebSocket.OPEN) continue;
      let times = 0;
      if (c.subscribeAll) times = topics.doubleOnSubscribeAll ? 2 : 1;
      else if (this.subscribed(c.app, topics)) times = 1;
      for (let i = 0; i < times; i++) this.send(c, { ...ev, application: c.app });
    }
    this.poke();
  }

  /** ApplicationReplaced has the app first, as Asterisk builds it. */
  private replaceConn(c: EventConn): void {
    if (c.ws.readyState === WebSocket.OPEN) {
      this.send(c, { type: "ApplicationReplaced", timestamp: ariTimestamp(), application: c.app, asterisk_id: this.asteriskId });
    }
    c.active = false;
  }

  private subscribed(app: string, t: EventTopics): boolean {
    if (t.channel?.subscribers.has(app)) return true;
    if (t.other?.subscribers.has(app)) return true;
    return t.bridge?.subscribers.has(app) ?? false;
  }

  private send(c: EventConn, ev: Json): void {
    this.sent.push({ app: c.app, event: ev });
    c.ws.send(JSON.stringify(ev));
  }

  private poke(): void {
    for (const f of [...this.listeners]) f();
  }
}
