import { describe, it, expect, beforeAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import {
  decodeRouteRecord, encodeRouteRecord, parseRouteRecord, peerOfRouteKey, publishable, routeKey, selectRouteRecord, signRouteRecord,
  validateRouteRecord, type RouteRecord, type UnsignedRouteRecord
} from '../../src/services/routing-record/index.js'
import { MAX_RECORD_BYTES, MAX_RECORD_TTL, MAX_CLOCK_SKEW } from '../../src/services/routing-record/constants.js'
import { canonicalize } from '../../src/moltspeak/canonical.js'

let key: Ed25519PrivateKey
let peer: PeerId
let other: Ed25519PrivateKey
const relay = '12D3KooWGRUVh2ZXh1ZTaeyJMMnSVBMG5L7WzNVKLSJoaSfQR9Ud'
const now = Date.now()

function unsigned (more: Partial<UnsignedRouteRecord> = {}): UnsignedRouteRecord {
  return {
    peer: peer.toString(),
    seq: now,
    exp: now + 3_600_000,
    addrs: ['/ip4/192.168.1.7/tcp/4001'],
    circuits: [`/ip4/127.0.0.1/tcp/4001/p2p/${relay}/p2p-circuit/p2p/${peer.toString()}`],
    mailboxes: [{ relay, addrs: ['/ip4/127.0.0.1/tcp/4001'] }],
    ...more
  }
}

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))

beforeAll(async () => {
  key = await generateKeyPair('Ed25519')
  other = await generateKeyPair('Ed25519')
  peer = peerIdFromPrivateKey(key)
})

describe('routing record', () => {
  it('round-trips: signed, canonically encoded, verified against the PeerId in its DHT key', async () => {
    const record = await signRouteRecord(unsigned(), key)
    const encoded = encodeRouteRecord(record)
    expect(new TextDecoder().decode(encoded)).toBe(canonicalize(record))
    expect(await decodeRouteRecord(encoded, { expected: peer })).toEqual(record)
    const dhtKey = routeKey(peer)
    expect(new TextDecoder().decode(dhtKey.subarray(0, 12))).toBe('/molt-route/')
    expect(peerOfRouteKey(dhtKey).equals(peer)).toBe(true)
    await expect(validateRouteRecord(dhtKey, encoded)).resolves.toBeUndefined()
  })

  it('refuses a forged record: a field changed after signing', async () => {
    const record = await signRouteRecord(unsigned(), key)
    const forged: RouteRecord = { ...record, circuits: [`/ip4/10.0.0.1/tcp/1/p2p/${relay}/p2p-circuit/p2p/${peer.toString()}`] }
    await expect(decodeRouteRecord(encodeRouteRecord(forged))).rejects.toMatchObject({ name: 'RouteRecordSignatureError' })
    await expect(validateRouteRecord(routeKey(peer), encodeRouteRecord(forged))).rejects.toMatchObject({ name: 'RouteRecordSignatureError' })
  })

  it('refuses a record signed by another key than the PeerId it names', async () => {
    const record = await signRouteRecord(unsigned(), other)
    await expect(decodeRouteRecord(encodeRouteRecord(record))).rejects.toMatchObject({ name: 'RouteRecordSignatureError' })
  })

  it('refuses a valid record stored under another PeerId\'s key', async () => {
    const otherPeer = peerIdFromPrivateKey(other)
    const record = await signRouteRecord(unsigned(), key)
    await expect(validateRouteRecord(routeKey(otherPeer), encodeRouteRecord(record))).rejects.toMatchObject({ name: 'RouteRecordMismatchError' })
    await expect(validateRouteRecord(new TextEncoder().encode('/molt-route/garbage'), encodeRouteRecord(record))).rejects.toMatchObject({ name: 'RouteRecordMismatchError' })
  })

  it('refuses expired records, records valid too long and records from the future', async () => {
    const expired = await signRouteRecord(unsigned({ seq: now - 10_000, exp: now - 1 }), key)
    await expect(decodeRouteRecord(encodeRouteRecord(expired))).rejects.toMatchObject({ name: 'RouteRecordExpiredError' })
    const tooLong = await signRouteRecord(unsigned({ exp: now + MAX_RECORD_TTL + MAX_CLOCK_SKEW + 60_000 }), key)
    await expect(decodeRouteRecord(encodeRouteRecord(tooLong))).rejects.toMatchObject({ name: 'RouteRecordExpiredError' })
    const future = await signRouteRecord(unsigned({ seq: now + MAX_CLOCK_SKEW + 60_000 }), key)
    await expect(decodeRouteRecord(encodeRouteRecord(future))).rejects.toMatchObject({ name: 'RouteRecordExpiredError' })
    // the same record is fine at a time it is valid
    await expect(decodeRouteRecord(encodeRouteRecord(expired), { now: now - 5_000 })).resolves.toMatchObject({ seq: now - 10_000 })
  })

  it('the selector picks the highest seq; an older or unparseable record loses', async () => {
    const older = encodeRouteRecord(await signRouteRecord(unsigned({ seq: now - 1000 }), key))
    const newer = encodeRouteRecord(await signRouteRecord(unsigned({ seq: now }), key))
    const k = routeKey(peer)
    expect(selectRouteRecord(k, [older, newer])).toBe(1)
    expect(selectRouteRecord(k, [newer, older])).toBe(0)
    expect(selectRouteRecord(k, [bytes('not json'), older])).toBe(1)
    expect(selectRouteRecord(k, [older, bytes('{"v":1,"seq":99999999999999}'), newer])).toBe(2)
  })

  it('a DHT server holding a record refuses an older one for the same key (no rollback by replay)', async () => {
    const older = encodeRouteRecord(await signRouteRecord(unsigned({ seq: now - 1000 }), key))
    const newer = encodeRouteRecord(await signRouteRecord(unsigned({ seq: now }), key))
    const k = routeKey(peer)
    await expect(validateRouteRecord(k, older, async () => newer)).rejects.toMatchObject({ name: 'RouteRecordStaleError' })
    await expect(validateRouteRecord(k, newer, async () => older)).resolves.toBeUndefined()
    await expect(validateRouteRecord(k, newer, async () => newer)).resolves.toBeUndefined()
    await expect(validateRouteRecord(k, older, async () => undefined)).resolves.toBeUndefined()
  })

  it('refuses oversized records before parsing, and will not sign one', async () => {
    const big = new Uint8Array(MAX_RECORD_BYTES + 1).fill(0x20)
    expect(() => parseRouteRecord(big)).toThrow(expect.objectContaining({ name: 'RouteRecordTooLargeError' }))
    const addrs = Array.from({ length: 16 }, (_, i) => `/dns4/${'a'.repeat(480)}${i}.example/tcp/1`)
    await expect(signRouteRecord(unsigned({ addrs }), key)).rejects.toMatchObject({ name: 'RouteRecordTooLargeError' })
  })

  it('refuses records nested too deep before parsing', () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000)
    expect(() => parseRouteRecord(bytes(deep))).toThrow(expect.objectContaining({ name: 'RouteRecordTooLargeError' }))
    const nested = { ...unsigned(), v: 1, sig: 'A'.repeat(86) + '==', mailboxes: [{ relay, addrs: [['/ip4/1.2.3.4']] }] }
    expect(() => parseRouteRecord(bytes(nested))).toThrow(expect.objectContaining({ name: 'RouteRecordTooLargeError' }))
    // brackets inside strings do not count
    const quoted = { ...unsigned(), v: 1, sig: 'A'.repeat(86) + '==', addrs: ['/dns4/[[[[[[.example/tcp/1'] }
    expect(parseRouteRecord(bytes(quoted)).addrs).toEqual(['/dns4/[[[[[[.example/tcp/1'])
  })

  it('names the bad field of malformed records', async () => {
    const good = { ...unsigned(), v: 1, sig: 'A'.repeat(86) + '==' }
    const cases: Array<[unknown, string]> = [
      ['[]', 'record'],
      [{ ...good, v: 2 }, 'v'],
      [{ ...good, extra: 1 }, 'extra'],
      [{ ...good, seq: -1 }, 'seq'],
      [{ ...good, exp: 1.5 }, 'exp'],
      [{ ...good, sig: 'short' }, 'sig'],
      [{ ...good, addrs: ['not a multiaddr'] }, 'addrs'],
      [{ ...good, addrs: Array(17).fill('/ip4/1.2.3.4/tcp/1') }, 'addrs'],
      [{ ...good, circuits: ['/ip4/1.2.3.4/tcp/1'] }, 'circuits'],
      [{ ...good, mailboxes: [{ relay: 'nope', addrs: [] }] }, 'mailboxes'],
      [{ ...good, mailboxes: Array(5).fill({ relay, addrs: [] }) }, 'mailboxes']
    ]
    for (const [value, field] of cases) {
      expect(() => parseRouteRecord(bytes(value)), field).toThrow(expect.objectContaining({ name: 'InvalidRouteRecordError', field }))
    }
    expect(() => parseRouteRecord(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(expect.objectContaining({ name: 'InvalidRouteRecordError' }))
  })

  it('publishes loopback and link-local addresses only when a node has nothing else', () => {
    const mixed = ['/ip4/127.0.0.1/tcp/1', '/ip4/192.168.1.2/tcp/1', '/ip6/::1/tcp/1', '/ip6/fe80::1/tcp/1', '/ip4/169.254.3.4/tcp/1'].map(a => multiaddr(a))
    expect(publishable(mixed).map(String)).toEqual(['/ip4/192.168.1.2/tcp/1'])
    const loopbackOnly = ['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/2'].map(a => multiaddr(a))
    expect(publishable(loopbackOnly).map(String)).toEqual(['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/2'])
  })
})
