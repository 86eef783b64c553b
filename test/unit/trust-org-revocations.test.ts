/**
 * Organisation revocations in the trust service (org-revocations.ts) with a
 * stubbed gossipsub and a real LevelDB: which are kept, carried or refused,
 * the bound on untrusted ones, persistence, and their part in sync digests
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { OrgRevocations } from '../../src/services/trust/org-revocations.js'
import { RecordIntake } from '../../src/services/trust/intake.js'
import { SyncDigest, mergeDigests } from '../../src/services/trust/sync-digest.js'
import { unionSource } from '../../src/services/trust/sync.js'
import { revokeCertificate, revocationId, type OrgRoot } from '../../src/identity/org/index.js'
import { canonicalize, keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import { newIdentity } from '../support/trust.js'
import type { Identity } from '../../src/identity/index.js'

const acmeKey = generateKeyPairSync('ed25519').privateKey
const otherKey = generateKeyPairSync('ed25519').privateKey
const acme: OrgRoot = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(acmeKey)) }
const serial = (i: number): string => i.toString(16).padStart(32, '0')
const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(canonicalize(value))

let dir: string
let db: Database
let publisher: Identity
let forwarder: Identity
let n = 0

function stubPubsub (): any {
  const published: Uint8Array[] = []
  return { published, topicValidators: new Map(), subscribe: () => {}, unsubscribe: () => {}, publish: async (_t: string, data: Uint8Array) => { published.push(data); return { recipients: [] } } }
}

function setup (options: { maxUntrusted?: number, maxTrusted?: number, burst?: number, db?: Database } = {}): { revocations: OrgRevocations, intake: RecordIntake, pubsub: any } {
  const intake = new RecordIntake(undefined as any, defaultLogger().forComponent('test'))
  const pubsub = stubPubsub()
  const revocations = new OrgRevocations(pubsub, { db: options.db ?? db.sublevel(`t${n++}`) as unknown as Database, roots: () => [acme], intake, ...options })
  return { revocations, intake, pubsub }
}

const signed = (data: Uint8Array, from = publisher): Message => ({ type: 'signed', from: from.peerId, data, topic: 't', sequenceNumber: 1n, signature: new Uint8Array(64), key: new Uint8Array(32) } as any)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molt-orgrev-'))
  db = await openDatabase(dir)
  ;[publisher, forwarder] = await Promise.all([newIdentity(), newIdentity()])
})
afterAll(async () => {
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

describe('organisation revocations (stubbed gossipsub)', () => {
  it('a trusted org\'s revocation is kept, trusted, and survives a restart; a duplicate is not news', async () => {
    const table = db.sublevel('persist') as unknown as Database
    const { revocations, pubsub } = setup({ db: table })
    const rev = revokeCertificate({ org: 'acme', serial: serial(1) }, acmeKey)
    expect(await revocations.publish(rev)).toEqual({ id: revocationId(rev), revocation: rev, trusted: true })
    expect(pubsub.published).toHaveLength(1)
    expect(await revocations.add(rev)).toMatchObject({ added: false })
    const again = setup({ db: table }).revocations
    await again.open()
    expect(again.all()).toEqual([rev])
    expect(again.get(revocationId(rev))?.trusted).toBe(true)
  })

  it('validator: accepts a trusted one, carries an unknown org\'s, rejects a forgery under a trusted name', async () => {
    const { revocations, intake } = setup()
    const good = revokeCertificate({ org: 'acme', serial: serial(2) }, acmeKey)
    const unknown = revokeCertificate({ org: 'globex', serial: serial(3) }, otherKey)
    const forged = revokeCertificate({ org: 'acme', serial: serial(4) }, otherKey)
    expect(await revocations.validate(publisher.peerId, signed(bytes(good)))).toBe(TopicValidatorResult.Accept)
    expect(await revocations.validate(publisher.peerId, signed(bytes(good)))).toBe(TopicValidatorResult.Ignore)
    expect(await revocations.validate(publisher.peerId, signed(bytes(unknown)))).toBe(TopicValidatorResult.Accept)
    expect(revocations.get(revocationId(unknown))?.trusted).toBe(false)
    expect(await revocations.validate(publisher.peerId, signed(bytes(forged)))).toBe(TopicValidatorResult.Reject)
    expect(intake.rejected.RevocationSignatureError).toBe(1)
    // its signature changed after signing: not even its own key signed it
    expect(await revocations.validate(publisher.peerId, signed(bytes({ ...unknown, serial: serial(5) })))).toBe(TopicValidatorResult.Reject)
    expect(intake.rejected.RevocationSignatureError).toBe(2)
    expect(revocations.all().map(r => r.serial).sort()).toEqual([serial(2), serial(3)])
  })

  it('validator: unsigned, oversized and malformed messages are rejected before any signature check', async () => {
    const { revocations, intake } = setup()
    const good = revokeCertificate({ org: 'acme', serial: serial(6) }, acmeKey)
    expect(await revocations.validate(publisher.peerId, { type: 'unsigned', data: bytes(good), topic: 't' } as any)).toBe(TopicValidatorResult.Reject)
    expect(await revocations.validate(publisher.peerId, signed(new Uint8Array(5000).fill(0x20)))).toBe(TopicValidatorResult.Reject)
    expect(await revocations.validate(publisher.peerId, signed(new TextEncoder().encode('[[[[[[[[[[')))).toBe(TopicValidatorResult.Reject)
    expect(await revocations.validate(publisher.peerId, signed(bytes({ ...good, extra: 1 })))).toBe(TopicValidatorResult.Reject)
    expect(intake.rejected.InvalidCertificateError).toBe(4)
    expect(revocations.size).toBe(0)
  })

  it('a publisher over its rate is rejected when it sends itself, ignored when forwarded', async () => {
    const { revocations, intake } = setup({ burst: 2 })
    const revs = [7, 8, 9, 10].map(i => revokeCertificate({ org: 'acme', serial: serial(i) }, acmeKey))
    // the org key's own bucket is as large: the publisher's runs out first only when one publisher sends them all
    expect(await revocations.validate(publisher.peerId, signed(bytes(revs[0])))).toBe(TopicValidatorResult.Accept)
    expect(await revocations.validate(publisher.peerId, signed(bytes(revs[1])))).toBe(TopicValidatorResult.Accept)
    expect(await revocations.validate(publisher.peerId, signed(bytes(revs[2])))).toBe(TopicValidatorResult.Reject)
    expect(await revocations.validate(forwarder.peerId, signed(bytes(revs[3])))).toBe(TopicValidatorResult.Ignore)
    expect(intake.rejected.IssuerRateLimitError).toBe(2)
  })

  it('untrusted revocations are bounded (oldest evicted) and never push out trusted ones; trusted ones beyond their bound are refused', async () => {
    const { revocations } = setup({ maxUntrusted: 3, maxTrusted: 2 })
    const trusted = [11, 12].map(i => revokeCertificate({ org: 'acme', serial: serial(i) }, acmeKey))
    for (const r of trusted) await revocations.add(r)
    const strangers = [13, 14, 15, 16, 17].map(i => revokeCertificate({ org: `org${i}`, serial: serial(i) }, generateKeyPairSync('ed25519').privateKey))
    for (const r of strangers) await revocations.add(r)
    expect(revocations.size).toBe(5)
    expect(revocations.all().map(r => r.serial)).toEqual([serial(11), serial(12), serial(15), serial(16), serial(17)])
    await expect(revocations.add(revokeCertificate({ org: 'acme', serial: serial(18) }, acmeKey))).rejects.toMatchObject({ name: 'TrustStoreFullError' })
  })

  it('all() is a new array after each change (card verdict caches key on it) and the same one otherwise', async () => {
    const { revocations } = setup()
    const first = revocations.all()
    expect(revocations.all()).toBe(first)
    await revocations.add(revokeCertificate({ org: 'acme', serial: serial(19) }, acmeKey))
    expect(revocations.all()).not.toBe(first)
  })

  it('in sync: ids and digests join the attestations\', records travel as { id, org_revocation } and the id is checked', async () => {
    const { revocations } = setup()
    const rev = revokeCertificate({ org: 'acme', serial: serial(20) }, acmeKey)
    await revocations.add(rev)
    const id = revocationId(rev)
    expect(revocations.wire(id)).toEqual({ id, org_revocation: rev })
    const attestationId = 'ab'.repeat(32)
    const attestations = new SyncDigest()
    attestations.toggle(attestationId, true)
    const other = { digest: () => attestations.digest(), idsInBuckets: () => [attestationId], has: (x: string) => x === attestationId, wire: (x: string) => x === attestationId ? { id: x } : undefined }
    const union = unionSource(other, revocations)
    const both = new SyncDigest()
    both.toggle(attestationId, true)
    both.toggle(id, true)
    expect(union.digest()).toEqual(both.digest())
    expect(mergeDigests(attestations.digest(), revocations.digest())).toEqual(both.digest())
    expect(union.wire(id)).toEqual({ id, org_revocation: rev })
    expect(union.has(attestationId) && union.has(id)).toBe(true)
    const receiver = setup().revocations
    await expect(receiver.addFromSync({ id: attestationId, org_revocation: rev })).rejects.toMatchObject({ name: 'TrustSyncError' })
    expect(await setup().revocations.addFromSync({ id, org_revocation: rev })).toBe(true)
  })
})
