/**
 * A realtime model for engine tests that need no wire: the session records what the engine sends and emits only
 * the server events a test pushes (the wire itself is tested against the OpenAI simulator).
 */
import type { AudioFrame } from "../../audio/index.js";
import type { ManualClock } from "../../media/clock.js";
import type { MemoryLeg } from "../../media/memory-leg.js";
import type { CallFacts } from "../../playbook/variables.js";
import { loadPlaybook } from "../../playbook/runner/testutil.js";
import type { RealtimeEvent, RealtimeProvider, RealtimeSession, RealtimeSessionConfig } from "../../providers/types.js";
import { energyVad } from "../serial/testutil.js";
import { RealtimeConversation, type RealtimeConversationOptions } from "./realtime-conversation.js";

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

/**
 * A RealtimeConversation on `leg` and `clock` with the fake model and the energy VAD: call "c1", inbound, on a
 * websocket unless `call` says otherwise; `extra` adds or overrides options.
 */
export function fakeRealtimeCall(
  leg: MemoryLeg,
  clock: ManualClock,
  playbookText: string,
  extra: Partial<Omit<RealtimeConversationOptions, "call">> & { call?: Partial<CallFacts> } = {},
): { conv: RealtimeConversation; provider: FakeRealtime } {
  const provider = new FakeRealtime();
  const { call, ...rest } = extra;
  const conv = new RealtimeConversation({
    leg,
    provider,
    playbook: loadPlaybook(playbookText),
    call: { callId: "c1", callType: "websocket", direction: "inbound", startTime: new Date(0), playbook: "t.md", ...call },
    callId: "c1",
    clock,
    vad: { engine: energyVad },
    ...rest,
  });
  return { conv, provider };
}
