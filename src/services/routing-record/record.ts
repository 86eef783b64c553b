import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { canonicalize } from '../../moltspeak/canonical.js'
import * as c from './constants.js'
import { InvalidRouteRecordError, RouteRecordExpiredError, RouteRecordStaleError, RouteRecordMismatchError, RouteRecordSignatureError, RouteRecordTooLargeError } from './errors.js'
import { assertJsonDepth } from '../../json/index.js'

/** A relay whose mailbox the agent reads */
export interface MailboxRelay {
  /** The relay's PeerId */
  relay: string
  /** Its multiaddrs (without /p2p/<relay>) */
  addrs: string[]
}

/** How to reach one agent, signed by it (protocols/routing.md) */
export interface RouteRecord {
  v: number
  /** The agent's PeerId; its key signs the record */
  peer: string
  /** Ordering of this agent's records: the highest wins (ms timestamp of signing) */
  seq: number
  /** ms since the epoch after which the record is void */
  exp: number
  /** Direct addresses worth dialling */
  addrs: string[]
  /** Current circuit addresses, `<relay>/p2p-circuit/p2p/<peer>` */
  circuits: string[]
  /** Relays holding a mailbox for the agent */
  mailboxes: MailboxRelay[]
  /** base64 Ed25519 signature over SIGNATURE_DOMAIN + canonical form without `sig` */
  sig: string
}

export type UnsignedRouteRecord = Omit<RouteRecord, 'sig' | 'v'>

const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()
const KEY_PREFIX = encoder.encode(`/${c.NAMESPACE}/`)
const SIG_BASE64 = /^[A-Za-z0-9+/]{86}==$/
const FIELDS = new Set(['v', 'peer', 'seq', 'exp', 'addrs', 'circuits', 'mailboxes', 'sig'])

/** The DHT key of a PeerId's routing record: `/molt-route/` + its multihash bytes */
export function routeKey (peer: PeerId): Uint8Array {
  const hash = peer.toMultihash().bytes
  const key = new Uint8Array(KEY_PREFIX.byteLength + hash.byteLength)
  key.set(KEY_PREFIX)
  key.set(hash, KEY_PREFIX.byteLength)
  return key
}

/** The PeerId a routing record key names */
export function peerOfRouteKey (key: Uint8Array): PeerId {
  if (key.byteLength <= KEY_PREFIX.byteLength || !KEY_PREFIX.every((byte, i) => key[i] === byte)) {
    throw new RouteRecordMismatchError(`not a /${c.NAMESPACE}/ key`)
  }
  try {
    return peerIdFromMultihash(Digest.decode(key.subarray(KEY_PREFIX.byteLength)))
  } catch (err: any) {
    throw new RouteRecordMismatchError(`the key names no PeerId: ${err.message}`)
  }
}

/** Sign a record with the agent's key. The result is what `encodeRouteRecord` writes */
export async function signRouteRecord (record: UnsignedRouteRecord, key: PrivateKey): Promise<RouteRecord> {
  const unsigned = { v: c.VERSION, ...record }
  const signature = await key.sign(signingBytes(unsigned))
  const signed: RouteRecord = { ...unsigned, sig: Buffer.from(signature).toString('base64') }
  const size = encodeRouteRecord(signed).byteLength
  if (size > c.MAX_RECORD_BYTES) throw new RouteRecordTooLargeError(`record of ${size} bytes is over ${c.MAX_RECORD_BYTES}`)
  return signed
}

/** The wire form: canonical JSON, UTF-8 */
export function encodeRouteRecord (record: RouteRecord): Uint8Array {
  return encoder.encode(canonicalize(record))
}

/**
 * Decode and verify a record from the wire, in this order: size and nesting
 * (on the raw bytes), JSON, fields and limits, the PeerId (it must be `expected`
 * when given), time (seq not in the future, exp not passed nor too far ahead),
 * then the signature by the PeerId's own key.
 *
 * @throws {RouteRecordTooLargeError | InvalidRouteRecordError | RouteRecordMismatchError | RouteRecordExpiredError | RouteRecordSignatureError}
 */
export async function decodeRouteRecord (bytes: Uint8Array, options: { expected?: PeerId, now?: number } = {}): Promise<RouteRecord> {
  const record = parseRouteRecord(bytes)
  let peer: PeerId
  try {
    peer = peerIdFromString(record.peer)
  } catch {
    throw new InvalidRouteRecordError('peer is not a PeerId', 'peer')
  }
  if (options.expected != null && !options.expected.equals(peer)) {
    throw new RouteRecordMismatchError(`record of ${record.peer} where ${options.expected.toString()} was asked for`)
  }
  const now = options.now ?? Date.now()
  if (record.seq > now + c.MAX_CLOCK_SKEW) throw new RouteRecordExpiredError('seq is in the future')
  if (record.exp <= now) throw new RouteRecordExpiredError(`record expired at ${new Date(record.exp).toISOString()}`)
  if (record.exp > now + c.MAX_RECORD_TTL + c.MAX_CLOCK_SKEW) throw new RouteRecordExpiredError('exp is further ahead than the longest validity')
  if (peer.publicKey?.type !== 'Ed25519') throw new RouteRecordSignatureError('the PeerId carries no Ed25519 key')
  const { sig, ...unsigned } = record
  const ok = await peer.publicKey.verify(signingBytes(unsigned), Buffer.from(sig, 'base64'))
  if (!ok) throw new RouteRecordSignatureError(`bad signature on the record of ${record.peer}`)
  return record
}

/**
 * The record's fields, checked for shape and limits but not for signature or
 * time: the DHT selector orders already-validated records with it.
 */
export function parseRouteRecord (bytes: Uint8Array): RouteRecord {
  if (bytes.byteLength > c.MAX_RECORD_BYTES) throw new RouteRecordTooLargeError(`record of ${bytes.byteLength} bytes is over ${c.MAX_RECORD_BYTES}`)
  try {
    assertJsonDepth(bytes, c.MAX_RECORD_DEPTH)
  } catch {
    throw new RouteRecordTooLargeError(`record nests deeper than ${c.MAX_RECORD_DEPTH} levels`)
  }
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    throw new InvalidRouteRecordError('record is not UTF-8 JSON', 'record')
  }
  return checkFields(value)
}

/**
 * The DHT validator: throws unless `value` is a valid, current record of the
 * PeerId the key names and — when `stored` gives the record this node already
 * holds for the key — not older than it. A DHT server overwrites on every
 * valid PUT, so without that check anyone could replay an older (still
 * unexpired) record of an agent to roll its routes back.
 */
export async function validateRouteRecord (key: Uint8Array, value: Uint8Array, stored?: (key: Uint8Array) => Promise<Uint8Array | undefined>): Promise<void> {
  const record = await decodeRouteRecord(value, { expected: peerOfRouteKey(key) })
  const held = await stored?.(key)
  if (held == null) return
  let heldSeq = -1
  try { heldSeq = parseRouteRecord(held).seq } catch {}
  if (record.seq < heldSeq) throw new RouteRecordStaleError(`seq ${record.seq} is older than the held record's ${heldSeq}`)
}

/** The DHT selector: index of the record with the highest seq (the first of equals; unparseable ones lose) */
export function selectRouteRecord (_key: Uint8Array, values: Uint8Array[]): number {
  let best = 0
  let bestSeq = -1
  values.forEach((value, i) => {
    let seq = -1
    try { seq = parseRouteRecord(value).seq } catch {}
    if (seq > bestSeq) {
      best = i
      bestSeq = seq
    }
  })
  return best
}

function signingBytes (unsigned: Omit<RouteRecord, 'sig'>): Uint8Array {
  return encoder.encode(c.SIGNATURE_DOMAIN + canonicalize(unsigned))
}

function checkFields (value: unknown): RouteRecord {
  if (!isObject(value)) throw new InvalidRouteRecordError('record is not an object', 'record')
  for (const field of Object.keys(value)) {
    if (!FIELDS.has(field)) throw new InvalidRouteRecordError(`unknown field ${field}`, field)
  }
  if (value.v !== c.VERSION) throw new InvalidRouteRecordError(`version ${String(value.v)} is not ${c.VERSION}`, 'v')
  if (typeof value.peer !== 'string' || value.peer.length > 128) throw new InvalidRouteRecordError('peer must be a PeerId string', 'peer')
  for (const field of ['seq', 'exp'] as const) {
    if (!Number.isSafeInteger(value[field]) || (value[field] as number) < 0) throw new InvalidRouteRecordError(`${field} must be a non-negative integer`, field)
  }
  if (typeof value.sig !== 'string' || !SIG_BASE64.test(value.sig)) throw new InvalidRouteRecordError('sig must be a base64 Ed25519 signature', 'sig')
  checkAddrs(value.addrs, 'addrs', c.MAX_DIRECT_ADDRS)
  checkAddrs(value.circuits, 'circuits', c.MAX_CIRCUIT_ADDRS)
  for (const circuit of value.circuits as string[]) {
    if (!circuit.includes('/p2p-circuit') || !circuit.endsWith(`/p2p/${value.peer}`)) {
      throw new InvalidRouteRecordError('a circuit address must be <relay>/p2p-circuit/p2p/<peer>', 'circuits')
    }
  }
  if (!Array.isArray(value.mailboxes) || value.mailboxes.length > c.MAX_MAILBOXES) {
    throw new InvalidRouteRecordError(`mailboxes must be a list of at most ${c.MAX_MAILBOXES}`, 'mailboxes')
  }
  for (const mailbox of value.mailboxes) {
    if (!isObject(mailbox) || Object.keys(mailbox).some(k => k !== 'relay' && k !== 'addrs')) throw new InvalidRouteRecordError('a mailbox is {relay, addrs}', 'mailboxes')
    try {
      peerIdFromString(mailbox.relay as string)
    } catch {
      throw new InvalidRouteRecordError('a mailbox relay must be a PeerId', 'mailboxes')
    }
    checkAddrs(mailbox.addrs, 'mailboxes', c.MAX_MAILBOX_ADDRS)
  }
  return value as unknown as RouteRecord
}

function checkAddrs (list: unknown, field: string, max: number): void {
  if (!Array.isArray(list) || list.length > max) throw new InvalidRouteRecordError(`${field} must be a list of at most ${max}`, field)
  for (const item of list) {
    if (typeof item !== 'string' || item.length > c.MAX_ADDR_LENGTH) throw new InvalidRouteRecordError(`${field} holds a non-string or too long address`, field)
    try {
      multiaddr(item)
    } catch {
      throw new InvalidRouteRecordError(`${field} holds an invalid multiaddr`, field)
    }
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
