/**
 * Asterisk hangup causes (media-protocols.md §3.8). ARI speaks Q.850 numbers (`reason_code`, `cause`); the call
 * layer speaks the cause names FreeSWITCH also uses (NORMAL_CLEARING, USER_BUSY...), so both PBXs report alike.
 */

/** SIP status we want the caller to get -> the `reason_code` that makes Asterisk send it (§3.8). */
const SIP_TO_Q850: Readonly<Record<number, number>> = {
  403: 21,
  404: 1,
  408: 18,
  410: 22,
  480: 19,
  484: 28,
  486: 17,
  488: 58,
  500: 127,
  502: 27,
  503: 34,
  603: 21,
};

/** The same table read backwards: a failed originate's `ChannelDestroyed.cause` -> `reject.code` (unlisted: 480). */
const Q850_TO_SIP: Readonly<Record<number, number>> = {
  1: 404,
  17: 486,
  18: 408,
  19: 480,
  21: 403,
  22: 410,
  27: 502,
  28: 484,
  34: 503,
  58: 488,
  127: 500,
};

/** Q.850 cause names as the call layer (and FreeSWITCH) spell them. */
const Q850_NAMES: Readonly<Record<number, string>> = {
  1: "UNALLOCATED_NUMBER",
  3: "NO_ROUTE_DESTINATION",
  16: "NORMAL_CLEARING",
  17: "USER_BUSY",
  18: "NO_USER_RESPONSE",
  19: "NO_ANSWER",
  20: "SUBSCRIBER_ABSENT",
  21: "CALL_REJECTED",
  22: "NUMBER_CHANGED",
  27: "DESTINATION_OUT_OF_ORDER",
  28: "INVALID_NUMBER_FORMAT",
  31: "NORMAL_UNSPECIFIED",
  34: "NORMAL_CIRCUIT_CONGESTION",
  38: "NETWORK_OUT_OF_ORDER",
  41: "NORMAL_TEMPORARY_FAILURE",
  42: "SWITCH_CONGESTION",
  58: "BEARERCAPABILITY_NOTAVAIL",
  102: "RECOVERY_ON_TIMER_EXPIRE",
  127: "INTERWORKING",
};
const NAME_TO_Q850: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(Q850_NAMES).map(([n, name]) => [name, Number(n)]));

/** `reason_code` for a reject with SIP `code` (a code Asterisk cannot produce exactly falls back to 480's cause). */
export function q850ForSip(code: number): number {
  return SIP_TO_Q850[code] ?? (code >= 600 ? 21 : code >= 500 ? 34 : 19);
}

/** SIP code of a failed originate from its Q.850 cause (§3.8: unlisted causes give 480). */
export function sipForQ850(cause: number | undefined): number {
  return (cause !== undefined ? Q850_TO_SIP[cause] : undefined) ?? 480;
}

/** The call layer's name of a Q.850 cause (`Q850_<n>` for the rare ones without a name here). */
export function causeName(cause: number | undefined): string {
  if (cause === undefined || cause === 0) return "NORMAL_CLEARING";
  return Q850_NAMES[cause] ?? `Q850_${cause}`;
}

/** `reason_code` for a hangup cause name from the call layer (NORMAL_CLEARING when unknown). */
export function q850ForCause(name: string | undefined): number {
  if (name === undefined) return 16;
  const m = /^Q850_(\d+)$/.exec(name);
  return m ? Number(m[1]) : (NAME_TO_Q850[name] ?? 16);
}
