export { createMoltNode } from './node.js'
export { moltServices, type MoltServicesInit, type MoltServiceMap } from './node/services.js'
export type { MoltNode, MoltNodeOptions, MessageInit, SendOptions, RequestOptions, SendResult, ReceivedMessage, HandlerContext, HandlerResult, MessageHandler, PeerInput, DeliveryReceipt } from './node.js'
export type { DeliveryMode } from './delivery/constants.js'
export { DELIVERY_MODES } from './delivery/constants.js'
export type { OutboxEntry, DeadLetter } from './delivery/outbox.js'
export { OutboxFullError } from './delivery/outbox.js'
export type { DeliveryStatus, MailboxRefusal } from './delivery/delivery.js'
export { Sealer, SealError } from './crypto/index.js'
export { MailboxRefusedError, MAILBOX_PROTOCOL, resolveMailboxLimits, type MailboxLimits } from './services/mailbox/index.js'
export * from './moltspeak/index.js'
export { resolveDataDir, loadConfig, type MoltConfig, type AgentProfile } from './config/index.js'
export { didFromPublicKey, publicKeyFromDid } from './identity/index.js'
export {
  issueCertificate, decodeCertificate, encodeCertificate, verifyOrgClaim, createOrgKey, loadOrgKey, installCertificate, loadInstalledCertificate,
  InvalidCertificateError, OrgKeyError, type OrgCertificate, type OrgRoot, type OrgVerdict, type OrgVerdictCode, type OrgKey
} from './identity/org/index.js'
export {
  signRotation, verifyRotation, decodeRotation, rotationId, rotateKeyFiles, ROTATION_GRACE_PERIOD,
  InvalidRotationError, RotationSignatureError, RotationConflictError, KeyRotationError, type KeyRotation
} from './identity/rotation/index.js'
export { IdentityError, NodeLockedError, ConfigError, NotStartedError, RequestTimeoutError } from './errors.js'
export { AckTimeoutError, SessionClosedError, MessageTooLargeError, SPEAK_PROTOCOL, type Route } from './services/speak/index.js'
export { NoRouteError } from './routing/errors.js'
export {
  startApiServer, ApiClient, ApiError, ApiTokenError, RemoteHostRefusedError, AgentApiUnavailableError, loadOrCreateApiToken, connectToRunningAgent,
  type ApiServer, type ApiServerOptions, type ApiClientOptions
} from './api/index.js'
export * from './relay/index.js'
export * from './services/tasks/index.js'
export * from './services/topics/index.js'
