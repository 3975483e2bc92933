/** The serial pipeline (VAD -> ASR -> LLM -> TTS) behind the Conversation seam. */
export { SerialConversation, type CallerProcessor, type ControlRequest, type SerialConversationEvents, type SerialConversationOptions } from "./serial-conversation.js";
export { SpeculativeLlm, type SpeculationStats } from "./speculative-llm.js";
