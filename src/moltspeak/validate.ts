import { utf8Length } from './canonical.js'
import { isNonNegativeInteger, isPlainObject, isStringArray, missingField, schemaError } from './checks.js'
import {
  CLASSIFICATIONS, ENC_KEY_PATTERN, MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, MAX_PAYLOAD_DEPTH, MOLT_KEY_PATTERN,
  OPS, PII_TYPES, PROTOCOL_VERSION, SIG_PATTERN, UUID_PATTERN
} from './constants.js'
import { checkMessageDepth, checkValueDepth } from './depth.js'
import { MoltSpeakError } from './errors.js'
import { checkPayload, payloadTooDeep } from './payload-rules.js'
import { checkSource } from './source.js'
import type { ErrorCode, MoltMessage, Op } from './types.js'

/*
 * Straight-line structural validation of MoltSpeak v0.1 messages. Timestamps,
 * expiry and signatures are the transport's business and are not checked here.
 * Unknown top-level fields, AgentRef fields and ext namespaces are kept as they are.
 */

export interface ValidateOptions {
  /**
   * Largest accepted message in UTF-8 bytes (parseMessage only)
   *
   * @default MAX_MESSAGE_BYTES (1 MiB)
   */
  maxMessageBytes?: number
  /**
   * Deepest accepted payload nesting; `p` is depth 0
   *
   * @default MAX_PAYLOAD_DEPTH (50)
   */
  maxPayloadDepth?: number
  /**
   * The caller bounded the whole message's nesting on its raw bytes already
   * (checkMessageDepth before JSON.parse): skip the walk of the parsed value
   *
   * @default false
   */
  depthChecked?: boolean
}

const REQUIRED = ['id', 'ts', 'op', 'from', 'to', 'p', 'cls'] as const
const OP = new Set<string>(OPS)
const CLS = new Set<string>(CLASSIFICATIONS)
const PII_TYPE = new Set<string>(PII_TYPES)
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Decode and validate one message from its wire bytes (or an already-decoded string)
 *
 * @throws {MoltSpeakError} E_INVALID_PARAM when too large or too deep, E_PARSE when not UTF-8 JSON, else as validateMessage;
 * for a signed message also E_PARSE on a repeated key and E_SIGNATURE on an integer without an exact double value
 */
export function parseMessage (bytes: Uint8Array | string, options: ValidateOptions = {}): MoltMessage {
  const max = options.maxMessageBytes ?? MAX_MESSAGE_BYTES
  let text: string
  if (typeof bytes === 'string') {
    // a UTF-16 unit is 1–3 UTF-8 bytes, so only count bytes when it could matter
    if (bytes.length > max || (bytes.length * 3 > max && utf8Length(bytes) > max)) throw tooLarge(max)
    text = bytes
  } else {
    if (bytes.byteLength > max) throw tooLarge(max)
    try {
      text = decoder.decode(bytes)
    } catch (err) {
      throw new MoltSpeakError('E_PARSE', 'Message is not valid UTF-8', { cause: err })
    }
  }
  // before JSON.parse: its cost grows with depth, and deep values break JSON.stringify later
  checkMessageDepth(text)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new MoltSpeakError('E_PARSE', 'Message is not valid JSON', { cause: err })
  }
  const message = validateMessage(value, { ...options, depthChecked: true })
  // a signed message must mean the same to every parser (source.ts): no repeated keys, exact numbers.
  // Verify it with verifyMessageSource(message, text), which reads numbers as the signer wrote them
  if (typeof message.sig === 'string') checkSource(text)
  return message
}

/**
 * Check that a parsed value is a well-formed MoltSpeak v0.1 message and return
 * it (the same object, typed)
 *
 * @throws {MoltSpeakError} with the code and `field` of the first problem found
 */
export function validateMessage (value: unknown, options: ValidateOptions = {}): MoltMessage {
  if (!isPlainObject(value)) throw schemaError('', 'Message must be a JSON object')
  const m = value

  if (m.v === undefined) throw missingField('v')
  if (m.v !== PROTOCOL_VERSION) {
    throw new MoltSpeakError('E_VERSION', `Unsupported protocol version ${describe(m.v)}; expected "${PROTOCOL_VERSION}"`, { field: 'v' })
  }
  for (const field of REQUIRED) {
    if (m[field] === undefined) throw missingField(field)
  }

  if (typeof m.id !== 'string' || !UUID_PATTERN.test(m.id)) throw schemaError('id', 'id must be a lower-case UUID')
  if (!isNonNegativeInteger(m.ts)) throw schemaError('ts', 'ts must be a non-negative integer (Unix ms)')
  if (typeof m.op !== 'string' || !OP.has(m.op)) throw schemaError('op', `Unknown op ${describe(m.op)}`)
  checkAgentRef(m.from, 'from')
  checkAgentRef(m.to, 'to')
  if (!isPlainObject(m.p)) throw schemaError('p', 'p must be an object')
  if (typeof m.cls !== 'string' || !CLS.has(m.cls)) throw schemaError('cls', `Unknown cls ${describe(m.cls)}`)

  if (m.sig !== undefined && (typeof m.sig !== 'string' || !SIG_PATTERN.test(m.sig))) {
    throw schemaError('sig', 'sig must be "ed25519:" + base64')
  }
  if (m.re !== undefined && typeof m.re !== 'string') throw schemaError('re', 're must be a string')
  if (m.exp !== undefined && !isNonNegativeInteger(m.exp)) throw schemaError('exp', 'exp must be a non-negative integer (Unix ms)')
  if (m.cap !== undefined && !isStringArray(m.cap)) throw schemaError('cap', 'cap must be an array of strings')
  if (m.ext !== undefined) checkExt(m.ext)
  // pii_meta is a consent matter when cls is pii, a plain shape check otherwise
  if (m.cls === 'pii') checkPiiMeta(m.pii_meta, 'E_CONSENT')
  else if (m.pii_meta !== undefined) checkPiiMeta(m.pii_meta, 'E_SCHEMA')

  const maxDepth = options.maxPayloadDepth ?? MAX_PAYLOAD_DEPTH
  if (payloadTooDeep(m.p, maxDepth)) {
    throw new MoltSpeakError('E_INVALID_PARAM', `Payload nests deeper than ${maxDepth} levels`, { field: 'p' })
  }
  // the whole message too: `ext`, `from` and unknown fields are stored and serialized as well
  // (wire decoders scanned the raw bytes for this before parsing; only values built in process are walked)
  if (options.depthChecked !== true) checkValueDepth(m)
  if (m.cls === 'sec' && (m.from as Record<string, unknown>).org !== (m.to as Record<string, unknown>).org) {
    throw new MoltSpeakError('E_CLASSIFICATION', 'cls "sec" may only be sent within one org', { field: 'cls' })
  }

  checkPayload(m.op as Op, m, m.p)
  return m as MoltMessage
}

function checkAgentRef (ref: unknown, path: 'from' | 'to'): void {
  if (!isPlainObject(ref)) throw schemaError(path, `${path} must be an object`)
  checkName(ref.agent, path + '.agent')
  checkName(ref.org, path + '.org')
  if (ref.key !== undefined && (typeof ref.key !== 'string' || !MOLT_KEY_PATTERN.test(ref.key))) {
    throw schemaError(path + '.key', `${path}.key must be "ed25519:" + base64 of 32 bytes`)
  }
  if (ref.enc_key !== undefined && (typeof ref.enc_key !== 'string' || !ENC_KEY_PATTERN.test(ref.enc_key))) {
    throw schemaError(path + '.enc_key', `${path}.enc_key must be "x25519:" + base64 of 32 bytes`)
  }
}

function checkName (name: unknown, field: string): void {
  if (name === undefined) throw missingField(field)
  if (!isMoltSpeakName(name)) throw schemaError(field, `${field} must be a string of 1–${MAX_NAME_LENGTH} characters`)
}

/**
 * An `agent`/`org` name as the v0.1 schema allows it: any 1–128 characters
 * (`bob.v2`, `Bob Assistant`). JSON Schema counts code points, so an astral
 * character counts once
 */
export function isMoltSpeakName (name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0) return false
  if (name.length <= MAX_NAME_LENGTH) return true
  // UTF-16 units ≥ code points: only long strings need counting, and at most twice the limit can fit
  if (name.length > 2 * MAX_NAME_LENGTH) return false
  let points = 0
  for (const _ of name) points++
  return points <= MAX_NAME_LENGTH
}

function checkExt (ext: unknown): void {
  if (!isPlainObject(ext)) throw schemaError('ext', 'ext must be an object')
  for (const ns in ext) {
    if (!isPlainObject(ext[ns])) throw schemaError('ext.' + ns, `ext["${ns}"] must be an object`)
  }
}

function checkPiiMeta (meta: unknown, code: ErrorCode): void {
  const fail = (field: string, message: string): MoltSpeakError => new MoltSpeakError(code, message, { field })
  if (meta === undefined) throw fail('pii_meta', 'cls "pii" requires pii_meta with consent')
  if (!isPlainObject(meta)) throw fail('pii_meta', 'pii_meta must be an object')

  const types = meta.types
  if (!Array.isArray(types) || types.length === 0) throw fail('pii_meta.types', 'pii_meta.types must list at least one PII type')
  for (const type of types) {
    if (typeof type !== 'string' || !PII_TYPE.has(type)) throw fail('pii_meta.types', `Unknown PII type ${describe(type)}`)
  }

  const consent = meta.consent
  if (!isPlainObject(consent)) throw fail('pii_meta.consent', 'pii_meta.consent must be an object')
  for (const key of ['granted_by', 'purpose', 'proof'] as const) {
    if (typeof consent[key] !== 'string') throw fail('pii_meta.consent.' + key, `pii_meta.consent.${key} must be a string`)
  }
  if (consent.expires !== undefined && !isNonNegativeInteger(consent.expires)) {
    throw fail('pii_meta.consent.expires', 'pii_meta.consent.expires must be a non-negative integer (Unix ms)')
  }
  if (consent.scope !== undefined && typeof consent.scope !== 'string') {
    throw fail('pii_meta.consent.scope', 'pii_meta.consent.scope must be a string')
  }
  if (meta.mask_fields !== undefined && !isStringArray(meta.mask_fields)) {
    throw fail('pii_meta.mask_fields', 'pii_meta.mask_fields must be an array of strings')
  }
}

function tooLarge (max: number): MoltSpeakError {
  return new MoltSpeakError('E_INVALID_PARAM', `Message exceeds the ${max}-byte limit`, { field: '' })
}

/** A short, safe rendering of an offending value for error messages */
function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? value.slice(0, 64) + '…' : value)
  if (Array.isArray(value)) return 'array'
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value
}
