import type { Classification, ErrorCategory, ErrorCode, Op, PiiType, SchemaErrorCode, SuggestionAction } from './types.js'

/** The only version this implementation speaks; the schema's `v` is `const "0.1"` */
export const PROTOCOL_VERSION = '0.1'

/** Largest serialized message, in UTF-8 bytes (spec §1.4, also hello's `max_message_size`) */
export const MAX_MESSAGE_BYTES = 1_048_576

/**
 * Longest a message may stay valid (`exp − ts`): outboxes and relay mailboxes
 * hold messages for days, and receivers remember ids that long for de-duplication
 */
export const MAX_MESSAGE_LIFETIME = 30 * 24 * 60 * 60 * 1000

/**
 * Deepest payload nesting. `p` itself is depth 0 and every nested object or
 * array adds 1: depth 50 is accepted, 51 rejected (the TS reference SDK's rule)
 */
export const MAX_PAYLOAD_DEPTH = 50

/** Longest `agent`/`org` name. The schema says 128 (the TS SDK's 256 is not used) */
export const MAX_NAME_LENGTH = 128

/**
 * Characters of the names molt gives itself (config, cards, trust records):
 * the TS reference SDK accepts only these. Received messages may carry any
 * 1–128 characters, as the v0.1 schema allows (validate.ts `isMoltSpeakName`)
 */
export const NAME_PATTERN = /^[a-zA-Z0-9_-]+$/

/** Message ids: the schema's lower-case UUID */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** `from.key`: `ed25519:` + base64 of 32 bytes (44 chars, one `=` pad) */
export const MOLT_KEY_PATTERN = /^ed25519:[A-Za-z0-9+/]{43}=$/

/** `enc_key`: `x25519:` + base64 of 32 bytes */
export const ENC_KEY_PATTERN = /^x25519:[A-Za-z0-9+/]{43}=$/

/** `sig` as the schema writes it */
export const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/=]+$/

export const OPS: readonly Op[] = Object.freeze([
  'hello', 'verify', 'query', 'respond', 'task', 'stream', 'tool', 'consent', 'error',
  'register', 'discover', 'ping', 'pong'
])

export const CLASSIFICATIONS: readonly Classification[] = Object.freeze(['pub', 'int', 'conf', 'pii', 'sec'])

export const ERROR_CATEGORIES: readonly ErrorCategory[] = Object.freeze([
  'protocol', 'validation', 'auth', 'privacy', 'transport', 'execution'
])

export const SUGGESTION_ACTIONS: readonly SuggestionAction[] = Object.freeze([
  'retry', 'retry_after', 'request_capability', 'request_consent', 'upgrade'
])

export const PII_TYPES: readonly PiiType[] = Object.freeze([
  'email', 'phone', 'name', 'address', 'ssn', 'dob', 'financial', 'health', 'location', 'other'
])

/** Category of every schema error code (spec §1.3) */
export const ERROR_CATEGORY: Readonly<Record<SchemaErrorCode, ErrorCategory>> = Object.freeze({
  E_PARSE: 'protocol',
  E_VERSION: 'protocol',
  E_SCHEMA: 'validation',
  E_MISSING_FIELD: 'validation',
  E_INVALID_PARAM: 'validation',
  E_AUTH_FAILED: 'auth',
  E_SIGNATURE: 'auth',
  E_CAPABILITY: 'auth',
  E_CONSENT: 'privacy',
  E_CLASSIFICATION: 'privacy',
  E_RATE_LIMIT: 'transport',
  E_TIMEOUT: 'transport',
  E_TASK_FAILED: 'execution',
  E_INTERNAL: 'execution'
})

/**
 * Categories of the discovery codes, which the spec lists without one: an
 * unknown agent is a failed request, an unknown capability a bad parameter
 */
export const DISCOVERY_ERROR_CATEGORY: Readonly<Record<Exclude<ErrorCode, SchemaErrorCode>, ErrorCategory>> = Object.freeze({
  E_AGENT_NOT_FOUND: 'execution',
  E_CAPABILITY_UNKNOWN: 'validation'
})

/**
 * Codes whose errors the sender may fix or retry (the reference SDKs' exception
 * flags). Everything else is final
 */
export const RECOVERABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_SCHEMA', 'E_CONSENT', 'E_RATE_LIMIT', 'E_TIMEOUT'
])

// op-specific payload enums (spec §2)
export const RESPOND_STATUSES = Object.freeze(['success', 'error', 'partial'] as const)
export const TASK_ACTIONS = Object.freeze(['create', 'status', 'cancel', 'complete'] as const)
export const TASK_PRIORITIES = Object.freeze(['low', 'normal', 'high', 'urgent'] as const)
export const STREAM_ACTIONS = Object.freeze(['start', 'chunk', 'end', 'error'] as const)
export const TOOL_ACTIONS = Object.freeze(['invoke', 'list', 'describe'] as const)
export const CONSENT_ACTIONS = Object.freeze(['request', 'grant', 'revoke', 'verify'] as const)
export const CONSENT_DURATIONS = Object.freeze(['session', '24h', '7d', 'permanent'] as const)
export const REGISTER_ACTIONS = Object.freeze(['create', 'update', 'delete', 'renew'] as const)
