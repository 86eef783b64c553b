import { createHash, sign, verify, type KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import {
  canonicalize, moltKeyToRaw, moltKeyToKeyObject, keyObjectToRawPublicKey, publicKeyToMoltKey,
  MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN
} from '../../moltspeak/index.js'
import {
  AttestationExpiredError, AttestationFutureError, AttestationSignatureError, AttestationTooLargeError,
  InvalidAttestationError, SelfAttestationError
} from './errors.js'
import * as c from './constants.js'
import { JsonTooDeepError, parseBoundedJson } from '../../json/index.js'

export const ATTESTATION_TYPES = ['endorsement', 'task_completion', 'warning', 'incident_report', 'revocation'] as const
export type AttestationType = typeof ATTESTATION_TYPES[number]
export const STRENGTHS = ['weak', 'moderate', 'strong', 'exceptional'] as const
export type Strength = typeof STRENGTHS[number]
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const
export type Severity = typeof SEVERITIES[number]
export const OUTCOMES = ['completed', 'failed', 'abandoned', 'timeout'] as const
export type Outcome = typeof OUTCOMES[number]
export const ENDORSEMENT_KINDS = ['competence', 'reliability', 'integrity'] as const

/** An agent as named in a record: the key is the authority, the names are display data */
export interface AgentRef {
  /** `ed25519:<base64>`; its PeerId is the agent's */
  key: string
  agent?: string
  org?: string
}

export interface IssuerRef extends AgentRef {
  /** Only agents issue records over gossip (reference §4.1 also has organization|human|witness) */
  type: 'agent'
}

/** What the record states; which fields apply depends on `type` (protocols/trust.md, "Claims") */
export interface Claims {
  /** Capability or domain the statement is about, e.g. `translate.text`; absent = in general */
  domain?: string
  /** endorsement */
  strength?: Strength
  /** endorsement: competence | reliability | integrity */
  endorsement_type?: string
  /** endorsement */
  skills?: string[]
  /** task_completion */
  task_id?: string
  task_type?: string
  outcome?: Outcome
  /** task_completion: 1..5 */
  quality_rating?: number
  notes_hash?: string
  /** warning, incident_report */
  severity?: Severity
  evidence_hash?: string
  /** revocation: the id of the issuer's record it withdraws */
  credential_id?: string
  /** revocation */
  reason?: string
  /** free text, ≤ 512 characters */
  context?: string
}

export interface Evidence {
  /** MoltSpeak message ids */
  message_ids?: string[]
  /** hashes of artefacts, e.g. `sha256:<hex>` */
  hashes?: string[]
  task_ids?: string[]
}

/** A signed statement by one agent about another (reference/moltspeak.md §4.1 credential, flattened) */
export interface Attestation {
  type: AttestationType
  version: '1.0'
  /** hex SHA-256 of the canonical record without `id` and `signature`: content-addressed */
  id: string
  /** Unix ms */
  issued: number
  /** Unix ms; `expires - issued` ≤ MAX_VALIDITY */
  expires: number
  issuer: IssuerRef
  subject: AgentRef
  claims: Claims
  evidence?: Evidence
  /** `ed25519:` + base64 of the issuer's Ed25519 signature over the canonical record without `signature` */
  signature: string
}

export type UnsignedAttestation = Omit<Attestation, 'id' | 'signature'>

/** A record that passed verifyAttestation, with the PeerIds of its parties */
export interface VerifiedAttestation {
  record: Attestation
  issuer: string
  subject: string
  /** Canonical bytes (what gossip carries and the store keeps) */
  bytes: Uint8Array
}

export interface VerifyOptions {
  /** @default Date.now() */
  now?: number
  /** Accept records that have expired (reading the store, sync of revocations) */
  allowExpired?: boolean
}

const SIG_PREFIX = 'ed25519:'
const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/]{86}==$/
const ID_PATTERN = /^[0-9a-f]{64}$/
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/
const FIELDS = new Set(['type', 'version', 'id', 'issued', 'expires', 'issuer', 'subject', 'claims', 'evidence', 'signature'])
const REF_FIELDS = new Set(['key', 'agent', 'org'])
const ISSUER_FIELDS = new Set(['type', 'key', 'agent', 'org'])
const EVIDENCE_FIELDS = ['message_ids', 'hashes', 'task_ids'] as const
const MAX_TEXT = 512
const MAX_SHORT = 128
const MAX_LIST = 16

/** Claims each type allows, and which of them it needs */
const CLAIMS: Record<AttestationType, { allowed: string[], required: string[] }> = {
  endorsement: { allowed: ['domain', 'strength', 'endorsement_type', 'skills', 'context'], required: ['strength'] },
  task_completion: { allowed: ['domain', 'task_id', 'task_type', 'outcome', 'quality_rating', 'notes_hash', 'context'], required: ['task_id', 'outcome'] },
  warning: { allowed: ['domain', 'severity', 'context'], required: ['severity'] },
  incident_report: { allowed: ['domain', 'severity', 'evidence_hash', 'context'], required: ['severity'] },
  revocation: { allowed: ['credential_id', 'reason'], required: ['credential_id'] }
}

/** PeerId strings of keys already seen: deriving one costs a protobuf encode and a multihash */
const peerIds = new Map<string, string>()

/** The PeerId (string) of an `ed25519:<base64>` key */
export function peerIdOfKey (key: string): string {
  let id = peerIds.get(key)
  if (id === undefined) {
    id = peerIdFromPublicKey(publicKeyFromRaw(moltKeyToRaw(key))).toString()
    if (peerIds.size >= 10_000) peerIds.delete(peerIds.keys().next().value as string)
    peerIds.set(key, id)
  }
  return id
}

/** The `ed25519:<base64>` key of an Ed25519 PeerId (its identity multihash holds the key) */
export function keyOfPeerId (peer: string): string {
  const id = peerIdFromString(peer)
  if (id.type !== 'Ed25519' || id.publicKey == null) throw new InvalidAttestationError(`${peer} is not an Ed25519 PeerId`, 'subject')
  return publicKeyToMoltKey(id.publicKey.raw)
}

/** The content address: hex SHA-256 of the canonical unsigned record */
export function attestationId (unsigned: UnsignedAttestation): string {
  return createHash('sha256').update(canonicalize(unsigned)).digest('hex')
}

/**
 * Sign a record with the issuer's key: fills `id` and `signature`. The fields
 * are checked first, so what this returns verifies (until it expires).
 *
 * @throws {InvalidAttestationError} a field is malformed, or the key is not the issuer's
 * @throws {AttestationTooLargeError} the signed record is over MAX_ATTESTATION_BYTES
 */
export function signAttestation (fields: UnsignedAttestation, signingKey: KeyObject): Attestation {
  const unsigned = copyFields(fields)
  checkFields(unsigned, false)
  if (publicKeyToMoltKey(keyObjectToRawPublicKey(signingKey)) !== unsigned.issuer.key) {
    throw new InvalidAttestationError('the signing key is not the issuer key', 'issuer.key')
  }
  const id = attestationId(unsigned)
  const withId = { ...unsigned, id }
  const signature = SIG_PREFIX + sign(null, Buffer.from(canonicalize(withId), 'utf8'), signingKey).toString('base64')
  const record = { ...withId, signature }
  const size = encodeAttestation(record).byteLength
  if (size > c.MAX_ATTESTATION_BYTES) {
    throw new AttestationTooLargeError(`the signed attestation would be ${size} bytes, over ${c.MAX_ATTESTATION_BYTES}`)
  }
  return record
}

/** The wire form: canonical JSON, UTF-8 (ASCII, since canonical JSON escapes the rest) */
export function encodeAttestation (record: Attestation): Uint8Array {
  return Buffer.from(canonicalize(record), 'utf8')
}


/**
 * Decode and verify a record from the wire, in this order: size, JSON,
 * structure and limits, self-attestation, id, signature, then time (future,
 * expired).
 *
 * @throws {AttestationTooLargeError | InvalidAttestationError | SelfAttestationError | AttestationSignatureError | AttestationFutureError | AttestationExpiredError}
 */
export function decodeAttestation (bytes: Uint8Array, options: VerifyOptions = {}): VerifiedAttestation {
  if (bytes.byteLength > c.MAX_ATTESTATION_BYTES) {
    throw new AttestationTooLargeError(`attestation of ${bytes.byteLength} bytes is over ${c.MAX_ATTESTATION_BYTES}`)
  }
  let value: unknown
  try {
    value = parseBoundedJson(bytes)
  } catch (err) {
    throw new InvalidAttestationError(err instanceof JsonTooDeepError ? `attestation ${err.message}` : 'attestation is not UTF-8 JSON', 'attestation')
  }
  return verifyAttestation(value, options)
}

/** Check a parsed record (same order as decodeAttestation, after size and JSON) */
export function verifyAttestation (value: unknown, options: VerifyOptions = {}): VerifiedAttestation {
  checkFields(value, true)
  const record = value as Attestation
  const bytes = encodeAttestation(record)
  if (bytes.byteLength > c.MAX_ATTESTATION_BYTES) {
    throw new AttestationTooLargeError(`attestation of ${bytes.byteLength} bytes is over ${c.MAX_ATTESTATION_BYTES}`)
  }
  let issuer: string
  let subject: string
  try {
    issuer = peerIdOfKey(record.issuer.key)
  } catch (err: any) {
    throw new InvalidAttestationError(`issuer.key: ${err.message}`, 'issuer.key')
  }
  try {
    subject = peerIdOfKey(record.subject.key)
  } catch (err: any) {
    throw new InvalidAttestationError(`subject.key: ${err.message}`, 'subject.key')
  }
  if (issuer === subject) throw new SelfAttestationError(`${issuer} attests about itself`)
  const { id, signature, ...unsigned } = record
  if (attestationId(unsigned) !== id) throw new AttestationSignatureError(`id ${id} is not the hash of the record`)
  let valid: boolean
  try {
    valid = verify(null, Buffer.from(canonicalize({ ...unsigned, id }), 'utf8'), moltKeyToKeyObject(record.issuer.key),
      Buffer.from(signature.slice(SIG_PREFIX.length), 'base64'))
  } catch {
    valid = false
  }
  if (!valid) throw new AttestationSignatureError(`invalid signature on attestation ${id}`)
  const now = options.now ?? Date.now()
  if (record.issued > now + c.MAX_CLOCK_SKEW) {
    throw new AttestationFutureError(`attestation ${id} issued ${record.issued - now} ms in the future`)
  }
  if (options.allowExpired !== true && record.expires <= now) {
    throw new AttestationExpiredError(`attestation ${id} expired ${now - record.expires} ms ago`)
  }
  return { record, issuer, subject, bytes }
}

/** A copy with only the known fields, so nothing else of `fields` gets signed */
function copyFields (fields: UnsignedAttestation): UnsignedAttestation {
  const ref = (r: AgentRef): AgentRef => ({ key: r.key, ...(r.agent !== undefined ? { agent: r.agent } : {}), ...(r.org !== undefined ? { org: r.org } : {}) })
  const claims: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields.claims ?? {})) {
    if (v !== undefined) claims[k] = Array.isArray(v) ? [...v] : v
  }
  return {
    type: fields.type,
    version: fields.version ?? c.RECORD_VERSION,
    issued: fields.issued,
    expires: fields.expires,
    issuer: { type: 'agent', ...ref(fields.issuer) },
    subject: ref(fields.subject),
    claims: claims as Claims,
    ...(fields.evidence !== undefined ? { evidence: { ...fields.evidence } } : {})
  }
}

/** Structure, types and limits; `withSig` also checks `id` and `signature` */
function checkFields (value: unknown, withSig: boolean): void {
  if (!isObject(value)) throw new InvalidAttestationError('attestation must be a JSON object', 'attestation')
  for (const field of Object.keys(value)) {
    if (!FIELDS.has(field) || (!withSig && (field === 'id' || field === 'signature'))) {
      throw new InvalidAttestationError(`unknown field ${field}`, field)
    }
  }
  const r = value as Record<string, unknown>
  if (!ATTESTATION_TYPES.includes(r.type as AttestationType)) {
    throw new InvalidAttestationError(`type must be one of ${ATTESTATION_TYPES.join(', ')}`, 'type')
  }
  if (r.version !== c.RECORD_VERSION) throw new InvalidAttestationError(`version must be "${c.RECORD_VERSION}"`, 'version')
  checkTime(r.issued, 'issued')
  checkTime(r.expires, 'expires')
  const validity = (r.expires as number) - (r.issued as number)
  if (validity <= 0) throw new InvalidAttestationError('expires must be after issued', 'expires')
  if (validity > c.MAX_VALIDITY) throw new InvalidAttestationError(`validity of ${validity} ms exceeds ${c.MAX_VALIDITY} ms`, 'expires')
  checkRef(r.issuer, 'issuer', ISSUER_FIELDS)
  if ((r.issuer as Record<string, unknown>).type !== 'agent') throw new InvalidAttestationError('issuer.type must be "agent"', 'issuer.type')
  checkRef(r.subject, 'subject', REF_FIELDS)
  checkClaims(r.type as AttestationType, r.claims)
  if (r.evidence !== undefined) checkEvidence(r.evidence)
  if (withSig) {
    if (typeof r.id !== 'string' || !ID_PATTERN.test(r.id)) throw new InvalidAttestationError('id must be 64 lower-case hex digits', 'id')
    if (typeof r.signature !== 'string' || !SIG_PATTERN.test(r.signature)) {
      throw new InvalidAttestationError('signature must be "ed25519:" + base64 of 64 bytes', 'signature')
    }
  }
}

function checkRef (value: unknown, path: string, fields: Set<string>): void {
  if (!isObject(value)) throw new InvalidAttestationError(`${path} must be an object`, path)
  for (const field of Object.keys(value)) {
    if (!fields.has(field)) throw new InvalidAttestationError(`unknown field ${path}.${field}`, `${path}.${field}`)
  }
  const ref = value as Record<string, unknown>
  if (typeof ref.key !== 'string' || !MOLT_KEY_PATTERN.test(ref.key)) {
    throw new InvalidAttestationError(`${path}.key must be "ed25519:" + base64 of 32 bytes`, `${path}.key`)
  }
  for (const name of ['agent', 'org'] as const) {
    const v = ref[name]
    if (v !== undefined && (typeof v !== 'string' || v.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(v))) {
      throw new InvalidAttestationError(`${path}.${name} must be a MoltSpeak name ([A-Za-z0-9_-], ≤ ${MAX_NAME_LENGTH})`, `${path}.${name}`)
    }
  }
}

function checkClaims (type: AttestationType, value: unknown): void {
  if (!isObject(value)) throw new InvalidAttestationError('claims must be an object', 'claims')
  const rule = CLAIMS[type]
  const claims = value as Record<string, unknown>
  for (const field of Object.keys(claims)) {
    if (!rule.allowed.includes(field)) throw new InvalidAttestationError(`claims.${field} does not apply to ${type}`, `claims.${field}`)
  }
  for (const field of rule.required) {
    if (claims[field] === undefined) throw new InvalidAttestationError(`${type} needs claims.${field}`, `claims.${field}`)
  }
  const enumOf = (field: string, values: readonly string[]): void => {
    if (claims[field] !== undefined && !values.includes(claims[field] as string)) {
      throw new InvalidAttestationError(`claims.${field} must be one of ${values.join(', ')}`, `claims.${field}`)
    }
  }
  enumOf('strength', STRENGTHS)
  enumOf('severity', SEVERITIES)
  enumOf('outcome', OUTCOMES)
  enumOf('endorsement_type', ENDORSEMENT_KINDS)
  for (const field of ['domain', 'task_id', 'task_type', 'notes_hash', 'evidence_hash']) {
    if (claims[field] !== undefined) checkText(claims[field], `claims.${field}`, MAX_SHORT, true)
  }
  for (const field of ['context', 'reason']) {
    if (claims[field] !== undefined) checkText(claims[field], `claims.${field}`, MAX_TEXT, false)
  }
  if (claims.skills !== undefined) checkList(claims.skills, 'claims.skills')
  if (claims.quality_rating !== undefined) {
    const q = claims.quality_rating
    if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > 5) {
      throw new InvalidAttestationError('claims.quality_rating must be an integer 1..5', 'claims.quality_rating')
    }
  }
  if (claims.credential_id !== undefined && (typeof claims.credential_id !== 'string' || !ID_PATTERN.test(claims.credential_id))) {
    throw new InvalidAttestationError('claims.credential_id must be an attestation id', 'claims.credential_id')
  }
}

function checkEvidence (value: unknown): void {
  if (!isObject(value)) throw new InvalidAttestationError('evidence must be an object', 'evidence')
  for (const field of Object.keys(value)) {
    if (!(EVIDENCE_FIELDS as readonly string[]).includes(field)) throw new InvalidAttestationError(`unknown field evidence.${field}`, `evidence.${field}`)
    checkList((value as Record<string, unknown>)[field], `evidence.${field}`)
  }
}

function checkList (value: unknown, path: string): void {
  if (!Array.isArray(value)) throw new InvalidAttestationError(`${path} must be an array`, path)
  if (value.length > MAX_LIST) throw new InvalidAttestationError(`${path} has more than ${MAX_LIST} entries`, path)
  value.forEach((item, i) => { checkText(item, `${path}[${i}]`, MAX_SHORT, true) })
}

function checkText (value: unknown, path: string, max: number, noControl: boolean): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidAttestationError(`${path} must be a non-empty string`, path)
  if (value.length > max) throw new InvalidAttestationError(`${path} is longer than ${max} characters`, path)
  if (noControl && CONTROL_CHARS.test(value)) throw new InvalidAttestationError(`${path} holds control characters`, path)
}

function checkTime (value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidAttestationError(`${field} must be a non-negative integer (Unix ms)`, field)
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
