import { CONSENT_ACTIONS, ERROR_CATEGORIES, RESPOND_STATUSES, STREAM_ACTIONS, TASK_ACTIONS, TOOL_ACTIONS } from './constants.js'
import { missingField, schemaError } from './checks.js'
import type { Op } from './types.js'

/*
 * Minimal per-op payload rules (reference/moltspeak.md §2): only the fields the
 * schema or the spec make required, so receivers stay tolerant of everything else.
 */

const RESPOND_STATUS = new Set<string>(RESPOND_STATUSES)
const CATEGORY = new Set<string>(ERROR_CATEGORIES)
const TASK_ACTION = new Set<string>(TASK_ACTIONS)
const STREAM_ACTION = new Set<string>(STREAM_ACTIONS)
const TOOL_ACTION = new Set<string>(TOOL_ACTIONS)
const CONSENT_ACTION = new Set<string>(CONSENT_ACTIONS)

/**
 * Check the op-specific required fields of a message already known to have a
 * valid `op` and an object `p`
 *
 * @throws {MoltSpeakError} E_MISSING_FIELD or E_SCHEMA with `field` set
 */
export function checkPayload (op: Op, msg: Record<string, unknown>, p: Record<string, unknown>): void {
  switch (op) {
    case 'query':
      requireString(p, 'domain')
      return
    case 'respond':
      // `re` is optional in the schema: a respond without it answers no pending request and goes to the inbox
      requireEnum(p, 'status', RESPOND_STATUS)
      return
    case 'error':
      requireString(p, 'code')
      requireEnum(p, 'category', CATEGORY)
      requireString(p, 'message')
      return
    case 'task':
      requireEnum(p, 'action', TASK_ACTION)
      requireString(p, 'task_id')
      return
    case 'stream':
      requireEnum(p, 'action', STREAM_ACTION)
      requireString(p, 'stream_id')
      return
    case 'tool':
      requireEnum(p, 'action', TOOL_ACTION)
      return
    case 'consent':
      requireEnum(p, 'action', CONSENT_ACTION)
      return
    default:
      // hello, verify and the discovery ops have no required payload fields
  }
}

/**
 * Whether a payload nests deeper than `max`. The payload is depth 0 and each
 * nested object or array adds 1. Stops at the limit, so cycles terminate too
 */
export function payloadTooDeep (p: object, max: number): boolean {
  return deeper(p, 0, max)
}

function deeper (container: object, depth: number, max: number): boolean {
  if (Array.isArray(container)) {
    for (const item of container) {
      if (typeof item === 'object' && item !== null && (depth >= max || deeper(item, depth + 1, max))) return true
    }
    return false
  }
  for (const key in container) {
    const item: unknown = (container as Record<string, unknown>)[key]
    if (typeof item === 'object' && item !== null && (depth >= max || deeper(item, depth + 1, max))) return true
  }
  return false
}

function requireString (p: Record<string, unknown>, key: string): void {
  const value = p[key]
  if (value === undefined) throw missingField('p.' + key)
  if (typeof value !== 'string') throw schemaError('p.' + key, `p.${key} must be a string`)
}

function requireEnum (p: Record<string, unknown>, key: string, allowed: Set<string>): void {
  const value = p[key]
  if (value === undefined) throw missingField('p.' + key)
  if (typeof value !== 'string' || !allowed.has(value)) {
    throw schemaError('p.' + key, `p.${key} must be one of ${[...allowed].join(', ')}`)
  }
}
