export { ConversationCore, type CoreEvents, type CoreOptions, type CutReason, type TransferRequest } from "./conversation-core.js";
export { CallerVad, InactivityWatch, SilenceBuffer } from "./caller-input.js";
export { EventSink, type DistributiveOmit, type EventBody } from "./event-sink.js";
export { WaitInputTimer } from "./wait-input.js";
