import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { CLASSIFICATIONS, OPS } from '../moltspeak/index.js'
import { isNonNegativeInteger, isPlainObject, isStringArray } from '../moltspeak/checks.js'
import { HttpError } from './errors.js'
import type { ApiMessageInit } from './types.js'

/*
 * Shape checks of request bodies: what the API itself needs. The message's
 * MoltSpeak rules (payload fields per op, name patterns) are the SDK's job and
 * come back as 422.
 */

const OP = new Set<string>(OPS)
const CLS = new Set<string>(CLASSIFICATIONS)
const MESSAGE_FIELDS = new Set(['op', 'p', 'cls', 're', 'exp', 'cap', 'ext', 'to', 'pii_meta'])

export const missing = (field: string): HttpError => new HttpError(400, 'E_MISSING_FIELD', `missing required field "${field}"`, field)
export const schema = (field: string, why: string): HttpError => new HttpError(400, 'E_SCHEMA', `${field} ${why}`, field)
export const invalid = (field: string, why: string): HttpError => new HttpError(400, 'E_INVALID_PARAM', `${field} ${why}`, field)

/** Longest PeerId or multiaddr text accepted (the same bound as in queries) */
export const MAX_PEER_LENGTH = 1024

/** A JSON object body with no fields beyond `allowed` */
export function requireObject (value: unknown, allowed: readonly string[], path = 'body'): Record<string, unknown> {
  if (!isPlainObject(value)) throw schema(path, 'must be a JSON object')
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw schema(path === 'body' ? key : `${path}.${key}`, 'is not a known field')
  }
  return value
}

/** `to`: a PeerId string or a multiaddr (ideally ending in /p2p/<id>) */
export function parsePeer (value: unknown, field = 'to'): PeerId | Multiaddr {
  if (value === undefined) throw missing(field)
  if (typeof value !== 'string' || value === '') throw schema(field, 'must be a PeerId or multiaddr string')
  // base58 decoding is quadratic in the length: a 2 MiB body's `to` would hold the node for hours
  if (value.length > MAX_PEER_LENGTH) throw invalid(field, `must be at most ${MAX_PEER_LENGTH} characters`)
  try {
    return value.startsWith('/') ? multiaddr(value) : peerIdFromString(value)
  } catch (err: any) {
    throw invalid(field, `is not a valid ${value.startsWith('/') ? 'multiaddr' : 'PeerId'}: ${err.message}`)
  }
}

export function parseMessageInit (value: unknown, field = 'message'): ApiMessageInit {
  if (value === undefined) throw missing(field)
  if (!isPlainObject(value)) throw schema(field, 'must be an object')
  for (const key of Object.keys(value)) {
    if (!MESSAGE_FIELDS.has(key)) throw schema(`${field}.${key}`, 'is not a field a client may set (the node fills in v, id, ts, from, sig)')
  }
  const { op, p, cls, re, exp, cap, ext, to, pii_meta: piiMeta } = value
  if (op === undefined) throw missing(`${field}.op`)
  if (typeof op !== 'string' || !OP.has(op)) throw schema(`${field}.op`, `must be one of ${OPS.join(', ')}`)
  if (p !== undefined && !isPlainObject(p)) throw schema(`${field}.p`, 'must be an object')
  if (cls !== undefined && (typeof cls !== 'string' || !CLS.has(cls))) throw schema(`${field}.cls`, `must be one of ${CLASSIFICATIONS.join(', ')}`)
  if (re !== undefined && typeof re !== 'string') throw schema(`${field}.re`, 'must be a message id string')
  if (exp !== undefined && !isNonNegativeInteger(exp)) throw schema(`${field}.exp`, 'must be a Unix time in ms')
  if (cap !== undefined && !isStringArray(cap)) throw schema(`${field}.cap`, 'must be an array of strings')
  if (ext !== undefined && !(isPlainObject(ext) && Object.values(ext).every(isPlainObject))) throw schema(`${field}.ext`, 'must be an object of objects')
  if (to !== undefined && !(isPlainObject(to) && typeof to.agent === 'string' && typeof to.org === 'string')) {
    throw schema(`${field}.to`, 'must be an object with string agent and org')
  }
  if (piiMeta !== undefined && !isPlainObject(piiMeta)) throw schema(`${field}.pii_meta`, 'must be an object')
  return value as unknown as ApiMessageInit
}

export function optionalBoolean (value: unknown, field: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw schema(field, 'must be true or false')
  return value
}

/** A positive integer in [min, max], or `undefined` */
export function optionalInteger (value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isSafeInteger(value)) throw schema(field, 'must be an integer')
  if ((value as number) < min || (value as number) > max) throw invalid(field, `must be between ${min} and ${max}`)
  return value as number
}

/** A required integer in [min, max] */
export function requireInteger (value: unknown, field: string, min: number, max: number): number {
  if (value === undefined) throw missing(field)
  return optionalInteger(value, field, min, max) as number
}

/** An integer query parameter in [min, max], or `fallback` when absent */
export function queryInteger (params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = params.get(name)
  if (raw === null) return fallback
  if (!/^\d+$/.test(raw)) throw invalid(name, 'must be a non-negative integer')
  const value = Number(raw)
  if (value < min || value > max) throw invalid(name, `must be between ${min} and ${max}`)
  return value
}

/** A non-empty string query parameter of at most `maxLength` characters, or `undefined` when absent */
export function queryString (params: URLSearchParams, name: string, maxLength: number): string | undefined {
  const raw = params.get(name)
  if (raw === null) return undefined
  if (raw === '') throw invalid(name, 'must not be empty')
  if (raw.length > maxLength) throw invalid(name, `must be at most ${maxLength} characters`)
  return raw
}

/** `true`/`1` or `false`/`0`, or `fallback` when absent */
export function queryBoolean (params: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = params.get(name)
  if (raw === null) return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw invalid(name, 'must be true or false')
}
