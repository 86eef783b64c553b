import { describe, it, expect, afterAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { PeerId } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { routingRecord } from '../../src/services/routing-record/index.js'

/**
 * When a routing-record lookup waits for the DHT's first peer (issue #14,
 * #17): only when something will bring one. A node with no bootstrap peer, no
 * relay and mDNS off asks its (empty) DHT at once; before, `molt send <PeerId>`
 * from such a node sat out the whole LOOKUP_TIMEOUT (5 s) for a peer that
 * nothing would add. Asserted on what the DHT is asked and when, not on time.
 */
const net = new TestNetwork()
afterAll(async () => { await net.cleanup() })

interface Query { tableSize: number, aborted: boolean }

/** Records each DHT get(): the routing table's size and whether the lookup's signal had already given up */
function watchGets (dht: any): Query[] {
  const queries: Query[] = []
  const get = dht.get.bind(dht)
  dht.get = (key: Uint8Array, options: { signal?: AbortSignal } = {}) => {
    queries.push({ tableSize: dht.routingTable.size, aborted: options.signal?.aborted === true })
    return get(key, options)
  }
  return queries
}

async function somePeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('routing-record lookup from an empty routing table', () => {
  it('a node with no peer source asks the DHT at once: send(<PeerId>) queues without waiting out the lookup', async () => {
    const node = await net.node({ mdns: false })
    const queries = watchGets(node.libp2p.services.dht)
    const nobody = await somePeer()
    const result = await node.send(nobody.toString(), { op: 'stream', p: { action: 'start', stream_id: 'lookup' } })
    expect(result.status).toBe('queued')
    // asked while the table was still empty and the lookup's deadline had not passed (waiting for a peer, it
    // would have asked only once the deadline aborted its signal)
    expect(queries.length).toBeGreaterThan(0)
    expect(queries[0]).toEqual({ tableSize: 0, aborted: false })
  })

  it('a node with a peer source waits for the first peer before it asks', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const table = Object.assign(new EventTarget(), { size: 0 })
    const queries: Query[] = []
    // the DHT's side seen by the service: its routing table and get(); what is tested is when get() is called
    const dht = {
      routingTable: table,
      async * get (_key: Uint8Array, options: { signal?: AbortSignal } = {}) { queries.push({ tableSize: table.size, aborted: options.signal?.aborted === true }) },
      async * put () {}
    }
    const service = routingRecord({ publish: false, peerSource: true })({
      peerId: peerIdFromPrivateKey(privateKey), privateKey, addressManager: {} as any, events: new TypedEventEmitter(), logger: defaultLogger(), dht
    })
    service.start()
    try {
      const lookup = service.lookup(await somePeer())
      // every pending callback has run: the lookup is waiting on the table, not on the DHT
      await new Promise(resolve => setImmediate(resolve))
      expect(queries).toEqual([])
      table.size = 1
      table.dispatchEvent(new Event('peer:add'))
      expect(await lookup).toBeUndefined()
      expect(queries).toEqual([{ tableSize: 1, aborted: false }])
    } finally {
      service.stop()
    }
  })
})
