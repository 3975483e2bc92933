/**
 * A realtime model for engine tests that need no wire: the session records what the engine sends and emits only
 * the server events a test pushes (the wire itself is tested against the OpenAI simulator).
 */
import type { AudioFrame } from "../../audio/index.js";
import type { RealtimeEvent, RealtimeProvider, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";

/** A realtime model session that records what the engine sends, and emits only the server events a test pushes. */
export class FakeSession implements RealtimeSession {
  /** Caller audio as sent (session rate), one entry per append. */
  readonly audio: Int16Array[] = [];
  readonly messages: { role: string; text: string }[] = [];
  creates = 0;
  commits = 0;
  cancels = 0;
  readonly truncates: { itemId: string; audioEndMs: number }[] = [];
  closed = false;
  private readonly pending: RealtimeEvent[] = [];
  private wake: (() => void) | undefined;

  readonly events: AsyncIterable<RealtimeEvent> = {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<RealtimeEvent>> => {
        for (;;) {
          const ev = this.pending.shift();
          if (ev) return { value: ev, done: false };
          if (this.closed) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      },
    }),
  };

  push(ev: RealtimeEvent): void {
    this.pending.push(ev);
    this.wake?.();
  }
  sendAudio(frame: AudioFrame): void {
    this.audio.push(frame.pcm.slice());
  }
  commitAudio(): void {
    this.commits++;
  }
  clearAudio(): void {}
  createResponse(): void {
    this.creates++;
  }
  cancelResponse(): void {
    this.cancels++;
  }
  truncate(itemId: string, audioEndMs: number): void {
    this.truncates.push({ itemId, audioEndMs });
  }
  sendFunctionOutput(): void {}
  addMessage(role: "user" | "assistant" | "system", text: string): void {
    this.messages.push({ role, text });
  }
  updateSession(): void {}
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
  }
}

export class FakeRealtime implements RealtimeProvider {
  readonly name = "fake";
  readonly model = "fake-realtime";
  readonly capabilities = { sampleRates: [24000], audioFormats: ["pcm16", "pcmu", "pcma"] as const, protocols: ["ga"] as const };
  readonly sessions: FakeSession[] = [];
  async connect(_config: RealtimeSessionConfig): Promise<RealtimeSession> {
    const s = new FakeSession();
    this.sessions.push(s);
    return s;
  }
}
