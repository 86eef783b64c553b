/**
 * Key rotation between real nodes on loopback (protocols/identity.md, "Key
 * rotation"): an agent rotates, its peer keeps its trust score under the new
 * PeerId (gossip), a peer that was away learns it by trust-sync, the agent
 * restarts as the new PeerId and is reached under the old one, and the old
 * key is refused once the peer's (injected) clock passes the grace period.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { stat } from 'node:fs/promises'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { loadKey } from '../../src/identity/index.js'
import { ROTATION_GRACE_PERIOD, signRotation } from '../../src/identity/rotation/index.js'
import { newIdentity } from '../support/trust.js'
import { KEY_ROTATION_TOPIC } from '../../src/services/trust/index.js'
import type { MoltNode } from '../../src/index.js'

const net = new TestNetwork()
/** The peer's clock: moved past the grace period without waiting for it */
let clock = Date.now()
const p = { op: 'query' as const, p: { domain: 'x', intent: 'y' } }

afterAll(async () => { await net.cleanup() })

function subscribers (node: MoltNode): string[] {
  return (node.libp2p.services.pubsub as any).getSubscribers(KEY_ROTATION_TOPIC).map(String)
}

describe('key rotation', () => {
  it('a rotated agent keeps its trust score at its peers, is reached under its old PeerId, and its old key is refused after the grace period', async () => {
    const dataDir = await net.dir()
    const agent = await net.node({ dataDir, trust: { syncInterval: 0 } })
    const peer = await net.node({ trust: { syncInterval: 0, now: () => clock } })
    const oldPeerId = agent.peerId.toString()
    await agent.libp2p.dial(peer.getMultiaddrs()[0])
    // the dialler's side is open first: the peer sends on the connection once its side has it too
    await eventually(() => peer.libp2p.getConnections(agent.peerId).length > 0, 10_000, 'the peer to have the connection')
    // the peer's trust history of the agent: its own endorsement and successful exchanges
    await peer.trust.attest({ subject: agent.peerId, type: 'endorsement', strength: 'strong', domain: 'translate' })
    for (let i = 0; i < 3; i++) await peer.send(agent.peerId, p, { delivery: 'best-effort' })
    const before = peer.trust.score(oldPeerId)
    expect(before.score).toBeGreaterThan(0.5)
    const unknown = peer.trust.score((await net.node({ trust: { syncInterval: 0 } })).peerId)
    expect(before.score).toBeGreaterThan(unknown.score)

    await eventually(() => subscribers(peer).includes(oldPeerId), 20_000, 'the peer to see the agent on the rotation topic')
    const rotated = await agent.rotateKey()
    expect(rotated).toMatchObject({ oldPeerId, restartRequired: true, rotation: { seq: 1 } })
    expect(rotated.refusedFrom).toBe(rotated.rotation.issued + ROTATION_GRACE_PERIOD)
    // still running under the old key: a second rotation is refused and switches nothing
    await expect(agent.rotateKey()).rejects.toMatchObject({ name: 'KeyRotationError' })
    expect((await stat(rotated.retiredKeyPath)).mode & 0o777).toBe(0o600)

    await eventually(() => peer.trust.currentPeer(oldPeerId) === rotated.newPeerId, 20_000, 'the statement to reach the peer by gossip')
    const after = peer.trust.score(rotated.newPeerId)
    expect(after.peer).toBe(rotated.newPeerId)
    expect(after.score).toBeCloseTo(before.score, 6)
    expect(after.confidence).toBeCloseTo(before.confidence, 6)

    // a node that was away learns the rotation by trust-sync, and carries the history it syncs too
    // on a rotation topic nobody publishes to: what it learns comes by sync
    const away = await net.node({ trust: { syncInterval: 0, initialSyncPeers: 0, keyRotationTopic: 'molt/key-rotation/away' } })
    await away.libp2p.dial(peer.getMultiaddrs()[0])
    await away.trust.sync(peer.peerId)
    expect(away.trust.currentPeer(oldPeerId)).toBe(rotated.newPeerId)
    expect(away.trust.keyRotations().map(r => r.id)).toEqual(peer.trust.keyRotations().map(r => r.id))

    // the agent restarts on its data dir as the new PeerId; the peer reaches it by the old one
    await agent.stop()
    const restarted = await net.node({ dataDir, trust: { syncInterval: 0 } })
    expect(restarted.peerId.toString()).toBe(rotated.newPeerId)
    expect(restarted.trust.currentPeer(oldPeerId)).toBe(rotated.newPeerId)
    await peer.libp2p.peerStore.merge(restarted.peerId, { multiaddrs: restarted.getMultiaddrs() })
    const sent = await peer.send(oldPeerId, { op: 'query', p: { domain: 'x', intent: 'after rotation' } }, { delivery: 'best-effort' })
    expect(sent.delivered).toBe(true)
    await eventually(async () => (await restarted.inbox()).some(m => (m.message.p as any)?.intent === 'after rotation'), 20_000, 'the message under the old PeerId to reach the new one')
    // the card asked for under the old PeerId is the new key's, signed by it
    const card = await peer.card(oldPeerId, { force: true })
    expect(card.peer_id).toBe(rotated.newPeerId)
    expect(card.key).toBe(rotated.rotation.new_key)

    // the old key (still in retired-keys/) is accepted during the grace period, refused after it
    const oldKey = await loadKey(rotated.retiredKeyPath)
    const ghost = await net.node({ privateKey: oldKey, lock: false, trust: { syncInterval: 0 } })
    expect(ghost.peerId.toString()).toBe(oldPeerId)
    // a node whose key was given in code has no key file to rotate
    await expect(ghost.rotateKey()).rejects.toMatchObject({ name: 'KeyRotationError' })
    expect((await ghost.send(addressOf(peer), p, { delivery: 'best-effort' })).delivered).toBe(true)
    expect(peer.trust.inboxDecision(oldPeerId)).toBe('accept')
    clock = rotated.refusedFrom
    expect(peer.trust.inboxDecision(oldPeerId)).toBe('refuse')
    expect(peer.trust.inboxDecision(rotated.newPeerId)).toBe('accept')
    const refused = await ghost.send(addressOf(peer), p, { delivery: 'best-effort' }).catch(e => e)
    expect(refused.code).toBe('E_AUTH_FAILED')
  }, 120_000)

  it('trust-sync: a forged statement ends the session and is not kept; one conflicting with a statement seen first is skipped, the session goes on', async () => {
    const [a, b, c, d] = await Promise.all([newIdentity(), newIdentity(), newIdentity(), newIdentity()])
    const honest = await net.node({ trust: { syncInterval: 0, initialSyncPeers: 0 } })
    // the others publish on a topic nobody else is on: what the honest node gets comes by sync only
    const syncOnly = { syncInterval: 0, initialSyncPeers: 0, keyRotationTopic: 'molt/key-rotation/sync-test' }
    const other = await net.node({ trust: syncOnly })
    await honest.trust.publishKeyRotation(signRotation(a, b, { seq: 1 }))
    // the other node saw a's key go elsewhere first (a race, or a leaked old key): both statements are well signed
    await other.trust.publishKeyRotation(signRotation(a, c, { seq: 1 }))
    await other.trust.publishKeyRotation(signRotation(d, await newIdentity(), { seq: 1 }))
    await honest.libp2p.dial(other.getMultiaddrs()[0])
    const result = await honest.trust.sync(other.peerId)
    expect(result.accepted).toBe(1)
    expect(honest.trust.currentPeer(a.peerId)).toBe(b.peerId.toString())
    expect(honest.trust.currentPeer(d.peerId)).not.toBe(d.peerId.toString())
    expect(honest.trust.stats().rejected.RotationConflictError).toBe(1)

    // a peer that offers a statement its new key never signed (held here without the check an honest node makes)
    const forged = { ...signRotation(await newIdentity(), b, { seq: 1 }), sig_new: signRotation(c, d, { seq: 1 }).sig_new }
    const malicious = await net.node({ trust: syncOnly })
    ;(malicious.trust as any).rotations.remember(forged)
    await honest.libp2p.dial(malicious.getMultiaddrs()[0])
    await expect(honest.trust.sync(malicious.peerId)).rejects.toMatchObject({ name: 'RotationSignatureError' })
    expect(honest.trust.keyRotations().some(r => r.rotation.sig_old === forged.sig_old)).toBe(false)
  }, 120_000)
})
