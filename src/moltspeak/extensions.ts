import { errorPayload } from './payloads.js'
import type { ErrorCode, ErrorPayload, MoltMessage, Op, SchemaErrorCode } from './types.js'

/*
 * What molt speaks beyond the v0.1 JSON schema (protocols/speak.md,
 * "Conformance"): the discovery ops of PROTOCOL.md and two discovery error
 * codes. A strict v0.1 implementation rejects them, so molt sends them only to
 * peers known to speak them: every peer on `/molt/speak/1.0.0` is taken to be
 * molt unless its `hello` lists extensions without MOLT_EXTENSION.
 */

/** Ops outside the schema's enum that molt sends or answers */
export const EXTENSION_OPS: ReadonlySet<Op> = new Set<Op>(['register', 'discover', 'ping', 'pong'])

/** Error codes outside the schema's enum that molt may send */
export const EXTENSION_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E_AGENT_NOT_FOUND', 'E_CAPABILITY_UNKNOWN'])

/** The `hello` `p.extensions` entry by which a peer says it speaks molt's extension ops and codes */
export const MOLT_EXTENSION = 'molt.ops'

/** The schema code sent instead of an extension code to a peer that does not speak molt */
const SCHEMA_CODE: Readonly<Record<string, SchemaErrorCode>> = Object.freeze({
  E_AGENT_NOT_FOUND: 'E_TASK_FAILED',
  E_CAPABILITY_UNKNOWN: 'E_INVALID_PARAM'
})

/**
 * What a `hello` says about the molt extensions: `true`/`false` when it lists
 * its extensions (with or without MOLT_EXTENSION), `undefined` when it does not say
 */
export function helloSpeaksMolt (hello: MoltMessage): boolean | undefined {
  const extensions = hello.p.extensions
  if (!Array.isArray(extensions)) return undefined
  return extensions.includes(MOLT_EXTENSION)
}

/**
 * An error payload a strict v0.1 peer accepts: an extension code becomes its
 * nearest schema code, the original kept in `context.molt_code`
 */
export function schemaErrorPayload (p: ErrorPayload): ErrorPayload {
  const fallback = SCHEMA_CODE[p.code]
  if (fallback === undefined) return p
  return errorPayload(fallback, p.message, { field: p.field, suggestion: p.suggestion, context: { ...p.context, molt_code: p.code } })
}
