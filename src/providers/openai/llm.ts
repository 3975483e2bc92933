/**
 * Chat Completions streaming with tools (media-protocols.md §5.1), for OpenAI, Azure OpenAI and compatible
 * servers. Tool-call deltas are joined per `index`; the calls are emitted, with parsed arguments, when the
 * choice finishes. Aborting the signal aborts the HTTP request (barge-in).
 */
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { withRetries } from "../retry.js";
import { parseArguments } from "../text.js";
import type { ChatMessage, ChatRequest, FinishReason, LlmCapabilities, LlmEvent, LlmProvider, Usage } from "../types.js";
import { classifyOpenAiError, isOpenAiHost, type OpenAiProviderOptions } from "./client.js";

export interface OpenAiLlmOptions extends OpenAiProviderOptions {
  model: string;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
}

interface PartialCall {
  id: string;
  name: string;
  args: string;
}

export class OpenAiLlm implements LlmProvider {
  readonly name: string;
  readonly model: string;
  readonly capabilities: LlmCapabilities = { streaming: true, tools: true };

  constructor(private readonly options: OpenAiLlmOptions) {
    this.name = options.provider;
    this.model = options.model;
  }

  /** The request body for `request` (exposed for tests and logs). */
  body(request: ChatRequest): ChatCompletionCreateParamsStreaming {
    const o = this.options;
    const body: ChatCompletionCreateParamsStreaming = {
      model: this.model,
      stream: true,
      stream_options: { include_usage: true },
      messages: request.messages.map(toWire),
    };
    if (request.tools && request.tools.length > 0) {
      body.tools = request.tools.map((t) => ({
        type: "function" as const,
        function: { name: t.name, ...(t.description === undefined ? {} : { description: t.description }), parameters: t.parameters },
      }));
      body.tool_choice = request.toolChoice ?? "auto";
    }
    const temperature = request.temperature ?? o.temperature;
    if (temperature !== undefined) body.temperature = temperature;
    const maxTokens = request.maxTokens ?? o.maxTokens;
    if (maxTokens !== undefined) {
      // Compatible servers may know only the old name (media-protocols.md §5.1).
      if (isOpenAiHost(o.baseUrl)) body.max_completion_tokens = maxTokens;
      else body.max_tokens = maxTokens;
    }
    return body;
  }

  async *chat(request: ChatRequest): AsyncGenerator<LlmEvent> {
    const o = this.options;
    const body = this.body(request);
    const policy = request.timeoutMs === undefined ? o.policy : { ...o.policy, timeoutMs: request.timeoutMs };
    const chunks = withRetries<ChatCompletionChunk>(
      this.name,
      policy,
      request.signal,
      async function* ({ signal }) {
        const stream = await o.client.chat.completions.create(body, { signal, maxRetries: 0 });
        yield* stream;
      },
      (err) => classifyOpenAiError(this.name, err),
    );

    const calls = new Map<number, PartialCall>();
    let finishReason: FinishReason | undefined;
    let usage: Usage | undefined;
    let emitted = false;
    for await (const chunk of chunks) {
      if (chunk.usage) {
        usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens, totalTokens: chunk.usage.total_tokens };
      }
      // One choice is requested; compatible servers that add more are read for index 0 only.
      const choice = chunk.choices.find((c) => c.index === 0) ?? chunk.choices[0];
      if (!choice) continue;
      const delta = choice.delta as ChatCompletionChunk.Choice.Delta | undefined;
      if (delta?.content) yield { type: "text", delta: delta.content };
      for (const tc of delta?.tool_calls ?? []) {
        const entry = calls.get(tc.index) ?? { id: "", name: "", args: "" };
        if (tc.id) entry.id = tc.id;
        if (tc.function?.name) entry.name += tc.function.name;
        if (tc.function?.arguments) entry.args += tc.function.arguments;
        calls.set(tc.index, entry);
      }
      if (choice.finish_reason) {
        finishReason = mapFinish(choice.finish_reason);
        if (!emitted) {
          emitted = true;
          yield* toolCallEvents(calls);
        }
      }
    }
    // A server that closed the stream without a finish_reason: still hand over what was assembled.
    if (!emitted) yield* toolCallEvents(calls);
    yield { type: "done", finishReason: finishReason ?? "unknown", usage };
  }
}

function* toolCallEvents(calls: Map<number, PartialCall>): Generator<LlmEvent> {
  const ordered = [...calls.entries()].sort((a, b) => a[0] - b[0]);
  for (const [index, c] of ordered) {
    const id = c.id || `call_${index}`;
    const parsed = parseArguments(c.args);
    yield parsed === undefined
      ? { type: "tool_call", id, name: c.name, arguments: undefined, argumentsText: c.args, error: "invalid arguments" }
      : { type: "tool_call", id, name: c.name, arguments: parsed, argumentsText: c.args };
  }
}

function mapFinish(reason: string): FinishReason {
  switch (reason) {
    case "stop":
    case "length":
    case "tool_calls":
    case "content_filter":
      return reason;
    case "function_call":
      return "tool_calls";
    default:
      return "unknown";
  }
}

function toWire(m: ChatMessage): ChatCompletionMessageParam {
  switch (m.role) {
    case "system":
    case "user":
      return { role: m.role, content: m.content };
    case "assistant":
      return m.toolCalls && m.toolCalls.length > 0
        ? {
            role: "assistant",
            content: m.content,
            tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })),
          }
        : { role: "assistant", content: m.content ?? "" };
    case "tool":
      return { role: "tool", tool_call_id: m.toolCallId, content: m.content };
  }
}
