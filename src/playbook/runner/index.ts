/** The playbook scene runner: scene state machine, reply tags and tools, collectors, follow-up. */
export { PlaybookRunner, type RunnerOptions } from "./runner.js";
export { ReplyParser, TagStream, parseJsonReply, type ReplyItem } from "./tag-stream.js";
export { buildSystemPrompt, buildTools, collectorsSection, offeredBuiltins, tagInstructions, trimHistory } from "./prompt.js";
export { CollectorRun, type CollectorHost, type CollectorResult } from "./collector.js";
export { runHttpRequest, runHttpTool, isAllowedUrl, type HttpOutcome } from "./http-tool.js";
export * from "./types.js";
