/**
 * Outbound calls (`POST /api/calls`, `/call/pbx` `invite` of an unknown id): the call is registered first (so a
 * refused registration, e.g. CAPACITY, dials nobody), then FreeSWITCH dials it; its media and playbook start when
 * the far end answers.
 */
import { randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { CallManager } from "../call/manager.js";
import type { FreeswitchAdapter } from "../pbx/freeswitch/adapter.js";
import type { PlaybookStore } from "../playbook/store.js";
import type { OriginateBody } from "./call-routes.js";

export interface OriginateDeps {
  calls: CallManager;
  playbooks: PlaybookStore;
  freeswitch: FreeswitchAdapter;
  config: Config;
}

export function makeOriginate(d: OriginateDeps): (req: OriginateBody) => Promise<{ id: string }> {
  return async (req) => {
    if (req.pbx === "asterisk") throw new AppError("PBX_UNAVAILABLE", "Asterisk is not enabled");
    const playbook =
      req.playbook !== undefined ? await d.playbooks.load(req.playbook) : req.content !== undefined ? await d.playbooks.parseContent(req.content, "inline.md") : undefined;
    const id = req.id ?? randomUUID();
    if (d.calls.getLive(id)) throw new AppError("ALREADY_ATTACHED", `call ${id} is already live`);
    const { channel, dial } = d.freeswitch.originate({ id, to: req.to, from: req.from, fromName: req.fromName, timeoutMs: req.timeoutMs, headers: req.headers });
    try {
      d.calls.create({
        id,
        callType: "freeswitch",
        direction: "outbound",
        caller: req.from ?? d.config.freeswitch.caller_id_number,
        callee: req.to,
        control: channel,
        legFactory: () => channel.startMedia(),
        plan: { playbook, variables: req.variables ?? {} },
      });
    } catch (err) {
      channel.markGone("NORMAL_CLEARING", undefined, "system"); // never dialled: forget it
      throw err;
    }
    dial();
    return { id };
  };
}
