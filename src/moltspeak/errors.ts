import { errorCategory, isRecoverable } from './codes.js'
import { errorPayload } from './payloads.js'
import type { ErrorCategory, ErrorCode, ErrorPayload, ErrorSuggestion } from './types.js'

export interface MoltSpeakErrorOptions {
  /** Path of the offending field, e.g. `from.agent` or `p.status` */
  field?: string
  cause?: unknown
  /** Copied into `toPayload()` */
  suggestion?: ErrorSuggestion
  /** Copied into `toPayload()` */
  context?: Record<string, unknown>
}

/** A MoltSpeak protocol error carrying one of the wire error codes */
export class MoltSpeakError extends Error {
  static override name = 'MoltSpeakError'
  override name = 'MoltSpeakError'
  readonly code: ErrorCode
  readonly category: ErrorCategory
  readonly recoverable: boolean
  readonly field?: string
  readonly suggestion?: ErrorSuggestion
  readonly context?: Record<string, unknown>

  constructor (code: ErrorCode, message: string, options: MoltSpeakErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.category = errorCategory(code)
    this.recoverable = isRecoverable(code)
    if (options.field !== undefined) this.field = options.field
    if (options.suggestion !== undefined) this.suggestion = options.suggestion
    if (options.context !== undefined) this.context = options.context
  }

  /** The `p` of an `error` message reporting this error */
  toPayload (): ErrorPayload {
    return errorPayload(this.code, this.message, { field: this.field, suggestion: this.suggestion, context: this.context })
  }
}

/** A value cannot be written in canonical JSON (cycle, function, bigint, symbol, NaN/Infinity) */
export class CanonicalizationError extends Error {
  static override name = 'CanonicalizationError'
  override name = 'CanonicalizationError'
}

/** A key is not a well-formed Ed25519 key (wrong prefix, encoding or length) */
export class InvalidKeyError extends Error {
  static override name = 'InvalidKeyError'
  override name = 'InvalidKeyError'
}
