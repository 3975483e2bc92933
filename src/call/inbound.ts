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
import type { CallSession, CallType, LegSetup } from "./session.js";
import type { CallControl } from "../pbx/call-control.js";

export interface AdmitOptions {
  /** Starts media once the call is answered (the PBX answers the channel and starts its fork/RTP). */
  legFactory: (option: CallOption) => LegSetup | Promise<LegSetup>;
  /** The PBX channel's control (answer, reject, hangup, transfer, DTMF). */
  control?: CallControl | undefined;
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
    control: options.control,
    plan: decision.action === "playbook" ? { playbook: decision.playbook, variables: decision.variables, source: decision.source } : { variables: decision.action === "attach" ? decision.variables : incoming.variables },
  });
  switch (decision.action) {
    case "reject":
      // Recorded as rejected first (the PBX's own hangup event that follows the reject must not re-label it),
      // then the caller gets the router's SIP status (503 when nothing can take the call), never silence.
      call.hangup({ reason: "rejected", initiator: "system", detail: decision.detail });
      await options.control?.reject(decision.code, decision.reason).catch((err: unknown) => calls.deps.log.warn({ err, callId: call.id }, "pbx reject failed"));
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
