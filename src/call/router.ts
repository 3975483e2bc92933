/**
 * Inbound routing (config.md §2.5): which playbook an inbound PBX or Twilio call runs, or whether it waits for an
 * application, or is rejected. Order: a playbook named by the PBX always wins; then the handler — playbook rules
 * (caller/callee regexes, first match, else the default) or a webhook that answers with JSON. Any failure
 * rejects the call at once with 503, so a caller is never left hanging.
 */
import type { Config } from "../config.js";
import { isAppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Playbook } from "../playbook/types.js";
import { deadline } from "../util/deadline.js";
import { signBody } from "../util/hmac.js";
import type { IncomingCall } from "../pbx/call-control.js";

export type CallType = "freeswitch" | "asterisk" | "twilio";
type Variables = Record<string, string | number | boolean>;

export type { IncomingCall } from "../pbx/call-control.js";

export type RouteDecision =
  | { action: "playbook"; playbook: Playbook; variables: Variables; source: "pbx" | "rule" | "default" | "webhook" | "twilio" }
  | { action: "attach"; variables: Variables }
  | { action: "reject"; code: number; reason: string; detail: string };

/** What the router needs to turn names and inline text into playbooks (PlaybookStore). */
export interface PlaybookSource {
  load(name: string): Promise<Playbook>;
  parseContent(content: string, label?: string): Promise<Playbook>;
}

export interface RouterOptions {
  handler: Config["handler"];
  /** `[twilio] playbook`: tried before the rules for Twilio streams. */
  twilioPlaybook?: string;
  playbooks: PlaybookSource;
  log: Logger;
  userAgent: string;
}

interface CompiledRule {
  caller: RegExp | undefined;
  callee: RegExp | undefined;
  callType: CallType | undefined;
  playbook: string;
  variables: Variables;
}

const REJECT_UNAVAILABLE = { code: 503, reason: "Service Unavailable" } as const;

export class InboundRouter {
  private readonly rules: CompiledRule[];

  constructor(private readonly options: RouterOptions) {
    // The config schema already refused invalid regexes, so compiling cannot fail here.
    this.rules = options.handler.rules.map((r) => ({
      caller: r.caller === undefined ? undefined : new RegExp(r.caller),
      callee: r.callee === undefined ? undefined : new RegExp(r.callee),
      callType: r.call_type,
      playbook: r.playbook,
      variables: r.variables,
    }));
  }

  /**
   * Loads every playbook the handler names (rules, default, [twilio] playbook) and returns a warning for each that
   * is missing or invalid. Such a playbook does not stop the controller; the calls that need it are rejected.
   */
  async startupWarnings(): Promise<string[]> {
    const named = new Set<string>([...this.rules.map((r) => r.playbook), this.options.handler.default, this.options.twilioPlaybook ?? ""]);
    named.delete("");
    const warnings: string[] = [];
    for (const name of named) {
      try {
        await this.options.playbooks.load(name);
      } catch (err) {
        warnings.push(isAppError(err) ? `${err.code}: ${err.message}` : String(err));
      }
    }
    return warnings;
  }

  async route(call: IncomingCall, signal?: AbortSignal): Promise<RouteDecision> {
    const log = this.options.log.child({ callId: call.callId });
    const decision = await this.decide(call, signal).catch((err: unknown) => reject(err));
    if (decision.action === "reject") log.warn({ code: decision.code, detail: decision.detail }, "inbound call rejected");
    else log.info({ action: decision.action, playbook: decision.action === "playbook" ? decision.playbook.name : undefined }, "inbound call routed");
    return decision;
  }

  private async decide(call: IncomingCall, signal: AbortSignal | undefined): Promise<RouteDecision> {
    if (call.pbxPlaybook) {
      return { action: "playbook", playbook: await this.options.playbooks.load(call.pbxPlaybook), variables: call.variables, source: "pbx" };
    }
    if (call.callType === "twilio" && this.options.twilioPlaybook) {
      return { action: "playbook", playbook: await this.options.playbooks.load(this.options.twilioPlaybook), variables: call.variables, source: "twilio" };
    }
    if (this.options.handler.type === "webhook") return this.askWebhook(call, signal);

    for (const rule of this.rules) {
      if (rule.callType && rule.callType !== call.callType) continue;
      if (rule.caller && !rule.caller.test(call.caller)) continue;
      if (rule.callee && !rule.callee.test(call.callee)) continue;
      const playbook = await this.options.playbooks.load(rule.playbook);
      return { action: "playbook", playbook, variables: { ...rule.variables, ...call.variables }, source: "rule" };
    }
    if (this.options.handler.default) {
      return { action: "playbook", playbook: await this.options.playbooks.load(this.options.handler.default), variables: call.variables, source: "default" };
    }
    return { action: "reject", ...REJECT_UNAVAILABLE, detail: "no handler rule matched and no default playbook is set" };
  }

  /** POSTs the call to the webhook and follows its JSON answer; anything unexpected rejects with 503. */
  private async askWebhook(call: IncomingCall, signal: AbortSignal | undefined): Promise<RouteDecision> {
    const h = this.options.handler;
    const body = JSON.stringify({
      event: "incoming",
      callId: call.callId,
      dialogId: call.callId,
      createdAt: call.createdAt,
      callType: call.callType,
      direction: call.direction,
      caller: call.caller,
      callerName: call.callerName ?? null,
      callee: call.callee,
      headers: call.headers,
      variables: call.variables,
      pbxPlaybook: call.pbxPlaybook ?? null,
      attachUrl: call.attachUrl,
    });
    const headers: Record<string, string> = {
      ...h.headers,
      "Content-Type": "application/json",
      "User-Agent": this.options.userAgent,
      "X-Active-Call-Event": "incoming",
    };
    if (h.secret) headers["X-Signature"] = signBody(h.secret, body);

    const limit = deadline(h.timeout_ms, signal);
    const combined = limit.signal;
    let text: string;
    try {
      const res = await fetch(h.url, { method: h.method, headers, body, signal: combined });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        return webhookFailed(`webhook answered HTTP ${res.status}`);
      }
      text = await readLimited(res, h.max_reply_bytes, combined);
    } catch (err) {
      if (err instanceof ReplyTooLarge) return webhookFailed(err.message);
      const name = (err as Error).name;
      return webhookFailed(name === "TimeoutError" || limit.timedOut ? `webhook did not answer within ${h.timeout_ms} ms` : `webhook request failed: ${(err as Error).message}`);
    } finally {
      limit.clear();
    }

    if (text.trim() === "") return { action: "attach", variables: call.variables };
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      return webhookFailed("webhook reply is not JSON");
    }
    if (typeof reply !== "object" || reply === null || Array.isArray(reply)) return webhookFailed("webhook reply is not a JSON object");
    const r = reply as Record<string, unknown>;
    const variables = { ...call.variables, ...pickVariables(r.variables) };
    const action = r.action ?? (Object.keys(r).length === 0 ? "attach" : undefined);
    switch (action) {
      case "attach":
        return { action: "attach", variables };
      case "reject": {
        const code = typeof r.code === "number" && Number.isInteger(r.code) && r.code >= 400 && r.code <= 699 ? r.code : 603;
        const reason = typeof r.reason === "string" ? r.reason : "Declined";
        return { action: "reject", code, reason, detail: "the webhook rejected the call" };
      }
      case "playbook": {
        const hasName = typeof r.playbook === "string";
        const hasContent = typeof r.content === "string";
        if (hasName === hasContent) return webhookFailed('webhook "playbook" reply needs exactly one of "playbook" and "content"');
        try {
          const playbook = hasName
            ? await this.options.playbooks.load(r.playbook as string)
            : await this.options.playbooks.parseContent(r.content as string, `webhook-${call.callId}.md`);
          return { action: "playbook", playbook, variables, source: "webhook" };
        } catch (err) {
          return reject(err);
        }
      }
      default:
        return webhookFailed(`webhook reply has an unknown action ${JSON.stringify(action ?? null)}`);
    }
  }
}

function webhookFailed(detail: string): RouteDecision {
  return { action: "reject", ...REJECT_UNAVAILABLE, detail: `WEBHOOK_FAILED: ${detail}` };
}

/** A playbook that cannot be loaded (missing, invalid, bad name) rejects the call before it is answered. */
function reject(err: unknown): RouteDecision {
  const detail = isAppError(err) ? `${err.code}: ${err.message}` : `INTERNAL: ${String(err)}`;
  return { action: "reject", ...REJECT_UNAVAILABLE, detail };
}

function pickVariables(v: unknown): Variables {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
  const out: Variables = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") out[k] = x;
  return out;
}

class ReplyTooLarge extends Error {}

/** Reads a response body, failing once it passes `limit` bytes instead of buffering whatever arrives. */
async function readLimited(res: Response, limit: number, signal: AbortSignal): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new ReplyTooLarge(`webhook reply exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

