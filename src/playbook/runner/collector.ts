/**
 * One DTMF collection (playbook.md §2.10): prompt (not interruptible), digits, end on the finish key, the
 * length, the inter-digit timeout or the overall timeout (counted from the end of the prompt), validation,
 * re-prompts with the error message, then one result. Timers go through the host, which owns the clock.
 */
import type { Collector, Playbook } from "../types.js";
import { DEFAULT_COLLECTOR } from "./prompt.js";

export const DEFAULT_COLLECTOR_ERROR = "Sorry, that is not valid.";

export interface CollectorResult {
  collector: string;
  var: string;
  digits: string;
  valid: boolean;
  attempt: number;
}

export interface CollectorHost {
  /** Speaks a template source, not interruptible, queued; returns its playId (undefined when it renders empty). */
  say(source: string): string | undefined;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  done(result: CollectorResult): void;
}

/**
 * The collector `name` of `pb`, to fill the variable `varName`; or, when there is no such collector or no variable
 * name, the error text.
 */
export function resolveCollector(
  pb: Pick<Playbook, "collectors">,
  name: string | undefined,
  varName: string | undefined,
): { name: string; def: Collector; varName: string } | string {
  const def = name === undefined ? undefined : pb.collectors[name];
  if (!def || !name) return `unknown collector "${name ?? ""}"; collectors: ${Object.keys(pb.collectors).join(", ")}`;
  if (!varName) return `collector "${name}" needs a variable name`;
  return { name, def, varName };
}

/**
 * A collector run for a trigger (a key action, the `collect_digits` tool, a `<collect>` tag): the collector by
 * name with its prompt (the trigger's, else its own), or why it cannot run. The owner starts it.
 */
export function openCollector(
  pb: Pick<Playbook, "collectors">,
  trigger: { name: string | undefined; varName: string | undefined; prompt: string | undefined },
  host: (run: () => CollectorRun) => CollectorHost,
): CollectorRun | string {
  const found = resolveCollector(pb, trigger.name, trigger.varName);
  if (typeof found === "string") return found;
  const run: CollectorRun = new CollectorRun(found.name, found.def, found.varName, trigger.prompt ?? found.def.prompt, host(() => run));
  return run;
}

/** The system note a collector's result leaves in the history (and tells the model). */
export function collectedNote(r: CollectorResult): string {
  return r.valid ? `[keypad input for ${r.var}: ${r.digits}]` : `[keypad input for ${r.var} failed after ${r.attempt} attempts]`;
}

export class CollectorRun {
  private digits = "";
  private attempt = 1;
  /** The prompt utterance whose end starts the overall timer. */
  private waitingFor: string | undefined;
  private overall: unknown;
  private interDigit: unknown;
  private finished = false;
  readonly min: number;
  readonly max: number;
  private readonly pattern: RegExp | undefined;

  constructor(
    readonly name: string,
    readonly def: Collector,
    readonly varName: string,
    /** Prompt template source: the trigger's, else the collector's own. */
    private readonly prompt: string | undefined,
    private readonly host: CollectorHost,
  ) {
    this.min = def.digits ?? def.minDigits ?? DEFAULT_COLLECTOR.minDigits;
    this.max = def.digits ?? def.maxDigits ?? DEFAULT_COLLECTOR.maxDigits;
    this.pattern = def.validation ? new RegExp(`^(?:${def.validation.pattern})$`) : undefined;
  }

  get interruptible(): boolean {
    return this.def.interruptible ?? false;
  }

  get active(): boolean {
    return !this.finished;
  }

  start(): void {
    this.promptAgain(undefined);
  }

  /** A key press; every key goes to the collector while it is active. */
  onDigit(digit: string): void {
    if (this.finished) return;
    const finishKey = this.def.finishKey ?? DEFAULT_COLLECTOR.finishKey;
    if (finishKey !== "" && digit === finishKey) {
      this.finish();
      return;
    }
    this.digits += digit;
    if (this.digits.length >= this.max) {
      this.finish();
      return;
    }
    this.clear("interDigit");
    this.interDigit = this.host.setTimer(() => this.finish(), this.def.interDigitTimeoutMs ?? DEFAULT_COLLECTOR.interDigitTimeoutMs);
  }

  /** `trackEnd` of an utterance; the end of the prompt starts the overall timer. */
  onPlayEnded(playId: string): void {
    if (this.finished || playId !== this.waitingFor) return;
    this.waitingFor = undefined;
    this.startOverall();
  }

  /** Ends without a result (caller speech on an interruptible collector, a key action, the call ending). */
  cancel(): void {
    this.finished = true;
    this.clear("overall");
    this.clear("interDigit");
  }

  private startOverall(): void {
    this.clear("overall");
    this.overall = this.host.setTimer(() => this.finish(), this.def.timeoutMs ?? DEFAULT_COLLECTOR.timeoutMs);
  }

  private clear(which: "overall" | "interDigit"): void {
    if (this[which] !== undefined) this.host.clearTimer(this[which]);
    this[which] = undefined;
  }

  private valid(digits: string): boolean {
    if (digits.length < this.min || digits.length > this.max) return false;
    return this.pattern ? this.pattern.test(digits) : true;
  }

  private promptAgain(error: string | undefined): void {
    this.waitingFor = undefined;
    let last: string | undefined;
    if (error !== undefined) last = this.host.say(error) ?? last;
    if (this.prompt) last = this.host.say(this.prompt) ?? last;
    if (last === undefined) this.startOverall();
    else this.waitingFor = last;
  }

  private finish(): void {
    if (this.finished) return;
    this.clear("overall");
    this.clear("interDigit");
    const digits = this.digits;
    if (this.valid(digits)) {
      this.finished = true;
      this.host.done({ collector: this.name, var: this.varName, digits, valid: true, attempt: this.attempt });
      return;
    }
    const retries = this.def.retryTimes ?? DEFAULT_COLLECTOR.retryTimes;
    if (this.attempt <= retries) {
      this.attempt++;
      this.digits = "";
      this.promptAgain(this.def.validation?.errorMessage ?? DEFAULT_COLLECTOR_ERROR);
      return;
    }
    this.finished = true;
    this.host.done({ collector: this.name, var: this.varName, digits, valid: false, attempt: this.attempt });
  }
}
