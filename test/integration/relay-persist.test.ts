import { describe, it, expect, afterAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TestNetwork, freePort } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { startTestRelay, relayAddress } from '../support/relays.js'
import type { RelayNode, RelayNodeOptions } from '../../src/relay/index.js'
import type { MoltNode } from '../../src/index.js'
import { createRelayMetrics } from '../../src/metrics/index.js'

/**
 * A relay keeps the routing records it stores for agents across its own
 * restart (src/relay/dht-store.ts, protocols/routing.md "Relays keep records
 * across restarts"). Before, the records lived in libp2p's in-memory datastore: after
 * a relay restart an offline agent had no record anywhere, and a never-met
 * sender could only queue the message in its own outbox.
 */
const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

describe('a relay restart keeps the routing records it stores', () => {
  it('an offline agent\'s record survives the restart: a never-met sender gets `stored`, the agent\'s return delivers it', async () => {
    const port = await freePort()
    const relayDir = await net.dir()
    const listen = [`/ip4/127.0.0.1/tcp/${port}`]
    const options: RelayNodeOptions = { dataDir: relayDir, listen, trust: false }
    let r = await startTestRelay(async () => relayDir, relays, options)

    // B listens nowhere (like an agent behind NAT): reachable through R only, its record names R as its mailbox
    const bDir = await net.dir()
    const bKey = await generateKeyPair('Ed25519')
    const agentB = async (): Promise<MoltNode> => net.node({ dataDir: bDir, privateKey: bKey, listen: [], relays: [relayAddress(r)], agent: { name: 'b' } })
    let b = await agentB()
    await eventually(() => b.libp2p.services.routes.current()?.mailboxes.some(m => m.relay === r.peerId.toString()), 10_000, 'B\'s record naming R')
    await eventually(async () => (await b.libp2p.services.routes.publish()) >= 1, 20_000, 'B\'s record stored on R')
    await b.stop()

    await r.stop({ drainMs: 0 })
    r = await startTestRelay(async () => relayDir, relays, options)
    expect(r.dhtStore?.().records).toBe(1)
    expect(await createRelayMetrics(r, { processMetrics: false }).metrics()).toMatch(/^molt_relay_dht_records 1$/m)

    // C never met B and knows only R, as a DHT bootstrap peer: B's record is its one way to find B's mailbox
    const c = await net.node({ listen: [], bootstrap: [relayAddress(r)], agent: { name: 'c' } })
    await expect(c.libp2p.peerStore.get(b.peerId)).rejects.toThrow()
    const sent = await c.send(b.peerId.toString(), { op: 'query', p: { domain: 'after-restart' } }, { delivery: 'at-least-once' })
    expect(sent).toMatchObject({ status: 'stored', route: 'mailbox', relay: r.peerId.toString() })

    b = await agentB()
    const entry = await eventually(async () => (await b.inbox()).find(e => e.message.id === sent.id), 20_000, 'the stored message in B\'s inbox')
    expect(entry.message.p).toEqual({ domain: 'after-restart' })
    expect(entry.route).toBe('mailbox')
  }, 90_000)
})
