import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestNetwork, freePort } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { type MoltNode, type ReceivedMessage } from '../../src/index.js'
import { InboundPipeline } from '../../src/node/inbound.js'

/** any version of the speak protocol (1.0.0, or 1.1.0 between two new nodes) */
const SPEAK_PROTOCOL_PREFIX = '/molt/speak/'

/*
 * Priority bands on a real connection (127.0.0.1) and in the outbox: the
 * order in which the receiver gets messages, never how fast.
 */
const WINDOW = 64
const LOW_IN_FLIGHT = 8
/** Inbound speak streams per connection an older molt peer accepts (its MAX_INBOUND_STREAMS) */
const OLD_PEER_INBOUND_STREAMS = 4

/*
 * A slow store at the receiver, for messages tagged `hold`: the inbox append
 * runs as always, but the batch's acknowledgement waits until `release()` —
 * the batches stay "being stored" as long as the test wants.
 */
let held = 0
let release: (by: string) => void = () => {}
let released: Promise<string> = Promise.resolve('')
const receive = InboundPipeline.prototype.receive
InboundPipeline.prototype.receive = async function (batch) {
  const stored = receive.call(this, batch)
  if (!batch.some(item => item.message.p.tag === 'hold' && item.message.p.band === 'low')) return stored
  held++
  await stored
  await released
}

describe('priority bands', { timeout: 120_000 }, () => {
  const net = new TestNetwork()
  let a: MoltNode
  let b: MoltNode
  const arrivals: ReceivedMessage[] = []

  beforeAll(async () => {
    a = await net.node({ heartbeatInterval: 0, speak: { maxInFlight: WINDOW, maxLowInFlight: LOW_IN_FLIGHT } })
    b = await net.node({ heartbeatInterval: 0, speak: { maxInboundStreams: OLD_PEER_INBOUND_STREAMS } })
    await net.introduce()
    b.addEventListener('message', (evt) => { arrivals.push(evt.detail) }, { passive: true })
    await a.ping(b.peerId)
  }, 60_000)
  afterAll(async () => {
    InboundPipeline.prototype.receive = receive
    await net.cleanup()
  })

  const order = (tag: string): string[] => arrivals.filter(e => e.message.p.tag === tag).map(e => String(e.message.p.band))

  it('a high-priority message overtakes a backlog of low ones on the same connection', async () => {
    const LOW = 3000
    const sends = Array.from({ length: LOW }, async (_, i) => a.send(b.peerId, { op: 'register', p: { tag: 'overtake', band: 'low', i } }, { priority: 'low', delivery: 'best-effort' }))
    const high = a.send(b.peerId, { op: 'register', p: { tag: 'overtake', band: 'high' } }, { priority: 'high', delivery: 'best-effort' })
    await Promise.all([...sends, high])
    const seen = order('overtake')
    expect(seen).toHaveLength(LOW + 1)
    // behind it at most the low messages already in flight (capped) when it was sent, not the 3000 queued
    expect(seen.indexOf('high')).toBeLessThanOrEqual(2 * LOW_IN_FLIGHT)
    // the lows kept their order among themselves
    const lows = arrivals.filter(e => e.message.p.tag === 'overtake' && e.message.p.band === 'low').map(e => Number(e.message.p.i))
    expect(lows).toEqual([...lows].sort((x, y) => x - y))
  })

  it('low is never starved: under a flood of high-priority messages low ones keep moving', async () => {
    const N = 1000
    const lows = Array.from({ length: N }, async () => a.send(b.peerId, { op: 'register', p: { tag: 'fair', band: 'low' } }, { priority: 'low', delivery: 'best-effort' }))
    const highs = Array.from({ length: N }, async () => a.send(b.peerId, { op: 'register', p: { tag: 'fair', band: 'high' } }, { priority: 'high', delivery: 'best-effort' }))
    await Promise.all([...lows, ...highs])
    const seen = order('fair')
    const lastHigh = seen.lastIndexOf('high')
    const lowsBeforeLastHigh = seen.slice(0, lastHigh).filter(x => x === 'low').length
    // the highs went first overall, yet lows got turns while highs waited (weighted round-robin 8:1)
    expect(seen.indexOf('high')).toBeLessThanOrEqual(2 * LOW_IN_FLIGHT)
    expect(lowsBeforeLastHigh).toBeGreaterThanOrEqual(Math.floor(N / 9) - 2 * LOW_IN_FLIGHT)
  })

  it('a task message travels in the band of its task.priority', async () => {
    // the same mechanism, chosen by the MoltSpeak payload instead of the send option
    const sends = Array.from({ length: 1000 }, async () => a.send(b.peerId, { op: 'register', p: { tag: 'task-band', band: 'low' } }, { priority: 'low', delivery: 'best-effort' }))
    const urgent = a.send(b.peerId, { op: 'task', p: { action: 'create', task_id: 'urgent-1', priority: 'urgent', tag: 'task-band', band: 'urgent' } }, { delivery: 'best-effort' })
    await Promise.all([...sends, urgent])
    expect(order('task-band').indexOf('urgent')).toBeLessThanOrEqual(2 * LOW_IN_FLIGHT)
  })

  it('in the outbox: a high-priority message queued after low ones is delivered first', async () => {
    const dataDir = await net.dir()
    const port = await freePort()
    const listen = [`/ip4/127.0.0.1/tcp/${port}`]
    let c = await net.node({ dataDir, listen, heartbeatInterval: 0 })
    const cId = c.peerId
    await a.libp2p.peerStore.merge(cId, { multiaddrs: c.getMultiaddrs() })
    await c.stop()
    const LOW = 200
    for (let i = 0; i < LOW; i++) expect((await a.send(cId, { op: 'register', p: { tag: 'outbox', band: 'low', i } }, { priority: 'low' })).status).toBe('queued')
    expect((await a.send(cId, { op: 'register', p: { tag: 'outbox', band: 'high' } }, { priority: 'high' })).status).toBe('queued')
    expect(a.outbox({ peer: cId.toString() })).toHaveLength(LOW + 1)

    c = await net.node({ dataDir, listen, heartbeatInterval: 0 })
    await a.retryOutbox(cId)
    await eventually(() => a.outbox({ peer: cId.toString() }).length === 0, 60_000, 'the outbox delivered')
    const inbox = (await c.inbox({ limit: 1000 })).filter(e => e.message.p.tag === 'outbox')
    expect(inbox).toHaveLength(LOW + 1)
    expect(inbox[0].message.p.band).toBe('high')
  })

  it('the receiver stores and acknowledges a high-priority message while the low batches ahead of it are still being stored', async () => {
    released = new Promise(resolve => { release = resolve })
    const order: string[] = []
    let lowAcked = 0
    let highStored = false
    const gotHigh = (evt: CustomEvent<ReceivedMessage>): void => { if (evt.detail.message.p.tag === 'hold' && evt.detail.message.p.band === 'high') highStored = true }
    b.addEventListener('message', gotHigh)
    const LOW = 200
    const lows = Array.from({ length: LOW }, async (_, i) => a.send(b.peerId, { op: 'register', p: { tag: 'hold', band: 'low', i } }, { priority: 'low', delivery: 'best-effort' }).then(() => { lowAcked++ }))
    // low batches are on the wire and being stored (their acks held) before the high one is sent
    await eventually(() => held > 0, 30_000, 'the receiver holding low batches')
    const high = a.send(b.peerId, { op: 'register', p: { tag: 'hold', band: 'high' } }, { priority: 'high', delivery: 'best-effort' })
      .then(() => { order.push(`high acked (${lowAcked} low acked)`) })
    // the old code acknowledged it only after the held batches: release them anyway after a while, so it fails on the order below instead of hanging
    const fallback = setTimeout(() => { release('timeout') }, 20_000)
    await Promise.race([high, released])
    order.push('low batches released')
    release('test')
    clearTimeout(fallback)
    await Promise.all([high, ...lows])
    b.removeEventListener('message', gotHigh)
    expect(highStored).toBe(true)
    // stored and acknowledged on its own stream while every low message was still unacknowledged
    expect(order).toEqual(['high acked (0 low acked)', 'low batches released'])
    expect(lowAcked).toBe(LOW)
    // and the lows kept their order among themselves
    const lowsSeen = arrivals.filter(e => e.message.p.tag === 'hold' && e.message.p.band === 'low').map(e => Number(e.message.p.i))
    expect(lowsSeen).toEqual(Array.from({ length: LOW }, (_, i) => i))
  })

  it('each band has its own stream to the peer, within what an older receiver accepts', async () => {
    await Promise.all((['high', 'normal', 'low'] as const).map(async priority => a.send(b.peerId, { op: 'register', p: { tag: 'streams', band: priority } }, { priority, delivery: 'best-effort' })))
    const streams = a.libp2p.getConnections(b.peerId).flatMap(connection => connection.streams)
      .filter(stream => stream.protocol?.startsWith(SPEAK_PROTOCOL_PREFIX) === true && stream.direction === 'outbound' && stream.status === 'open')
    expect(streams).toHaveLength(3)
    expect(streams.length).toBeLessThanOrEqual(OLD_PEER_INBOUND_STREAMS - 1)
  })

  it('a band that gets no stream of its own (a stream limit) shares the normal one, and its messages still arrive', async () => {
    const d = await net.node({ heartbeatInterval: 0, speak: { maxOutboundStreams: 1 } })
    await d.libp2p.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    await d.send(b.peerId, { op: 'register', p: { tag: 'shared', band: 'normal' } }, { delivery: 'best-effort' })
    await Promise.all((['high', 'low'] as const).map(async priority => d.send(b.peerId, { op: 'register', p: { tag: 'shared', band: priority } }, { priority, delivery: 'best-effort' })))
    expect(order('shared').sort()).toEqual(['high', 'low', 'normal'])
    const streams = d.libp2p.getConnections(b.peerId).flatMap(connection => connection.streams)
      .filter(stream => stream.protocol?.startsWith(SPEAK_PROTOCOL_PREFIX) === true && stream.direction === 'outbound' && stream.status === 'open')
    expect(streams).toHaveLength(1)
  })
})
