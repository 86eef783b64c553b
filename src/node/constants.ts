import type { Op } from '../moltspeak/index.js'

/** Peers remembered as speaking only the v0.1 schema (MessageFactory) */
export const MAX_PLAIN_PEERS = 10_000

/** Ids remembered as dispatched but not stored (InboundPipeline, disk full) */
export const MAX_UNSTORED = 10_000

/** Ops whose sender waits for a reply and that no built-in handler answers (ping and discover are answered by the node) */
export const REQUEST_OPS: ReadonlySet<Op> = new Set<Op>(['hello', 'verify', 'query', 'task', 'tool', 'consent'])

/** Agents a `discover` request is answered with, at most */
export const DISCOVER_ANSWER_MAX = 100

/** Agents a `discover` request without `limit` is answered with */
export const DISCOVER_ANSWER_DEFAULT = 10
