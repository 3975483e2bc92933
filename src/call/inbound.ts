/**
 * Admission of an inbound call that a PBX (or any transport that already holds the caller) hands over: the
 * router decides, then
 * - `playbook`: the call is answered at once and runs it;
 * - `attach`: the call is parked `pending` for an application (`/call/pbx?id=…` then `accept`/`reject`); not
 *   accepted within `[calls] accept_timeout_ms`, it ends with `noAnswer`;
 * - `reject`: the call is recorded as ended (`rejected`) and the PBX is told the SIP code to answer with.
 * The PBX adapters (issues 8, 9) call this; tests drive it with an in-memory leg.
 */
import type { CallOption } from "./call-option.js";
import type { CallManager } from "./manager.js";
import type { InboundRouter, IncomingCall, RouteDecision } from "./router.js";
import type { CallSession, CallType, NegotiatedMedia } from "./session.js";
import type { MediaLeg } from "../media/leg.js";

export interface AdmitOptions {
  /** Starts media once the call is answered (the PBX answers the channel and starts its fork/RTP). */
  legFactory: (option: CallOption) => { leg: MediaLeg; media: NegotiatedMedia };
  /** Aborts routing (the caller hung up while the webhook was asked). */
  signal?: AbortSignal;
}

export interface Admission {
  call: CallSession;
  decision: RouteDecision;
}

export async function admitInbound(calls: CallManager, router: InboundRouter, incoming: IncomingCall, options: AdmitOptions): Promise<Admission> {
  const decision = await router.route(incoming, options.signal);
  const call = calls.create({
    id: incoming.callId,
    callType: incoming.callType as CallType,
    direction: "inbound",
    caller: incoming.caller,
    callee: incoming.callee,
    headers: incoming.headers,
    legFactory: options.legFactory,
    plan: decision.action === "playbook" ? { playbook: decision.playbook, variables: decision.variables, source: decision.source } : { variables: decision.action === "attach" ? decision.variables : incoming.variables },
  });
  switch (decision.action) {
    case "reject":
      call.hangup({ reason: "rejected", initiator: "system", detail: decision.detail });
      break;
    case "playbook":
      await call.command({ command: "accept" }, "rest");
      break;
    case "attach": {
      const timer = setTimeout(() => {
        if (call.state === "pending" || call.state === "ringing") call.hangup({ reason: "noAnswer", initiator: "system", detail: "not accepted in time ([calls] accept_timeout_ms)" });
      }, calls.deps.config.calls.accept_timeout_ms);
      timer.unref();
      void call.ended.then(() => clearTimeout(timer));
      break;
    }
  }
  return { call, decision };
}
