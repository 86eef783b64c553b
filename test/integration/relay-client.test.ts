import { describe, it, expect, afterAll } from 'vitest'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayServer, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PrivateKey } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'

const net = new TestNetwork()
const relays: Libp2p[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop()))
})

/** A bare circuit relay on 127.0.0.1 with limits well above the stock 128 KiB / 2 min */
async function startRelay (privateKey?: PrivateKey, port = 0, durationLimit = 10 * 60_000): Promise<Libp2p> {
  const relay = await createLibp2p({
    privateKey: privateKey ?? await generateKeyPair('Ed25519'),
    addresses: { listen: [`/ip4/127.0.0.1/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.1'] } as any,
    services: {
      identify: identify(),
      relay: circuitRelayServer({ reservations: { maxReservations: 100, defaultDataLimit: BigInt(64 * 1024 * 1024), defaultDurationLimit: durationLimit } })
    }
  })
  relays.push(relay)
  return relay
}


const circuitAddress = (node: MoltNode, relayId?: string): string | undefined =>
  node.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit') && (relayId == null || a.includes(`/p2p/${relayId}/p2p-circuit`)))

describe('agents reachable only through a circuit relay', () => {
  let relay: Libp2p
  let relayKey: PrivateKey
  let relayPort: number
  let hidden: MoltNode
  let caller: MoltNode

  it('reserves a slot and advertises a /p2p-circuit address', async () => {
    relayKey = await generateKeyPair('Ed25519')
    relay = await startRelay(relayKey)
    relayPort = Number(relay.getMultiaddrs()[0].toString().split('/tcp/')[1].split('/')[0])
    const relayAddr = relay.getMultiaddrs()[0].toString()
    // no listen address of its own: the relay is the only way in
    hidden = await net.node({ listen: [], relays: [relayAddr], agent: { name: 'hidden' } })
    // the caller cannot be dialled either, so nothing can bypass the relay
    caller = await net.node({ listen: [], relays: [relayAddr], agent: { name: 'caller' } })
    hidden.handle('query', (m) => ({ status: 'success', data: m.p }))
    caller.handle('query', (m) => ({ status: 'success', data: m.p }))
    await eventually(() => circuitAddress(hidden), 10_000, 'circuit address')
    expect(hidden.relays()).toMatchObject([{ relay: relay.peerId.toString(), reserved: true }])
  })

  it('carries request/response both ways, reported as relayed via the relay', async () => {
    const reply = await caller.request(circuitAddress(hidden)!, { op: 'query', p: { domain: 'x', n: 1 } })
    expect(reply.p.data).toEqual({ domain: 'x', n: 1 })
    const sent = await caller.send(hidden.peerId, { op: 'query', p: { domain: 'y' } })
    expect(sent).toMatchObject({ route: 'relayed', relay: relay.peerId.toString() })
    const back = await hidden.request(caller.peerId, { op: 'query', p: { domain: 'back' } })
    expect(back.p.data).toEqual({ domain: 'back' })
  })

  it('moves more than the stock 128 KiB relay limit over one relayed connection', async () => {
    const blob = 'z'.repeat(200 * 1024)
    for (let i = 0; i < 3; i++) {
      const reply = await caller.request(hidden.peerId, { op: 'query', p: { domain: 'big', blob } }, { timeout: 15_000 })
      expect((reply.p.data as { blob: string }).blob.length).toBe(blob.length)
    }
    const connections = caller.libp2p.getConnections(hidden.peerId)
    expect(connections.length).toBeGreaterThan(0)
    expect(connections.every(c => c.remoteAddr.toString().includes('/p2p-circuit'))).toBe(true)
  })

  it('re-reserves after the relay restarts, and traffic resumes', async () => {
    await relay.stop()
    await eventually(() => circuitAddress(hidden) == null, 10_000, 'circuit address withdrawn')
    relay = await startRelay(relayKey, relayPort)
    // re-reserved on its own (the client's periodic check: one interval plus backoff, protocols/relay.md)
    const address = await eventually(() => circuitAddress(hidden), 30_000, 're-reservation')
    const reply = await caller.request(address, { op: 'query', p: { domain: 'again' } }, { timeout: 10_000 })
    expect(reply.p.data).toEqual({ domain: 'again' })
  })
})

describe('circuit listeners', () => {
  it('re-reserving after relay restarts and failed attempts keeps one listener per relay', async () => {
    const key = await generateKeyPair('Ed25519')
    let relay = await startRelay(key)
    const port = Number(relay.getMultiaddrs()[0].toString().split('/tcp/')[1].split('/')[0])
    const hidden = await net.node({ listen: [], relays: [relay.getMultiaddrs()[0].toString()], agent: { name: 'steady' } })
    // no listen address of its own: every listener is a circuit listener
    const listeners = (): number => (hidden.libp2p as any).components.transportManager.getListeners().length
    await eventually(() => circuitAddress(hidden), 10_000, 'circuit address')
    expect(listeners()).toBe(1)
    for (let round = 0; round < 2; round++) {
      await relay.stop()
      await eventually(() => circuitAddress(hidden) == null, 10_000, 'circuit address withdrawn')
      // a few attempts fail while the relay is down
      await eventually(() => (hidden.relays()[0]?.failures ?? 0) >= 2, 10_000, 'failed attempts')
      relay = await startRelay(key, port)
      await eventually(() => circuitAddress(hidden), 20_000, 're-reservation')
    }
    // libp2p keeps a listener whose relay went away or whose listen() failed: a new one per attempt piled up
    expect(listeners()).toBe(1)
  }, 60_000)
})

describe('failover between two relays', () => {
  it('moves the reservation to the second relay when the first dies', async () => {
    const r1 = await startRelay()
    const r2 = await startRelay()
    const hidden = await net.node({ listen: [], relays: [r1.getMultiaddrs()[0].toString(), r2.getMultiaddrs()[0].toString()], maxRelayReservations: 1, agent: { name: 'mover' } })
    const caller = await net.node({ agent: { name: 'asker' } })
    hidden.handle('query', (m) => ({ status: 'success', data: m.p }))
    const first = await eventually(() => circuitAddress(hidden, r1.peerId.toString()), 10_000, 'reservation on r1')
    expect((await caller.request(first, { op: 'query', p: { domain: 'r1' } })).p.data).toEqual({ domain: 'r1' })
    await r1.stop()
    const second = await eventually(() => circuitAddress(hidden, r2.peerId.toString()), 20_000, 'failover to r2')
    const reply = await caller.request(second, { op: 'query', p: { domain: 'r2' } }, { timeout: 10_000 })
    expect(reply.p.data).toEqual({ domain: 'r2' })
    expect(hidden.relays().find(r => r.relay === r2.peerId.toString())?.reserved).toBe(true)
  })
})

describe('direct upgrade bookkeeping', () => {
  it('counts relayed connections and a direct connection that replaced one', async () => {
    const relay = await startRelay()
    const hidden = await net.node({ listen: [], relays: [relay.getMultiaddrs()[0].toString()], agent: { name: 'shy' } })
    // this caller is directly reachable, so the hidden agent can connect back to it
    const caller = await net.node({ agent: { name: 'open' } })
    hidden.handle('query', (m) => ({ status: 'success', data: m.p }))
    const address = await eventually(() => circuitAddress(hidden), 10_000, 'circuit address')
    await caller.request(address, { op: 'query', p: { domain: 'punch' } }, { timeout: 10_000 })
    const stats = await eventually(() => {
      const s = hidden.libp2p.services.relayClient.holePunch()
      return s.upgradedToDirect > 0 ? s : undefined
    }, 10_000, 'direct upgrade')
    expect(stats.relayedConnections).toBeGreaterThan(0)
    expect(hidden.libp2p.getConnections(caller.peerId).some(c => !c.remoteAddr.toString().includes('/p2p-circuit'))).toBe(true)
  })
})

describe('relays met on the network', () => {
  it('reserves on a relay it was never configured with once discoverRelays is on', async () => {
    const relay = await startRelay()
    const agent = await net.node({ listen: [], discoverRelays: true, agent: { name: 'finder' } })
    expect(circuitAddress(agent)).toBeUndefined()
    // meeting the relay (here: a dial; on a LAN: mDNS, or a DHT walk) is enough
    await agent.libp2p.dial(relay.getMultiaddrs()[0])
    await eventually(() => circuitAddress(agent, relay.peerId.toString()), 10_000, 'reservation on a discovered relay')
    expect(agent.relays()).toMatchObject([{ relay: relay.peerId.toString(), source: 'discovered', reserved: true }])
  })

  it('does not take relay slots by default', async () => {
    const relay = await startRelay()
    const agent = await net.node({ listen: [], agent: { name: 'modest' } })
    await agent.libp2p.dial(relay.getMultiaddrs()[0])
    // identify told the agent the peer is a relay: that is what a discovering client reserves on (see above)
    await eventually(async () => (await agent.libp2p.peerStore.get(relay.peerId)).protocols.includes(RELAY_V2_HOP_CODEC), 20_000, 'identify with the relay')
    expect(circuitAddress(agent)).toBeUndefined()
    expect(agent.relays()).toEqual([])
  })
})

describe('relayed connections that the relay cuts off', () => {
  it('a conversation outlives the relay duration limit: nothing is lost, nothing delivered twice', async () => {
    const relay = await startRelay(undefined, 0, 1500)
    const relayAddr = relay.getMultiaddrs()[0].toString()
    const a = await net.node({ listen: [], relays: [relayAddr], agent: { name: 'talker' } })
    const b = await net.node({ listen: [], relays: [relayAddr], agent: { name: 'listener' } })
    const seen: number[] = []
    b.handle('query', (m) => { seen.push(m.p.n as number); return { status: 'success', data: m.p.n } })
    const address = await eventually(() => circuitAddress(b), 10_000, 'circuit address')
    await a.libp2p.peerStore.merge(b.peerId, { multiaddrs: [(await import('@multiformats/multiaddr')).multiaddr(address)] })
    // the relayed connections between them that closed: the relay cuts each at its duration limit
    let cuts = 0
    const onClose = (evt: CustomEvent<Connection>): void => {
      if (evt.detail.remotePeer.equals(b.peerId) && evt.detail.remoteAddr.toString().includes('/p2p-circuit')) cuts++
    }
    a.libp2p.addEventListener('connection:close', onClose)
    let n = 0
    try {
      // one request after another until the relay has cut the conversation's connection twice
      while (cuts < 2) {
        const reply = await a.request(b.peerId, { op: 'query', p: { domain: 'long', n } }, { timeout: 10_000 })
        expect(reply.p.data).toBe(n)
        n++
      }
      // and once more on the connection opened after the second cut
      const reply = await a.request(b.peerId, { op: 'query', p: { domain: 'long', n } }, { timeout: 10_000 })
      expect(reply.p.data).toBe(n)
      n++
    } finally {
      a.libp2p.removeEventListener('connection:close', onClose)
    }
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i))
  }, 30_000)
})
