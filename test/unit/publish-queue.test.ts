import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { PublishQueue, PublishQueueFullError, publishQueue } from '../../src/discovery/publish-queue.js'
import { CapabilityAdvertiser } from '../../src/discovery/capabilities.js'
import { DHT_PUBLISH_CONCURRENCY, DHT_PUBLISH_PROCESS_CONCURRENCY } from '../../src/discovery/constants.js'
import { routingRecord } from '../../src/services/routing-record/index.js'
import { eventually } from '../support/eventually.js'

const tick = async (ms = 5): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * A DHT as the publishers see it: a routing table with peers, and put/provide
 * walks that take a while, counting how many run at once
 */
class FakeDht {
  routingTable = Object.assign(new EventTarget(), { size: 30 })
  inFlight = 0
  most = 0
  walks: string[] = []
  private async * walk (what: string, message: string): AsyncGenerator<{ name: string, messageName?: string }> {
    this.inFlight++
    this.most = Math.max(this.most, this.inFlight)
    this.walks.push(what)
    try {
      await tick(20)
      for (let i = 0; i < 20; i++) yield { name: 'PEER_RESPONSE', messageName: message }
    } finally {
      this.inFlight--
    }
  }

  async * put (): AsyncGenerator<{ name: string, messageName?: string }> { yield * this.walk('record', 'PUT_VALUE') }
  async * provide (): AsyncGenerator<{ name: string, messageName?: string }> { yield * this.walk('advert', 'ADD_PROVIDER') }
  async cancelReprovide (): Promise<void> {}
}

describe('PublishQueue (one node\'s DHT publications, a few at a time)', () => {
  it('runs at most `concurrency` publications at once, the others in turn', async () => {
    const queue = new PublishQueue({ concurrency: 2 })
    let running = 0
    let most = 0
    const done = await Promise.all(Array.from({ length: 6 }, async (_, i) => queue.run(async () => {
      running++
      most = Math.max(most, running)
      await tick()
      running--
      return i
    })))
    expect(done).toEqual([0, 1, 2, 3, 4, 5])
    expect(most).toBe(2)
  })

  it('a publication whose signal aborts while it waits never runs', async () => {
    const queue = new PublishQueue({ concurrency: 1 })
    const controller = new AbortController()
    let ran = false
    const first = queue.run(async () => tick(20))
    const second = queue.run(async () => { ran = true }, { signal: controller.signal })
    controller.abort(new Error('stopped'))
    await expect(second).rejects.toThrow()
    await first
    expect(ran).toBe(false)
    expect(queue.queued).toBe(0)
  })

  it('refuses a publication when too many wait (PublishQueueFullError)', async () => {
    const queue = new PublishQueue({ concurrency: 1, maxQueued: 2 })
    const held = [queue.run(async () => tick(20)), queue.run(async () => tick(1))]
    await expect(queue.run(async () => {})).rejects.toThrow(PublishQueueFullError)
    await Promise.all(held)
  })

  it('nodes sharing a queue (the process\'s) run at most its concurrency together, each in turn', async () => {
    const shared = new PublishQueue({ concurrency: 2 })
    const nodes = Array.from({ length: 5 }, () => new PublishQueue({ concurrency: 1, shared }))
    let running = 0
    let most = 0
    const perNode = new Map<PublishQueue, number>()
    let mostPerNode = 0
    await Promise.all(nodes.flatMap(node => [0, 1].map(async () => node.run(async () => {
      running++
      perNode.set(node, (perNode.get(node) ?? 0) + 1)
      most = Math.max(most, running)
      mostPerNode = Math.max(mostPerNode, perNode.get(node)!)
      await tick()
      running--
      perNode.set(node, perNode.get(node)! - 1)
    }))))
    expect(most).toBe(2)
    expect(mostPerNode).toBe(1)
  })

  it(`the nodes of one process publish ${DHT_PUBLISH_PROCESS_CONCURRENCY} at a time`, async () => {
    let running = 0
    let most = 0
    const n = DHT_PUBLISH_PROCESS_CONCURRENCY * 3
    await Promise.all(Array.from({ length: n }, async () => publishQueue({}).run(async () => {
      running++
      most = Math.max(most, running)
      await tick(10)
      running--
    })))
    expect(most).toBe(DHT_PUBLISH_PROCESS_CONCURRENCY)
  })

  it('is one queue per DHT instance', () => {
    const dht = {}
    expect(publishQueue(dht)).toBe(publishQueue(dht))
    expect(publishQueue(dht)).not.toBe(publishQueue({}))
  })

  it(`a node's routing record and its capability adverts walk the DHT ${DHT_PUBLISH_CONCURRENCY} at a time`, async () => {
    const dht = new FakeDht()
    const privateKey = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey)
    const events = new TypedEventEmitter<any>()
    const routes = routingRecord({ debounce: 1 })({
      peerId,
      privateKey,
      logger: defaultLogger(),
      events,
      addressManager: { getAddresses: () => [multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${peerId.toString()}`)] } as any,
      dht
    })
    const advertiser = new CapabilityAdvertiser({ contentRouting: {} as any, dht }, defaultLogger().forComponent('test'))
    try {
      routes.start()
      routes.afterStart?.()
      await advertiser.update(['a', 'b', 'c'])
      await eventually(() => dht.walks.length === 4, 5000, 'the record and 3 adverts published')
      expect(dht.walks.filter(w => w === 'advert')).toHaveLength(3)
      expect(dht.walks).toContain('record')
      // without the queue all four walk at once
      expect(DHT_PUBLISH_CONCURRENCY).toBeLessThan(4)
      expect(dht.most).toBeLessThanOrEqual(DHT_PUBLISH_CONCURRENCY)
    } finally {
      advertiser.stop()
      routes.stop()
    }
  })
})
