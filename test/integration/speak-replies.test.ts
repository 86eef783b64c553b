import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { respond, createMessage, type MoltNode, type MoltMessage } from '../../src/index.js'
import type { SpeakStats } from '../../src/services/speak/index.js'
import { FrameDecoder, encodeFrame, FRAME_ACK, FRAME_REJECT, FRAME_REPLY, FRAME_REQUEST, type Frame } from '../../src/services/speak/frames.js'
import { PROTOCOL, PROTOCOL_REPLIES } from '../../src/services/speak/constants.js'

/**
 * /molt/speak/1.1.0: replies on the request's stream, ACKs held to ride with
 * the next frame (protocols/speak.md, "Replies on the request's stream").
 * Asserted by the speak service's frame and write counters, never by timing.
 */
const net = new TestNetwork()
const N = 20
/** Long enough that no held ACK leaves alone during a loop of N requests, short enough to watch it leave alone after */
const ACK_DELAY = 1500

let alice: MoltNode
let bob: MoltNode
let old: MoltNode

function stats (node: MoltNode): SpeakStats {
  return (node.libp2p.services as any).speak.stats()
}

function delta (before: SpeakStats, after: SpeakStats): { writes: number, ackOnlyWrites: number, frames: Record<string, number> } {
  const frames: Record<string, number> = {}
  for (const name of Object.keys(after.frames)) frames[name] = after.frames[name] - before.frames[name]
  return { writes: after.writes - before.writes, ackOnlyWrites: after.ackOnlyWrites - before.ackOnlyWrites, frames }
}

/** Both sides' speak counters summed */
function both (a: MoltNode, b: MoltNode): SpeakStats {
  const x = stats(a)
  const y = stats(b)
  const frames: Record<string, number> = {}
  for (const name of Object.keys(x.frames)) frames[name] = x.frames[name] + y.frames[name]
  return { ...x, inFlight: x.inFlight + y.inFlight, writes: x.writes + y.writes, ackOnlyWrites: x.ackOnlyWrites + y.ackOnlyWrites, frames }
}

/** Every message of both is acknowledged (held ACKs included): wait on the state, polling */
async function settled (...nodes: MoltNode[]): Promise<void> {
  const deadline = Date.now() + 20_000
  while (nodes.some(node => stats(node).inFlight > 0)) {
    if (Date.now() > deadline) throw new Error(`still in flight: ${nodes.map(n => stats(n).inFlight).join(', ')}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function inboxHas (node: MoltNode, predicate: (m: MoltMessage) => boolean): Promise<boolean> {
  return (await node.inbox({ limit: 10_000 })).some(entry => predicate(entry.message))
}

async function loop (from: MoltNode, to: MoltNode, count: number): Promise<MoltMessage[]> {
  const replies: MoltMessage[] = []
  for (let i = 0; i < count; i++) replies.push(await from.request(to.peerId, { op: 'query', p: { domain: 'echo', i } }, { timeout: 20_000 }))
  return replies
}

beforeAll(async () => {
  alice = await net.node({ agent: { name: 'alice', org: 'acme' }, speak: { ackDelay: ACK_DELAY } })
  bob = await net.node({ agent: { name: 'bob', org: 'acme' }, speak: { ackDelay: ACK_DELAY } })
  // a peer from before 1.1.0: it knows /molt/speak/1.0.0 only
  old = await net.node({ agent: { name: 'old', org: 'acme' }, speak: { protocol: '/molt/speak/1.0.0' } })
  await net.introduce()
  for (const node of [alice, bob, old]) {
    node.handle('query', (message) => respond({ status: 'success', data: { echo: message.p } }) as Record<string, unknown>)
  }
}, 60_000)

afterAll(async () => { await net.cleanup() })

describe('two 1.1.0 nodes', () => {
  it('answer on the request\'s stream with no ACK written alone while requests keep coming', async () => {
    await loop(alice, bob, 3) // streams open, caches warm
    await settled(alice, bob)
    const before = both(alice, bob)
    const replies = await loop(alice, bob, N)
    const during = delta(before, both(alice, bob))
    expect(replies.map(r => (r.p.data as any).echo.i)).toEqual(Array.from({ length: N }, (_, i) => i))
    expect(during.frames.request).toBe(N)
    expect(during.frames.reply).toBe(N)
    expect(during.frames.message).toBe(0) // no reply took the replier's own stream
    // every ACK rode with a REQUEST or a REPLY: one write per frame of payload, two per exchange
    expect(during.ackOnlyWrites).toBe(0)
    expect(during.writes).toBe(2 * N)
    // cumulative ACKs, written after the stores they confirm: often one covers several
    expect(during.frames.ack).toBeGreaterThan(0)
    await settled(alice, bob)
    for (const reply of replies) {
      expect(await inboxHas(bob, m => m.id === reply.re)).toBe(true)
      expect(await inboxHas(alice, m => m.id === reply.id)).toBe(true)
    }
  })

  it('a held ACK still leaves alone after ackDelay, and only after the store: every request and reply is in an inbox', async () => {
    const before = both(alice, bob)
    const [reply] = await loop(alice, bob, 1)
    expect(stats(alice).inFlight + stats(bob).inFlight).toBeGreaterThan(0) // ACKs held, not lost
    await settled(alice, bob)
    const after = delta(before, both(alice, bob))
    expect(after.ackOnlyWrites).toBeGreaterThanOrEqual(1)
    expect(await inboxHas(bob, m => m.id === reply.re)).toBe(true)
    expect(await inboxHas(alice, m => m.id === reply.id)).toBe(true)
  })

  it('a reply that cannot take the request\'s stream travels on the replier\'s own', async () => {
    // bob sends alice plain messages (its own stream) and requests (its own stream, alice's REPLYs back)
    const sent = await bob.send(alice.peerId, { op: 'query', p: { domain: 'plain' } })
    expect(sent.delivered).toBe(true)
    const reply = await bob.request(alice.peerId, { op: 'query', p: { domain: 'echo', i: -1 } }, { timeout: 20_000 })
    expect((reply.p.data as any).echo.i).toBe(-1)
    await settled(alice, bob)
  })
})

describe('a 1.1.0 node and a 1.0.0-only node', () => {
  for (const [name, from, to] of [['new → old', () => alice, () => old], ['old → new', () => old, () => alice]] as const) {
    it(`${name}: replies on the replier's stream, every message ACKed on its own write (1.0.0 behaviour)`, async () => {
      await loop(from(), to(), 2)
      await settled(from(), to())
      const before = both(from(), to())
      const replies = await loop(from(), to(), N)
      await settled(from(), to())
      const after = delta(before, both(from(), to()))
      expect(replies).toHaveLength(N)
      expect(after.frames.request).toBe(0)
      expect(after.frames.reply).toBe(0)
      expect(after.frames.message).toBe(2 * N) // N requests, N replies
      expect(after.frames.ack).toBe(2 * N)
      expect(after.ackOnlyWrites).toBe(2 * N)
      expect(after.writes).toBe(4 * N)
      for (const reply of replies.slice(-3)) {
        expect(await inboxHas(to(), m => m.id === reply.re)).toBe(true)
        expect(await inboxHas(from(), m => m.id === reply.id)).toBe(true)
      }
    })
  }
})

describe('hostile REPLY frames reach the requester', () => {
  it('an unreadable REPLY is REJECTed, a valid one answers the request, a repeated seq ends the stream', async () => {
    const fake = await net.node({ agent: { name: 'fake', org: 'acme' } })
    await net.introduce()
    // a hand-driven 1.1.0 acceptor in place of fake's speak service
    await fake.libp2p.unhandle(PROTOCOL_REPLIES)
    await fake.libp2p.unhandle(PROTOCOL)
    const received: Frame[] = []
    let closed = false
    let stream: any
    let changed: () => void = () => {}
    const until = async (predicate: () => boolean): Promise<void> => {
      const deadline = Date.now() + 10_000
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out; frames ${JSON.stringify(received.map(f => [f.type, f.seq]))} closed=${closed}`)
        await new Promise<void>(resolve => { changed = resolve; setTimeout(resolve, 50) })
      }
    }
    await fake.libp2p.handle(PROTOCOL_REPLIES, (s: any) => {
      stream = s
      const frames = new FrameDecoder(2 * 1024 * 1024)
      s.addEventListener('message', (evt: any) => {
        frames.push(evt.data)
        for (let f = frames.next(); f != null; f = frames.next()) received.push(f)
        changed()
      })
      s.addEventListener('close', () => { closed = true; changed() })
    }, { runOnLimitedConnection: true })

    const answer = alice.request(fake.peerId, { op: 'query', p: { domain: 'hostile' } }, { timeout: 10_000 })
    await until(() => received.some(f => f.type === FRAME_REQUEST))
    const request = JSON.parse(Buffer.from(received.find(f => f.type === FRAME_REQUEST)!.body).toString('utf8')) as MoltMessage
    const reply = createMessage({ op: 'respond', from: fake.agent, to: alice.agent, re: request.id, p: respond({ status: 'success', data: 'ok' }) as Record<string, unknown> })
    stream.send(encodeFrame(FRAME_REPLY, 1, Buffer.from('{not json', 'utf8')))
    stream.send(encodeFrame(FRAME_REPLY, 2, Buffer.from(JSON.stringify(reply), 'utf8')))
    expect((await answer).id).toBe(reply.id)
    await until(() => received.some(f => f.type === FRAME_REJECT))
    const reject = received.find(f => f.type === FRAME_REJECT)!
    expect(reject.seq).toBe(1)
    expect(JSON.parse(Buffer.from(reject.body).toString('utf8')).p.code).toBe('E_PARSE')
    // the valid REPLY is stored, then ACKed (held at most ackDelay)
    await until(() => received.some(f => f.type === FRAME_ACK && f.seq === 2))
    expect(await inboxHas(alice, m => m.id === reply.id)).toBe(true)
    // a REPLY seq that does not increase: the requester cannot parse the stream any further
    stream.send(encodeFrame(FRAME_REPLY, 2, Buffer.from(JSON.stringify(reply), 'utf8')))
    await until(() => closed)
  })
})
