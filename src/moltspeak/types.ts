/**
 * The MoltSpeak v0.1 message model (reference/moltspeak.md §1). Field names
 * and enum values are the wire's, so these types double as the JSON shape.
 */

/** Operation. The schema has the first nine; the discovery ops come from PROTOCOL.md */
export type Op =
  | 'hello' | 'verify' | 'query' | 'respond' | 'task' | 'stream' | 'tool' | 'consent' | 'error'
  | 'register' | 'discover' | 'ping' | 'pong'

/** Classification: how a message must be handled (case-sensitive, short forms only) */
export type Classification = 'pub' | 'int' | 'conf' | 'pii' | 'sec'

/** The 14 error codes of the schema enum */
export type SchemaErrorCode =
  | 'E_PARSE' | 'E_VERSION'
  | 'E_SCHEMA' | 'E_MISSING_FIELD' | 'E_INVALID_PARAM'
  | 'E_AUTH_FAILED' | 'E_SIGNATURE' | 'E_CAPABILITY'
  | 'E_CONSENT' | 'E_CLASSIFICATION'
  | 'E_RATE_LIMIT' | 'E_TIMEOUT'
  | 'E_TASK_FAILED' | 'E_INTERNAL'

/** Schema codes plus the discovery codes this project uses */
export type ErrorCode = SchemaErrorCode | 'E_AGENT_NOT_FOUND' | 'E_CAPABILITY_UNKNOWN'

export type ErrorCategory = 'protocol' | 'validation' | 'auth' | 'privacy' | 'transport' | 'execution'

/** `suggestion.action` of an error payload */
export type SuggestionAction = 'retry' | 'retry_after' | 'request_capability' | 'request_consent' | 'upgrade'

export type PiiType =
  | 'email' | 'phone' | 'name' | 'address' | 'ssn' | 'dob' | 'financial' | 'health' | 'location' | 'other'

/** Sender or recipient. Unknown fields (`trust`, `did`, `delegation`…) are kept */
export interface AgentRef {
  agent: string
  org: string
  /** `ed25519:` + base64 of the 32-byte public key */
  key?: string
  /** `x25519:` + base64 of the 32-byte public key */
  enc_key?: string
  [k: string]: unknown
}

/** Required when `cls` is `pii` */
export interface PiiMeta {
  types: PiiType[]
  consent: {
    granted_by: string
    purpose: string
    proof: string
    /** Unix ms */
    expires?: number
    /** e.g. `internal_only` */
    scope?: string
    [k: string]: unknown
  }
  /** Fields to mask in logs */
  mask_fields?: string[]
  [k: string]: unknown
}

export interface MoltMessage<P extends Record<string, unknown> = Record<string, unknown>> {
  v: '0.1'
  /** Lower-case UUID */
  id: string
  /** Unix ms */
  ts: number
  op: Op
  from: AgentRef
  to: AgentRef
  p: P
  cls: Classification
  /** `ed25519:` + base64 of the 64-byte signature over the canonical form without `sig` */
  sig?: string
  /** Id of the message this one answers */
  re?: string
  /** Expiry, Unix ms */
  exp?: number
  /** Capabilities the receiver must hold */
  cap?: string[]
  pii_meta?: PiiMeta
  /** Extensions keyed by `{org}.{extension}` */
  ext?: Record<string, Record<string, unknown>>
  [k: string]: unknown
}

export interface ErrorSuggestion {
  action: SuggestionAction
  delay_ms?: number
  capability?: string
  data_types?: string[]
  fix?: string
  [k: string]: unknown
}

/** `p` of an `error` message */
export interface ErrorPayload {
  code: ErrorCode | string
  category: ErrorCategory
  message: string
  recoverable: boolean
  /** Path of the offending field, e.g. `p.params.location` */
  field?: string
  suggestion?: ErrorSuggestion
  context?: Record<string, unknown>
  // lets an ErrorPayload be a message's `p` (interfaces need it to fit Record<string, unknown>)
  [k: string]: unknown
}
