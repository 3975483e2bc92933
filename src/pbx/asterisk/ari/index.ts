export { AriClient, AriGoneError, isAriGone, buildQuery, type AriClientOptions, type AriClientEvents } from "./client.js";
export * from "./events.js";
export type * from "./models.js";
