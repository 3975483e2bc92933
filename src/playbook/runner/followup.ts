/**
 * The follow-up clock of playbook.md §2.11, shared by the scene runner and the Realtime conversation: the countdown
 * (a PausableTimer on the owner's clock), the follow-ups made in a row (reset by caller speech or a key), the total
 * (for the post-call hook), the paused flag of `pause`/`resume`, and what a timeout means.
 *
 * It knows nothing of what keeps the agent busy: each owner checks its own state (playing, generating, a collector,
 * ending) before `arm`, and acts on what `next` decides (speak, note and ask the model, or say goodbye and hang up).
 */
import type { Followup } from "../types.js";
import { PausableTimer, type TimerClock } from "../../util/pausable-timer.js";

/** What a follow-up timeout asks for. */
export type FollowupAction =
  /** Speak `text` (a template source) word for word, interruptible. */
  | { kind: "say"; text: string }
  /** Add this system note to the history and let the model reply. */
  | { kind: "note"; text: string }
  /** `max` follow-ups in a row: say `text` (when set, not interruptible), then hang up with `maxFollowUp`. */
  | { kind: "goodbye"; text?: string };

export class FollowupClock<H> {
  private readonly timer: PausableTimer<H>;
  private inRow = 0;
  private made = 0;
  private isPaused = false;

  /** `fire` runs when the countdown ends (the owner then asks `next`). */
  constructor(clock: TimerClock<H>, fire: () => void) {
    this.timer = new PausableTimer(clock, fire);
  }

  /** Counting down now (not when paused or idle). */
  get running(): boolean {
    return this.timer.running;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** Follow-ups made in a row since the caller last spoke or pressed a key. */
  get count(): number {
    return this.inRow;
  }

  /** Follow-ups made in the whole call (`followUps` of the snapshot). */
  get total(): number {
    return this.made;
  }

  /** Stops the countdown (the count stays: the agent spoke, or something else took over). */
  cancel(): void {
    this.timer.cancel();
  }

  /** The caller spoke or pressed a key: the countdown stops and the count starts again. */
  reset(): void {
    this.timer.cancel();
    this.inRow = 0;
  }

  /** Starts the countdown unless one is running or the clock is paused; true when it started. */
  arm(timeoutMs: number): boolean {
    if (this.isPaused || this.timer.running) return false;
    this.timer.start(timeoutMs);
    return true;
  }

  /** `pause`: the countdown keeps what is left of it. */
  pause(): void {
    if (this.isPaused) return;
    this.isPaused = true;
    this.timer.pause();
  }

  /**
   * `resume`. With `canResume` (the owner is not ending and no collector runs) a paused countdown goes on with what
   * was left of it. Otherwise, or when none was paused, it is dropped and the result is true: the owner should arm a
   * fresh one if it is idle. False when not paused or when the old countdown goes on.
   */
  resume(canResume: boolean): boolean {
    if (!this.isPaused) return false;
    this.isPaused = false;
    if (canResume && this.timer.resume()) return false;
    this.timer.cancel();
    return true;
  }

  /** The countdown of `followup` ended: what to do, counting the follow-up (a goodbye is not counted). */
  next(followup: Pick<Followup, "timeout" | "max" | "text" | "goodbye">): FollowupAction {
    if (this.inRow >= followup.max) return followup.goodbye !== undefined ? { kind: "goodbye", text: followup.goodbye } : { kind: "goodbye" };
    this.inRow++;
    this.made++;
    if (followup.text !== undefined) return { kind: "say", text: followup.text };
    return { kind: "note", text: `[the caller has been silent for ${Math.round(followup.timeout / 1000)} seconds]` };
  }
}
