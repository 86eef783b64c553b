import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { createMessage, signMessage, TaskClaimRefusedError, type MoltMessage, type MoltNode, type ReceivedMessage } from '../../src/index.js'
import { identityFromKey } from '../../src/identity/index.js'
import { MAX_TOPIC_MESSAGE_BYTES, PUBLISHER_BURST } from '../../src/services/topics/index.js'

/*
 * Three real nodes on 127.0.0.1 joined to one team topic, and an attacker
 * that publishes raw gossip to it. ~10 s on 2 cores.
 */
const TEAM = 'team-a'
const TOPIC = `molt/topic/${TEAM}`
const DEADLINE = 30_000
const net = new TestNetwork()
let a: MoltNode, b: MoltNode, c: MoltNode
const pubsub = (n: MoltNode): any => n.libp2p.services.pubsub
/** `x` knows `y` is subscribed to the topic (a publisher sends to peers it knows subscribe) */
const knows = (x: MoltNode, y: MoltNode): boolean => pubsub(x).getSubscribers(TOPIC).some((p: any) => p.equals(y.peerId))
const inTopic = async (n: MoltNode, id: string): Promise<ReceivedMessage | undefined> => (await n.inbox({ limit: 10_000 })).find(e => e.message.id === id)
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))

beforeAll(async () => {
  a = await net.node({ heartbeatInterval: 0, tasks: { receipts: false } })
  b = await net.node({ heartbeatInterval: 0, tasks: { receipts: false } })
  c = await net.node({ heartbeatInterval: 0, tasks: { receipts: false } })
  await net.introduce()
  await a.libp2p.dial(b.getMultiaddrs()[0])
  await a.libp2p.dial(c.getMultiaddrs()[0])
  await b.libp2p.dial(c.getMultiaddrs()[0])
  for (const n of [a, b, c]) await n.topics.join(TEAM)
  await eventually(() => [a, b, c].every(x => [a, b, c].every(y => x === y || knows(x, y))), DEADLINE, 'every node knows the others joined')
}, 60_000)
afterAll(async () => { await net.cleanup() })

describe('team topics', { timeout: 60_000 }, () => {
  it('a message published to the topic reaches the other members\' inboxes, signed, with the topic named', async () => {
    const sent = await a.topics.publish(TEAM, { op: 'query', p: { domain: 'team', intent: 'who is free?' } })
    expect(sent.recipients).toBe(2)
    for (const n of [b, c]) {
      const entry = await eventually(async () => inTopic(n, sent.id), DEADLINE, 'the message in the inbox')
      expect(entry).toMatchObject({ peer: a.peerId.toString(), topic: TEAM, message: { op: 'query', from: { key: a.moltKey }, to: { agent: TOPIC, org: 'topic' } } })
      expect(entry.message.sig).toBeTypeOf('string')
    }
    // the publisher does not get its own message; topics survive in list()
    expect(await inTopic(a, sent.id)).toBeUndefined()
    expect(b.topics.list().map(t => t.name)).toEqual([TEAM])
  })

  it('a task offered to the topic is granted to exactly one member; the other is refused at once', async () => {
    const offered = Promise.all([b, c].map(async n => new Promise<void>(resolve => {
      n.tasks.addEventListener('offered', (evt: CustomEvent<{ id: string }>) => { if (evt.detail.id === 'topic-task-1') resolve() })
    })))
    const record = await a.tasks.offer({ topic: TEAM }, { id: 'topic-task-1', type: 'review' })
    expect(record).toMatchObject({ state: 'offered', topic: TEAM })
    await offered
    expect(b.tasks.get('topic-task-1')).toMatchObject({ state: 'offered', topic: TEAM, offerer: a.peerId.toString() })
    const outcomes = await Promise.allSettled([b, c].map(async n => n.tasks.claim('topic-task-1')))
    const winners = outcomes.filter(o => o.status === 'fulfilled')
    expect(winners).toHaveLength(1)
    const loser = outcomes.find(o => o.status === 'rejected') as PromiseRejectedResult
    expect(loser.reason).toBeInstanceOf(TaskClaimRefusedError)
    expect(loser.reason.code).toBe('E_TASK_CLAIMED')
    const worker = (winners[0] as PromiseFulfilledResult<{ worker: string }>).value.worker
    expect(a.tasks.get('topic-task-1')).toMatchObject({ state: 'claimed', worker })
  })

  it('forged, foreign-key, oversized, deeply nested, unsigned and wrong-topic messages are refused and the publisher penalised', async () => {
    const attacker = await net.node({ heartbeatInterval: 0 })
    await attacker.topics.join(TEAM)
    for (const n of [b, c]) await attacker.libp2p.dial(n.getMultiaddrs()[0])
    await eventually(() => [b, c].every(n => knows(n, attacker) && knows(attacker, n)), DEADLINE, 'attacker subscribed')
    const key = (attacker as any).identity.signingKey
    const victim = identityFromKey(await generateKeyPair('Ed25519'))
    const base = (p: Record<string, unknown> = {}, to = TOPIC): MoltMessage => createMessage({ op: 'query', from: attacker.agent, to: { agent: to, org: 'topic' }, p: { domain: 'x', ...p } })
    const good = signMessage(base(), key)
    let deep = '1'
    for (let i = 0; i < 1000; i++) deep = `[${deep}]`
    const bad: Array<[string, Uint8Array]> = [
      ['forged signature', encode({ ...good, p: { domain: 'y' } })],
      ['someone else\'s key', encode(signMessage(createMessage({ op: 'query', from: { agent: 'v', org: 'v', key: victim.moltKey }, to: { agent: TOPIC, org: 'topic' }, p: { domain: 'x' } }), victim.signingKey))],
      ['oversized', encode(signMessage(base({ pad: 'x'.repeat(MAX_TOPIC_MESSAGE_BYTES) }), key))],
      ['deeply nested', encode(JSON.stringify(signMessage(base(), key)).replace('"domain":"x"', `"domain":"x","deep":${deep}`))],
      ['unsigned', encode(base())],
      ['for another topic', encode(signMessage(base({}, 'molt/topic/other'), key))],
      ['not JSON', encode('{"v":"0.1",')]
    ]
    const refused = (n: MoltNode): number => Object.values(n.topics.stats().refused).reduce((x, y) => x + y, 0)
    const before = [b, c].map(refused)
    for (const [, data] of bad) await pubsub(attacker).publish(TOPIC, data)
    await eventually(() => [b, c].every((n, i) => refused(n) - before[i] >= bad.length), DEADLINE, 'every bad message refused')
    await eventually(() => [b, c].every(n => n.trust.gossipScore(attacker.peerId) < 0), DEADLINE, 'attacker penalised')
    const reasons = b.topics.stats().refused
    for (const reason of ['signature', 'publisher', 'size', 'schema', 'unsigned', 'topic']) expect(reasons[reason], reason).toBeGreaterThan(0)
    // nothing of it reached an inbox
    for (const n of [a, b, c]) expect((await n.inbox({ limit: 10_000 })).some(e => e.peer === attacker.peerId.toString())).toBe(false)
    // an honest member is not penalised
    expect(b.trust.gossipScore(a.peerId)).toBeGreaterThanOrEqual(0)
  })

  it(`a publisher over its rate (${PUBLISHER_BURST} in a burst) is cut and penalised`, async () => {
    const flooder = await net.node({ heartbeatInterval: 0 })
    await flooder.topics.join(TEAM)
    await flooder.libp2p.dial(b.getMultiaddrs()[0])
    await eventually(() => knows(b, flooder) && knows(flooder, b), DEADLINE, 'flooder subscribed')
    const FLOOD = PUBLISHER_BURST * 3
    for (let i = 0; i < FLOOD; i++) await flooder.topics.publish(TEAM, { op: 'query', p: { domain: 'flood', n: i } })
    await eventually(() => (b.topics.stats().refused.rate ?? 0) > 0, DEADLINE, 'rate limit hit')
    await eventually(() => b.trust.gossipScore(flooder.peerId) < 0, DEADLINE, 'flooder penalised')
    const kept = (await b.inbox({ limit: 10_000 })).filter(e => e.peer === flooder.peerId.toString()).length
    expect(kept).toBeGreaterThanOrEqual(PUBLISHER_BURST)
    expect(kept).toBeLessThan(FLOOD)
  })

  it('after leave, nothing more of the topic reaches the inbox', async () => {
    await b.topics.leave(TEAM)
    expect(b.topics.joined(TEAM)).toBe(false)
    await eventually(() => !knows(a, b), DEADLINE, 'a learns b left')
    const sent = await a.topics.publish(TEAM, { op: 'query', p: { domain: 'team', intent: 'after leave' } })
    // c, still a member, gets it: by then b would have too
    await eventually(async () => inTopic(c, sent.id), DEADLINE, 'the message at c')
    expect(await inTopic(b, sent.id)).toBeUndefined()
    // joined topics survive a restart: b's is gone, c's is kept
    expect(c.topics.list().map(t => t.name)).toContain(TEAM)
  })
})
