import { describe, it, expect, afterAll } from 'vitest'
import { TestNetwork, addressOf, freePort } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'

/**
 * A message sent to an address the application named (`/ip4/…/tcp/…/p2p/<id>`)
 * while nothing answers there is queued, and the outbox's retries (which
 * re-resolve by PeerId: peer store, routing record, …) try that address
 * again: the peer coming back at it gets the message, with no action by the
 * user. Before, the address was only dialled once, the retries knew the
 * PeerId alone and reported "no address and no routing record known".
 */
const net = new TestNetwork()
afterAll(async () => { await net.cleanup() })

describe('send to a named address', () => {
  it('queues while nothing answers there, retries at that address, and delivers once the peer is back', async () => {
    const port = await freePort()
    const bDir = await net.dir()
    const bOptions = { dataDir: bDir, listen: [`/ip4/127.0.0.1/tcp/${port}`], heartbeatInterval: 0 }
    const first = await net.node(bOptions)
    const address = addressOf(first)
    await first.stop()

    const a = await net.node({ heartbeatInterval: 0 })
    const result = await a.send(address, { op: 'query', p: { domain: 'named-address' } })
    expect(result.status).toBe('queued')
    const [entry] = a.outbox({ peer: first.peerId.toString() })
    expect(entry?.id).toBe(result.id)

    const b = await net.node(bOptions)
    expect(b.peerId.equals(first.peerId)).toBe(true)
    const stored = await eventually(async () => (await b.inbox()).find(e => e.message.id === result.id), 30_000, 'the queued message in the returning peer\'s inbox')
    expect(stored.message.p).toEqual({ domain: 'named-address' })
    await eventually(() => a.outbox({ peer: b.peerId.toString() }).length === 0 ? true : undefined, 30_000, 'an empty outbox')
  }, 90_000)
})
