import { createHash, sign, verify } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { assertJsonDepth } from '../../json/index.js'
import { canonicalize, moltKeyToKeyObject, moltKeyToRaw, MOLT_KEY_PATTERN } from '../../moltspeak/index.js'
import type { Identity } from '../index.js'
import { InvalidRotationError, RotationSignatureError } from './errors.js'
import * as c from './constants.js'

/**
 * An agent's statement "my key `old_key` is replaced by `new_key`", signed by
 * both keys (protocols/identity.md, "Key rotation"): the old key says where
 * the identity goes, the new key that it accepts it. Each signature covers the
 * canonical JSON without `sig_old`/`sig_new`, behind its own context prefix.
 */
export interface KeyRotation {
  v: 1
  type: typeof c.ROTATION_TYPE
  /** `ed25519:<base64>` of the key retired */
  old_key: string
  /** `ed25519:<base64>` of the key that takes over */
  new_key: string
  /** 1 for an identity's first rotation, then +1 per rotation: a stale statement cannot follow a newer one */
  seq: number
  /** Unix ms; the old key is refused from `issued + ROTATION_GRACE_PERIOD` */
  issued: number
  /** `ed25519:` + base64 signature by the old key over OLD_KEY_CONTEXT ‖ canonical unsigned statement */
  sig_old: string
  /** `ed25519:` + base64 signature by the new key over NEW_KEY_CONTEXT ‖ canonical unsigned statement */
  sig_new: string
}

export type UnsignedRotation = Omit<KeyRotation, 'sig_old' | 'sig_new'>

const SIG_PATTERN = /^ed25519:[A-Za-z0-9+/]{86}==$/
const FIELDS = ['v', 'type', 'old_key', 'new_key', 'seq', 'issued', 'sig_old', 'sig_new']

/** Sign "`from` → `to`" with both identities' keys */
export function signRotation (from: Identity, to: Identity, options: { seq: number, issued?: number }): KeyRotation {
  const unsigned: UnsignedRotation = {
    v: 1,
    type: c.ROTATION_TYPE,
    old_key: from.moltKey,
    new_key: to.moltKey,
    seq: options.seq,
    issued: options.issued ?? Date.now()
  }
  const rotation: KeyRotation = {
    ...unsigned,
    sig_old: 'ed25519:' + sign(null, signedBytes(c.OLD_KEY_CONTEXT, unsigned), from.signingKey).toString('base64'),
    sig_new: 'ed25519:' + sign(null, signedBytes(c.NEW_KEY_CONTEXT, unsigned), to.signingKey).toString('base64')
  }
  checkRotation(rotation)
  return rotation
}

/**
 * Decode from text or bytes: size and nesting bounded on the raw input, then
 * the structure (not the signatures: verifyRotation)
 *
 * @throws {InvalidRotationError}
 */
export function decodeRotation (input: string | Uint8Array): KeyRotation {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength
  if (bytes > c.MAX_ROTATION_BYTES) throw new InvalidRotationError(`rotation is ${bytes} bytes, over ${c.MAX_ROTATION_BYTES}`, 'rotation')
  let value: unknown
  try {
    const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input)
    assertJsonDepth(text, c.MAX_ROTATION_DEPTH)
    value = JSON.parse(text)
  } catch {
    throw new InvalidRotationError(`rotation is not UTF-8 JSON nesting at most ${c.MAX_ROTATION_DEPTH} deep`, 'rotation')
  }
  checkRotation(value)
  return value
}

/** @throws {InvalidRotationError} */
export function checkRotation (value: unknown): asserts value is KeyRotation {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRotationError('rotation must be a JSON object', 'rotation')
  const r = value as Record<string, unknown>
  for (const field of Object.keys(r)) if (!FIELDS.includes(field)) throw new InvalidRotationError(`unknown field ${field}`, field)
  const bad = (field: string, ok: boolean, what: string): void => { if (!ok) throw new InvalidRotationError(`${field} must be ${what}`, field) }
  bad('v', r.v === 1, '1')
  bad('type', r.type === c.ROTATION_TYPE, c.ROTATION_TYPE)
  bad('old_key', typeof r.old_key === 'string' && MOLT_KEY_PATTERN.test(r.old_key), 'ed25519:<base64 of 32 bytes>')
  bad('new_key', typeof r.new_key === 'string' && MOLT_KEY_PATTERN.test(r.new_key), 'ed25519:<base64 of 32 bytes>')
  bad('new_key', r.new_key !== r.old_key, 'another key than old_key')
  bad('seq', typeof r.seq === 'number' && Number.isSafeInteger(r.seq) && r.seq >= 1 && r.seq <= c.MAX_ROTATION_SEQ, `an integer in [1, ${c.MAX_ROTATION_SEQ}]`)
  bad('issued', typeof r.issued === 'number' && Number.isSafeInteger(r.issued) && r.issued >= 0, 'a non-negative integer (Unix ms)')
  bad('sig_old', typeof r.sig_old === 'string' && SIG_PATTERN.test(r.sig_old), 'ed25519:<base64 signature>')
  bad('sig_new', typeof r.sig_new === 'string' && SIG_PATTERN.test(r.sig_new), 'ed25519:<base64 signature>')
}

/**
 * Both signatures, each by its own key over its own context. A statement
 * signed by one key only, or with the signatures swapped, fails here.
 *
 * @throws {InvalidRotationError | RotationSignatureError}
 */
export function verifyRotation (value: unknown): KeyRotation {
  checkRotation(value)
  const { sig_old: sigOld, sig_new: sigNew, ...unsigned } = value
  if (!verifySafely(c.OLD_KEY_CONTEXT, unsigned, value.old_key, sigOld)) {
    throw new RotationSignatureError(`the rotation is not signed by its old key ${peerIdOfMoltKey(value.old_key)}`)
  }
  if (!verifySafely(c.NEW_KEY_CONTEXT, unsigned, value.new_key, sigNew)) {
    throw new RotationSignatureError(`the rotation is not signed by its new key ${peerIdOfMoltKey(value.new_key)}`)
  }
  return value
}

/** Its content address: hex SHA-256 of the canonical signed statement (the trust-sync id) */
export function rotationId (rotation: KeyRotation): string {
  return createHash('sha256').update(canonicalize(rotation)).digest('hex')
}

/** The PeerId (string) of an `ed25519:<base64>` key */
export function peerIdOfMoltKey (key: string): string {
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(moltKeyToRaw(key))).toString()
  } catch (err: any) {
    throw new InvalidRotationError(`${key} is not a usable Ed25519 key: ${err.message as string}`, 'key')
  }
}

function signedBytes (context: string, unsigned: UnsignedRotation): Buffer {
  return Buffer.from(context + canonicalize(unsigned), 'utf8')
}

function verifySafely (context: string, unsigned: UnsignedRotation, key: string, sig: string): boolean {
  try {
    return verify(null, signedBytes(context, unsigned), moltKeyToKeyObject(key), Buffer.from(sig.slice('ed25519:'.length), 'base64'))
  } catch {
    return false
  }
}
