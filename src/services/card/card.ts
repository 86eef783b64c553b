import { sign, verify, type KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  canonicalize, moltKeyToRaw, moltKeyToKeyObject, keyObjectToRawPublicKey, publicKeyToMoltKey,
  CLASSIFICATIONS, MAX_NAME_LENGTH, MOLT_KEY_PATTERN, NAME_PATTERN, type Classification
} from '../../moltspeak/index.js'
import { didFromPublicKey } from '../../identity/did.js'
import { CardExpiredError, CardMismatchError, CardSignatureError, CardTooLargeError, InvalidCardError } from './errors.js'
import * as c from './constants.js'
import { checkCertificate, type OrgCertificate } from '../../identity/org/certificate.js'

/** One capability an agent offers, e.g. `{ name: 'translate.text' }` */
export interface Capability {
  name: string
  description?: string
}

/** An agent's signed profile, served over /molt/card/1.0.0 (protocols/card.md) */
export interface AgentCard {
  v: 1
  /** libp2p PeerId (base58btc) of the agent: the PeerId of `key` */
  peer_id: string
  /** `ed25519:<base64 of the 32-byte public key>` (MoltSpeak `from.key`) */
  key: string
  /** `did:molt:key:z…` of `key` */
  did: string
  /** MoltSpeak agent name ([A-Za-z0-9_-], ≤ 128) */
  name: string
  /** MoltSpeak org name ([A-Za-z0-9_-], ≤ 128) */
  org: string
  /** ≤ 1024 characters */
  description?: string
  /** ≤ 256 entries, unique names of ≤ 128 characters */
  capabilities: Capability[]
  /** MoltSpeak versions spoken, e.g. `['0.1']` */
  protocol_versions: string[]
  /** Message classifications the agent accepts */
  supported_cls: Classification[]
  /** Multiaddrs the agent listens on (≤ 32) */
  addresses: string[]
  /** Unix ms */
  issued: number
  /** Unix ms; `expires - issued` ≤ 7 days */
  expires: number
  /** The organisation's certificate for this agent's key, when it has one (protocols/identity.md); checked for structure here, for trust by verifyOrgClaim */
  cert?: OrgCertificate
  /** `ed25519:` + base64 of the Ed25519 signature over the canonical JSON of the card without `sig` */
  sig: string
}

/** Everything signCard needs: the card without its signature */
export type UnsignedCard = Omit<AgentCard, 'sig'>

export interface VerifyCardOptions {
  /** The card must be this peer's (the PeerId that served it) */
  peerId?: string
  /** Unix ms to check `issued`/`expires` against. @default Date.now() */
  now?: number
}

const SIG_PREFIX = 'ed25519:'
// base64 of 64 bytes: 86 chars and `==`
const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/]{86}==$/
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/
const DID_PATTERN = /^did:molt:key:z[1-9A-HJ-NP-Za-km-z]+$/
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/
const FIELDS = new Set([
  'v', 'peer_id', 'key', 'did', 'name', 'org', 'description', 'capabilities', 'protocol_versions', 'supported_cls',
  'addresses', 'issued', 'expires', 'cert', 'sig'
])
const CAPABILITY_FIELDS = new Set(['name', 'description'])

/**
 * Sign a card with the agent's Ed25519 key. The fields are checked first, so
 * a card this returns is one verifyCard accepts (until it expires).
 *
 * @throws {InvalidCardError} a field is malformed or over its limit
 * @throws {CardMismatchError} `key`, `peer_id`, `did` and `signingKey` are not the same agent
 * @throws {CardTooLargeError} the signed card would not fit in MAX_CARD_BYTES
 */
export function signCard (fields: UnsignedCard, signingKey: KeyObject): AgentCard {
  checkFields(fields, false)
  checkBinding(fields)
  if (publicKeyToMoltKey(keyObjectToRawPublicKey(signingKey)) !== fields.key) {
    throw new CardMismatchError('the signing key is not the card key')
  }
  // copy the known fields only, so nothing else of `fields` gets signed
  const unsigned: UnsignedCard = {
    v: 1,
    peer_id: fields.peer_id,
    key: fields.key,
    did: fields.did,
    name: fields.name,
    org: fields.org,
    ...(fields.description !== undefined ? { description: fields.description } : {}),
    capabilities: fields.capabilities.map(cap => cap.description !== undefined ? { name: cap.name, description: cap.description } : { name: cap.name }),
    protocol_versions: [...fields.protocol_versions],
    supported_cls: [...fields.supported_cls],
    addresses: [...fields.addresses],
    issued: fields.issued,
    expires: fields.expires,
    ...(fields.cert !== undefined ? { cert: fields.cert } : {})
  }
  const canonical = canonicalize(unsigned)
  const sig = SIG_PREFIX + sign(null, Buffer.from(canonical, 'utf8'), signingKey).toString('base64')
  // canonical JSON is ASCII, and adding `sig` adds exactly `,"sig":"…"`
  const size = canonical.length + sig.length + 9
  if (size > c.MAX_CARD_BYTES) {
    throw new CardTooLargeError(`the signed card would be ${size} bytes, over the ${c.MAX_CARD_BYTES} byte limit`)
  }
  return { ...unsigned, sig }
}

/**
 * Check a card received from anywhere, in this order: structure and limits
 * (InvalidCardError), the expected peer (CardMismatchError), key ↔ peer_id and
 * did ↔ key (CardMismatchError), the signature (CardSignatureError), then time:
 * `issued` at most 5 min ahead (InvalidCardError, field `issued`) and not
 * expired (CardExpiredError). Returns the value, typed, when all pass.
 */
export function verifyCard (value: unknown, expected: VerifyCardOptions = {}): AgentCard {
  checkFields(value, true)
  const card = value as AgentCard
  if (expected.peerId !== undefined && card.peer_id !== expected.peerId) {
    throw new CardMismatchError(`card of ${card.peer_id} served by ${expected.peerId}`)
  }
  checkBinding(card)
  const { sig, ...unsigned } = card
  let valid: boolean
  try {
    valid = verify(null, Buffer.from(canonicalize(unsigned), 'utf8'), moltKeyToKeyObject(card.key), Buffer.from(sig.slice(SIG_PREFIX.length), 'base64'))
  } catch {
    valid = false
  }
  if (!valid) throw new CardSignatureError(`invalid signature on the card of ${card.peer_id}`)
  const now = expected.now ?? Date.now()
  if (card.issued > now + c.MAX_CLOCK_SKEW) {
    throw new InvalidCardError(`card issued ${card.issued - now} ms in the future`, 'issued')
  }
  if (card.expires <= now) {
    throw new CardExpiredError(`card of ${card.peer_id} expired ${now - card.expires} ms ago`)
  }
  return card
}

/** key ↔ peer_id (the PeerId embeds the key) and did ↔ key */
function checkBinding (card: UnsignedCard): void {
  let raw: Uint8Array
  try {
    raw = moltKeyToRaw(card.key)
  } catch (err: any) {
    throw new InvalidCardError(`key: ${err.message}`, 'key')
  }
  let peerId: string
  try {
    peerId = peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
  } catch (err: any) {
    throw new InvalidCardError(`key is not a usable Ed25519 key: ${err.message}`, 'key')
  }
  if (peerId !== card.peer_id) {
    throw new CardMismatchError(`card key belongs to ${peerId}, not to peer_id ${card.peer_id}`)
  }
  if (didFromPublicKey(raw) !== card.did) {
    throw new CardMismatchError(`card did ${card.did} is not the did of its key`)
  }
}

/** Structure, types and limits of every field; `withSig` also checks `sig` */
function checkFields (value: unknown, withSig: boolean): void {
  if (!isObject(value)) throw new InvalidCardError('card must be a JSON object', 'card')
  for (const field of Object.keys(value)) {
    if (!FIELDS.has(field) || (!withSig && field === 'sig')) throw new InvalidCardError(`unknown field ${field}`, field)
  }
  const card = value as Record<string, unknown>
  if (card.v !== 1) throw new InvalidCardError('v must be 1', 'v')
  checkString(card.peer_id, 'peer_id', c.MAX_PEER_ID_LENGTH, BASE58, 'a base58btc PeerId')
  checkString(card.key, 'key', 52, MOLT_KEY_PATTERN, '"ed25519:" + base64 of 32 bytes')
  checkString(card.did, 'did', c.MAX_DID_LENGTH, DID_PATTERN, 'a did:molt:key:z… identifier')
  checkString(card.name, 'name', MAX_NAME_LENGTH, NAME_PATTERN, 'a MoltSpeak name ([A-Za-z0-9_-])')
  checkString(card.org, 'org', MAX_NAME_LENGTH, NAME_PATTERN, 'a MoltSpeak name ([A-Za-z0-9_-])')
  if (card.description !== undefined) checkText(card.description, 'description', c.MAX_DESCRIPTION_LENGTH)

  const capabilities = checkArray(card.capabilities, 'capabilities', 0, c.MAX_CAPABILITIES)
  const names = new Set<string>()
  capabilities.forEach((cap, i) => {
    const path = `capabilities[${i}]`
    if (!isObject(cap)) throw new InvalidCardError(`${path} must be an object`, path)
    for (const field of Object.keys(cap)) {
      if (!CAPABILITY_FIELDS.has(field)) throw new InvalidCardError(`unknown field ${path}.${field}`, `${path}.${field}`)
    }
    const { name, description } = cap as Record<string, unknown>
    checkString(name, `${path}.name`, c.MAX_CAPABILITY_NAME_LENGTH)
    if (CONTROL_CHARS.test(name as string)) throw new InvalidCardError(`${path}.name holds control characters`, `${path}.name`)
    if (names.has(name as string)) throw new InvalidCardError(`${path}.name ${String(name)} is listed twice`, `${path}.name`)
    names.add(name as string)
    if (description !== undefined) checkText(description, `${path}.description`, c.MAX_DESCRIPTION_LENGTH)
  })

  checkArray(card.protocol_versions, 'protocol_versions', 1, c.MAX_PROTOCOL_VERSIONS).forEach((version, i) => {
    checkString(version, `protocol_versions[${i}]`, c.MAX_PROTOCOL_VERSION_LENGTH)
  })

  const classes = new Set<unknown>()
  checkArray(card.supported_cls, 'supported_cls', 0, CLASSIFICATIONS.length).forEach((cls, i) => {
    if (!CLASSIFICATIONS.includes(cls as Classification) || classes.has(cls)) {
      throw new InvalidCardError(`supported_cls[${i}] must be one of ${CLASSIFICATIONS.join(', ')}, each once`, `supported_cls[${i}]`)
    }
    classes.add(cls)
  })

  checkArray(card.addresses, 'addresses', 0, c.MAX_ADDRESSES).forEach((address, i) => {
    const path = `addresses[${i}]`
    checkString(address, path, c.MAX_ADDRESS_LENGTH)
    try {
      multiaddr(address as string)
    } catch {
      throw new InvalidCardError(`${path} is not a multiaddr`, path)
    }
  })

  checkTime(card.issued, 'issued')
  checkTime(card.expires, 'expires')
  const validity = (card.expires as number) - (card.issued as number)
  if (validity <= 0) throw new InvalidCardError('expires must be after issued', 'expires')
  if (validity > c.MAX_CARD_VALIDITY) {
    throw new InvalidCardError(`validity of ${validity} ms exceeds ${c.MAX_CARD_VALIDITY} ms`, 'expires')
  }
  if (card.cert !== undefined) {
    try {
      checkCertificate(card.cert)
    } catch (err: any) {
      throw new InvalidCardError(`cert: ${err.message as string}`, 'cert')
    }
  }
  if (withSig) checkString(card.sig, 'sig', 96, SIG_PATTERN, '"ed25519:" + base64 of 64 bytes')
}

function isObject (value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkString (value: unknown, field: string, maxLength: number, pattern?: RegExp, shape?: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidCardError(`${field} must be a non-empty string`, field)
  if (value.length > maxLength) throw new InvalidCardError(`${field} is longer than ${maxLength} characters`, field)
  if (pattern !== undefined && !pattern.test(value)) throw new InvalidCardError(`${field} must be ${shape ?? pattern.source}`, field)
}

function checkText (value: unknown, field: string, maxLength: number): void {
  if (typeof value !== 'string') throw new InvalidCardError(`${field} must be a string`, field)
  if (value.length > maxLength) throw new InvalidCardError(`${field} is longer than ${maxLength} characters`, field)
}

function checkArray (value: unknown, field: string, min: number, max: number): unknown[] {
  if (!Array.isArray(value)) throw new InvalidCardError(`${field} must be an array`, field)
  if (value.length < min) throw new InvalidCardError(`${field} needs at least ${min} entries`, field)
  if (value.length > max) throw new InvalidCardError(`${field} has more than ${max} entries`, field)
  return value
}

function checkTime (value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidCardError(`${field} must be a non-negative integer (Unix ms)`, field)
  }
}
