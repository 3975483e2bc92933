// Public entry point of `active-call/client`: a typed client for the WebSocket call API (spec/ws-call-api.md).
export { CallClient, CallClientError, streamPcm } from "./call-client.js";
export type { AudioSink, CallClientListeners, ConnectOptions, StreamPcmOptions } from "./call-client.js";
export * from "./types.js";
