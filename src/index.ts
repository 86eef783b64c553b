export { createMoltNode } from './node.js'
export type { MoltNode, MoltNodeOptions, MessageInit, SendOptions, RequestOptions, SendResult, ReceivedMessage, HandlerContext, HandlerResult, MessageHandler, PeerInput } from './node.js'
export * from './moltspeak/index.js'
export { resolveDataDir, loadConfig, type MoltConfig, type AgentProfile } from './config/index.js'
export { didFromPublicKey, publicKeyFromDid } from './identity/index.js'
export { IdentityError, NodeLockedError, ConfigError, NotStartedError, RequestTimeoutError } from './errors.js'
export { AckTimeoutError, SessionClosedError, MessageTooLargeError, SPEAK_PROTOCOL, type Route } from './services/speak/index.js'
export {
  startApiServer, ApiClient, ApiError, ApiTokenError, RemoteHostRefusedError, AgentApiUnavailableError, loadOrCreateApiToken, connectToRunningAgent,
  type ApiServer, type ApiServerOptions, type ApiClientOptions
} from './api/index.js'
export * from './relay/index.js'
