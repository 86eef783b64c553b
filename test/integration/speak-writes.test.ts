import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { respond, type MoltNode } from '../../src/index.js'
import type { Inbox } from '../../src/inbox/index.js'

/**
 * Inbox writes of request/response traffic (issue #19): the store of a batch
 * whose ACK nobody waits on — 1.1.0 REQUESTs at the replier, REPLYs at the
 * requester — waits (inboxWriteDelay) to share one LevelDB write with the
 * next ones; a MESSAGE, whose sender waits for its ACK, is written at once.
 * Asserted by the inbox's write counter and by what is acknowledged, never by timing.
 */
const net = new TestNetwork()
const N = 10
/** Long enough that a loop of N requests shares one or two writes on a loaded machine */
const WRITE_DELAY = 3000

let alice: MoltNode
let bob: MoltNode
/** Defers its request stores for a minute: a MESSAGE to it must not wait for that */
let slow: MoltNode

const inbox = (node: MoltNode): Inbox => (node.libp2p.services as any).moltStore.inbox
const inFlight = (node: MoltNode): number => (node.libp2p.services as any).speak.stats().inFlight

/** Every message of these nodes is acknowledged (so stored): wait on the state, polling */
async function settled (...nodes: MoltNode[]): Promise<void> {
  const deadline = Date.now() + 30_000
  while (nodes.some(node => inFlight(node) > 0)) {
    if (Date.now() > deadline) throw new Error(`still in flight: ${nodes.map(inFlight).join(', ')}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

beforeAll(async () => {
  alice = await net.node({ agent: { name: 'alice', org: 'acme' }, inboxWriteDelay: WRITE_DELAY })
  bob = await net.node({ agent: { name: 'bob', org: 'acme' }, inboxWriteDelay: WRITE_DELAY })
  slow = await net.node({ agent: { name: 'slow', org: 'acme' }, inboxWriteDelay: 60_000 })
  await net.introduce()
  for (const node of [alice, bob, slow]) {
    node.handle('query', (message) => respond({ status: 'success', data: { echo: message.p } }) as Record<string, unknown>)
  }
}, 60_000)

afterAll(async () => { await net.cleanup() })

describe('inbox writes of request/response', () => {
  it('requests one at a time share inbox writes on both sides; every one is stored and acknowledged', async () => {
    await alice.request(bob.peerId, { op: 'query', p: { domain: 'test', warm: true } }, { timeout: 20_000 })
    await settled(alice, bob)
    const before = { alice: inbox(alice).writes, bob: inbox(bob).writes }
    const ids: string[] = []
    for (let i = 0; i < N; i++) {
      const reply = await alice.request(bob.peerId, { op: 'query', p: { domain: 'test', i } }, { timeout: 20_000 })
      expect((reply.p.data as any).echo.i).toBe(i)
      ids.push(reply.re as string)
    }
    // the ACKs follow the stores: once nothing is in flight, every request and reply is written
    await settled(alice, bob)
    const writes = { alice: inbox(alice).writes - before.alice, bob: inbox(bob).writes - before.bob }
    // one write per request and per reply before (each arrived in a turn of its own)
    expect(writes.bob).toBeGreaterThanOrEqual(1)
    expect(writes.bob).toBeLessThanOrEqual(N / 2)
    expect(writes.alice).toBeGreaterThanOrEqual(1)
    expect(writes.alice).toBeLessThanOrEqual(N / 2)
    const stored = new Set((await bob.inbox({ limit: 1000 })).map(entry => entry.message.id))
    for (const id of ids) expect(stored.has(id)).toBe(true)
    const replies = (await alice.inbox({ limit: 1000 })).filter(entry => ids.includes(entry.message.re as string))
    expect(replies.length).toBe(N)
  }, 60_000)

  it('a MESSAGE is written at once: its sender does not wait out the deferral of requests', async () => {
    // a request whose store waits a minute is queued at `slow` …
    await alice.request(slow.peerId, { op: 'query', p: { domain: 'test', deferred: true } }, { timeout: 20_000 })
    const before = inbox(slow).writes
    // … and a message's ACK (after its store) comes well within the test's timeout, taking the queued request's store along
    const sent = await alice.send(slow.peerId, { op: 'stream', p: { action: 'chunk', stream_id: 's', data: 'x' } })
    expect(sent.status).toBe('delivered')
    expect(inbox(slow).writes - before).toBe(1)
    await settled(alice)
    const ops = (await slow.inbox({ limit: 100 })).map(entry => entry.message.op)
    expect(ops).toEqual(expect.arrayContaining(['query', 'stream']))
  }, 30_000)
})
