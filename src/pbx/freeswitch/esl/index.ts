export {
  EslHeaders,
  EslParser,
  parseEvent,
  decodeUrlValue,
  serializeMessage,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_HEADER_BYTES,
  type EslMessage,
  type EslEvent,
  type EslParserOptions,
} from "./parser.js";
export { EslConnection, type EslConnectionEvents, type EslConnectionOptions } from "./connection.js";
export {
  EslOutboundServer,
  buildAllowList,
  isAllowed,
  type OutboundSession,
  type EslOutboundServerOptions,
} from "./outbound-server.js";
