/**
 * What the LLM sees (playbook.md §4.1, §4.3): the system prompt of a scene and the tools offered.
 */
import type { BUILTIN_TOOLS } from "../../config/sections.js";
import type { Playbook, Scene } from "../types.js";
import type { CallType } from "../variables.js";
import type { ChatMessage, ToolDefinition } from "./types.js";

export type BuiltinTool = (typeof BUILTIN_TOOLS)[number];

export const DEFAULT_MAX_TOOL_ROUNDS = 3;
export const DEFAULT_HISTORY_LIMIT = 40;
export const DEFAULT_COLLECTOR = { minDigits: 1, maxDigits: 20, finishKey: "#", timeoutMs: 15000, interDigitTimeoutMs: 5000, retryTimes: 3 } as const;

export const toolMode = (pb: Playbook): "native" | "tags" | "both" => pb.settings.llm?.toolMode ?? "both";

/** Transfers are possible on PBX calls, and requested on websocket calls; Twilio calls cannot. */
const canTransfer = (callType: CallType) => callType !== "twilio";
const isPbx = (callType: CallType) => callType === "freeswitch" || callType === "asterisk";

/** The built-in tools that apply to this playbook and call, filtered by `llm.builtinTools`. */
export function offeredBuiltins(pb: Playbook, callType: CallType): Set<BuiltinTool> {
  const applies: Record<BuiltinTool, boolean> = {
    hangup_call: true,
    transfer_call: canTransfer(callType),
    goto_scene: pb.scenes.size > 1,
    play_audio: pb.playFiles.length > 0,
    set_variable: true,
    collect_digits: Object.keys(pb.collectors).length > 0,
    http_request: (pb.settings.httpAllow ?? []).length > 0,
    send_dtmf: isPbx(callType),
  };
  const allowed = pb.settings.llm?.builtinTools;
  const out = new Set<BuiltinTool>();
  if (allowed === false) return out;
  for (const [name, ok] of Object.entries(applies) as [BuiltinTool, boolean][]) {
    if (ok && (allowed === undefined || allowed.includes(name))) out.add(name);
  }
  return out;
}

/** The applicable lines of the default tag instructions (§4.1). */
export function tagInstructions(pb: Playbook, callType: CallType): string {
  const lines = [
    "You are talking with a caller on the phone. Answer in short spoken sentences; each sentence is spoken as soon as you finish it.",
    "You can act on the call by writing these tags in your reply. Tags are never spoken.",
    "<hangup/> ends the call after you finish speaking.",
  ];
  if (canTransfer(callType)) lines.push('<refer to="TARGET"/> transfers the caller to TARGET.');
  if (pb.scenes.size > 1) lines.push(`<goto scene="SCENE"/> moves the conversation to SCENE. Scenes: ${[...pb.scenes.keys()].join(", ")}.`);
  if (pb.playFiles.length > 0) lines.push('<play file="FILE"/> plays a recording to the caller.');
  lines.push('<set_var key="NAME" value="VALUE"/> remembers a value for later.');
  if (Object.keys(pb.collectors).length > 0) {
    lines.push('<collect type="COLLECTOR" var="NAME" prompt="WHAT TO SAY"/> asks the caller to enter digits on the keypad.');
  }
  if ((pb.settings.httpAllow ?? []).length > 0) lines.push('<http url="URL" method="GET"/> calls a web service; you will get the result before you continue.');
  return lines.join("\n");
}

/** Each collector's name, description, digit rules and finish key (§4.1 item 5). */
export function collectorsSection(pb: Playbook): string {
  const entries = Object.entries(pb.collectors);
  if (entries.length === 0) return "";
  const lines = ["Keypad input (DTMF collectors):"];
  for (const [name, c] of entries) {
    const count =
      c.digits !== undefined
        ? `exactly ${c.digits} digits`
        : `${c.minDigits ?? DEFAULT_COLLECTOR.minDigits} to ${c.maxDigits ?? DEFAULT_COLLECTOR.maxDigits} digits`;
    const finish = c.finishKey ?? DEFAULT_COLLECTOR.finishKey;
    lines.push(`- ${name}: ${c.description}; ${count}; ${finish ? `the caller ends with ${finish}` : "no finish key"}.`);
  }
  return lines.join("\n");
}

/** The system prompt of a scene: the rendered parts joined by blank lines, empty parts left out. */
export function buildSystemPrompt(pb: Playbook, scene: Scene, callType: CallType, render: (source: string) => string): string {
  const mode = toolMode(pb);
  const parts = [
    pb.preamble ? render(pb.preamble) : "",
    scene.prompt ? render(scene.prompt) : "",
    pb.settings.llm?.prompt ? render(pb.settings.llm.prompt) : "",
    mode === "tags" || mode === "both" ? tagInstructions(pb, callType) : "",
    collectorsSection(pb),
  ];
  return parts
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .join("\n\n");
}

const obj = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => ({
  type: "object",
  properties,
  ...(required.length ? { required } : {}),
  additionalProperties: false,
});

/** Tool definitions for the model: the offered built-ins (when `toolMode` is native/both) and the playbook's HTTP tools. */
export function buildTools(pb: Playbook, callType: CallType): ToolDefinition[] {
  const out: ToolDefinition[] = [];
  const mode = toolMode(pb);
  if (mode === "native" || mode === "both") {
    const offered = offeredBuiltins(pb, callType);
    const defs: Record<BuiltinTool, () => ToolDefinition> = {
      hangup_call: () => ({ name: "hangup_call", description: "End the call after your reply has been spoken.", parameters: obj({ reason: { type: "string" } }) }),
      transfer_call: () => ({
        name: "transfer_call",
        description: "Transfer the caller to another number, extension or SIP URI.",
        parameters: obj({ target: { type: "string" }, mode: { type: "string", enum: ["refer", "dialplan"] } }, ["target"]),
      }),
      goto_scene: () => ({
        name: "goto_scene",
        description: "Move the conversation to another scene.",
        parameters: obj({ scene: { type: "string", enum: [...pb.scenes.keys()] } }, ["scene"]),
      }),
      play_audio: () => ({
        name: "play_audio",
        description: "Play a recording to the caller.",
        parameters: obj({ file: { type: "string", enum: [...pb.playFiles] } }, ["file"]),
      }),
      set_variable: () => ({
        name: "set_variable",
        description: "Remember a value for later.",
        parameters: obj({ name: { type: "string" }, value: { type: "string" } }, ["name", "value"]),
      }),
      collect_digits: () => ({
        name: "collect_digits",
        description: "Ask the caller to enter digits on the keypad with one of the collectors.",
        parameters: obj(
          { collector: { type: "string", enum: Object.keys(pb.collectors) }, var: { type: "string" }, prompt: { type: "string" } },
          ["collector", "var"],
        ),
      }),
      http_request: () => ({
        name: "http_request",
        description: `Call a web service. Allowed URL prefixes: ${(pb.settings.httpAllow ?? []).join(", ")}`,
        parameters: obj({ url: { type: "string" }, method: { type: "string", enum: ["GET", "POST", "PUT"] }, body: { type: "object" } }, ["url"]),
      }),
      send_dtmf: () => ({
        name: "send_dtmf",
        description: "Send DTMF tones on the call (0-9, *, #, A-D; w = 500 ms pause).",
        parameters: obj({ digits: { type: "string", pattern: "^[0-9*#A-Dw]+$" } }, ["digits"]),
      }),
    };
    for (const name of offered) out.push(defs[name]());
  }
  for (const tool of pb.tools) {
    out.push({ name: tool.name, description: tool.description, parameters: tool.parameters ?? { type: "object", properties: {} } });
  }
  return out;
}

/**
 * The last `limit` messages, oldest dropped first; tool results whose assistant message was dropped go too,
 * so a tool call and its results are always kept or dropped together.
 */
export function trimHistory(messages: readonly ChatMessage[], limit: number): ChatMessage[] {
  if (messages.length <= limit) return [...messages];
  let start = messages.length - limit;
  while (start < messages.length && messages[start]?.role === "tool") start++;
  return messages.slice(start);
}
