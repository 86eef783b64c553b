import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'

/**
 * The SDK side of issue #23 item 1 and 4: who may answer a request
 * (`unhandledRequests`), and ping/pong kept out of the inbox. Real nodes on
 * loopback; heartbeats off so only the test's own pings travel.
 */
const net = new TestNetwork()
let asker: MoltNode
let refusing: MoltNode
let keeping: MoltNode

beforeAll(async () => {
  ;[asker, refusing, keeping] = await Promise.all([
    net.node({ heartbeatInterval: 0 }),
    net.node({ heartbeatInterval: 0, unhandledRequests: 'refuse' }),
    net.node({ heartbeatInterval: 0 })
  ])
})

afterAll(async () => { await net.cleanup() })

const query = { op: 'query' as const, p: { domain: 'weather' } }

describe('unhandledRequests', () => {
  it("'refuse' answers a request nothing handles with E_CAPABILITY_UNKNOWN and keeps it in the inbox", async () => {
    const reply = await asker.request(addressOf(refusing), query, { timeout: 10_000 })
    expect(reply).toMatchObject({ op: 'error', p: { code: 'E_CAPABILITY_UNKNOWN', field: 'op', context: { op: 'query' } } })
    const stored = await eventually(async () => (await refusing.inbox()).find(e => e.message.id === reply.re))
    expect(stored.message.op).toBe('query')
  })

  it('a passive listener does not count as an answerer; an active one does', async () => {
    const watch = (): void => {}
    refusing.addEventListener('message', watch, { passive: true })
    expect((await asker.request(refusing.peerId, query, { timeout: 10_000 })).op).toBe('error')
    refusing.removeEventListener('message', watch)

    const answerer = (): void => {}
    refusing.addEventListener('message', answerer)
    try {
      await expect(asker.request(refusing.peerId, query, { timeout: 3000 })).rejects.toThrow(/the peer acknowledged it but sent no reply/)
    } finally {
      refusing.removeEventListener('message', answerer)
    }
    // gone again: refused again
    expect((await asker.request(refusing.peerId, query, { timeout: 10_000 })).op).toBe('error')
  })

  it('a messages() reader (what /v1/stream runs) counts while it reads', async () => {
    const controller = new AbortController()
    const reading = (async () => {
      for await (const entry of refusing.messages({ signal: controller.signal })) {
        if (entry.message.op === 'query') controller.abort()
      }
    })()
    // the reader has started once its first inbox read is under way: the next request is not refused
    await expect(asker.request(refusing.peerId, { op: 'tool', p: { action: 'list' } }, { timeout: 3000 })).rejects.toThrow(/acknowledged it but sent no reply/)
    controller.abort()
    await reading
  })

  it("'keep' (the SDK default) stays silent: the requester's timeout says the peer acknowledged it", async () => {
    // connected first, so the ack (which the message depends on) is not waiting on a dial
    await asker.ping(addressOf(keeping))
    await expect(asker.request(keeping.peerId, query, { timeout: 3000 })).rejects.toThrow(
      /no reply to query \S+ from \S+ within 3000 ms: the peer acknowledged it but sent no reply \(nothing there answers "query"/)
  })
})

describe('ping/pong housekeeping', () => {
  it('is answered and matched, seen by housekeeping listeners, never stored', async () => {
    const seen: string[] = []
    const onHousekeeping = (evt: CustomEvent): void => { seen.push(evt.detail.message.op) }
    keeping.addEventListener('housekeeping', onHousekeeping)
    try {
      const before = keeping.inboxCursor()
      const { pong } = await asker.ping(addressOf(keeping))
      expect(pong.op).toBe('pong')
      expect(seen).toContain('ping')
      // a message after the ping: stored right behind whatever the ping would have taken
      const { id } = await asker.send(keeping.peerId, { op: 'stream', p: { action: 'start', stream_id: 'after-ping' } })
      const entries = await keeping.inbox({ after: before })
      expect(entries.map(e => e.message.id)).toEqual([id])
      expect((await asker.inbox()).some(e => e.message.op === 'pong')).toBe(false)
    } finally {
      keeping.removeEventListener('housekeeping', onHousekeeping)
    }
  })

  it('peers() reports the rtt of the last ping', async () => {
    const { rtt } = await asker.ping(keeping.peerId)
    expect(asker.peers().find(p => p.peerId === keeping.peerId.toString())?.rttMs).toBe(rtt)
    // the role comes with identify, which may finish after the first pong
    await eventually(() => asker.peers().find(p => p.peerId === keeping.peerId.toString() && p.role === 'agent'))
  })
})
