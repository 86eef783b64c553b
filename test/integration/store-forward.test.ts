import { describe, it, expect, afterAll } from 'vitest'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { RelayNode, RelayNodeOptions } from '../../src/relay/index.js'
import { startTestRelay, relayAddress } from '../support/relays.js'
import { createRelayMetrics } from '../../src/metrics/index.js'
import { MailboxChannel } from '../../src/services/mailbox/channel.js'
import { signDeposit } from '../../src/services/mailbox/deposit-signature.js'
import { Sealer } from '../../src/crypto/index.js'
import { identityFromKey } from '../../src/identity/index.js'
import { createMessage, signMessage } from '../../src/moltspeak/index.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { MoltNode, MoltNodeOptions } from '../../src/index.js'
import type { Ed25519PrivateKey } from '@libp2p/interface'

const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

async function startRelay (options: RelayNodeOptions = {}): Promise<RelayNode> {
  return startTestRelay(async () => net.dir(), relays, options)
}


/** A node whose key and data dir survive a restart */
async function agent (name: string, options: MoltNodeOptions = {}): Promise<{ node: MoltNode, restart: (more?: MoltNodeOptions) => Promise<MoltNode> }> {
  const dataDir = options.dataDir ?? await net.dir()
  const base = { ...options, dataDir, agent: { name } }
  const handle = {
    node: await net.node(base),
    async restart (more: MoltNodeOptions = {}): Promise<MoltNode> {
      await handle.node.stop()
      handle.node = await net.node({ ...base, ...more })
      return handle.node
    }
  }
  return handle
}

const circuitOf = (node: MoltNode): string | undefined => node.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))

async function inboxIds (node: MoltNode, from: MoltNode): Promise<string[]> {
  const ids: string[] = []
  let after = 0
  for (;;) {
    const page = await node.inbox({ after, limit: 1000 })
    if (page.length === 0) return ids
    for (const entry of page) if (entry.peer === from.peerId.toString() && entry.message.op === 'query') ids.push(entry.message.id)
    after = page[page.length - 1].cursor
  }
}

describe('store-and-forward through a relay mailbox', () => {
  it('1,000 exactly-once messages to an offline agent are stored, then delivered once each after sender and recipient restarts', async () => {
    const relay = await startRelay()
    const b = await agent('bob', { relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(b.node), 10_000, 'a reservation')
    const a = await agent('alice')
    // alice learns bob's addresses (circuit one included) from identify
    await a.node.ping(addressOf(b.node))
    await eventually(async () => (await a.node.libp2p.peerStore.get(b.node.peerId)).addresses.some(x => x.multiaddr.toString().includes('p2p-circuit')), 5000, 'the circuit address in the peer store')
    const bob = b.node.peerId.toString()
    await b.node.stop()

    const results = await Promise.all(Array.from({ length: 1000 }, async (_, i) =>
      a.node.send(bob, { op: 'query', p: { domain: 'test', seq: i, marker: 'PLAINTEXT-MARKER-7f3a' } }, { delivery: 'exactly-once' })))
    const statuses = new Set(results.map(r => r.status))
    expect([...statuses]).toEqual(['stored'])
    expect(results[0].mailboxes?.[0].relay).toBe(relay.peerId.toString())
    expect(results[0].route).toBe('mailbox')
    expect(results[0].expires).toBeGreaterThan(Date.now())
    expect(relay.mailbox?.stats().messages).toBe(1000)
    const exposition = await createRelayMetrics(relay, { processMetrics: false }).metrics()
    expect(exposition).toMatch(/^molt_mailbox_messages 1000$/m)
    expect(exposition).toMatch(/^molt_mailbox_recipients 1$/m)
    expect(a.node.outbox()).toHaveLength(0)
    await a.node.stop()

    // the relay holds sealed boxes only: its LevelDB files never contain the payload
    const dbDir = join(relay.dataDir, 'db')
    for (const file of await readdir(dbDir)) {
      const bytes = await readFile(join(dbDir, file))
      expect(bytes.includes(Buffer.from('PLAINTEXT-MARKER-7f3a')), file).toBe(false)
    }

    const bob2 = await b.restart()
    const ids = await eventually(async () => {
      const got = await inboxIds(bob2, a.node)
      return got.length >= 1000 ? got : undefined
    }, 20_000, '1,000 messages from the mailbox')
    expect(new Set(ids).size).toBe(1000)
    expect(ids).toHaveLength(1000)
    const entries = (await bob2.inbox({ limit: 2000 })).filter(e => e.message.op === 'query')
    expect(entries.every(e => e.route === 'mailbox')).toBe(true)
    // per-sender order is kept
    expect(entries.map(e => e.message.p.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'the relay to delete acknowledged boxes')

    // a re-delivery after another restart changes nothing (exactly-once ids are persisted)
    const bob3 = await b.restart()
    expect(await inboxIds(bob3, a.node)).toHaveLength(1000)
  }, 60_000)

  it('boxes left at a relay the recipient no longer reserves on are still fetched', async () => {
    const [r1, r2] = [await startRelay(), await startRelay()]
    const b = await agent('bob', { relays: [relayAddress(r1)] })
    await eventually(() => circuitOf(b.node), 10_000, 'a reservation on r1')
    const a = await agent('alice')
    await a.node.ping(addressOf(b.node))
    await eventually(async () => (await a.node.libp2p.peerStore.get(b.node.peerId)).addresses.some(x => x.multiaddr.toString().includes('p2p-circuit')), 5000, 'the circuit address')
    await b.node.stop()
    const sent = await a.node.send(b.node.peerId, { op: 'query', p: { domain: 'test', left: 'at r1' } })
    expect(sent.mailboxes?.map(m => m.relay)).toEqual([r1.peerId.toString()])
    // bob comes back reserving on r2 only; r1 is still in his config, so he checks it
    const bob2 = await b.restart({ relays: [relayAddress(r2), relayAddress(r1)], maxRelayReservations: 1, mailboxCheckInterval: 300 })
    const got = await eventually(async () => (await bob2.inbox()).find(e => e.message.id === sent.id), 10_000, 'the box left at r1')
    expect(got.route).toBe('mailbox')
    expect(bob2.relays().filter(r => r.reserved).map(r => r.relay)).toEqual([r2.peerId.toString()])
  }, 30_000)

  it('a queued message waits in the outbox across a sender restart and is delivered when the recipient connects', async () => {
    const b = await agent('bob')
    const a = await agent('alice')
    await a.node.ping(addressOf(b.node))
    const bobAddr = addressOf(b.node)
    await b.node.stop()
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) =>
      a.node.send(b.node.peerId, { op: 'query', p: { domain: 'test', seq: i } })))
    expect(new Set(results.map(r => r.status))).toEqual(new Set(['queued']))
    expect(results[0].lastError).toBeTypeOf('string')
    expect(a.node.outbox()).toHaveLength(50)
    expect(a.node.outbox().map(e => e.id)).toEqual(results.map(r => r.id))

    const alice2 = await a.restart()
    expect(alice2.outbox()).toHaveLength(50)
    const bob2 = await b.restart()
    // bob comes back (on a new port) and dials alice: the connection triggers the retry
    await bob2.ping(addressOf(alice2))
    const ids = await eventually(async () => {
      const got = await inboxIds(bob2, alice2)
      return got.length >= 50 ? got : undefined
    }, 15_000, 'the outbox to drain')
    expect(ids).toEqual(results.map(r => r.id))
    await eventually(() => alice2.outbox().length === 0, 5000, 'an empty outbox')
    expect(bobAddr).not.toBe(addressOf(bob2))
  }, 40_000)

  it('an expired outbox message is reported as a dead letter, not dropped silently', async () => {
    const b = await agent('bob')
    const a = await agent('alice')
    await a.node.ping(addressOf(b.node))
    await b.node.stop()
    const dead = new Promise<any>(resolve => { a.node.addEventListener('dead-letter', (evt) => { resolve(evt.detail) }) })
    const result = await a.node.send(b.node.peerId, { op: 'query', p: { domain: 'test' }, exp: Date.now() + 1500 })
    expect(result.status).toBe('queued')
    const letter = await dead
    expect(letter).toMatchObject({ id: result.id, reason: 'expired' })
    expect(a.node.deadLetters().map(l => l.id)).toContain(result.id)
    expect(a.node.outbox()).toHaveLength(0)
  }, 20_000)

  it('best-effort sends to an unreachable peer fail and store nothing', async () => {
    const b = await agent('bob')
    const a = await agent('alice')
    await a.node.ping(addressOf(b.node))
    await b.node.stop()
    await expect(a.node.send(b.node.peerId, { op: 'query', p: { domain: 'test' } }, { delivery: 'best-effort' })).rejects.toThrow()
    expect(a.node.outbox()).toHaveLength(0)
  })

  it('a receipt signed by the recipient proves delivery', async () => {
    const a = await agent('alice')
    const b = await agent('bob')
    const result = await a.node.send(addressOf(b.node), { op: 'query', p: { domain: 'test' } }, { receipt: true })
    expect(result.status).toBe('delivered')
    const receipt = await a.node.receipt(result.id, { timeout: 5000 })
    expect(receipt.peer).toBe(b.node.peerId.toString())
    expect(receipt.message.sig).toMatch(/^ed25519:/)
    expect(receipt.message.from.key).toBe(b.node.moltKey)
    const { createHash } = await import('node:crypto')
    const { signingBytes } = await import('../../src/moltspeak/index.js')
    expect(receipt.digest).toBe(createHash('sha256').update(signingBytes(result.message)).digest('hex'))
    // a malformed message is refused before it is queued, with the MoltSpeak code
    await expect(a.node.send(b.node.peerId, { op: 'task', p: {} })).rejects.toMatchObject({ name: 'MoltSpeakError', code: 'E_MISSING_FIELD' })
  })
})

describe('the relay mailbox refuses what it must', () => {
  /** A raw mailbox channel from a node to the relay */
  async function channelTo (node: MoltNode, relay: RelayNode): Promise<MailboxChannel> {
    const connection = await node.libp2p.dial(relay.getMultiaddrs()[0])
    const stream = await connection.newStream('/molt/mailbox/1.0.0')
    return new MailboxChannel(stream, node.libp2p.logger.forComponent('test'))
  }

  /** A relay, bob reserved on it, alice, and a sealer of any text from alice to bob (boxes a real client would not make) */
  async function sealingSetup (): Promise<{ relay: RelayNode, a: Awaited<ReturnType<typeof agent>>, b: Awaited<ReturnType<typeof agent>>, aKey: Ed25519PrivateKey, alice: ReturnType<typeof identityFromKey>, sealText: (id: string, text: string) => { id: string, exp: number, box: string } }> {
    const relay = await startRelay()
    const b = await agent('bob', { relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(b.node), 10_000, 'a reservation')
    const a = await agent('alice')
    const aKey = (a.node as any).identity.privateKey as Ed25519PrivateKey
    const sealText = (id: string, text: string): { id: string, exp: number, box: string } => {
      const box = new Sealer(aKey.raw.subarray(0, 32), aKey.publicKey.raw).seal(Buffer.from(text), {
        sender: aKey.publicKey.raw, recipient: b.node.peerId.publicKey!.raw, id
      })
      return { id, exp: Date.now() + 60_000, box: Buffer.from(box).toString('base64') }
    }
    return { relay, a, b, aKey, alice: identityFromKey(aKey), sealText }
  }

  async function sealedItem (senderKey: Ed25519PrivateKey, recipient: MoltNode, p: Record<string, unknown> = {}): Promise<{ id: string, exp: number, box: string }> {
    const sender = identityFromKey(senderKey)
    const message = signMessage(createMessage({ op: 'query', p: { domain: 'test', ...p }, from: { agent: 'x', org: 'y', key: sender.moltKey }, to: { agent: 'b', org: 'peer' }, exp: Date.now() + 60_000 }), sender.signingKey)
    const box = new Sealer(senderKey.raw.subarray(0, 32), senderKey.publicKey.raw).seal(Buffer.from(JSON.stringify(message)), {
      sender: senderKey.publicKey.raw, recipient: recipient.peerId.publicKey!.raw, id: message.id
    })
    return { id: message.id, exp: message.exp!, box: Buffer.from(box).toString('base64') }
  }

  it('refuses a deposit signed by another key (E_SIGNATURE) or claiming another sender (E_AUTH_FAILED)', async () => {
    const relay = await startRelay()
    const a = await agent('alice')
    const b = await agent('bob')
    const mallory = identityFromKey(await generateKeyPair('Ed25519') as Ed25519PrivateKey)
    const channel = await channelTo(a.node, relay)
    const item = await sealedItem((a.node as any).identity.privateKey as Ed25519PrivateKey, b.node)
    const from = a.node.peerId.toString()
    const to = b.node.peerId.toString()
    await expect(channel.request({ t: 'deposit', from, to, items: [item], sig: signDeposit(mallory.signingKey, from, to, [item]) }))
      .rejects.toMatchObject({ name: 'MailboxRefusedError', code: 'E_SIGNATURE', reason: 'bad-signature' })
    await expect(channel.request({ t: 'deposit', from: mallory.peerId.toString(), to, items: [item], sig: signDeposit(mallory.signingKey, mallory.peerId.toString(), to, [item]) }))
      .rejects.toMatchObject({ code: 'E_AUTH_FAILED', reason: 'not-sender' })
    // malformed requests get a clear refusal and the stream keeps working
    await expect(channel.request({ t: 'deposit', from, to: 'not-a-peer', items: [item], sig: 'AA==' })).rejects.toMatchObject({ code: 'E_SCHEMA', reason: 'malformed' })
    await expect(channel.request({ t: 'nope' })).rejects.toMatchObject({ code: 'E_SCHEMA' })
    expect(await channel.request({ t: 'fetch' })).toMatchObject({ t: 'items', items: [] })
    expect(relay.mailbox?.stats().messages).toBe(0)
  })

  it('a tampered box is rejected by the recipient and never reaches its inbox', async () => {
    const relay = await startRelay()
    const b = await agent('bob', { relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(b.node), 10_000, 'a reservation')
    const a = await agent('alice')
    const aKey = (a.node as any).identity.privateKey as Ed25519PrivateKey
    const channel = await channelTo(a.node, relay)
    const good = await sealedItem(aKey, b.node, { n: 'good' })
    const bad = await sealedItem(aKey, b.node, { n: 'bad' })
    const bytes = Buffer.from(bad.box, 'base64')
    bytes[bytes.length - 20] ^= 0x01
    bad.box = bytes.toString('base64')
    const from = a.node.peerId.toString()
    const to = b.node.peerId.toString()
    await channel.request({ t: 'deposit', from, to, items: [bad, good], sig: signDeposit((a.node as any).identity.signingKey, from, to, [bad, good]) })
    const got = await eventually(async () => {
      const entries = await b.node.inbox()
      return entries.length > 0 ? entries : undefined
    }, 10_000, 'the good message')
    expect(got.map(e => e.message.p.n)).toEqual(['good'])
    await eventually(() => relay.mailbox?.stats().messages === 0, 5000, 'both boxes deleted')
    expect(await b.node.metrics.mailboxRejected.get()).toMatchObject({ values: [{ value: 1 }] })
  })

  it('refuses a box whose inner from.key is not the key that sealed it, an unsigned box, a malformed signature, and a receipt whose signature does not verify', async () => {
    // the recipient no longer verifies the inner signature of ordinary mailbox messages (the seal authenticates
    // the depositor): what stands in its place is that from.key names the sealing key (protocols/mailbox.md)
    const { relay, a, b, aKey, alice, sealText } = await sealingSetup()
    const mallory = identityFromKey(await generateKeyPair('Ed25519') as Ed25519PrivateKey)
    const seal = (message: Record<string, any>): { id: string, exp: number, box: string } => sealText(message.id, JSON.stringify(message))
    const init = (n: string, key: string, ext?: Record<string, unknown>): any => createMessage({
      op: 'query', p: { domain: 'test', n }, from: { agent: 'x', org: 'y', key }, to: { agent: 'b', org: 'peer' }, exp: Date.now() + 60_000, ...(ext !== undefined ? { ext } : {})
    })
    // signed (validly) by mallory, naming mallory, but sealed by alice: the seal's sender and the inner sender disagree
    const otherSender = seal(signMessage(init('other-sender', mallory.moltKey), mallory.signingKey))
    const unsigned = seal(init('unsigned', alice.moltKey))
    // a sig of the loose `ed25519:` + base64 form parseMessage takes, but not of 64 bytes
    const shortSig = seal({ ...signMessage(init('short-sig', alice.moltKey), alice.signingKey), sig: 'ed25519:AAAA' })
    // a receipt is kept as proof for third parties: its signature is verified even from a mailbox
    const receipt = signMessage(init('forged-receipt', alice.moltKey, { molt: { receipt_for: 'x' } }), alice.signingKey)
    const forgedReceipt = seal({ ...receipt, sig: signMessage(receipt, mallory.signingKey).sig })
    const good = await sealedItem(aKey, b.node, { n: 'good' })
    const items = [otherSender, unsigned, shortSig, forgedReceipt, good]
    const from = a.node.peerId.toString()
    const to = b.node.peerId.toString()
    const channel = await channelTo(a.node, relay)
    expect(await channel.request({ t: 'deposit', from, to, items, sig: signDeposit(alice.signingKey, from, to, items) })).toMatchObject({ t: 'stored', stored: 5 })
    await eventually(() => relay.mailbox?.stats().messages === 0, 10_000, 'all five boxes fetched and acknowledged')
    expect((await b.node.inbox()).map(e => e.message.p.n)).toEqual(['good'])
    expect(await b.node.metrics.mailboxRejected.get()).toMatchObject({ values: [{ value: 4 }] })
  })

  it('refuses a box whose signed text has a repeated key or an integer JavaScript cannot hold exactly (scanned once, by parseMessage)', async () => {
    // the drain no longer scans the text a second time after parseMessage (the second scan was a tenth of its CPU):
    // these boxes open and name the sealing key, so only that one scan stands between them and the inbox
    const { relay, a, b, aKey, alice, sealText } = await sealingSetup()
    const signed = (n: string): any => signMessage(createMessage({
      op: 'query', p: { domain: 'test', n }, from: { agent: 'x', org: 'y', key: alice.moltKey }, to: { agent: 'b', org: 'peer' }, exp: Date.now() + 60_000
    }), alice.signingKey)
    const repeated = signed('repeated')
    const inexact = signed('inexact')
    const items = [
      // JSON.parse keeps the last "n": the application would see another value than other parsers
      sealText(repeated.id, JSON.stringify(repeated).replace('"n":"repeated"', '"n":"repeated","n":"other"')),
      // 2^53 + 1 has no double: the application would see 2^53
      sealText(inexact.id, JSON.stringify(inexact).replace('"n":"inexact"', '"n":9007199254740993')),
      await sealedItem(aKey, b.node, { n: 'good' })
    ]
    const from = a.node.peerId.toString()
    const to = b.node.peerId.toString()
    const channel = await channelTo(a.node, relay)
    expect(await channel.request({ t: 'deposit', from, to, items, sig: signDeposit(alice.signingKey, from, to, items) })).toMatchObject({ t: 'stored', stored: 3 })
    await eventually(() => relay.mailbox?.stats().messages === 0, 10_000, 'all three boxes fetched and acknowledged')
    expect((await b.node.inbox()).map(e => e.message.p.n)).toEqual(['good'])
    expect(await b.node.metrics.mailboxRejected.get()).toMatchObject({ values: [{ value: 2 }] })
  })

  it('cuts a flooding sender off at its quota while another sender still gets through', async () => {
    // every sender here is a first contact from 127.0.0.1: only the per-identity share is under test (the others: mailbox-quota.test.ts)
    const relay = await startRelay({ mailbox: { maxMessagesPerRecipient: 100, maxSenderShare: 0.5, maxSourceShare: 1, firstContactShare: 1 } })
    const b = await agent('bob', { relays: [relayAddress(relay)] })
    await eventually(() => circuitOf(b.node), 10_000, 'a reservation')
    const flooder = await agent('flooder')
    const honest = await agent('honest')
    for (const sender of [flooder.node, honest.node]) await sender.ping(addressOf(b.node))
    await eventually(async () => (await flooder.node.libp2p.peerStore.get(b.node.peerId)).addresses.some(x => x.multiaddr.toString().includes('p2p-circuit')), 5000, 'circuit address')
    await eventually(async () => (await honest.node.libp2p.peerStore.get(b.node.peerId)).addresses.some(x => x.multiaddr.toString().includes('p2p-circuit')), 5000, 'circuit address')
    await b.node.stop()
    const flood = []
    for (let i = 0; i < 80; i++) flood.push(await flooder.node.send(b.node.peerId, { op: 'query', p: { domain: 'test', i } }))
    const stored = flood.filter(r => r.status === 'stored').length
    expect(stored).toBe(50)
    const cut = flood.find(r => r.status === 'queued')
    expect(cut?.refusals?.[0]).toMatchObject({ relay: relay.peerId.toString(), code: 'E_RATE_LIMIT', reason: 'sender-quota' })
    // nothing was lost: what the relay refused waits in the flooder's own outbox
    expect(flooder.node.outbox()).toHaveLength(30)
    const other = await honest.node.send(b.node.peerId, { op: 'query', p: { domain: 'test', hello: true } })
    expect(other.status).toBe('stored')
    expect(relay.mailbox?.stats().refused['sender-quota']).toBeGreaterThan(0)
    expect(await createRelayMetrics(relay, { processMetrics: false }).metrics()).toMatch(/^molt_mailbox_deposits_refused_total\{reason="sender-quota"\} [1-9]/m)
  }, 30_000)
})
