/** Public API of the providers layer: the interfaces, the registry, and the concrete vendors (for main.ts and tests). */
export type * from "./types.js";
export { EndpointedAsrSession } from "./asr-session.js";
export { checkProviders, PROVIDER_NAMES, resolveName, resolveProvider, type ResolveOptions } from "./registry.js";
export { providerError, type RetryPolicy } from "./retry.js";
export { FrameOutput, PcmBytes, WavStream, concatPcm, rms } from "./pcm.js";
export { SentenceSplitter, sentences } from "./text.js";
export { ScriptedAsr, ScriptedLlm, ScriptedTts, SCRIPTED_FALLBACK, tone, type ScriptedLlmOptions, type ScriptedTurn } from "./scripted.js";
export { EspeakTts, FliteTts } from "./local/tts.js";
export { PocketsphinxAsr } from "./local/pocketsphinx.js";
export { OpenAiAsr } from "./openai/asr.js";
export { OpenAiLlm } from "./openai/llm.js";
export { OpenAiTts } from "./openai/tts.js";
export { createOpenAiClient, type OpenAiEndpoint } from "./openai/client.js";
