import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TypedEventEmitter, type Connection, type Libp2pEvents, type PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { Outbox, type DeadLetter, type OutboxEntry } from '../../src/delivery/outbox.js'
import { Delivery, type DeliveryComponents, type DeliveryRoutes } from '../../src/delivery/delivery.js'
import { MailboxRefusedError, type MailboxTarget } from '../../src/services/mailbox/index.js'
import { createMessage, MoltSpeakError, signMessage, verifyMessage, type MoltMessage } from '../../src/moltspeak/index.js'
import { identityFromKey, type Identity } from '../../src/identity/index.js'

/**
 * Delivery with stubbed components (speak, mailbox client, resolution) over a
 * real outbox in a temp LevelDB: which path a message takes, what is kept,
 * retried, deposited or given up on. Milliseconds, no network.
 */
let dir: string
let db: Database
let outbox: Outbox
let identity: Identity
let peer: PeerId
let relay: PeerId
let events: TypedEventEmitter<Libp2pEvents>
const started: Delivery[] = []

/** A speak stub: each send is answered by the next scripted outcome (an error to throw, or undefined for an ack) */
class SpeakStub {
  readonly sent: MoltMessage[] = []
  outcomes: Array<Error | undefined> = []
  fallback: Error | undefined = undefined
  async send (_peer: PeerId, body: Uint8Array): Promise<void> {
    this.sent.push(JSON.parse(new TextDecoder().decode(body)))
    const outcome = this.outcomes.length > 0 ? this.outcomes.shift() : this.fallback
    if (outcome != null) throw outcome
  }
}

class MailboxStub {
  readonly deposits: Array<{ relay: string, message: MoltMessage }> = []
  refuse?: Error
  async deposit (target: MailboxTarget, _recipient: PeerId, message: MoltMessage): Promise<{ relay: string, expires: number }> {
    if (this.refuse != null) throw this.refuse
    this.deposits.push({ relay: target.peerId.toString(), message })
    return { relay: target.peerId.toString(), expires: 1234 }
  }
}

function routes (targets: MailboxTarget[] = []): DeliveryRoutes {
  return {
    connect: async () => {},
    // "connected": no dial timer on the direct attempt
    connections: (p?: PeerId) => [{ status: 'open', remotePeer: p ?? relay } as unknown as Connection],
    isConnected: () => true,
    routeTo: () => ({ route: 'direct' }),
    mailboxTargets: async () => targets,
    reachesVia: () => false
  }
}

function delivery (speak: SpeakStub, mailbox: MailboxStub, peers: DeliveryRoutes): Delivery {
  const components: DeliveryComponents = {
    events,
    logger: defaultLogger(),
    speak,
    mailbox,
    moltStore: { outbox },
    moltPeers: peers,
    moltMessages: { sign: (message) => signMessage(message, identity.signingKey) }
  }
  const service = new Delivery(components)
  service.start()
  started.push(service)
  return service
}

function message (init: Partial<MoltMessage> = {}): MoltMessage {
  return createMessage({ op: 'query', p: { domain: 'test', intent: 'unit' }, from: { agent: 'alice', org: 'test', key: identity.moltKey }, to: { agent: 'bob', org: 'test' }, exp: Date.now() + 60_000, ...init })
}

async function next<T> (target: EventTarget, type: string): Promise<T> {
  return new Promise(resolve => { target.addEventListener(type, (evt) => { resolve((evt as CustomEvent<T>).detail) }, { once: true }) })
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molt-delivery-'))
  db = await openDatabase(join(dir, 'db'))
  outbox = new Outbox(db, { maxMessages: 100, maxDeadLetters: 100 })
  await outbox.open()
  identity = identityFromKey(await generateKeyPair('Ed25519'))
  peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  events = new TypedEventEmitter<Libp2pEvents>()
})

afterEach(async () => {
  vi.useRealTimers()
  for (const service of started.splice(0)) service.beforeStop()
  await outbox.close()
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

describe('Delivery', () => {
  it('best-effort: one attempt; an acknowledged message is delivered and nothing is kept', async () => {
    const speak = new SpeakStub()
    const service = delivery(speak, new MailboxStub(), routes())
    const outcome = await service.send(peer, message(), 'best-effort')
    expect(outcome).toEqual({ status: 'delivered', route: 'direct' })
    expect(speak.sent).toHaveLength(1)
    expect(outbox.size).toBe(0)
  })

  it('best-effort: a failed attempt throws and keeps nothing', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('connection refused')
    const err = await delivery(speak, new MailboxStub(), routes()).send(peer, message(), 'best-effort').catch(e => e)
    expect(err.message).toBe('connection refused')
    expect(outbox.size).toBe(0)
  })

  it('at-least-once to an unreachable peer with a mailbox relay: signed, deposited, reported stored, not left in the outbox', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const mailbox = new MailboxStub()
    const outcome = await delivery(speak, mailbox, routes([{ peerId: relay, addrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] }])).send(peer, message(), 'at-least-once')
    expect(outcome.status).toBe('stored')
    expect(outcome.route).toBe('mailbox')
    expect(outcome.relay).toBe(relay.toString())
    expect(outcome.mailboxes).toEqual([{ relay: relay.toString(), expires: 1234 }])
    expect(outcome.lastError).toBe('no route')
    // a message that outlives its stream is signed by the sender
    expect(mailbox.deposits).toHaveLength(1)
    expect(verifyMessage(mailbox.deposits[0].message)).toBe(true)
    expect(outbox.size).toBe(0)
  })

  it('at-least-once with no mailbox: queued in the outbox, then delivered in order when the peer connects', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const mailbox = new MailboxStub()
    const service = delivery(speak, mailbox, routes())
    const first = message()
    const second = message()
    const outcomes = [await service.send(peer, first, 'at-least-once'), await service.send(peer, second, 'at-least-once')]
    expect(outcomes.map(o => o.status)).toEqual(['queued', 'queued'])
    // the second was not even tried directly: the peer was just found unreachable
    expect(speak.sent).toHaveLength(1)
    expect(outbox.pending(peer.toString())).toHaveLength(2)

    speak.fallback = undefined
    const delivered = next<{ entries: OutboxEntry[], route: string }>(service, 'outbox:delivered')
    events.safeDispatchEvent('peer:connect', { detail: peer })
    const { entries, route } = await delivered
    expect(entries.map(e => e.id)).toEqual([first.id, second.id])
    expect(speak.sent.slice(1).map(m => m.id)).toEqual([first.id, second.id])
    expect(route).toBe('direct')
    expect(outbox.size).toBe(0)
  })

  it('the first connection after none retries every waiting recipient at once; a connection beside others retries only that peer', async () => {
    // only timers are faked: a retry at its backoff (≥ 0.8 s) never fires here, one scheduled at once
    // fires when the clock moves 0 ms
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    // the node's open connections, as the connection manager would list them
    let open: PeerId[] = []
    const service = delivery(speak, new MailboxStub(), { ...routes(), connections: (p?: PeerId) => open.filter(o => p == null || o.equals(p)).map(remotePeer => ({ status: 'open', remotePeer }) as unknown as Connection) })
    const toPeer = message()
    const toOther = message()
    expect((await service.send(peer, toPeer, 'at-least-once')).status).toBe('queued')
    expect((await service.send(other, toOther, 'at-least-once')).status).toBe('queued')
    expect(speak.sent).toHaveLength(2)
    speak.fallback = undefined

    // `peer` connects while the relay's connection is open: only `peer` is retried (a retry of `other`,
    // scheduled first, would run first)
    open = [relay, peer]
    const first = next<{ entries: OutboxEntry[] }>(service, 'outbox:delivered')
    events.safeDispatchEvent('peer:connect', { detail: peer })
    vi.advanceTimersByTime(0)
    expect((await first).entries.map(e => e.id)).toEqual([toPeer.id])
    expect(speak.sent.map(m => m.id)).toEqual([toPeer.id, toOther.id, toPeer.id])
    expect(outbox.pending(other.toString())).toHaveLength(1)

    // every connection lost, then the relay is back (it neither is nor carries `other`): `other` is retried now
    open = [relay]
    const second = next<{ entries: OutboxEntry[] }>(service, 'outbox:delivered')
    events.safeDispatchEvent('peer:connect', { detail: relay })
    vi.advanceTimersByTime(0)
    expect((await second).entries.map(e => e.id)).toEqual([toOther.id])
    expect(outbox.size).toBe(0)
    vi.useRealTimers()
  })

  it('a recipient that refuses (an error reply) is final: thrown at once, never queued', async () => {
    const speak = new SpeakStub()
    speak.fallback = new MoltSpeakError('E_INVALID_PARAM', 'no thanks')
    const err = await delivery(speak, new MailboxStub(), routes()).send(peer, message(), 'at-least-once').catch(e => e)
    expect(err).toBeInstanceOf(MoltSpeakError)
    expect(outbox.size).toBe(0)
  })

  it('E_INTERNAL (the recipient could not store it) is not final: the message is kept for a retry', async () => {
    const speak = new SpeakStub()
    speak.fallback = new MoltSpeakError('E_INTERNAL', 'disk full')
    const outcome = await delivery(speak, new MailboxStub(), routes()).send(peer, message(), 'at-least-once')
    expect(outcome.status).toBe('queued')
    expect(outcome.lastError).toBe('disk full')
    expect(outbox.size).toBe(1)
  })

  it('a retry the recipient refuses becomes a dead letter (refused), reported by event', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const service = delivery(speak, new MailboxStub(), routes())
    const queued = message()
    await service.send(peer, queued, 'at-least-once')
    speak.fallback = new MoltSpeakError('E_INVALID_PARAM', 'refused on retry')
    const dead = next<DeadLetter[]>(service, 'outbox:dead')
    events.safeDispatchEvent('peer:connect', { detail: peer })
    const letters = await dead
    expect(letters.map(l => [l.id, l.reason])).toEqual([[queued.id, 'refused']])
    expect(outbox.deadLetters().map(l => l.id)).toEqual([queued.id])
    expect(outbox.size).toBe(0)
  })

  it('an entry past its exp is reported expired on the next round, not sent', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const service = delivery(speak, new MailboxStub(), routes())
    // queued with an exp already behind (a message that waited too long)
    const queued = message({ exp: Date.now() + 5 })
    expect((await service.send(peer, queued, 'at-least-once')).status).toBe('queued')
    const attempts = speak.sent.length
    await new Promise(resolve => setTimeout(resolve, 10))
    const dead = next<DeadLetter[]>(service, 'outbox:dead')
    service.retryNow(peer.toString())
    const letters = await dead
    expect(letters.map(l => [l.id, l.reason])).toEqual([[queued.id, 'expired']])
    expect(speak.sent).toHaveLength(attempts)
  })

  it('a mailbox refusal is reported with its code and reason, and the message is queued', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const mailbox = new MailboxStub()
    mailbox.refuse = new MailboxRefusedError('mailbox full for this sender', 'E_RATE_LIMITED', 'sender-quota')
    const outcome = await delivery(speak, mailbox, routes([{ peerId: relay, addrs: [] }])).send(peer, message(), 'exactly-once')
    expect(outcome.status).toBe('queued')
    expect(outcome.refusals).toEqual([expect.objectContaining({ relay: relay.toString(), code: 'E_RATE_LIMITED', reason: 'sender-quota' })])
    expect(outbox.pending()[0].mode).toBe('exactly-once')
  })

  it('after beforeStop no retry runs', async () => {
    const speak = new SpeakStub()
    speak.fallback = new Error('no route')
    const service = delivery(speak, new MailboxStub(), routes())
    await service.send(peer, message(), 'at-least-once')
    service.beforeStop()
    const attempts = speak.sent.length
    events.safeDispatchEvent('peer:connect', { detail: peer })
    service.retryNow(peer.toString())
    await new Promise(resolve => setImmediate(resolve))
    expect(speak.sent).toHaveLength(attempts)
    expect(outbox.size).toBe(1)
  })
})
