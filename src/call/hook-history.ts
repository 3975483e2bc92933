/**
 * The conversation history as the post-call hook carries it (playbook.md §6): `{role, content, timestamp?,
 * interrupted?}` for what the caller and the agent said, `{role: "tool", name, content}` for tool results. The
 * runner's internal markers (system messages such as "[scene changed to x]") and assistant turns that were only
 * tool calls are left out: the hook and its summary are about the conversation.
 */
import type { HistoryEntry } from "../playbook/runner/types.js";
import type { HistoryItem } from "../playbook/posthook/summary.js";

/** Epoch ms from 2001 on: earlier values are a monotonic clock (the serial pipeline's media clock), not a date. */
const EPOCH_FLOOR_MS = 978_307_200_000;

export function hookHistory(entries: readonly HistoryEntry[]): HistoryItem[] {
  const out: HistoryItem[] = [];
  for (const h of entries) {
    const m = h.message;
    if (m.role === "system" || typeof m.content !== "string" || m.content === "") continue;
    const item: HistoryItem = { role: m.role, content: m.content };
    if (m.role === "tool" && h.name !== undefined) item.name = h.name;
    if (h.at >= EPOCH_FLOOR_MS) item.timestamp = new Date(h.at).toISOString();
    if (h.interrupted) item.interrupted = true;
    out.push(item);
  }
  return out;
}
