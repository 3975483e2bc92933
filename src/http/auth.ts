/**
 * Optional bearer-token authentication (ws-call-api.md §1.2). The token may come as
 * `Authorization: Bearer <token>` or as the `token` query parameter (browsers cannot set WebSocket headers).
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Paths the HTTP hook lets through without the token: liveness/readiness; the audio fork (its own one-time
 * token); and the Twilio stream, whose token may arrive inside the `start` message (ws-call-api §1.2), so its
 * route checks it itself and closes 1008.
 */
const OPEN_PATHS = [/^\/health\/?$/, /^\/ready\/?$/, /^\/media\/fork\//, /^\/media\/twilio\/?$/];

export function isOpenPath(path: string): boolean {
  return OPEN_PATHS.some((re) => re.test(path));
}

/** Compares in constant time whatever the lengths (both sides are hashed to 32 bytes first). */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents, from the Authorization header or the `token` query parameter. */
export function presentedToken(authorization: string | undefined, url: string): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? "")?.[1]?.trim();
  if (bearer) return bearer;
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get("token") ?? undefined;
}
