import { second, minute, day } from '../constants.js'

/**
 * `best-effort`: one attempt, nothing stored. `at-least-once` (default):
 * stored and retried until acknowledged; a receiver may see a duplicate after
 * a crash. `exactly-once`: at-least-once plus receiver de-duplication by id,
 * persisted across restarts (protocols/delivery.md).
 */
export type DeliveryMode = 'best-effort' | 'at-least-once' | 'exactly-once'

export const DELIVERY_MODES: readonly DeliveryMode[] = ['best-effort', 'at-least-once', 'exactly-once']

export const DEFAULT_DELIVERY: DeliveryMode = 'at-least-once'

/** `exp` given to stored-and-forwarded messages that set none */
export const DEFAULT_MESSAGE_TTL = 7 * day

/** How long the first, direct attempt of a send may take before it falls back to the mailbox/outbox */
export const DIRECT_ATTEMPT_TIMEOUT = 10 * second

/** Messages the outbox holds; beyond, at-least-once sends to unreachable peers are refused (OutboxFullError) */
export const MAX_OUTBOX_MESSAGES = 100_000

/** Given-up messages (expired, refused) kept for the application to list */
export const MAX_DEAD_LETTERS = 10_000

/** Retry backoff of a peer's outbox: first delay, doubling up to the cap, ±20 % jitter */
export const RETRY_MIN = 1 * second
export const RETRY_MAX = 1 * minute
export const RETRY_JITTER = 0.2

/** Relay mailboxes a message is deposited with when its recipient is unreachable */
export const MAILBOX_COPIES = 2

/** After a failed direct attempt, sends to that peer skip straight to the fallback for this long (or until it connects) */
export const UNREACHABLE_HOLD = 30 * second

/** `ext` namespace of molt's delivery fields in a MoltSpeak message */
export const EXT_NAMESPACE = 'molt'
