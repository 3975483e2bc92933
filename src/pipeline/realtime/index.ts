export { RealtimeConversation, type RealtimeConversationOptions, type RealtimeConversationEvents } from "./realtime-conversation.js";
export { RealtimeScenes, type Terminal, type ToolOutcome } from "./scenes.js";
export { AgentAudioOut, CallerAudioPump, chooseAudioFormat, sessionRateOf, type LegCodec } from "./audio-bridge.js";
