/**
 * Terminal actions (hangup, refer, transfer): what the runner holds until everything said before them has played,
 * and the command each one issues then. A SIP or tel URI is always a REFER; anything else a dialplan transfer.
 */
import type { RunnerCommand, TransferRecord } from "./types.js";

export type Terminal =
  | { kind: "hangup"; reason: "agent" | "maxFollowUp"; detail?: string | undefined }
  | { kind: "refer"; target: string; trigger: TransferRecord["trigger"] }
  | { kind: "transfer"; target: string; context?: string | undefined; trigger: TransferRecord["trigger"] };

/** A target the PBX reaches with a REFER (`sip:`, `sips:`, `tel:`), whatever mode was asked for. */
export const isReferTarget = (target: string): boolean => /^(sips?|tel):/i.test(target);

/**
 * The command a due terminal action issues and, for refer and transfer, the transfer record (`at` is its time).
 * `headers` are the rendered `sip.hangupHeaders` (hangup only; left out when empty).
 */
export function terminalCommand(t: Terminal, at: number, headers: Record<string, string> = {}): { command: RunnerCommand; transfer?: TransferRecord } {
  if (t.kind === "hangup") {
    return {
      command: {
        command: "hangup",
        reason: t.reason,
        initiator: "agent",
        ...(t.detail ? { detail: t.detail } : {}),
        ...(Object.keys(headers).length ? { headers } : {}),
      },
    };
  }
  if (t.kind === "refer" || isReferTarget(t.target)) {
    return { command: { command: "refer", callee: t.target }, transfer: { mode: "refer", target: t.target, trigger: t.trigger, at } };
  }
  const context = t.context ? { context: t.context } : {};
  return {
    command: { command: "transfer", target: t.target, ...context, mode: "dialplan" },
    transfer: { mode: "dialplan", target: t.target, ...context, trigger: t.trigger, at },
  };
}
