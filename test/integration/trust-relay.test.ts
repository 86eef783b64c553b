import { describe, it, expect, afterAll } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'

const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

describe('trust gossip through a relay', () => {
  it('agents connected to nothing but their relay still get each other\'s attestations', async () => {
    const relay = await createRelayNode({ dataDir: await net.dir(), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { connectionManager: { inboundConnectionThreshold: 1000 } } })
    relays.push(relay)
    const relayAddr = relay.getMultiaddrs()[0].toString()
    // no listen address of their own: the relay is their only connection
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async name => net.node({ listen: [], relays: [relayAddr], agent: { name } })))
    for (const node of [alice, bob, carol]) {
      await eventually(() => node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')), 10_000, 'a reservation')
      expect(node.libp2p.getPeers().map(String)).toEqual([relay.peerId.toString()])
    }
    // gossipsub needs a moment to graft the relay into each agent's mesh
    await eventually(() => [alice, bob, carol].every(n => (n.libp2p.services as any).pubsub.getSubscribers('molt/trust/1').length > 0), 10_000, 'the relay in every mesh')
    const attestation = await alice.trust.attest({ subject: bob.peerId, type: 'endorsement', strength: 'strong', domain: 'summarise' })
    await eventually(() => carol.trust.get(attestation.id) != null && bob.trust.get(attestation.id) != null, 10_000, 'the attestation at bob and carol')
    expect(relay.libp2p.getProtocols()).toContain('/molt/trust-sync/1.0.0')
  }, 30_000)
})
