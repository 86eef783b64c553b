import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { MOLT_KEY_PATTERN } from './constants.js'
import { InvalidKeyError } from './errors.js'
import { BoundedMap } from '../utils/bounded-map.js'

const MOLT_KEY_PREFIX = 'ed25519:'
// DER headers that turn a raw Ed25519 key into SPKI / PKCS#8 for node:crypto
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** How many parsed public keys to keep; parsing costs more than a cache lookup on hot paths */
const KEY_CACHE_SIZE = 1024
const keyCache = new BoundedMap<string, KeyObject>(KEY_CACHE_SIZE)

/** `ed25519:` + base64 of a raw 32-byte public key (the `from.key` form) */
export function publicKeyToMoltKey (raw32: Uint8Array): string {
  checkLength(raw32, 'public key')
  return MOLT_KEY_PREFIX + toBuffer(raw32).toString('base64')
}

/**
 * The raw 32 bytes of an `ed25519:<base64>` key
 *
 * @throws {InvalidKeyError} on a wrong prefix, bad base64 or wrong length
 */
export function moltKeyToRaw (key: string): Uint8Array {
  if (typeof key !== 'string' || !key.startsWith(MOLT_KEY_PREFIX)) {
    throw new InvalidKeyError('Key must start with "ed25519:"')
  }
  // Buffer's base64 decoder skips junk, so check the exact shape first
  if (!MOLT_KEY_PATTERN.test(key)) {
    throw new InvalidKeyError('Key must be "ed25519:" + base64 of 32 bytes (44 chars)')
  }
  return new Uint8Array(Buffer.from(key.slice(MOLT_KEY_PREFIX.length), 'base64'))
}

/**
 * A node:crypto public KeyObject for a raw 32-byte Ed25519 key (cached)
 *
 * @throws {InvalidKeyError} if the bytes are not a usable key
 */
export function rawPublicKeyToKeyObject (raw32: Uint8Array): KeyObject {
  const moltKey = publicKeyToMoltKey(raw32)
  return keyCache.get(moltKey) ?? cachedPublicKey(moltKey, raw32)
}

/**
 * A node:crypto public KeyObject for an `ed25519:<base64>` key (cached, so a
 * hit skips base64 decoding too)
 *
 * @throws {InvalidKeyError} on a malformed key
 */
export function moltKeyToKeyObject (key: string): KeyObject {
  const hit = keyCache.get(key)
  if (hit !== undefined) return hit
  return cachedPublicKey(key, moltKeyToRaw(key))
}

/**
 * A node:crypto private KeyObject for a 32-byte Ed25519 seed (what PyNaCl
 * stores; tweetnacl's 64-byte secret key is seed ‖ public key)
 *
 * @throws {InvalidKeyError} if the seed is not 32 bytes
 */
export function rawPrivateKeyToKeyObject (seed32: Uint8Array): KeyObject {
  checkLength(seed32, 'private key seed')
  try {
    return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed32]), format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw new InvalidKeyError('Not a usable Ed25519 private key', { cause: err })
  }
}

/**
 * The raw 32-byte public key of an Ed25519 KeyObject, public or private
 *
 * @throws {InvalidKeyError} if the key is not Ed25519
 */
export function keyObjectToRawPublicKey (key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InvalidKeyError(`Expected an Ed25519 key, got ${String(key.asymmetricKeyType)}`)
  }
  const pub = key.type === 'private' ? createPublicKey(key) : key
  const der = pub.export({ format: 'der', type: 'spki' })
  return new Uint8Array(der.subarray(SPKI_ED25519_PREFIX.length))
}

function cachedPublicKey (moltKey: string, raw32: Uint8Array): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw32]), format: 'der', type: 'spki' })
  } catch (err) {
    throw new InvalidKeyError('Not a usable Ed25519 public key', { cause: err })
  }
  // FIFO eviction: cheaper than LRU bookkeeping and good enough for a working set of peers
  keyCache.set(moltKey, key)
  return key
}

function checkLength (bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new InvalidKeyError(`Ed25519 ${what} must be 32 bytes`)
  }
}

function toBuffer (bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
