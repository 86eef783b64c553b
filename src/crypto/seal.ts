import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { SealError } from './errors.js'
import { BoundedMap } from '../utils/bounded-map.js'

/**
 * Sealed boxes for messages that rest at a relay (protocols/mailbox.md "Sealing").
 *
 * Both ends' X25519 keys are derived from their Ed25519 identity keys, so a
 * sender needs nothing but the recipient's PeerId. The pair's key is
 * HKDF-SHA256(X25519(sender, recipient), info = "molt/seal/1" ‖ sender ‖
 * recipient), computed once per peer; each box has a random 96-bit nonce
 * (safe for 2^32 boxes per pair of agents). ChaCha20-Poly1305 authenticates
 * the ciphertext and the associated data (sender, recipient, message id): a
 * relay can neither read a box nor move it to another sender, recipient or id.
 * Like NaCl's crypto_box, the agreement is static-static: opening a box proves
 * it came from the sender (or the recipient itself); there is no forward secrecy.
 */

/**
 * Format version byte leading every box. 2: a random nonce under the pair's
 * key. (1 was a per-box HKDF salt with a fixed nonce; a box of that format is
 * refused as an unknown version, not mistaken for a forgery.)
 */
export const SEAL_VERSION = 2
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** version ‖ nonce ‖ ciphertext ‖ tag */
export const SEAL_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
/** Nonces are cut from a pool of random bytes: one CSPRNG call per 1,024 boxes instead of one each */
const NONCE_POOL_BYTES = NONCE_BYTES * 1024
const INFO_PREFIX = Buffer.from('molt/seal/1', 'utf8')
const AEAD = 'chacha20-poly1305'

// DER wrappers that let node:crypto take raw X25519 keys
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

/**
 * The X25519 public key (Montgomery u) of an Ed25519 public key (Edwards y):
 * u = (1 + y) / (1 − y) mod p, as libsodium's crypto_sign_ed25519_pk_to_curve25519.
 * The curve arithmetic is the audited @noble/curves', which also refuses a
 * key that is not a point of the curve.
 *
 * @throws {SealError} for a key that has no X25519 form
 */
export function ed25519PublicToX25519 (edPublic: Uint8Array): Uint8Array {
  if (edPublic.byteLength !== 32) throw new SealError('an Ed25519 public key is 32 bytes')
  try {
    return ed25519.utils.toMontgomery(edPublic)
  } catch {
    throw new SealError('the Ed25519 public key is not a valid point for X25519')
  }
}

/** The X25519 private scalar of an Ed25519 seed: SHA-512(seed)[0..32], clamped (@noble/curves) */
export function ed25519SeedToX25519 (seed: Uint8Array): Uint8Array {
  if (seed.byteLength !== 32) throw new SealError('an Ed25519 seed is 32 bytes')
  return ed25519.utils.toMontgomerySecret(seed)
}

export function x25519PrivateKeyObject (scalar: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, scalar]), format: 'der', type: 'pkcs8' })
}

export function x25519PublicKeyObject (raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' })
}

/** Who a box is between; the ids are bound into the key and the associated data */
export interface SealParties {
  /** Sender's Ed25519 public key (raw 32 bytes) */
  sender: Uint8Array
  /** Recipient's Ed25519 public key (raw 32 bytes) */
  recipient: Uint8Array
  /** The message id, so a box cannot be replayed under another id */
  id: string
}

/**
 * One side's sealing state: its X25519 key from its Ed25519 seed, and the
 * shared secret with each peer it has talked to (an X25519 agreement costs
 * ~50 µs; the cache makes a box cost an HKDF and an AEAD pass).
 */
export class Sealer {
  private readonly privateKey: KeyObject
  private readonly keys: BoundedMap<string, Buffer>
  /** The pair used last, its keys copied (so a caller reusing its arrays cannot change what they name) */
  private lastPair?: { sender: Buffer, recipient: Buffer, key: Buffer }
  private noncePool: Buffer = Buffer.alloc(0)
  private nonceOffset = 0

  /** `random` is the CSPRNG nonces come from (a test gives a fixed one to compare boxes byte for byte) */
  constructor (seed: Uint8Array, readonly ownPublic: Uint8Array, cacheSize = 1024, private readonly random: (bytes: number) => Buffer = randomBytes) {
    this.privateKey = x25519PrivateKeyObject(ed25519SeedToX25519(seed))
    this.keys = new BoundedMap(cacheSize)
  }

  /** Encrypt `plaintext` for `parties.recipient` (this node must be `parties.sender`) */
  seal (plaintext: Uint8Array, parties: SealParties): Uint8Array {
    const nonce = this.nextNonce()
    const cipher = createCipheriv(AEAD, this.pairKey(parties.recipient, parties), nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(parties), { plaintextLength: plaintext.byteLength })
    const body = cipher.update(plaintext)
    cipher.final()
    return Buffer.concat([Buffer.of(SEAL_VERSION), nonce, body, cipher.getAuthTag()])
  }

  /**
   * Decrypt a box sealed by `parties.sender` for this node
   *
   * @throws {SealError} when the box is malformed, tampered with, or not from `parties.sender` to us
   */
  open (box: Uint8Array, parties: SealParties): Uint8Array {
    if (box.byteLength < SEAL_OVERHEAD) throw new SealError('sealed box is truncated')
    if (box[0] !== SEAL_VERSION) throw new SealError(`unknown sealed box version ${box[0]}`)
    const nonce = box.subarray(1, 1 + NONCE_BYTES)
    const body = box.subarray(1 + NONCE_BYTES, box.byteLength - TAG_BYTES)
    const tag = box.subarray(box.byteLength - TAG_BYTES)
    try {
      const decipher = createDecipheriv(AEAD, this.pairKey(parties.sender, parties), nonce, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(parties), { plaintextLength: body.byteLength })
      decipher.setAuthTag(tag)
      const plain = decipher.update(body)
      decipher.final()
      return plain
    } catch {
      throw new SealError('sealed box does not authenticate (tampered, or not sealed by its claimed sender for this node)')
    }
  }

  private nextNonce (): Buffer {
    if (this.nonceOffset + NONCE_BYTES > this.noncePool.byteLength) {
      this.noncePool = this.random(NONCE_POOL_BYTES)
      this.nonceOffset = 0
    }
    const nonce = this.noncePool.subarray(this.nonceOffset, this.nonceOffset + NONCE_BYTES)
    this.nonceOffset += NONCE_BYTES
    return nonce
  }

  /** The key of the (sender, recipient) pair: X25519 agreement with `peerEdPublic`, through HKDF (cached) */
  private pairKey (peerEdPublic: Uint8Array, parties: SealParties): Buffer {
    // a drain opens thousands of boxes of one pair in a row: compare 64 bytes rather than build a cache key for each
    const last = this.lastPair
    if (last !== undefined && last.sender.equals(parties.sender) && last.recipient.equals(parties.recipient)) return last.key
    const key = this.cachedPairKey(peerEdPublic, parties)
    this.lastPair = { sender: Buffer.from(parties.sender), recipient: Buffer.from(parties.recipient), key }
    return key
  }

  private cachedPairKey (peerEdPublic: Uint8Array, parties: SealParties): Buffer {
    const cacheKey = Buffer.concat([parties.sender, parties.recipient]).toString('base64')
    let key = this.keys.get(cacheKey)
    if (key === undefined) {
      const secret = diffieHellman({ privateKey: this.privateKey, publicKey: x25519PublicKeyObject(ed25519PublicToX25519(peerEdPublic)) })
      if (secret.every(byte => byte === 0)) throw new SealError('the peer key is a low-order point')
      key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), Buffer.concat([INFO_PREFIX, parties.sender, parties.recipient]), 32))
      this.keys.set(cacheKey, key)
    }
    return key
  }
}

function associatedData (parties: SealParties): Buffer {
  const { sender, recipient, id } = parties
  const aad = Buffer.allocUnsafe(sender.byteLength + recipient.byteLength + Buffer.byteLength(id, 'utf8'))
  aad.set(sender, 0)
  aad.set(recipient, sender.byteLength)
  aad.write(id, sender.byteLength + recipient.byteLength, 'utf8')
  return aad
}
