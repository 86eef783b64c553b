/**
 * The trust topic's validator (gossip.ts) with a stubbed gossipsub and a real
 * store: what is accepted, ignored (no penalty) or rejected (penalty), in milliseconds
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { TrustStore } from '../../src/services/trust/store.js'
import { TrustGossip } from '../../src/services/trust/gossip.js'
import { RecordIntake } from '../../src/services/trust/intake.js'
import { RateLimiter } from '../../src/services/trust/rate-limit.js'
import { encodeAttestation } from '../../src/services/trust/index.js'
import type { Identity } from '../../src/identity/index.js'
import { newIdentity, record } from '../support/trust.js'

const TOPIC = 'molt/trust/test'
const hour = 3_600_000

/** The parts of gossipsub TrustGossip uses, recording what it was asked */
function stubPubsub (): GossipSub & { published: Uint8Array[], subscribed: Set<string> } {
  const published: Uint8Array[] = []
  const subscribed = new Set<string>()
  const seen = new Set<string>()
  return {
    published,
    subscribed,
    topicValidators: new Map(),
    subscribe: (t: string) => { subscribed.add(t) },
    unsubscribe: (t: string) => { subscribed.delete(t) },
    publish: async (_t: string, data: Uint8Array) => {
      const key = Buffer.from(data).toString('hex')
      if (seen.has(key)) throw new Error('PublishError.Duplicate')
      seen.add(key)
      published.push(data)
      return { recipients: [] }
    },
    getScore: () => -3
  } as any
}

const signed = (from: PeerId, data: Uint8Array): Message => ({ type: 'signed', from, data, topic: TOPIC, sequenceNumber: 1n, signature: new Uint8Array(64), key: new Uint8Array(32) } as any)

let dir: string
let db: Database
let self: Identity
let issuer: Identity
let subject: Identity
let other: Identity

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molt-trust-gossip-'))
  db = await openDatabase(dir)
  ;[self, issuer, subject, other] = await Promise.all([newIdentity(), newIdentity(), newIdentity(), newIdentity()])
})
afterAll(async () => {
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

async function setup (burst = 30): Promise<{ gossip: TrustGossip, intake: RecordIntake, store: TrustStore, pubsub: ReturnType<typeof stubPubsub> }> {
  const store = new TrustStore(db.sublevel(`s${Math.random()}`) as unknown as Database, 1000, { roots: [self.peerId.toString()] })
  await store.open()
  const intake = new RecordIntake(store, defaultLogger().forComponent('test'))
  const pubsub = stubPubsub()
  const gossip = new TrustGossip(pubsub, { topic: TOPIC, store, intake, limiter: new RateLimiter(burst, 1, 100) })
  return { gossip, intake, store, pubsub }
}

describe('trust gossip validation (stubbed gossipsub)', () => {
  it('start registers the validator and subscribes; stop undoes both', async () => {
    const { gossip, pubsub } = await setup()
    gossip.start()
    expect(pubsub.topicValidators.has(TOPIC)).toBe(true)
    expect(pubsub.subscribed.has(TOPIC)).toBe(true)
    gossip.stop()
    expect(pubsub.topicValidators.has(TOPIC)).toBe(false)
    expect(pubsub.subscribed.has(TOPIC)).toBe(false)
  })

  it('a record published by its issuer is accepted and stored; the same again is ignored', async () => {
    const { gossip, store, intake } = await setup()
    const r = record(issuer, subject)
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, encodeAttestation(r)))).toBe(TopicValidatorResult.Accept)
    expect(store.has(r.id)).toBe(true)
    expect(intake.accepted).toBe(1)
    // forwarded by a mesh peer: the publisher is still the issuer
    expect(await gossip.validate(other.peerId, signed(issuer.peerId, encodeAttestation(r)))).toBe(TopicValidatorResult.Ignore)
    expect(intake.accepted).toBe(1)
  })

  it('rejects, with the reason counted: unsigned, forwarded replay, forged, malformed, long expired', async () => {
    const { gossip, store, intake } = await setup()
    const r = record(issuer, subject)
    const cases: Array<[Message, string]> = [
      [{ type: 'unsigned', data: encodeAttestation(r), topic: TOPIC } as any, 'InvalidAttestationError'],
      [signed(other.peerId, encodeAttestation(r)), 'InvalidAttestationError'],
      [signed(issuer.peerId, encodeAttestation({ ...r, claims: { strength: 'exceptional' } })), 'AttestationSignatureError'],
      [signed(issuer.peerId, new TextEncoder().encode('{"type":')), 'InvalidAttestationError'],
      [signed(issuer.peerId, encodeAttestation(record(issuer, subject, { issued: Date.now() - 3 * hour, expires: Date.now() - 2 * hour }))), 'AttestationExpiredError']
    ]
    for (const [msg, reason] of cases) {
      const before = intake.rejected[reason] ?? 0
      expect(await gossip.validate(issuer.peerId, msg)).toBe(TopicValidatorResult.Reject)
      expect(intake.rejected[reason]).toBe(before + 1)
    }
    expect(store.size).toBe(0)
  })

  it('a record that expired while it travelled is ignored, not penalised', async () => {
    const { gossip, intake } = await setup()
    const r = record(issuer, subject, { issued: Date.now() - hour, expires: Date.now() - 1000 })
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, encodeAttestation(r)))).toBe(TopicValidatorResult.Ignore)
    expect(intake.rejected.AttestationExpiredError).toBe(1)
  })

  it('an issuer over its rate: rejected from the issuer itself, ignored from a forwarder', async () => {
    const { gossip, intake } = await setup(2)
    const four = [0, 1, 2, 3].map(i => encodeAttestation(record(issuer, subject, { claims: { strength: 'weak', domain: `d${i}` } })))
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, four[0]))).toBe(TopicValidatorResult.Accept)
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, four[1]))).toBe(TopicValidatorResult.Accept)
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, four[2]))).toBe(TopicValidatorResult.Reject)
    expect(await gossip.validate(other.peerId, signed(issuer.peerId, four[3]))).toBe(TopicValidatorResult.Ignore)
    expect(intake.rejected.IssuerRateLimitError).toBe(2)
  })

  it('a revocation by someone other than the revoked record\'s issuer is rejected', async () => {
    const { gossip, intake } = await setup()
    const r = record(issuer, subject)
    expect(await gossip.validate(issuer.peerId, signed(issuer.peerId, encodeAttestation(r)))).toBe(TopicValidatorResult.Accept)
    const bogus = record(other, subject, { type: 'revocation', claims: { credential_id: r.id } })
    expect(await gossip.validate(other.peerId, signed(other.peerId, encodeAttestation(bogus)))).toBe(TopicValidatorResult.Reject)
    expect(intake.rejected.RevocationMismatchError).toBe(1)
  })

  it('publish sends the canonical bytes once; a duplicate is not an error', async () => {
    const { gossip, pubsub } = await setup()
    const r = record(issuer, subject)
    const verified = { record: r, issuer: issuer.peerId.toString(), subject: subject.peerId.toString(), bytes: encodeAttestation(r) }
    await gossip.publish(verified)
    await gossip.publish(verified)
    expect(pubsub.published).toHaveLength(1)
    expect(gossip.score(issuer.peerId)).toBe(-3)
  })
})
