/**
 * Issue 15, finding 5: the mailbox path applies speak's time checks, and ids
 * of messages delivered through a mailbox are remembered across restarts, so
 * a relay serving a box again (or a depositor re-sending it) cannot get it
 * delivered twice.
 */
import { describe, it, expect, afterAll } from 'vitest'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { startTestRelay, relayAddress } from '../support/relays.js'
import type { RelayNode } from '../../src/relay/index.js'
import { MailboxChannel } from '../../src/services/mailbox/channel.js'
import { signDeposit } from '../../src/services/mailbox/deposit-signature.js'
import { Sealer } from '../../src/crypto/index.js'
import { identityFromKey } from '../../src/identity/index.js'
import { createMessage, signMessage, type MoltMessage } from '../../src/moltspeak/index.js'
import type { MoltNode } from '../../src/index.js'

const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

const day = 24 * 60 * 60 * 1000
const circuitOf = (node: MoltNode): string | undefined => node.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))

async function channelTo (node: MoltNode, relay: RelayNode): Promise<MailboxChannel> {
  const connection = await node.libp2p.dial(relay.getMultiaddrs()[0])
  return new MailboxChannel(await connection.newStream('/molt/mailbox/1.0.0'), node.libp2p.logger.forComponent('test'))
}

/** A signed query from `sender` to `recipient` with the given times, and its signed deposit frame */
function signedDeposit (sender: MoltNode, recipient: MoltNode, times: { ts?: number, exp?: number }, tag: string): { message: MoltMessage, frame: Record<string, unknown> } {
  const key = (sender as any).identity.privateKey as Ed25519PrivateKey
  const identity = identityFromKey(key)
  const message = signMessage(createMessage({ op: 'query', p: { domain: 'test', tag }, from: { agent: 'alice', org: 'test', key: identity.moltKey }, to: { agent: 'bob', org: 'test' }, ...times }), identity.signingKey)
  const box = new Sealer(key.raw.subarray(0, 32), key.publicKey.raw).seal(Buffer.from(JSON.stringify(message)), {
    sender: key.publicKey.raw, recipient: recipient.peerId.publicKey!.raw, id: message.id
  })
  // the box stays at the relay for an hour whatever the message says
  const items = [{ id: message.id, exp: Date.now() + 3_600_000, box: Buffer.from(box).toString('base64') }]
  const from = sender.peerId.toString()
  const to = recipient.peerId.toString()
  return { message, frame: { t: 'deposit', from, to, items, sig: signDeposit(identity.signingKey, from, to, items) } }
}

async function tags (node: MoltNode): Promise<unknown[]> {
  return (await node.inbox({ limit: 1000 })).filter(e => e.message.op === 'query').map(e => e.message.p.tag)
}

describe('mailbox replay', () => {
  it('refuses a validly signed message 3 days old without exp, and one stamped in the future, as speak does', async () => {
    const relay = await startTestRelay(async () => net.dir(), relays)
    const bob = await net.node({ dataDir: await net.dir(), agent: { name: 'bob' }, relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(bob), 10_000, 'a reservation')
    const alice = await net.node({ dataDir: await net.dir(), agent: { name: 'alice' } })
    const channel = await channelTo(alice, relay)
    await channel.request(signedDeposit(alice, bob, { ts: Date.now() - 3 * day }, 'stale').frame)
    await channel.request(signedDeposit(alice, bob, { ts: Date.now() + 1 * day }, 'future').frame)
    await channel.request(signedDeposit(alice, bob, {}, 'fresh').frame)
    await eventually(async () => (await tags(bob)).includes('fresh'), 10_000, 'the fresh message')
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'every box acknowledged')
    // the refused boxes are dropped and counted, never delivered
    expect(await tags(bob)).toEqual(['fresh'])
    expect(await bob.metrics.mailboxRejected.get()).toMatchObject({ values: [{ value: 2 }] })
  }, 30_000)

  it('a message delivered once through a mailbox and served again after the recipient restarts is not delivered twice', async () => {
    const relay = await startTestRelay(async () => net.dir(), relays)
    const bobDir = await net.dir()
    const bobOptions = { dataDir: bobDir, agent: { name: 'bob' }, relays: [relayAddress(relay)] }
    const bob = await net.node(bobOptions)
    await eventually(() => circuitOf(bob), 10_000, 'a reservation')
    const alice = await net.node({ dataDir: await net.dir(), agent: { name: 'alice' } })
    const channel = await channelTo(alice, relay)
    // at-least-once (no delivery mode): only its id, not an exactly-once flag, guards it
    const { frame } = signedDeposit(alice, bob, { exp: Date.now() + 2 * day }, 'once')
    await channel.request(frame)
    await eventually(async () => (await tags(bob)).includes('once'), 10_000, 'the first delivery')
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'the box acknowledged')
    await bob.stop()

    // the very same box is served again
    expect(await channel.request(frame)).toMatchObject({ t: 'stored', stored: 1 })
    const again = await net.node(bobOptions)
    await eventually(() => relay.mailbox?.stats().messages === 0, 10_000, 'the replayed box fetched and acknowledged')
    expect(await tags(again)).toEqual(['once'])
  }, 30_000)
})
