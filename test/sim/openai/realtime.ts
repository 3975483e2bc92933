/**
 * The Realtime half of the OpenAI simulator (media-protocols.md §5.4), GA event names by default and the beta
 * names when the client sends `OpenAI-Beta: realtime=v1`.
 *
 * - On connect: `session.created`; `session.update` -> `session.updated` (the session is recorded).
 * - `input_audio_buffer.append`: PCM16 24 kHz (or G.711 per the session) is accumulated; with server turn
 *   detection a simple energy detector emits `input_audio_buffer.speech_started` / `speech_stopped` (after
 *   `silence_duration_ms`), then, when `create_response` is on, a response is produced.
 * - `input_audio_buffer.commit`, `response.create`: a response from the queue (`respond`), else an echo text.
 *   Responses stream `response.created`, `response.output_item.added`, audio deltas (base64), transcript deltas,
 *   `…done` events, optional function calls (`response.function_call_arguments.done`), then `response.done`.
 * - `response.create` while a response is active -> error `conversation_already_has_active_response`.
 * - `response.cancel`: the active response ends with `status: cancelled`; with none active -> error
 *   `response_cancel_not_active`.
 * - `conversation.item.truncate`: checked against the audio sent for that item (beyond it -> error), then
 *   `conversation.item.truncated`.
 * - `conversation.item.create` -> `conversation.item.created`.
 * - Input transcription (when the session configures it: GA `audio.input.transcription`, beta
 *   `input_audio_transcription`): after each committed caller turn, `conversation.item.input_audio_transcription.delta`
 *   and `.completed` for the committed item, with the next text of `transcripts` (default "hello"), sent a moment
 *   after the commit, as the service does (the transcript usually arrives after the response has started).
 * Every client event is recorded per connection.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { WebSocket } from "ws";

export interface RealtimeReply {
  /** Spoken text (transcript deltas); the audio is a tone of `audioMs` (default 60 ms per character, ≥ 200). */
  text?: string;
  audioMs?: number;
  functionCall?: { name: string; arguments: string; callId?: string };
  /** Delay between two audio deltas in ms (default 0: faster than real time, like the real service). */
  deltaIntervalMs?: number;
  /** Close the socket after this many server events of the response (a dropped connection). */
  dropAfterEvents?: number;
}

export interface RealtimeConnection {
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  beta: boolean;
  /** Client events in arrival order. */
  received: Record<string, unknown>[];
  /** Server events sent. */
  sent: Record<string, unknown>[];
  session: Record<string, unknown>;
  socket: WebSocket;
}

interface ActiveResponse {
  id: string;
  cancelled: boolean;
}

let counter = 0;
const nextId = (prefix: string) => `${prefix}_sim${++counter}`;

export class RealtimeSim {
  readonly connections: RealtimeConnection[] = [];
  /** Replies for the next responses, in order. */
  readonly replies: RealtimeReply[] = [];
  /** Caller transcripts for the next committed turns, in order (default "hello"). */
  readonly transcripts: string[] = [];
  /** RMS (0..1) above which appended audio counts as speech. */
  speechThreshold = 0.02;

  /** Forgets queued replies and transcripts and the recorded connections (between tests). */
  reset(): void {
    this.replies.length = 0;
    this.transcripts.length = 0;
    this.connections.length = 0;
  }

  accept(socket: WebSocket, info: { path: string; query: Record<string, string>; headers: IncomingHttpHeaders }): void {
    const beta = String(info.headers["openai-beta"] ?? "").includes("realtime=v1");
    const conn: RealtimeConnection = { ...info, beta, received: [], sent: [], session: { type: "realtime", model: info.query.model ?? "" }, socket };
    this.connections.push(conn);
    const state = new ConnectionState(this, conn);
    socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        state.error("invalid_request_error", "invalid_json", "could not parse JSON");
        return;
      }
      conn.received.push(event);
      void state.handle(event);
    });
    state.send({ type: "session.created", session: conn.session });
  }

  closeAll(): void {
    for (const c of this.connections) c.socket.terminate();
  }

  /** Client events of a type, over every connection. */
  receivedOfType(type: string): Record<string, unknown>[] {
    return this.connections.flatMap((c) => c.received.filter((e) => e.type === type));
  }
}

class ConnectionState {
  private active: ActiveResponse | undefined;
  private speaking = false;
  private silenceMs = 0;
  private bufferedMs = 0;
  /** Audio ms sent per assistant item (for truncate checks). */
  private readonly itemAudioMs = new Map<string, number>();

  constructor(
    private readonly sim: RealtimeSim,
    private readonly conn: RealtimeConnection,
  ) {}

  send(event: Record<string, unknown>): void {
    const full = { event_id: nextId("event"), ...event };
    this.conn.sent.push(full);
    if (this.conn.socket.readyState === this.conn.socket.OPEN) this.conn.socket.send(JSON.stringify(full));
  }

  error(type: string, code: string, message: string): void {
    this.send({ type: "error", error: { type, code, message } });
  }

  private name(ga: string): string {
    if (!this.conn.beta) return ga;
    return ga.replace("response.output_audio_transcript.", "response.audio_transcript.").replace("response.output_audio.", "response.audio.");
  }

  private turnDetection(): Record<string, unknown> | null {
    const s = this.conn.session as { audio?: { input?: { turn_detection?: unknown } }; turn_detection?: unknown };
    const td = this.conn.beta ? s.turn_detection : s.audio?.input?.turn_detection;
    if (td === undefined) return { type: "server_vad", silence_duration_ms: 500, create_response: true };
    return td as Record<string, unknown> | null;
  }

  private transcription(): unknown {
    const s = this.conn.session as { audio?: { input?: { transcription?: unknown } }; input_audio_transcription?: unknown };
    return this.conn.beta ? s.input_audio_transcription : s.audio?.input?.transcription;
  }

  /** The committed item's transcript, a little later (after the turn's response has begun, as on the service). */
  private transcribe(itemId: string): void {
    if (!this.transcription()) return;
    const text = this.sim.transcripts.shift() ?? "hello";
    setTimeout(() => {
      if (this.conn.socket.readyState !== this.conn.socket.OPEN) return;
      const half = Math.ceil(text.length / 2);
      for (const delta of [text.slice(0, half), text.slice(half)]) {
        if (delta !== "") this.send({ type: "conversation.item.input_audio_transcription.delta", item_id: itemId, content_index: 0, delta });
      }
      this.send({ type: "conversation.item.input_audio_transcription.completed", item_id: itemId, content_index: 0, transcript: text });
    }, 5);
  }

  private inputFormat(): "pcm16" | "g711" {
    const s = this.conn.session as { audio?: { input?: { format?: { type?: string } } }; input_audio_format?: string };
    const t = this.conn.beta ? s.input_audio_format : s.audio?.input?.format?.type;
    return t && /pcmu|pcma|g711/.test(t) ? "g711" : "pcm16";
  }

  async handle(event: Record<string, unknown>): Promise<void> {
    switch (event.type) {
      case "session.update": {
        const session = (event.session ?? {}) as Record<string, unknown>;
        if (!this.conn.beta && session.type !== "realtime") {
          this.error("invalid_request_error", "missing_required_parameter", "Missing required parameter: 'session.type'.");
          return;
        }
        // Fields left out keep their values, as on the service: a partial `audio` (say, only the input's
        // turn_detection) leaves the formats, the voice and the transcription alone.
        const before = this.conn.session as { audio?: { input?: Record<string, unknown>; output?: Record<string, unknown> } };
        const audio = session.audio as { input?: Record<string, unknown>; output?: Record<string, unknown> } | undefined;
        this.conn.session = { ...this.conn.session, ...session };
        if (audio && before.audio) {
          this.conn.session.audio = { input: { ...before.audio.input, ...audio.input }, output: { ...before.audio.output, ...audio.output } };
        }
        this.send({ type: "session.updated", session: this.conn.session });
        return;
      }
      case "input_audio_buffer.append":
        return this.append(String(event.audio ?? ""));
      case "input_audio_buffer.commit": {
        const itemId = nextId("item");
        this.send({ type: "input_audio_buffer.committed", item_id: itemId, previous_item_id: null });
        this.bufferedMs = 0;
        this.transcribe(itemId);
        return;
      }
      case "input_audio_buffer.clear":
        this.bufferedMs = 0;
        this.send({ type: "input_audio_buffer.cleared" });
        return;
      case "response.create":
        if (this.active) {
          this.error("invalid_request_error", "conversation_already_has_active_response", "Conversation already has an active response in progress");
          return;
        }
        return this.respond();
      case "response.cancel":
        if (!this.active) {
          this.error("invalid_request_error", "response_cancel_not_active", "Cancellation failed: no active response found");
          return;
        }
        this.active.cancelled = true;
        return;
      case "conversation.item.truncate": {
        const itemId = String(event.item_id ?? "");
        const end = Number(event.audio_end_ms);
        const have = this.itemAudioMs.get(itemId);
        if (have === undefined) {
          this.error("invalid_request_error", "item_not_found", `Item ${itemId} not found`);
          return;
        }
        if (!(end >= 0) || end > have) {
          this.error("invalid_request_error", "invalid_value", `Audio content of ${have}ms is shorter than ${end}ms`);
          return;
        }
        this.send({ type: "conversation.item.truncated", item_id: itemId, content_index: event.content_index ?? 0, audio_end_ms: end });
        return;
      }
      case "conversation.item.create": {
        const item = { id: nextId("item"), ...((event.item ?? {}) as Record<string, unknown>) };
        this.send({ type: "conversation.item.created", previous_item_id: null, item });
        return;
      }
      default:
        this.error("invalid_request_error", "unknown_event", `Unknown event type: ${String(event.type)}`);
    }
  }

  private async append(base64: string): Promise<void> {
    const bytes = Buffer.from(base64, "base64");
    let ms: number;
    let level: number;
    if (this.inputFormat() === "g711") {
      ms = bytes.length / 8;
      // G.711 silence is 0xFF (µ-law) / 0xD5 (A-law); count bytes far from those as energy.
      const loud = bytes.filter((b) => (b & 0x7f) < 0x60).length;
      level = bytes.length ? loud / bytes.length : 0;
    } else {
      const n = bytes.length >> 1;
      ms = n / 24;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += bytes.readInt16LE(i * 2) ** 2;
      level = n ? Math.sqrt(sum / n) / 32768 : 0;
    }
    this.bufferedMs += ms;
    const td = this.turnDetection();
    if (!td) return;
    if (level > this.sim.speechThreshold) {
      this.silenceMs = 0;
      if (!this.speaking) {
        this.speaking = true;
        this.send({ type: "input_audio_buffer.speech_started", audio_start_ms: Math.round(this.bufferedMs - ms), item_id: nextId("item") });
        // interrupt_response (default true): the server cancels what it is saying.
        if (this.active && td.interrupt_response !== false) this.active.cancelled = true;
      }
    } else if (this.speaking) {
      this.silenceMs += ms;
      if (this.silenceMs >= Number(td.silence_duration_ms ?? 500)) {
        this.speaking = false;
        const itemId = nextId("item");
        this.send({ type: "input_audio_buffer.speech_stopped", audio_end_ms: Math.round(this.bufferedMs), item_id: itemId });
        this.send({ type: "input_audio_buffer.committed", item_id: itemId, previous_item_id: null });
        this.bufferedMs = 0;
        this.transcribe(itemId);
        if (td.create_response !== false && !this.active) await this.respond();
      }
    }
  }

  private async respond(): Promise<void> {
    const reply = this.sim.replies.shift() ?? { text: "Hello from the simulator." };
    const response: ActiveResponse = { id: nextId("resp"), cancelled: false };
    this.active = response;
    let events = 0;
    const emit = (e: Record<string, unknown>): boolean => {
      this.send(e);
      events++;
      if (reply.dropAfterEvents !== undefined && events >= reply.dropAfterEvents) {
        this.conn.socket.terminate();
        return false;
      }
      return true;
    };
    const tick = () => new Promise((r) => (reply.deltaIntervalMs ? setTimeout(r, reply.deltaIntervalMs) : setImmediate(r)));
    const finish = (status: string) => {
      this.active = undefined;
      this.send({ type: "response.done", response: { id: response.id, object: "realtime.response", status, output: [], usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } } });
    };
    if (!emit({ type: "response.created", response: { id: response.id, object: "realtime.response", status: "in_progress", output: [] } })) return;
    const text = reply.text ?? "";
    if (text !== "" || reply.audioMs !== undefined) {
      const itemId = nextId("item");
      this.itemAudioMs.set(itemId, 0);
      if (!emit({ type: "response.output_item.added", response_id: response.id, output_index: 0, item: { id: itemId, type: "message", role: "assistant", status: "in_progress" } })) return;
      const audioMs = reply.audioMs ?? Math.max(200, 60 * text.length);
      const g711 = this.inputFormat() === "g711";
      const perDeltaMs = 100;
      const words = text.split(/(?<=\s)/).filter((w) => w !== "");
      const steps = Math.ceil(audioMs / perDeltaMs);
      for (let i = 0; i < steps; i++) {
        await tick();
        if (response.cancelled) return finish("cancelled");
        const ms = Math.min(perDeltaMs, audioMs - i * perDeltaMs);
        const audio = g711 ? Buffer.alloc(ms * 8, 0xff) : toneBytes(ms, i * perDeltaMs);
        if (!emit({ type: this.name("response.output_audio.delta"), response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, delta: audio.toString("base64") })) return;
        this.itemAudioMs.set(itemId, (this.itemAudioMs.get(itemId) ?? 0) + ms);
        const word = words[i];
        if (word !== undefined) {
          if (!emit({ type: this.name("response.output_audio_transcript.delta"), response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, delta: word })) return;
        }
      }
      const rest = words.slice(steps).join("");
      if (rest !== "") emit({ type: this.name("response.output_audio_transcript.delta"), response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, delta: rest });
      if (!emit({ type: this.name("response.output_audio.done"), response_id: response.id, item_id: itemId, output_index: 0, content_index: 0 })) return;
      if (!emit({ type: this.name("response.output_audio_transcript.done"), response_id: response.id, item_id: itemId, output_index: 0, content_index: 0, transcript: text })) return;
    }
    if (reply.functionCall) {
      const fc = reply.functionCall;
      const itemId = nextId("item");
      const callId = fc.callId ?? nextId("call");
      if (!emit({ type: "response.output_item.added", response_id: response.id, output_index: 1, item: { id: itemId, type: "function_call", call_id: callId, name: fc.name, arguments: "" } })) return;
      for (let i = 0; i < fc.arguments.length; i += 8) {
        if (!emit({ type: "response.function_call_arguments.delta", response_id: response.id, item_id: itemId, output_index: 1, call_id: callId, delta: fc.arguments.slice(i, i + 8) })) return;
      }
      if (!emit({ type: "response.function_call_arguments.done", response_id: response.id, item_id: itemId, output_index: 1, call_id: callId, name: fc.name, arguments: fc.arguments })) return;
    }
    await tick();
    finish(response.cancelled ? "cancelled" : "completed");
  }
}

function toneBytes(ms: number, offsetMs: number): Buffer {
  const n = ms * 24;
  const start = offsetMs * 24;
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * (start + i)) / 24000)), i * 2);
  return b;
}
