import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { newIdentity, record } from '../support/trust.js'
import { encodeAttestation, TOPIC } from '../../src/services/trust/index.js'
import { ISSUER_BURST, ISSUER_RATE_PER_MINUTE } from '../../src/services/trust/constants.js'
import type { MoltNode } from '../../src/index.js'
import type { Identity } from '../../src/identity/index.js'

/*
 * 22 real nodes on 127.0.0.1 in a sparse mesh (each dials 3 others), a late
 * joiner, and an attacker connected to three of them. Set-up ≈ 7 s of CPU
 * (30 s with the DHT on every node, dialled one at a time).
 */
const N = 22
const net = new TestNetwork()
const nodes: MoltNode[] = []
// libp2p's connection monitor off: on a loaded shared machine its pings time out and it aborts
// healthy loopback connections, cutting this one-process network apart (seen on the base code too)
// and no DHT: it is not what is tested, and its routing-table upkeep on every new connection was most of
// the set-up's CPU (the DHT over TCP + Noise is dht.test.ts's subject)
const options = { heartbeatInterval: 0, trust: { syncInterval: 0 }, dht: { enabled: false }, libp2p: { connectionMonitor: { enabled: false } } as any }
const pubsub = (n: MoltNode): any => n.libp2p.services.pubsub
const everywhere = (id: string, list = nodes): boolean => list.every(n => n.trust.get(id) !== undefined)
/** `a` knows `b` subscribes to the trust topic (a publishes to peers it knows subscribe) */
const subscribed = (a: MoltNode, b: MoltNode): boolean => pubsub(a).getSubscribers(TOPIC).some((p: any) => p.equals(b.peerId))
/** How long a wait for an event may take before the test gives up (a deadline, not an assertion) */
const DEADLINE = 30_000

beforeAll(async () => {
  for (let i = 0; i < N; i++) nodes.push(await net.node(options))
  // all 66 dials at once: they wait on each other's handshakes, not on a timer
  await Promise.all(nodes.flatMap((node, i) => [1, 2, 7].map(async k => node.libp2p.dial(nodes[(i + k) % N].getMultiaddrs()[0]))))
  await eventually(() => nodes.every(n => pubsub(n).getMeshPeers(TOPIC).length >= 2), 60_000, 'every node in the mesh')
  // starting 23 nodes is seconds of CPU: a deadline for a busy machine, not a speed requirement
}, 180_000)
afterAll(async () => { await net.cleanup() })

describe(`trust over gossipsub, ${N} nodes`, { timeout: 120_000 }, () => {
  const published: string[] = []

  it('attestations published by some nodes reach all', async () => {
    for (let i = 0; i < 5; i++) {
      const a = await nodes[i * 4].trust.attest({ subject: nodes[(i * 4 + 11) % N].peerId, type: 'endorsement', strength: 'exceptional', domain: 'translate.text' })
      const b = await nodes[i * 4 + 1].trust.attest({ subject: nodes[(i * 4 + 3) % N].peerId, type: 'task_completion', outcome: 'completed', rating: 5, taskId: `t${i}` })
      published.push(a.id, b.id)
    }
    await eventually(() => published.every(id => everywhere(id)), DEADLINE, 'all records on all nodes')
  })

  it('a revoked attestation stops counting everywhere', async () => {
    const subject = nodes[13].peerId
    const att = await nodes[2].trust.attest({ subject, type: 'endorsement', strength: 'exceptional' })
    await eventually(() => everywhere(att.id), DEADLINE, 'the record everywhere')
    // from an unknown issuer it counts only a little, but it counts
    for (const n of nodes.filter(n => !n.peerId.equals(subject))) expect(n.trust.score(subject).positive).toBeGreaterThan(0)
    const revocation = await nodes[2].trust.revoke(att.id, 'mistake')
    await eventually(() => nodes.every(n => n.trust.get(att.id)?.revoked === true), DEADLINE, 'revoked everywhere')
    expect(everywhere(revocation.id)).toBe(true)
    for (const n of nodes.filter(n => !n.peerId.equals(subject))) {
      expect(n.trust.score(subject).explain.some(c => c.id === att.id)).toBe(false)
    }
    published.push(att.id, revocation.id)
  })

  it('a record of another agent handed to submit() is kept, not gossiped: gossip takes records from their issuer only', async () => {
    const issuer = await newIdentity()
    const rejectedTotal = (): number => nodes.reduce((sum, n) => sum + Object.values(n.trust.stats().rejected).reduce((x, y) => x + y, 0), 0)
    const before = rejectedTotal()
    const kept = await nodes[4].trust.submit(record(issuer, nodes[9].moltKey))
    expect(nodes[4].trust.get(kept.attestation.id)).toBeDefined()
    // a record nodes[4] issues after it goes the same way to the same peers: once that one is everywhere,
    // a published copy of the submitted record would have been refused (and its publisher penalised)
    const marker = await nodes[4].trust.attest({ subject: nodes[9].peerId, type: 'endorsement', strength: 'weak', domain: 'marker' })
    await eventually(() => everywhere(marker.id), DEADLINE, 'the marker record everywhere')
    expect(rejectedTotal()).toBe(before)
    expect(nodes.filter(n => n !== nodes[4]).every(n => n.trust.gossipScore(nodes[4].peerId) >= 0)).toBe(true)
  })

  it('a node started later converges after sync', async () => {
    // on a topic nobody publishes to, so gossip (whose message cache may still hold the records) cannot
    // bring them: what it holds came by the sync it starts when it connects
    const late = await net.node({ ...options, trust: { ...options.trust, topic: 'molt/trust/late-joiner-test' } })
    await late.libp2p.dial(nodes[5].getMultiaddrs()[0])
    // records are stored batch by batch, and counted as synced when the session ends: wait for both
    await eventually(() => published.every(id => late.trust.get(id) !== undefined) && late.trust.stats().synced >= published.length, DEADLINE, 'the late node caught up')
    expect(late.trust.get(published[published.length - 2])?.revoked).toBe(true)
  })

  describe('adversarial', () => {
    let attacker: MoltNode
    let victim: Identity
    const neighbours = (): MoltNode[] => [nodes[0], nodes[8], nodes[16]]

    beforeAll(async () => {
      attacker = await net.node(options)
      victim = await newIdentity()
      for (const n of neighbours()) await attacker.libp2p.dial(n.getMultiaddrs()[0])
      // both ways: the attacker publishes only to peers it knows subscribe
      await eventually(() => neighbours().every(n => subscribed(n, attacker) && subscribed(attacker, n)), DEADLINE, 'attacker subscribed')
    })

    it('forged, malformed, oversized, future-dated and self records are rejected and the publisher penalised', async () => {
      const me = { moltKey: attacker.moltKey, signingKey: (attacker as any).identity.signingKey } as unknown as Identity
      const good = record(me, victim, { claims: { strength: 'weak' } })
      const bad: Array<[string, Uint8Array]> = [
        ['forged signature', encodeAttestation({ ...good, claims: { strength: 'exceptional' } })],
        ['someone else as issuer', encodeAttestation(record(victim, nodes[3].moltKey))],
        ['malformed', new TextEncoder().encode('{"type":"endorsement",')],
        ['oversized', new Uint8Array(8000).fill(0x20)],
        ['future-dated', encodeAttestation(record(me, victim, { issued: Date.now() + 3_600_000 }))],
        ['expired', encodeAttestation(record(me, victim, { issued: Date.now() - 7_200_000, expires: Date.now() - 3_600_000 }))],
        ['self-attestation', encodeAttestation({ ...record(me, victim), subject: { key: attacker.moltKey } })]
      ]
      const rejectedNow = (n: MoltNode): number => Object.values(n.trust.stats().rejected).reduce((a, b) => a + b, 0)
      const before = neighbours().map(rejectedNow)
      for (const [, data] of bad) await pubsub(attacker).publish(TOPIC, data)
      // every neighbour refuses each of them, then (at its next score refresh) penalises the attacker
      await eventually(() => neighbours().every((n, i) => rejectedNow(n) - before[i] >= bad.length), DEADLINE, 'every bad record refused')
      await eventually(() => neighbours().every(n => n.trust.gossipScore(attacker.peerId) < 0), DEADLINE, 'attacker penalised')
      const rejected = neighbours().map(n => n.trust.stats().rejected)
      expect(rejected[0].AttestationSignatureError).toBeGreaterThan(0)
      expect(rejected[0].SelfAttestationError).toBeGreaterThan(0)
      expect(rejected[0].AttestationFutureError).toBeGreaterThan(0)
      expect(rejected[0].AttestationTooLargeError).toBeGreaterThan(0)
      // nothing of it was stored or forwarded
      for (const n of nodes) expect((await n.trust.list({ issuer: attacker.peerId })).length).toBe(0)
    })

    it('a flood is cut at the issuer rate and the flooder penalised; honest records still converge', async () => {
      // a fresh flooder: the forger above is graylisted already (its messages are no longer even read)
      const flooder = await net.node(options)
      for (const n of neighbours()) await flooder.libp2p.dial(n.getMultiaddrs()[0])
      await eventually(() => neighbours().every(n => subscribed(n, flooder) && subscribed(flooder, n)), DEADLINE, 'flooder subscribed')
      const FLOOD = 120
      // every token any node's bucket for the flooder hands out is taken after this
      const started = Date.now()
      for (let i = 0; i < FLOOD; i++) {
        await flooder.trust.attest({ subject: victim.peerId, type: 'warning', severity: 'low', context: `flood ${i}` })
      }
      await eventually(() => neighbours().every(n => (n.trust.stats().rejected.IssuerRateLimitError ?? 0) > 0), DEADLINE, 'rate limit hit')
      await eventually(() => neighbours().every(n => n.trust.gossipScore(flooder.peerId) < 0), DEADLINE, 'flooder penalised')
      const held = await Promise.all(nodes.map(async n => (await n.trust.list({ issuer: flooder.peerId, limit: 1000 })).length))
      // the burst passed, then only what the bucket refilled in the time that actually went by (slow on a loaded machine)
      const allowance = ISSUER_BURST + Math.floor(ISSUER_RATE_PER_MINUTE * (Date.now() - started) / 60_000)
      for (const count of held) expect(count).toBeLessThanOrEqual(allowance)
      expect(allowance).toBeLessThan(FLOOD)
      const honest = await nodes[7].trust.attest({ subject: nodes[9].peerId, type: 'endorsement', strength: 'strong' })
      await eventually(() => everywhere(honest.id), DEADLINE, 'honest record after the attack')
    })

    it('50 Sybils synced in do not lift the attacker above 0.55 from an honest view', async () => {
      const sybils = await Promise.all(Array.from({ length: 50 }, async () => newIdentity()))
      const records = sybils.flatMap((s, i) => [
        record(s, attacker.moltKey, { claims: { strength: 'exceptional' } }),
        record(s, sybils[(i + 1) % 50], { claims: { strength: 'exceptional' } }),
        record(s, sybils[(i + 2) % 50], { claims: { strength: 'exceptional' } })
      ])
      // the attacker holds them (publishing someone else's records is refused, so sync is the way in)
      for (const r of records) await attacker.trust.submit(r).catch(() => {})
      const honest = nodes[10]
      await honest.libp2p.dial(attacker.getMultiaddrs()[0])
      const result = await honest.trust.sync(attacker.peerId)
      expect(result.accepted).toBeGreaterThanOrEqual(150)
      const score = honest.trust.score(attacker.peerId)
      expect(score.score).toBeLessThan(0.55)
      // an agent the honest node vouched for itself ranks well above it
      await honest.trust.attest({ subject: nodes[11].peerId, type: 'endorsement', strength: 'strong' })
      expect(honest.trust.score(nodes[11].peerId).score).toBeGreaterThan(0.6)
    })
  })
})
