/**
 * Webhook signatures (config.md §2.12): `X-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
 * Used for post-call hooks and the inbound handler webhook; receivers recompute it over the raw bytes.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export function signBody(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Constant-time check of a received `X-Signature` header against the raw body. */
export function verifySignature(secret: string, body: string | Uint8Array, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(signBody(secret, body));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
