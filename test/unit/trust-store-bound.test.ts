/**
 * Issue 15, finding 9: issuers cost nothing, so records of issuers without a
 * trust path share a bounded space of their own; 10,000 Sybil issuers cannot
 * grow the store past it, nor push out (or keep out) the records of issuers
 * with a trust path.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { TrustStore } from '../../src/services/trust/store.js'
import { encodeAttestation, peerIdOfKey, type Attestation, type VerifiedAttestation } from '../../src/services/trust/index.js'
import type { Identity } from '../../src/identity/index.js'
import { newIdentity, record } from '../support/trust.js'

const dirs: string[] = []
afterAll(async () => { await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true }))) })

function verified (r: Attestation): VerifiedAttestation {
  return { record: r, issuer: peerIdOfKey(r.issuer.key), subject: peerIdOfKey(r.subject.key), bytes: encodeAttestation(r) }
}

/** A bare issuer (node:crypto keys: 10,000 full identities would cost the test most of its time) */
function sybil (): Pick<Identity, 'moltKey' | 'signingKey' | 'peerId'> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const moltKey = 'ed25519:' + Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64')
  return { moltKey, signingKey: privateKey, peerId: { toString: () => peerIdOfKey(moltKey) } as Identity['peerId'] }
}

const BOUNDS = { maxUnanchored: 1000, maxUnanchoredBytes: 1024 * 1024 }
const MAX_STORED = 5000

describe('trust store bound on issuers without a trust path', () => {
  it('10,000 Sybil issuers neither push out nor keep out records of issuers with a trust path, and the store stays bounded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-trust-bound-'))
    dirs.push(dir)
    let db: Database = await openDatabase(dir)
    const self = await newIdentity()
    const pre = await newIdentity()
    const vouched = await newIdentity()
    const roots = [self.peerId.toString(), pre.peerId.toString()]
    let store = new TrustStore(db, MAX_STORED, { roots, ...BOUNDS })
    await store.open()

    // the pre-trusted peer vouches for another, which issues records of its own: both have a trust path
    const trusted: Attestation[] = [record(pre, vouched)]
    for (let i = 0; i < 100; i++) trusted.push(record(pre, await newIdentity(), { claims: { strength: 'weak', context: `pre ${i}` } }))
    for (let i = 0; i < 100; i++) trusted.push(record(vouched, await newIdentity(), { claims: { strength: 'weak', context: `vouched ${i}` } }))
    await store.add(trusted.map(verified))

    // 10,000 fresh issuers, one record each, arriving in gossip-sized batches
    const sybils = Array.from({ length: 10_000 }, sybil)
    const target = await newIdentity()
    for (let i = 0; i < sybils.length; i += 100) {
      await store.add(sybils.slice(i, i + 100).map(s => verified(record(s as Identity, target, { claims: { strength: 'exceptional' } }))))
    }
    expect(store.unanchoredCount).toBe(BOUNDS.maxUnanchored)
    expect(store.size).toBe(trusted.length + BOUNDS.maxUnanchored)
    for (const r of trusted) expect(store.has(r.id)).toBe(true)

    // issuers with a trust path still get in after the flood
    const later = Array.from({ length: 50 }, (_, i) => record(vouched, target, { claims: { strength: 'moderate', context: `later ${i}` } }))
    expect(await store.add(later.map(verified))).toHaveLength(50)
    expect(store.size).toBe(trusted.length + later.length + BOUNDS.maxUnanchored)

    // a Sybil that an issuer with a trust path vouches for gains one: its record leaves the bounded space
    const last = sybils[sybils.length - 1]
    await store.add([verified(record(vouched, last.moltKey))])
    expect(store.anchored(last.peerId.toString())).toBe(true)
    expect(store.unanchoredCount).toBe(BOUNDS.maxUnanchored - 1)

    // the bound holds across a restart, and a store opened with a smaller one is brought within it
    await store.close()
    await db.close()
    db = await openDatabase(dir)
    store = new TrustStore(db, MAX_STORED, { roots, maxUnanchored: 100, maxUnanchoredBytes: BOUNDS.maxUnanchoredBytes })
    await store.open()
    expect(store.unanchoredCount).toBe(100)
    for (const r of [...trusted, ...later]) expect(store.has(r.id)).toBe(true)
    await store.close()
    await db.close()
  }, 120_000)
})
