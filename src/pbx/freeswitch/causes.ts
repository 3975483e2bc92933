/**
 * FreeSWITCH hangup causes and SIP codes (media-protocols.md §1.7): `sip_term_status` wins when present; else the
 * cause maps as FreeSWITCH maps it. Also the reason phrases we send with `respond`.
 */

const CAUSE_TO_SIP: Readonly<Record<string, number>> = {
  UNALLOCATED_NUMBER: 404,
  NO_ROUTE_DESTINATION: 404,
  NO_USER_RESPONSE: 408,
  NO_ANSWER: 480,
  SUBSCRIBER_ABSENT: 480,
  NORMAL_UNSPECIFIED: 480,
  INVALID_NUMBER_FORMAT: 484,
  USER_BUSY: 486,
  ORIGINATOR_CANCEL: 487,
  INCOMPATIBLE_DESTINATION: 488,
  DESTINATION_OUT_OF_ORDER: 502,
  NORMAL_TEMPORARY_FAILURE: 503,
  NORMAL_CIRCUIT_CONGESTION: 503,
  SWITCH_CONGESTION: 503,
  GATEWAY_DOWN: 503,
  RECOVERY_ON_TIMER_EXPIRE: 504,
  CALL_REJECTED: 603,
  DECLINE: 603,
};

/** The SIP code of a failed/ended channel: `sip_term_status` when it is a code, else the cause's mapping. */
export function sipCodeOf(cause: string | undefined, sipTermStatus?: string): number | undefined {
  const status = Number(sipTermStatus);
  if (Number.isInteger(status) && status >= 100 && status <= 699) return status;
  return cause === undefined ? undefined : CAUSE_TO_SIP[cause];
}

const REASONS: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  480: "Temporarily Unavailable",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  500: "Server Internal Error",
  503: "Service Unavailable",
  600: "Busy Everywhere",
  603: "Decline",
};

/** `respond` argument: `<code> <reason>`; the reason is reduced to safe characters (it goes on an ESL line). */
export function respondArgument(code: number, reason: string | undefined): string {
  const text = (reason ?? "").replace(/[^\w .,'()-]/g, "").trim().slice(0, 64);
  return `${code} ${text !== "" && text !== "rejected" ? text : (REASONS[code] ?? "Rejected")}`;
}
