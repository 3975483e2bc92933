/**
 * What templates see (playbook.md §5): the call's built-in variables over the layered user variables.
 * Built by the call for each render (built-ins such as `time` and `scene` change during a call).
 */

export const BUILTIN_VARIABLES = [
  "call_id",
  "session_id",
  "call_type",
  "direction",
  "caller",
  "callee",
  "start_time",
  "date",
  "time",
  "weekday",
  "playbook",
  "scene",
  "sip",
] as const;

const BUILTINS: ReadonlySet<string> = new Set(BUILTIN_VARIABLES);

/** Built-ins cannot be set by `<set_var>`, `set_variable`, collectors or front matter `variables`. */
export const isBuiltinVariable = (name: string): boolean => BUILTINS.has(name);

/** Variables starting with `_` are internal: hidden from templates, events and hooks. */
export const isInternalVariable = (name: string): boolean => name.startsWith("_");

export type CallType = "websocket" | "twilio" | "freeswitch" | "asterisk";

export interface CallFacts {
  callId: string;
  callType: CallType;
  direction: "inbound" | "outbound";
  /** Caller id number (plain string, not a URI). */
  caller?: string;
  /** Dialled number or extension. */
  callee?: string;
  /** Creation time of the call. */
  startTime: Date;
  /** Playbook file name, e.g. `support.md`. */
  playbook: string;
  /** Current scene id. */
  scene?: string;
  /** INVITE headers already selected by `selectSipHeaders`, keyed by their original names. */
  sipHeaders?: Readonly<Record<string, string>>;
}

export interface ClockOptions {
  /** IANA zone of `date`, `time`, `weekday` (`[log] timezone`); empty or absent = the system's. */
  timeZone?: string;
  /** The render time (tests); default now. */
  now?: Date;
}

/** `X-Customer-Id` -> `x_customer_id`, the alias usable as `sip.x_customer_id`. */
export const sipAlias = (header: string): string => header.toLowerCase().replace(/[^a-z0-9]+/g, "_");

/**
 * The INVITE headers a playbook exposes: the `sip.extractHeaders` names (case-insensitive), or every `X-`
 * header when the playbook lists none.
 */
export function selectSipHeaders(all: Readonly<Record<string, string>>, extract?: readonly string[]): Record<string, string> {
  const wanted = extract && new Set(extract.map((h) => h.toLowerCase()));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    const lower = name.toLowerCase();
    if (wanted ? wanted.has(lower) : lower.startsWith("x-")) out[name] = value;
  }
  return out;
}

/** The `sip` map: each header by its original name and by its lowercase underscore alias. */
function sipMap(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = value;
    out[sipAlias(name)] ??= value;
  }
  return out;
}

export function clockVariables(opts: ClockOptions = {}): { date: string; time: string; weekday: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: opts.timeZone || undefined,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      weekday: "long",
    })
      .formatToParts(opts.now ?? new Date())
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}`, weekday: String(parts.weekday) };
}

export function builtinVariables(call: CallFacts, opts: ClockOptions = {}): Record<string, unknown> {
  return {
    call_id: call.callId,
    session_id: call.callId,
    call_type: call.callType,
    direction: call.direction,
    caller: call.caller ?? "",
    callee: call.callee ?? "",
    start_time: call.startTime.toISOString(),
    ...clockVariables(opts),
    playbook: call.playbook,
    scene: call.scene ?? "",
    sip: sipMap(call.sipHeaders ?? {}),
  };
}

/**
 * The render context: `layers` lowest precedence first (front matter `variables`, handler rule, the call's
 * own, runtime `set_var`/collectors/tool results), then `local` names of one render (`args`, `result`,
 * `reason`, `text`), then the built-ins, which nothing overrides. Internal (`_`) names are left out.
 */
export function templateContext(
  call: CallFacts,
  layers: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>,
  opts: ClockOptions & { local?: Readonly<Record<string, unknown>> } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer ?? {})) if (!isInternalVariable(k)) out[k] = v;
  }
  Object.assign(out, opts.local ?? {});
  return Object.assign(out, builtinVariables(call, opts));
}
