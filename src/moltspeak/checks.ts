import { MoltSpeakError } from './errors.js'

/*
 * Shared by the validators. Which code a failure gets:
 * - E_MISSING_FIELD: a required field is absent (or `undefined`)
 * - E_SCHEMA: the value breaks something the JSON schema states (type, enum,
 *   pattern, maxLength, minimum, required sub-field shape)
 * - E_INVALID_PARAM: the value breaks an operational limit the schema does not
 *   state (message size, payload depth)
 */

/** An object literal or JSON.parse result: not an array, class instance or null */
export function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

export function isNonNegativeInteger (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

export function isStringArray (value: unknown): value is string[] {
  if (!Array.isArray(value)) return false
  for (const item of value) {
    if (typeof item !== 'string') return false
  }
  return true
}

export function missingField (field: string): MoltSpeakError {
  return new MoltSpeakError('E_MISSING_FIELD', `Missing required field "${field}"`, { field })
}

export function schemaError (field: string, message: string): MoltSpeakError {
  return new MoltSpeakError('E_SCHEMA', message, { field })
}
