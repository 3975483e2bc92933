/**
 * How a conversation's events leave it (ws-call-api.md §4): stamped with the conversation's wall clock, and none
 * after its hangup but the hangup itself (a late TTS frame, tool result or leg event must not follow it). Both
 * pipelines emit through one sink, so the stamping, the silence after hangup and the error shape are the same.
 */
import { isAppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { ConversationEvent, ErrorSender } from "../conversation.js";

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event as a conversation writes it: the sink adds the timestamp. */
export type EventBody = DistributiveOmit<ConversationEvent, "timestamp">;

export class EventSink {
  private closed = false;

  constructor(
    private readonly send: (e: ConversationEvent) => void,
    private readonly wall: () => number,
    private readonly callId: string,
    private readonly log?: Logger | undefined,
  ) {}

  emit(e: EventBody): void {
    if (this.closed && e.event !== "hangup") return;
    this.send({ ...e, timestamp: this.wall() } as ConversationEvent);
  }

  /** `error {sender, code, error}` for a failure: the AppError's code, else INTERNAL; logged at warn. */
  error(sender: ErrorSender, err: unknown): void {
    const code = isAppError(err) ? err.code : "INTERNAL";
    const message = err instanceof Error ? err.message : String(err);
    this.log?.warn({ sender, code, err }, "conversation error");
    this.emit({ event: "error", trackId: this.callId, sender, code, error: message });
  }

  /** The conversation ended: from now on only its `hangup` goes out. */
  close(): void {
    this.closed = true;
  }
}
