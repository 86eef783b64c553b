import { sign, verify, type KeyObject } from 'node:crypto'
import { canonicalize } from './canonical.js'
import { CanonicalizationError } from './errors.js'
import { moltKeyToKeyObject } from './keys.js'
import { canonicalizeSource } from './source.js'
import type { MoltMessage } from './types.js'

const SIG_PREFIX = 'ed25519:'
// base64 of 64 bytes: 86 chars and `==`
const SIG_BASE64 = /^[A-Za-z0-9+/]{86}==$/

/** The bytes a signature covers: the canonical form of the message without `sig`, UTF-8 */
export function signingBytes (msg: MoltMessage): Uint8Array {
  const { sig: _sig, ...unsigned } = msg
  return Buffer.from(canonicalize(unsigned), 'utf8')
}

/**
 * The bytes a signature covers, from the JSON text a message was received as:
 * numbers as their source wrote them (`1.0`, `1e+16`, exact big integers), as
 * the sender's Python-form canonicalization saw them (source.ts)
 *
 * @throws {MoltSpeakError} E_PARSE on a repeated key, E_SIGNATURE on a number JavaScript cannot hold exactly
 */
export function sourceSigningBytes (json: string): Uint8Array {
  return Buffer.from(canonicalizeSource(json, 'sig'), 'utf8')
}

/**
 * A copy of the message with `sig` set to `ed25519:` + base64 of the Ed25519
 * signature over its canonical form. The input is not modified
 *
 * @throws {CanonicalizationError} if the message holds non-JSON values, or an
 * integer beyond ±2^53 that JSON cannot carry exactly (JavaScript writes 2^60
 * as 1152921504606847000): receivers would refuse it (source.ts)
 */
export function signMessage<M extends MoltMessage> (msg: M, privateKey: KeyObject): M {
  const bytes = signingBytes(msg)
  refuseUnfaithful(bytes)
  const signature = sign(null, bytes, privateKey)
  return { ...msg, sig: SIG_PREFIX + signature.toString('base64') }
}

// 16 digits in a row: an integer that may be beyond 2^53 (floats are written with an exponent or a fraction)
const LONG_DIGITS = /\d{16}/

/** Sign only what a strict receiver accepts: run its check on the canonical text when a long integer is in it */
function refuseUnfaithful (bytes: Uint8Array): void {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  if (!LONG_DIGITS.test(text)) return
  try {
    canonicalizeSource(text, '')
  } catch (err: any) {
    throw new CanonicalizationError(`Cannot sign: ${err.message as string}`, { cause: err })
  }
}

/**
 * Whether `sig` is a valid signature of the message by `publicKey`, or by
 * `msg.from.key` when no key is given. Never throws: a missing or malformed
 * signature or key is simply `false`
 */
export function verifyMessage (msg: MoltMessage, publicKey?: KeyObject): boolean {
  try {
    const parts = signatureParts(msg, publicKey)
    return parts !== undefined && verify(null, parts.bytes, parts.key, parts.signature)
  } catch {
    return false
  }
}

/**
 * `verifyMessage` on libuv's thread pool (node:crypto's callback form): many
 * verifications in flight run on every core while the event loop goes on — a
 * mailbox drain checks hundreds of signatures at once. Never rejects.
 */
export async function verifyMessageAsync (msg: MoltMessage, publicKey?: KeyObject): Promise<boolean> {
  try {
    const parts = signatureParts(msg, publicKey)
    if (parts === undefined) return false
    return await new Promise<boolean>((resolve) => {
      verify(null, parts.bytes, parts.key, parts.signature, (err, ok) => { resolve(err == null && ok) })
    })
  } catch {
    return false
  }
}

/**
 * Whether `sig` is a valid signature of a received message, checked over the
 * JSON text `json` that `msg` was parsed from (not over `msg`'s JavaScript
 * values, which lose `1.0` and big integers). Use it wherever a message
 * arrives as text from another implementation.
 *
 * @throws {MoltSpeakError} when the text cannot be verified faithfully: E_PARSE for a repeated key, E_SIGNATURE for a number without an exact JavaScript value
 */
export function verifyMessageSource (msg: MoltMessage, json: string, publicKey?: KeyObject): boolean {
  const bytes = sourceSigningBytes(json)
  try {
    const parts = signatureParts(msg, publicKey, bytes)
    return parts !== undefined && verify(null, parts.bytes, parts.key, parts.signature)
  } catch {
    return false
  }
}

/** `verifyMessageSource` on libuv's thread pool; rejects only as `verifyMessageSource` throws */
export async function verifyMessageSourceAsync (msg: MoltMessage, json: string, publicKey?: KeyObject): Promise<boolean> {
  const bytes = sourceSigningBytes(json)
  try {
    const parts = signatureParts(msg, publicKey, bytes)
    if (parts === undefined) return false
    return await new Promise<boolean>((resolve) => {
      verify(null, parts.bytes, parts.key, parts.signature, (err, ok) => { resolve(err == null && ok) })
    })
  } catch {
    return false
  }
}

/** What a verification needs, or undefined when `sig` or the key is missing or malformed */
function signatureParts (msg: MoltMessage, publicKey?: KeyObject, bytes?: Uint8Array): { key: KeyObject, bytes: Uint8Array, signature: Buffer } | undefined {
  const sig = msg.sig
  if (typeof sig !== 'string' || !sig.startsWith(SIG_PREFIX)) return undefined
  const b64 = sig.slice(SIG_PREFIX.length)
  if (!SIG_BASE64.test(b64)) return undefined
  const key = publicKey ?? fromKey(msg)
  if (key === undefined) return undefined
  return { key, bytes: bytes ?? signingBytes(msg), signature: Buffer.from(b64, 'base64') }
}

function fromKey (msg: MoltMessage): KeyObject | undefined {
  const key = msg.from?.key
  return typeof key === 'string' ? moltKeyToKeyObject(key) : undefined
}
