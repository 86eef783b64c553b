import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'
import { capabilityCid } from '../../src/discovery/index.js'

/**
 * A 12-node private DHT on 127.0.0.1: 4 servers (two of them bootstrap
 * peers), 8 agents of which half run in client mode. Provider records are made
 * to expire in seconds so that expiry can be observed.
 */
const net = new TestNetwork()
const nodes: MoltNode[] = []
const VALIDITY = 4000
const capabilityOf = (i: number): string => `test.skill${i % 4}`


beforeAll(async () => {
  const dht = { providerValidity: VALIDITY, reprovideInterval: 1000 }
  const b0 = await net.node({ agent: { name: 'boot0', capabilities: [capabilityOf(0)] }, dht })
  const b1 = await net.node({ agent: { name: 'boot1', capabilities: [capabilityOf(1)] }, dht, bootstrap: [addressOf(b0)] })
  nodes.push(b0, b1)
  const bootstrap = [addressOf(b0), addressOf(b1)]
  for (let i = 2; i < 12; i++) {
    const capabilities = i === 11 ? [capabilityOf(i), 'test.unique'] : [capabilityOf(i)]
    nodes.push(await net.node({
      agent: { name: `n${i}`, capabilities },
      bootstrap,
      dht: { ...dht, clientMode: i >= 8 }
    }))
  }
  // every node has joined: its routing table or connections reach beyond the bootstrap peers
  await eventually(async () => nodes.every(n => n.libp2p.getConnections().length >= 2) ? true : undefined, 20_000, 'mesh')
}, 60_000)

afterAll(async () => { await net.cleanup() })

describe('private DHT (/molt/kad/1.0.0), 12 nodes', () => {
  it('speaks only the molt DHT protocol', () => {
    const protocols = nodes[0].libp2p.getProtocols()
    expect(protocols).toContain('/molt/kad/1.0.0')
    expect(protocols).not.toContain('/ipfs/kad/1.0.0')
  })

  it('any agent finds every provider of any capability, with verified cards', async () => {
    for (const seeker of [nodes[3], nodes[9], nodes[0]]) {
      for (let k = 0; k < 4; k++) {
        const capability = `test.skill${k}`
        const expected = nodes.filter((n, i) => capabilityOf(i) === capability && n !== seeker).map(n => n.peerId.toString()).sort()
        const found = await eventually(async () => {
          const agents = await seeker.discover(capability, { limit: 20, signal: AbortSignal.timeout(10_000) })
          const ids = agents.map(a => a.peerId).sort()
          return expected.every(id => ids.includes(id)) ? agents : undefined
        }, 20_000, `${capability} from ${seeker.profile.name}`)
        for (const agent of found) {
          expect(agent.card.capabilities.map(c => c.name)).toContain(capability)
          expect(agent.card.peer_id).toBe(agent.peerId)
        }
      }
    }
  }, 120_000)

  it('reaches a peer known only by its PeerId (addresses found in the DHT)', async () => {
    const seeker = nodes[10]
    const target = nodes[5]
    await seeker.libp2p.hangUp(target.peerId).catch(() => {})
    await seeker.libp2p.peerStore.delete(target.peerId)
    const reply = await seeker.request(target.peerId.toString(), { op: 'ping', p: { nonce: 'dht' } }, { timeout: 15_000 })
    expect(reply.op).toBe('pong')
    expect(reply.p.nonce).toBe('dht')
  }, 30_000)

  it('a capability withdrawn from the profile stops being advertised while the agent lives on', async () => {
    const seeker = nodes[7]
    const provider = nodes[6] // offers test.skill2
    await provider.updateProfile({ capabilities: ['test.fresh'] })
    const providersOf = async (capability: string): Promise<string[]> => {
      const ids: string[] = []
      for await (const p of seeker.libp2p.contentRouting.findProviders(await capabilityCid(capability), { signal: AbortSignal.timeout(10_000) })) ids.push(p.id.toString())
      return ids
    }
    await eventually(async () => (await providersOf('test.fresh')).includes(provider.peerId.toString()) ? true : undefined, 15_000, 'new capability advertised')
    // the card is re-signed at once, so discover() stops offering the old capability immediately
    expect(provider.ownCard().capabilities.map(c => c.name)).toEqual(['test.fresh'])
    const fresh = await seeker.discover('test.fresh', { local: false, signal: AbortSignal.timeout(10_000) })
    expect(fresh.map(a => a.peerId)).toContain(provider.peerId.toString())
    // and the old record is no longer re-provided: it expires although the agent is up
    await eventually(async () => (await providersOf('test.skill2')).includes(provider.peerId.toString()) ? undefined : true, VALIDITY + 10_000, 'old record expiry')
  }, 60_000)

  it('a provider that stops is no longer returned once its record expired', async () => {
    const seeker = nodes[4]
    const provider = nodes[11]
    const before = await eventually(async () => {
      const agents = await seeker.discover('test.unique', { signal: AbortSignal.timeout(10_000) })
      return agents.length > 0 ? agents : undefined
    }, 20_000, 'unique provider')
    expect(before.map(a => a.peerId)).toContain(provider.peerId.toString())
    const providers = async (): Promise<string[]> => {
      const ids: string[] = []
      for await (const p of seeker.libp2p.contentRouting.findProviders(await capabilityCid('test.unique'), { signal: AbortSignal.timeout(10_000) })) ids.push(p.id.toString())
      return ids
    }
    await provider.stop()
    // the record outlives its provider for a while: discover() must not offer a dead agent meanwhile
    expect(await providers()).toContain(provider.peerId.toString())
    expect((await seeker.discover('test.unique', { signal: AbortSignal.timeout(10_000) })).map(a => a.peerId)).not.toContain(provider.peerId.toString())
    // after validity + one cleanup interval the record is gone from the DHT itself
    await eventually(async () => (await providers()).includes(provider.peerId.toString()) ? undefined : true, VALIDITY + 10_000, 'record expiry')
  }, 60_000)
})
