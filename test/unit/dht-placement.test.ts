import { describe, it, expect, beforeAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import type { PeerId } from '@libp2p/interface'
import { PlacementWatch, kadIdOf } from '../../src/discovery/placement.js'
import { CapabilityAdvertiser } from '../../src/discovery/capabilities.js'
import { capabilityCid } from '../../src/discovery/index.js'
import { DHT_K, MISPLACED_THRESHOLD } from '../../src/discovery/constants.js'
import { routingRecord, routeKey } from '../../src/services/routing-record/index.js'
import { eventually } from '../support/eventually.js'

const tick = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
/** Fast timings for the tests: the rule is the same */
const fast = { delay: 20, maxDelay: 200, debounce: 5, jitter: 0 }

let peers: PeerId[] = []
beforeAll(async () => {
  peers = await Promise.all(Array.from({ length: 80 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
})

/** `peers` ordered by kad distance to `key`, closest first */
function byDistance (key: Uint8Array): PeerId[] {
  const target = kadIdOf(key)
  const d = (p: PeerId): Buffer => Buffer.from(kadIdOf(p.toMultihash().bytes).map((b, i) => b ^ target[i]))
  return [...peers].sort((a, b) => Buffer.compare(d(a), d(b)))
}

/**
 * A routing table with kad-dht's distance (sha256, XOR) over real PeerIds,
 * and `peer:add` events; the K closest are computed, not scripted
 */
class Table extends EventTarget {
  readonly peers: PeerId[] = []
  get size (): number { return this.peers.length }
  add (...added: PeerId[]): void {
    for (const peer of added) {
      this.peers.push(peer)
      this.dispatchEvent(new CustomEvent('peer:add', { detail: peer }))
    }
  }

  closestPeers (kadId: Uint8Array, options: { count?: number } = {}): PeerId[] {
    const d = (p: PeerId): Buffer => Buffer.from(kadIdOf(p.toMultihash().bytes).map((b, i) => b ^ kadId[i]))
    return [...this.peers].sort((a, b) => Buffer.compare(d(a), d(b))).slice(0, options.count ?? DHT_K)
  }
}

/**
 * A DHT whose walks store on the K closest peers its table knows (what a
 * converged walk over the known network does), or on `only` when set (a walk
 * whose stores failed), naming each server that stored
 */
class Dht {
  routingTable = new Table()
  walks: Array<{ kind: string, holders: PeerId[] }> = []
  only?: PeerId[]
  private async * walk (kind: string, key: Uint8Array, message: string): AsyncGenerator<{ name: string, messageName?: string, from?: PeerId }> {
    await tick(2)
    const holders = this.only ?? this.routingTable.closestPeers(kadIdOf(key), { count: DHT_K })
    this.walks.push({ kind, holders })
    for (const from of holders) yield { name: 'PEER_RESPONSE', messageName: message, from }
  }

  async * put (key: Uint8Array): AsyncGenerator<{ name: string, messageName?: string, from?: PeerId }> { yield * this.walk('record', key, 'PUT_VALUE') }
  async * provide (cid: { multihash: { bytes: Uint8Array } }): AsyncGenerator<{ name: string, messageName?: string, from?: PeerId }> { yield * this.walk('advert', cid.multihash.bytes, 'ADD_PROVIDER') }
  async cancelReprovide (): Promise<void> {}
}

describe('PlacementWatch (a published record on the wrong servers goes out again)', () => {
  it('counts the K closest known peers that are closer than the farthest holder and do not hold it', () => {
    const key = new TextEncoder().encode('some key')
    const order = byDistance(key)
    const table = new Table()
    const watch = new PlacementWatch(table, () => {}, fast)
    // a walk over the 30 farthest stored on the 20 closest of them
    table.add(...order.slice(50))
    watch.published('k', key, order.slice(50, 70))
    expect(watch.misses('k')).toBe(0)
    // peers farther than every holder are no misses
    table.add(...order.slice(70))
    expect(watch.misses('k')).toBe(0)
    // closer ones are
    table.add(...order.slice(0, 7))
    expect(watch.misses('k')).toBe(7)
  })

  it('fires once `threshold` closer peers are known, not before; and not again while that publication is pending', async () => {
    const key = new TextEncoder().encode('another key')
    const order = byDistance(key)
    const table = new Table()
    const fired: string[] = []
    const watch = new PlacementWatch(table, name => fired.push(name), fast)
    watch.start()
    table.add(...order.slice(50))
    watch.published('k', key, order.slice(50, 70))
    table.add(...order.slice(0, MISPLACED_THRESHOLD - 1))
    await tick(60)
    expect(fired).toEqual([])
    table.add(order[MISPLACED_THRESHOLD - 1])
    await eventually(() => fired.length === 1, 2000, 'a republication')
    table.add(...order.slice(MISPLACED_THRESHOLD, 20))
    await tick(60)
    expect(fired).toEqual(['k'])
    // the republication stored on the closest: placed, nothing more
    watch.publishing('k')
    watch.published('k', key, order.slice(0, 20))
    table.add(...order.slice(20, 50))
    await tick(60)
    expect(fired).toEqual(['k'])
    watch.stop()
  })

  it('a publication that reached none from an empty table goes out again at the first peer', async () => {
    const key = new TextEncoder().encode('a key published alone')
    const table = new Table()
    const fired: string[] = []
    const watch = new PlacementWatch(table, name => fired.push(name), fast)
    watch.start()
    watch.published('k', key, [])
    await tick(60)
    expect(fired).toEqual([])
    table.add(peers[0])
    await eventually(() => fired.length === 1, 2000, 'a republication at the first peer')
    watch.stop()
  })

  /** Times (ms) of the republications within 400 ms, each walk storing on `holders` of the 40-peer table again */
  async function republications (key: Uint8Array, holders: (order: PeerId[]) => PeerId[]): Promise<number[]> {
    const order = byDistance(key)
    const table = new Table()
    table.add(...order.slice(0, 40))
    const at: number[] = []
    const started = performance.now()
    const watch = new PlacementWatch(table, () => {
      at.push(performance.now() - started)
      setTimeout(() => { watch.published('k', key, holders(order)) }, 1)
    }, { ...fast, delay: 10, maxDelay: 10_000 })
    watch.start()
    watch.published('k', key, holders(order))
    await tick(400)
    watch.stop()
    return at
  }

  it('republications of a record that keeps reaching none (an overloaded network) back off', async () => {
    const at = await republications(new TextEncoder().encode('a third key'), () => [])
    // 10, 20, 40, 80, 160 ms apart: at most 5 in 400 ms (a fixed 10 ms would be ≈ 30)
    expect(at.length).toBeGreaterThanOrEqual(2)
    expect(at.length).toBeLessThanOrEqual(5)
    for (let i = 2; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThan(at[i - 1] - at[i - 2])
  })

  it('republications that keep missing the same closest peers (dead ones the table keeps) back off, though each stores on K live servers', async () => {
    // the 20 closest never answer: each walk stores on the 20 next ones, half the closest it could
    const at = await republications(new TextEncoder().encode('a key near dead peers'), order => order.slice(20, 40))
    // backing off: 10, 20, 40, 80, 160 ms apart (without it, one every ≈ 10 ms: ≈ 30)
    expect(at.length).toBeGreaterThanOrEqual(2)
    expect(at.length).toBeLessThanOrEqual(5)
  })
})

describe('publishers republish a misplaced record before the routing table doubles (the first publishers of a forming network)', () => {
  // The walk began with 30 peers known (all far from the key) and stored on the 20 closest of them; the
  // former growth rule published again only at 60 peers. Then the 10 peers closest to the key join: with
  // the growth rule, at 40 peers, the record stayed where lookups do not look.
  it('a capability advert', async () => {
    const dht = new Dht()
    const cid = await capabilityCid('test.placed')
    const order = byDistance(cid.multihash.bytes)
    dht.routingTable.add(...order.slice(50))
    const advertiser = new CapabilityAdvertiser({ contentRouting: {} as any, dht }, defaultLogger().forComponent('test'), { placement: fast })
    try {
      await advertiser.update(['test.placed'])
      await eventually(() => dht.walks.length === 1, 5000, 'the first advert')
      expect(dht.walks[0].holders).not.toContain(order[0])
      dht.routingTable.add(...order.slice(0, 10))
      await eventually(() => dht.walks.length === 2, 5000, 'the advert again, on the closest servers')
      expect(dht.walks[1].holders.slice(0, 10)).toEqual(order.slice(0, 10))
      // placed now: fewer than MISPLACED_THRESHOLD closer peers that lack it call for nothing
      dht.routingTable.add(...order.slice(10, 10 + MISPLACED_THRESHOLD - 1))
      await tick(100)
      expect(dht.walks).toHaveLength(2)
    } finally {
      advertiser.stop()
    }
  })

  it('a node joining a full network whose first walk reached the closest servers does not publish again as its table fills', async () => {
    // the former growth rule sent it out again at 40 peers (2 × the 20 servers reached): half of a
    // 100-node network's publications, queued ahead of the first publishers' corrections
    const dht = new Dht()
    const cid = await capabilityCid('test.joined')
    const order = byDistance(cid.multihash.bytes)
    dht.only = order.slice(0, 20)
    dht.routingTable.add(...order.slice(75))
    const advertiser = new CapabilityAdvertiser({ contentRouting: {} as any, dht }, defaultLogger().forComponent('test'), { placement: fast })
    try {
      await advertiser.update(['test.joined'])
      await eventually(() => dht.walks.length === 1, 5000, 'the first advert')
      dht.routingTable.add(...order.slice(0, 75))
      await tick(100)
      expect(dht.walks).toHaveLength(1)
    } finally {
      advertiser.stop()
    }
  })

  it('a routing record', async () => {
    const dht = new Dht()
    const privateKey = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey)
    const order = byDistance(routeKey(peerId))
    dht.routingTable.add(...order.slice(50))
    const routes = routingRecord({ debounce: 1, placement: fast })({
      peerId,
      privateKey,
      logger: defaultLogger(),
      events: new TypedEventEmitter<any>(),
      addressManager: { getAddresses: () => [multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${peerId.toString()}`)] } as any,
      dht
    })
    try {
      routes.start()
      routes.afterStart?.()
      await eventually(() => dht.walks.length === 1, 5000, 'the first publication')
      dht.routingTable.add(...order.slice(0, 10))
      await eventually(() => dht.walks.length === 2, 5000, 'the record again, on the closest servers')
      expect(dht.walks[1].holders.slice(0, 10)).toEqual(order.slice(0, 10))
      dht.routingTable.add(...order.slice(10, 10 + MISPLACED_THRESHOLD - 1))
      await tick(100)
      expect(dht.walks).toHaveLength(2)
    } finally {
      routes.stop()
    }
  })
})
