/**
 * Outbound calls (`POST /api/calls`, `/call/pbx` `invite` of an unknown id): the call is registered first (so a
 * refused registration, e.g. CAPACITY, dials nobody), then the PBX dials it; its media and playbook start when
 * the far end answers. `pbx` picks FreeSWITCH or Asterisk; it may be left out when only one is enabled (ws-call-api §7.2).
 */
import { randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { CallManager } from "../call/manager.js";
import type { LegSetup } from "../call/session.js";
import type { CallControl, OriginateRequest, PbxKind } from "../pbx/call-control.js";
import type { AsteriskAdapter } from "../pbx/asterisk/adapter.js";
import type { FreeswitchAdapter } from "../pbx/freeswitch/adapter.js";
import type { PlaybookStore } from "../playbook/store.js";
import type { OriginateBody } from "./call-routes.js";

export interface OriginateDeps {
  calls: CallManager;
  playbooks: PlaybookStore;
  freeswitch?: FreeswitchAdapter | undefined;
  asterisk?: AsteriskAdapter | undefined;
  config: Config;
}

/** What each PBX adapter's originate gives the call layer, in one shape. */
interface Placed {
  control: CallControl;
  startMedia: () => Promise<LegSetup>;
  /** Forget a call that was never dialled. */
  abandon: () => void;
  dial: () => void;
  defaultCaller: string;
}

export function makeOriginate(d: OriginateDeps): ((req: OriginateBody) => Promise<{ id: string }>) | undefined {
  if (!d.freeswitch && !d.asterisk) return undefined;
  const place = (pbx: PbxKind, request: OriginateRequest): Placed => {
    if (pbx === "asterisk") {
      if (!d.asterisk) throw new AppError("PBX_UNAVAILABLE", "Asterisk is not enabled");
      const { channel, dial } = d.asterisk.originate(request);
      return { control: channel, startMedia: () => channel.startMedia(), abandon: () => channel.markGone(16, "system"), dial, defaultCaller: d.config.asterisk.caller_id };
    }
    if (!d.freeswitch) throw new AppError("PBX_UNAVAILABLE", "FreeSWITCH is not enabled");
    const { channel, dial } = d.freeswitch.originate(request);
    return { control: channel, startMedia: () => channel.startMedia(), abandon: () => channel.markGone("NORMAL_CLEARING", undefined, "system"), dial, defaultCaller: d.config.freeswitch.caller_id_number };
  };
  return async (req) => {
    if (req.pbx === undefined && d.freeswitch && d.asterisk) {
      throw new AppError("BAD_REQUEST", "both FreeSWITCH and Asterisk are enabled: say which one dials with \"pbx\"", { details: { fields: [{ path: "pbx", message: "required when both PBXs are enabled" }] } });
    }
    const pbx: PbxKind = req.pbx ?? (d.freeswitch ? "freeswitch" : "asterisk");
    const playbook =
      req.playbook !== undefined ? await d.playbooks.load(req.playbook) : req.content !== undefined ? await d.playbooks.parseContent(req.content, "inline.md") : undefined;
    const id = req.id ?? randomUUID();
    if (d.calls.getLive(id)) throw new AppError("ALREADY_ATTACHED", `call ${id} is already live`);
    const placed = place(pbx, { id, to: req.to, from: req.from, fromName: req.fromName, timeoutMs: req.timeoutMs, headers: req.headers });
    try {
      d.calls.create({
        id,
        callType: pbx,
        direction: "outbound",
        caller: req.from ?? placed.defaultCaller,
        callee: req.to,
        control: placed.control,
        legFactory: placed.startMedia,
        plan: { playbook, variables: req.variables ?? {} },
      });
    } catch (err) {
      placed.abandon();
      throw err;
    }
    placed.dial();
    return { id };
  };
}
