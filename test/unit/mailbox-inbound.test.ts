import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { MailboxReceiver } from '../../src/node/mailbox-inbound.js'
import { AgentMetrics } from '../../src/metrics/index.js'
import { ReplayWindow } from '../../src/moltspeak/replay-window.js'
import { createMessage } from '../../src/moltspeak/index.js'
import type { MailboxMessage } from '../../src/services/mailbox/index.js'
import type { InboundMessage } from '../../src/services/speak/index.js'

/*
 * The mailbox receiver's own rules, with a real replay window and real
 * metrics: each sender's messages in `ts` order (stable), the trust inbox
 * policy once per sender and batch, duplicates and expired messages dropped.
 * The trust service and the inbound pipeline are the two ends it talks to;
 * here they record what they are asked and given.
 */

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function item (from: PeerId, n: number, ts: number, exp = Date.now() + 60_000): MailboxMessage {
  const message = { ...createMessage({ op: 'query', p: { domain: 'test', n }, from: { agent: 'a', org: 'b' }, to: { agent: 'c', org: 'd' }, exp }), ts }
  return { message, json: JSON.stringify(message), peer: from, relay: 'relay' }
}

function receiver (refused: Set<PeerId>): { receiver: MailboxReceiver, delivered: InboundMessage[][], asked: PeerId[], metrics: AgentMetrics } {
  const delivered: InboundMessage[][] = []
  const asked: PeerId[] = []
  const metrics = new AgentMetrics({ processMetrics: false })
  const components: any = {
    moltMetrics: metrics,
    moltStore: { replay: new ReplayWindow(60_000, 1000) },
    trust: { inboxDecision: (p: PeerId) => { asked.push(p); return refused.has(p) ? 'refuse' : 'accept' } },
    moltInbound: { receive: async (batch: InboundMessage[]) => { delivered.push(batch) } }
  }
  return { receiver: new MailboxReceiver(components), delivered, asked, metrics }
}

describe('mailbox receiver', () => {
  it('hands messages on by ts, keeping the page order among equal ts, and a page already in order as it is', async () => {
    const alice = await peer()
    const now = Date.now()
    const { receiver: r, delivered } = receiver(new Set())
    await r.receive([item(alice, 0, now - 10), item(alice, 1, now - 30), item(alice, 2, now - 10), item(alice, 3, now - 20)])
    expect(delivered[0].map(m => m.message.p.n)).toEqual([1, 3, 0, 2])
    const ordered = [item(alice, 4, now - 5), item(alice, 5, now - 5), item(alice, 6, now - 1)]
    await r.receive(ordered)
    expect(delivered[1].map(m => m.message.p.n)).toEqual([4, 5, 6])
    expect(delivered[1].every(m => m.route === 'mailbox')).toBe(true)
  })

  it('asks the trust policy once per sender and batch, drops a refused sender\'s messages, duplicates and expired ones, and counts them all as fetched', async () => {
    const [alice, mallory] = [await peer(), await peer()]
    const now = Date.now()
    const { receiver: r, delivered, asked, metrics } = receiver(new Set([mallory]))
    const first = item(alice, 0, now)
    const page = [first, item(mallory, 1, now), item(alice, 2, now), item(mallory, 3, now), item(alice, 4, now - 1000, now - 1), { ...first }]
    await r.receive(page)
    expect(asked).toEqual([alice, mallory])
    expect(delivered[0].map(m => m.message.p.n)).toEqual([0, 2])
    expect((await metrics.mailboxFetched.get()).values[0].value).toBe(6)
    const refused = (await metrics.messagesRefused.get()).values
    expect(Object.fromEntries(refused.map(v => [v.labels.code, v.value]))).toEqual({ E_AUTH_FAILED: 2, E_TIMEOUT: 1 })
    expect((await metrics.messagesDuplicate.get()).values[0].value).toBe(1)
  })
})
