import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'
import { capabilityCid } from '../../src/discovery/index.js'

/**
 * A 12-node private DHT on 127.0.0.1 over TCP + Noise: 4 servers (two of them
 * bootstrap peers), 8 agents of which half run in client mode. Provider
 * records are made to expire in seconds so that expiry can be observed.
 *
 * Every node re-provides when its record is within VALIDITY / 2 of expiring,
 * checked every second: a re-provide (a lookup and 11 ADD_PROVIDERs) must
 * complete within that half, or a live provider's record lapses. 10 s leaves
 * a busy machine 5 s for it (4 s left 2 s, and re-provided every 2–3 s:
 * that background load was most of this file's CPU); the two expiry waits
 * take 6 s longer each.
 *
 * The deadlines below are backstops for a stuck run, not speed requirements:
 * every wait ends on its event.
 */
const net = new TestNetwork()
const nodes: MoltNode[] = []
const VALIDITY = 10_000
const capabilityOf = (i: number): string => `test.skill${i % 4}`

/*
 * libp2p's connection monitor off: on a loaded shared machine its pings time out and it aborts
 * healthy loopback connections, cutting this one-process network apart (as in trust-network);
 * no presence heartbeats either. What is tested is the DHT.
 */
const quiet = { heartbeatInterval: 0, libp2p: { connectionMonitor: { enabled: false } } as any }

/** The providers of a capability `seeker` finds in the DHT, or undefined when the lookup failed (ask again) */
async function providersOf (seeker: MoltNode, capability: string): Promise<string[] | undefined> {
  const ids: string[] = []
  try {
    for await (const p of seeker.libp2p.contentRouting.findProviders(await capabilityCid(capability), { signal: AbortSignal.timeout(20_000) })) ids.push(p.id.toString())
  } catch {
    return undefined
  }
  return ids
}


beforeAll(async () => {
  const dht = { providerValidity: VALIDITY, reprovideInterval: 1000 }
  const b0 = await net.node({ ...quiet, agent: { name: 'boot0', capabilities: [capabilityOf(0)] }, dht })
  const b1 = await net.node({ ...quiet, agent: { name: 'boot1', capabilities: [capabilityOf(1)] }, dht, bootstrap: [addressOf(b0)] })
  nodes.push(b0, b1)
  const bootstrap = [addressOf(b0), addressOf(b1)]
  // one after another: a bootstrap dial is made once, at start, and ten at once on a busy machine
  // left some node with a failed one and no other way in
  for (let i = 2; i < 12; i++) {
    const capabilities = i >= 10 ? [capabilityOf(i), 'test.unique'] : [capabilityOf(i)]
    nodes.push(await net.node({
      ...quiet,
      agent: { name: `n${i}`, capabilities },
      bootstrap,
      dht: { ...dht, clientMode: i >= 8 }
    }))
  }
  // every node has joined: its routing table or connections reach beyond the bootstrap peers
  await eventually(async () => nodes.every(n => n.libp2p.getConnections().length >= 2) ? true : undefined, 120_000, 'mesh')
}, 240_000)

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
        }, 60_000, `${capability} from ${seeker.profile.name}`)
        for (const agent of found) {
          expect(agent.card.capabilities.map(c => c.name)).toContain(capability)
          expect(agent.card.peer_id).toBe(agent.peerId)
        }
      }
    }
  }, 240_000)

  it('reaches a peer known only by its PeerId (addresses found in the DHT)', async () => {
    const seeker = nodes[10]
    const target = nodes[5]
    await seeker.libp2p.hangUp(target.peerId).catch(() => {})
    await seeker.libp2p.peerStore.delete(target.peerId)
    const reply = await seeker.request(target.peerId.toString(), { op: 'ping', p: { nonce: 'dht' } }, { timeout: 60_000 })
    expect(reply.op).toBe('pong')
    expect(reply.p.nonce).toBe('dht')
  }, 90_000)

  // the two expiry tests below wait out a provider record's validity: side by side (different nodes), the
  // waits overlap
  it.concurrent('a capability withdrawn from the profile stops being advertised while the agent lives on', async () => {
    const seeker = nodes[7]
    const provider = nodes[6] // offers test.skill2
    await provider.updateProfile({ capabilities: ['test.fresh'] })
    const id = provider.peerId.toString()
    await eventually(async () => (await providersOf(seeker, 'test.fresh'))?.includes(id), 60_000, 'new capability advertised')
    // the card is re-signed at once, so discover() stops offering the old capability immediately
    expect(provider.ownCard().capabilities.map(c => c.name)).toEqual(['test.fresh'])
    const fresh = await seeker.discover('test.fresh', { local: false, signal: AbortSignal.timeout(30_000) })
    expect(fresh.map(a => a.peerId)).toContain(provider.peerId.toString())
    // and the old record is no longer re-provided: it expires although the agent is up
    await eventually(async () => (await providersOf(seeker, 'test.skill2'))?.includes(id) === false, VALIDITY + 30_000, 'old record expiry')
  }, 120_000)

  it.concurrent('a provider that stops is no longer returned once its record expired', async () => {
    const seeker = nodes[4]
    // two agents offer test.unique: the one that stays shows that the lookups below found the records
    const [live, provider] = [nodes[10], nodes[11]]
    const id = provider.peerId.toString()
    await eventually(async () => {
      const agents = (await seeker.discover('test.unique', { signal: AbortSignal.timeout(10_000) })).map(a => a.peerId)
      return agents.includes(id) && agents.includes(live.peerId.toString())
    }, 60_000, 'both providers of test.unique')
    const cid = await capabilityCid('test.unique')
    const servers = nodes.slice(0, 8)
    const stored = async (): Promise<boolean> => (await Promise.all(servers.map(async n => (n.libp2p.services.dht as any).providers.getProviders(cid) as Promise<Array<{ toString: () => string }>>))).some(ps => ps.some(p => p.toString() === id))
    await provider.stop()
    // the record outlives its provider for a while: discover() must not offer a dead agent meanwhile
    const after = (await seeker.discover('test.unique', { signal: AbortSignal.timeout(30_000) })).map(a => a.peerId)
    expect(after).toContain(live.peerId.toString())
    expect(after).not.toContain(id)
    // a DHT server still holds the record after that discover(), so it did during it (expired records are only deleted)
    expect(await stored()).toBe(true)
    // after validity + one cleanup interval the record is gone from the DHT itself
    await eventually(async () => (await providersOf(seeker, 'test.unique'))?.includes(id) === false, VALIDITY + 30_000, 'record expiry')
  }, 120_000)
})
