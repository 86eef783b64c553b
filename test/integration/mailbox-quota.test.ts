/**
 * Issue 15, finding 4: a relay mailbox against free identities. Deposits are
 * accepted only for registered recipients (a reservation or a mailbox
 * session, kept across relay restarts); first-contact senders share a small
 * part of a recipient's quota, so fresh keys cannot crowd out a sender the
 * recipient already reads; the recipient can purge a sender.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { startTestRelay, relayAddress } from '../support/relays.js'
import type { RelayNode, RelayNodeOptions } from '../../src/relay/index.js'
import { MailboxChannel } from '../../src/services/mailbox/channel.js'
import { signDeposit } from '../../src/services/mailbox/deposit-signature.js'
import { Sealer } from '../../src/crypto/index.js'
import { identityFromKey } from '../../src/identity/index.js'
import { createMessage, signMessage } from '../../src/moltspeak/index.js'
import { FIRST_CONTACT_RETENTION } from '../../src/services/mailbox/constants.js'
import type { MoltNode, MoltNodeOptions } from '../../src/index.js'

const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

async function startRelay (options: RelayNodeOptions = {}): Promise<RelayNode> {
  return startTestRelay(async () => net.dir(), relays, options)
}

const circuitOf = (node: MoltNode): string | undefined => node.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))

/** A raw mailbox channel from a node to the relay (a fresh connection per call) */
async function channelTo (node: MoltNode, relay: RelayNode): Promise<MailboxChannel> {
  const connection = await node.libp2p.dial(relay.getMultiaddrs()[0])
  const stream = await connection.newStream('/molt/mailbox/1.0.0')
  return new MailboxChannel(stream, node.libp2p.logger.forComponent('test'))
}

/** A signed deposit frame of `count` sealed queries from `sender` to `recipient` */
function depositFrame (sender: MoltNode, recipient: PeerId, count: number, tag: string): Record<string, unknown> {
  const key = (sender as any).identity.privateKey as Ed25519PrivateKey
  const identity = identityFromKey(key)
  const sealer = new Sealer(key.raw.subarray(0, 32), key.publicKey.raw)
  const items = Array.from({ length: count }, (_, i) => {
    const message = signMessage(createMessage({ op: 'query', p: { domain: 'test', tag, i }, from: { agent: tag, org: 'test', key: identity.moltKey }, to: { agent: 'r', org: 'test' }, exp: Date.now() + 3_600_000 }), identity.signingKey)
    const box = sealer.seal(Buffer.from(JSON.stringify(message)), { sender: key.publicKey.raw, recipient: recipient.publicKey!.raw, id: message.id })
    return { id: message.id, exp: message.exp!, box: Buffer.from(box).toString('base64') }
  })
  const from = sender.peerId.toString()
  const to = recipient.toString()
  return { t: 'deposit', from, to, items, sig: signDeposit(identity.signingKey, from, to, items) }
}

/** Deposit `count` boxes one frame each; the answers (stored or refused) in order */
async function depositEach (channel: MailboxChannel, sender: MoltNode, recipient: PeerId, count: number, tag: string): Promise<Array<Record<string, unknown> | { reason: string }>> {
  const answers = []
  for (let i = 0; i < count; i++) {
    answers.push(await channel.request(depositFrame(sender, recipient, 1, `${tag}${i}`)).catch((err: any) => ({ reason: err.reason as string })))
  }
  return answers
}

async function node (name: string, options: MoltNodeOptions = {}): Promise<MoltNode> {
  return net.node({ dataDir: await net.dir(), agent: { name }, ...options })
}

describe('relay mailbox against free identities', () => {
  it('two fresh keys cannot fill a recipient\'s mailbox so that a sender it already reads gets mailbox-full', async () => {
    const relay = await startRelay({ mailbox: { maxMessagesPerRecipient: 200 } })
    const bobDir = await net.dir()
    const bob = await net.node({ dataDir: bobDir, agent: { name: 'bob' }, relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(bob), 10_000, 'a reservation')
    const honest = await node('honest')
    // bob reads one box of honest's: honest is a known sender from now on
    const first = await channelTo(honest, relay)
    await first.request(depositFrame(honest, bob.peerId, 1, 'hello'))
    await eventually(async () => (await bob.inbox()).some(e => e.message.p.tag === 'hello'), 10_000, 'bob to fetch honest\'s box')
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'the box acknowledged')
    // a junk box bob fetches (and drops: it does not open) makes its depositor no contact of bob's
    const mallory = await node('mallory')
    const junk = depositFrame(mallory, bob.peerId, 1, 'junk')
    const items = junk.items as Array<{ id: string, exp: number, box: string }>
    items[0].box = Buffer.alloc(8, 7).toString('base64')
    junk.sig = signDeposit((mallory as any).identity.signingKey, junk.from as string, junk.to as string, items)
    await (await channelTo(mallory, relay)).request(junk)
    await eventually(() => relay.mailbox?.stats().messages === 0, 10_000, 'the junk box fetched and acknowledged')
    await bob.stop()

    // two fresh identities try to fill bob's 200-box mailbox (each alone may hold half of it)
    const answers = []
    for (const attacker of [mallory, await node('trudy')]) {
      const name = attacker === mallory ? 'mallory' : 'trudy'
      const channel = await channelTo(attacker, relay)
      answers.push(...await depositEach(channel, attacker, bob.peerId, 100, name))
      channel.close()
    }
    const stored = answers.filter(a => (a as any).t === 'stored')
    // first-contact senders together hold at most 10 % of the quota, and for at most a day
    expect(stored).toHaveLength(20)
    expect(stored.every(a => Number((a as any).expires) <= Date.now() + FIRST_CONTACT_RETENTION)).toBe(true)
    expect(new Set(answers.filter(a => (a as any).t !== 'stored').map(a => (a as any).reason))).toEqual(new Set(['first-contact-quota']))

    // the sender bob already reads still gets through
    const later = await depositEach(first, honest, bob.peerId, 50, 'later')
    expect(later.filter(a => (a as any).t === 'stored')).toHaveLength(50)
    expect(relay.mailbox?.stats().refused['mailbox-full'] ?? 0).toBe(0)
  }, 60_000)

  it('many keys on one source address hold no more of a mailbox than that address\'s share (source-quota)', async () => {
    // only the per-address share is under test here: first contacts may fill the whole mailbox
    const relay = await startRelay({ mailbox: { maxMessagesPerRecipient: 100, maxSenderShare: 0.5, maxSourceShare: 0.5, firstContactShare: 1 } })
    const bob = await node('bob')
    await (await channelTo(bob, relay)).request({ t: 'fetch' }) // registers bob
    const stored: number[] = []
    const reasons = new Set<string>()
    for (const name of ['k1', 'k2', 'k3']) {
      const key = await node(name)
      const channel = await channelTo(key, relay)
      const answers = await depositEach(channel, key, bob.peerId, 40, name)
      stored.push(answers.filter(a => (a as any).t === 'stored').length)
      for (const a of answers) if ((a as any).reason !== undefined) reasons.add((a as any).reason)
      channel.close()
    }
    // every key comes from 127.0.0.1: together they stop at half of bob's 100 boxes
    expect(stored).toEqual([40, 10, 0])
    expect([...reasons]).toEqual(['source-quota'])
  }, 60_000)

  it('refuses deposits for a PeerId that never registered (unknown-recipient); the sender keeps the message in its outbox', async () => {
    const relay = await startRelay()
    const alice = await node('alice')
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519') as Ed25519PrivateKey)
    const channel = await channelTo(alice, relay)
    await expect(channel.request(depositFrame(alice, nobody, 1, 'void')))
      .rejects.toMatchObject({ name: 'MailboxRefusedError', code: 'E_AGENT_NOT_FOUND', reason: 'unknown-recipient' })
    expect(relay.mailbox?.stats().messages).toBe(0)

    // through the SDK: the relay the recipient's circuit address names refuses, and the message waits in the outbox
    await alice.libp2p.peerStore.merge(nobody, { multiaddrs: [multiaddr(`${relayAddress(relay)}/p2p-circuit/p2p/${nobody.toString()}`)] })
    const result = await alice.send(nobody, { op: 'query', p: { domain: 'test' } })
    expect(result.status).toBe('queued')
    expect(result.refusals?.[0]).toMatchObject({ relay: relay.peerId.toString(), reason: 'unknown-recipient' })
    expect(alice.outbox().map(e => e.id)).toContain(result.id)

    // opening the mailbox protocol (a fetch) registers a peer: deposits for it are accepted from then on
    const carol = await node('carol')
    const own = await channelTo(carol, relay)
    await own.request({ t: 'fetch' })
    expect(await channel.request(depositFrame(alice, carol.peerId, 1, 'carol'))).toMatchObject({ t: 'stored', stored: 1 })
  }, 30_000)

  it('registration survives a relay restart', async () => {
    const relayDir = await net.dir()
    const relay = await startRelay({ dataDir: relayDir })
    const bob = await node('bob', { relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(bob), 10_000, 'a reservation')
    await eventually(() => (relay.mailbox?.stats().registrations ?? 0) >= 1, 5000, 'bob registered')
    await bob.stop()
    await relay.stop({ drainMs: 0 })

    const again = await startRelay({ dataDir: relayDir })
    expect(again.peerId.toString()).toBe(relay.peerId.toString())
    expect(again.mailbox?.stats().registrations).toBe(1)
    const alice = await node('alice')
    const channel = await channelTo(alice, again)
    expect(await channel.request(depositFrame(alice, bob.peerId, 1, 'kept'))).toMatchObject({ t: 'stored', stored: 1 })
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519') as Ed25519PrivateKey)
    await expect(channel.request(depositFrame(alice, nobody, 1, 'void'))).rejects.toMatchObject({ reason: 'unknown-recipient' })
  }, 30_000)

  it('the recipient purges one sender\'s boxes (node.mailbox.purge) and gets the others', async () => {
    const relay = await startRelay()
    const bobDir = await net.dir()
    const bob = await net.node({ dataDir: bobDir, agent: { name: 'bob' }, relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(bob), 10_000, 'a reservation')
    const bobId = bob.peerId
    await bob.stop()
    const mallory = await node('mallory')
    const alice = await node('alice')
    expect(await (await channelTo(mallory, relay)).request(depositFrame(mallory, bobId, 5, 'junk'))).toMatchObject({ stored: 5 })
    expect(await (await channelTo(alice, relay)).request(depositFrame(alice, bobId, 1, 'wanted'))).toMatchObject({ stored: 1 })

    // bob comes back without reserving (so nothing drains before the purge); the purge dials the relay
    const bob2 = await net.node({ dataDir: bobDir, agent: { name: 'bob' }, relays: [relayAddress(relay)], maxRelayReservations: 0 })
    expect(await bob2.mailbox.purge(mallory.peerId)).toEqual([{ relay: relay.peerId.toString(), deleted: 5 }])
    // the purge opened a mailbox session, so bob drains what is left: alice's box only
    await eventually(async () => (await bob2.inbox()).some(e => e.message.p.tag === 'wanted'), 10_000, 'alice\'s box')
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'the mailbox empty')
    expect((await bob2.inbox()).filter(e => e.message.p.tag === 'junk')).toHaveLength(0)
    expect(relay.mailbox?.stats().purged).toBe(5)
  }, 30_000)
})
