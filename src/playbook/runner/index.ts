/** The playbook scene runner: scene state machine, reply tags and tools, collectors, follow-up (the last three shared with Realtime). */
export { PlaybookRunner, type RunnerOptions } from "./runner.js";
export { ReplyParser, TagStream, parseJsonReply, type ReplyItem } from "./tag-stream.js";
export { buildSystemPrompt, buildTools, collectorsSection, offeredBuiltins, tagInstructions, trimHistory } from "./prompt.js";
export { CollectorRun, collectedNote, openCollector, resolveCollector, type CollectorHost, type CollectorResult } from "./collector.js";
export { runHttpRequest, runHttpTool, isAllowedUrl, type HttpOutcome } from "./http-tool.js";
export { FollowupClock, type FollowupAction } from "./followup.js";
export { dispatchTool, parseToolArguments, setRuntimeVariable, type ToolArgs, type ToolHost, type ToolResult, type ToolTerminal } from "./tool-dispatch.js";
export { isReferTarget } from "./terminal.js";
export * from "./types.js";
