import { randomBytes } from 'node:crypto'
import { errorCategory, isRecoverable } from './codes.js'
import {
  CONSENT_ACTIONS, CONSENT_DURATIONS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, RESPOND_STATUSES, STREAM_ACTIONS,
  TASK_ACTIONS, TASK_PRIORITIES, TOOL_ACTIONS
} from './constants.js'
import type { Classification, ErrorCode, ErrorPayload, ErrorSuggestion } from './types.js'

/*
 * Payload (`p`) builders for each op (reference/moltspeak.md §2). They return
 * plain objects without `undefined` members, so the canonical form a signature
 * covers is the same as the JSON on the wire.
 */

export type RespondStatus = typeof RESPOND_STATUSES[number]
export type TaskAction = typeof TASK_ACTIONS[number]
export type TaskPriority = typeof TASK_PRIORITIES[number]
export type StreamAction = typeof STREAM_ACTIONS[number]
export type ToolAction = typeof TOOL_ACTIONS[number]
export type ConsentAction = typeof CONSENT_ACTIONS[number]
export type ConsentDuration = typeof CONSENT_DURATIONS[number]

// every payload type has an index signature so it fits MoltMessage's `p: Record<string, unknown>`

export interface ResponseFormat {
  type: 'structured' | 'text' | 'stream'
  schema?: unknown
  fields?: string[]
  [k: string]: unknown
}

export interface QueryPayload {
  domain: string
  intent?: string
  params?: Record<string, unknown>
  response_format?: ResponseFormat
  [k: string]: unknown
}

export interface RespondPayload {
  status: RespondStatus
  data?: unknown
  schema?: string
  [k: string]: unknown
}

export interface Subtask {
  id: string
  type: string
  delegate_to?: string
  depends_on?: string[]
  params?: Record<string, unknown>
  [k: string]: unknown
}

export interface TaskPayload {
  action: TaskAction
  task_id: string
  type?: string
  description?: string
  params?: Record<string, unknown>
  constraints?: Record<string, unknown>
  /** Unix ms */
  deadline?: number
  priority?: TaskPriority
  /** Whether the requester wants a message on completion / on progress (schema: booleans) */
  callback?: { on_complete?: boolean, on_progress?: boolean, [k: string]: unknown }
  subtasks?: Subtask[]
  [k: string]: unknown
}

export interface StreamPayload {
  action: StreamAction
  stream_id: string
  type?: 'text' | 'binary' | 'json'
  chunk_size?: number
  data?: unknown
  seq?: number
  progress?: number
  total_chunks?: number
  checksum?: string
  [k: string]: unknown
}

export interface ToolPayload {
  action: ToolAction
  tool?: string
  input?: Record<string, unknown>
  timeout_ms?: number
  [k: string]: unknown
}

export interface ConsentPayload {
  action: ConsentAction
  data_types?: string[]
  purpose?: string
  /** e.g. `user:jane@example.com` */
  human?: string
  duration?: ConsentDuration
  consent_token?: string
  [k: string]: unknown
}

export interface HelloPayload {
  protocol_versions: string[]
  capabilities: string[]
  extensions?: string[]
  max_message_size: number
  supported_cls?: Classification[]
  min_trust_required?: number
  trust_dimensions_required?: string[]
  [k: string]: unknown
}

export interface PingPayload {
  nonce: string
  [k: string]: unknown
}

export interface PongPayload {
  /** The ping's nonce, echoed */
  nonce: string
  status: string
  /** 0–1 */
  load?: number
  queue_depth?: number
  capabilities_active?: string[]
  [k: string]: unknown
}

export interface PongInit {
  nonce: string
  /** @default 'alive' */
  status?: string
  load?: number
  queue_depth?: number
  capabilities_active?: string[]
  [k: string]: unknown
}

export interface ErrorPayloadOptions {
  field?: string
  suggestion?: ErrorSuggestion
  context?: Record<string, unknown>
  /**
   * Override the code's recoverable flag
   *
   * @default true only for E_SCHEMA, E_CONSENT, E_RATE_LIMIT and E_TIMEOUT
   */
  recoverable?: boolean
}

/** `p` of a `query` message */
export function query (init: QueryPayload): QueryPayload {
  return compact(init)
}

/** `p` of a `respond` message; `status` defaults to 'success' */
export function respond (init: Partial<RespondPayload> = {}): RespondPayload {
  return compact({ ...init, status: init.status ?? 'success' })
}

/** `p` of a `task` message */
export function task (init: TaskPayload): TaskPayload {
  return compact(init)
}

/** `p` of a `stream` message */
export function stream (init: StreamPayload): StreamPayload {
  return compact(init)
}

/** `p` of a `tool` message (usually sent with `cap: ['tool.invoke']`) */
export function tool (init: ToolPayload): ToolPayload {
  return compact(init)
}

/** `p` of a `consent` message */
export function consent (init: ConsentPayload): ConsentPayload {
  return compact(init)
}

/** `p` of an `error` message; category and recoverable follow from the code */
export function errorPayload (code: ErrorCode, message: string, options: ErrorPayloadOptions = {}): ErrorPayload {
  return compact({
    code,
    category: errorCategory(code),
    message,
    recoverable: options.recoverable ?? isRecoverable(code),
    field: options.field,
    suggestion: options.suggestion,
    context: options.context
  })
}

/**
 * `p` of a `hello` message. Defaults: `protocol_versions` ['0.1'],
 * `capabilities` [], `max_message_size` MAX_MESSAGE_BYTES
 */
export function hello (init: Partial<HelloPayload> = {}): HelloPayload {
  return compact({
    ...init,
    protocol_versions: init.protocol_versions ?? [PROTOCOL_VERSION],
    capabilities: init.capabilities ?? [],
    max_message_size: init.max_message_size ?? MAX_MESSAGE_BYTES
  })
}

/** `p` of a `ping`; `nonce` defaults to 16 random bytes as hex */
export function ping (init: Partial<PingPayload> = {}): PingPayload {
  return compact({ ...init, nonce: init.nonce ?? randomBytes(16).toString('hex') })
}

/** `p` of a `pong`, echoing the ping's nonce; `status` defaults to 'alive' */
export function pong (init: PongInit): PongPayload {
  return compact({ ...init, status: init.status ?? 'alive' })
}

/** A copy without `undefined` members: JSON omits them, so the builders' output matches its JSON */
function compact<T extends object> (obj: T): T {
  const out: Record<string, unknown> = {}
  for (const key in obj) {
    const value: unknown = obj[key]
    if (value !== undefined) out[key] = value
  }
  return out as T
}
