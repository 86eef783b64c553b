import { serviceCapabilities } from '@libp2p/interface'
import type { Logger, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { Sealer, SealError } from '../../crypto/index.js'
import { parseMessage, verifyMessageSourceAsync, MoltSpeakError, type MoltMessage } from '../../moltspeak/index.js'
import { BoundedMap } from '../../utils/bounded-map.js'
import { MailboxChannel } from './channel.js'
import { encodeDepositRequest } from './frames.js'
import { signDeposit } from './deposit-signature.js'
import { MailboxClosedError, MailboxRefusedError } from './errors.js'
import type { DepositItem, StoredBox } from './store.js'
import * as c from './constants.js'
import { MAX_CLOCK_SKEW, REPLAY_WINDOW } from '../speak/constants.js'
import { MAX_MESSAGE_LIFETIME } from '../../moltspeak/constants.js'
import { EXT_NAMESPACE } from '../../delivery/constants.js'

/**
 * `ed25519:` and base64 of 64 bytes, the form of a signature (sign.ts), on a
 * `sig` parseMessage already matched to `ed25519:[A-Za-z0-9+/=]+`: 96
 * characters whose first `=` is the 95th. (A regex per box was 1.5 % of a drain.)
 */
function isSignatureForm (sig: string): boolean {
  return sig.length === 96 && sig.startsWith('ed25519:') && sig.indexOf('=') === 94 && sig.charCodeAt(95) === 0x3d
}

/** A message kept as proof for third parties (a signed delivery receipt): its signature is verified even from a mailbox */
function isProof (message: MoltMessage): boolean {
  const ext = message.ext?.[EXT_NAMESPACE]
  return typeof ext === 'object' && ext !== null && typeof (ext as Record<string, unknown>).receipt_for === 'string'
}

import type { MailboxClientInit, MailboxClientComponents, MailboxMessage, MailboxTarget, DepositReceipt, MailboxClient, PurgeResult } from './client-types.js'
export type { MailboxClientInit, MailboxClientComponents, MailboxMessage, MailboxTarget, DepositReceipt, MailboxClient, PurgeResult } from './client-types.js'

interface QueuedItem extends DepositItem {
  bytes: number
  resolve: (receipt: DepositReceipt) => void
  reject: (err: Error) => void
}

interface DepositQueue {
  target: MailboxTarget
  recipient: PeerId
  items: QueuedItem[]
  inFlight: number
}

/** A depositor as a box names it, parsed: its PeerId, raw Ed25519 key and the `from.key` form of it */
interface Depositor { peer: PeerId, raw: Uint8Array, key: string }

/** Deposit frames in flight per relay and recipient; more wait and are batched */
const MAX_DEPOSITS_IN_FLIGHT = 4

class DefaultMailboxClient implements MailboxClient {
  private readonly log: Logger
  private readonly protocol: string
  private readonly sealer: Sealer
  private readonly channels = new Map<string, Promise<MailboxChannel>>()
  private readonly queues = new Map<string, DepositQueue>()
  private readonly syncing = new Map<string, { again: boolean, done: Promise<number> }>()
  private readonly watching = new Set<string>()
  /** Depositor PeerIds by their string (see depositor()) */
  private readonly depositors = new BoundedMap<string, Depositor>(c.DEPOSITOR_CACHE_SIZE)
  private started = false
  private checkTimer?: ReturnType<typeof setInterval>

  readonly [Symbol.toStringTag] = 'molt/mailbox-client'
  readonly [serviceCapabilities] = ['@molt/mailbox-client']

  constructor (private readonly components: MailboxClientComponents, private readonly init: MailboxClientInit) {
    this.log = components.logger.forComponent(c.LOG_COMPONENT)
    this.protocol = init.protocol ?? c.PROTOCOL
    this.sealer = new Sealer(init.identity.privateKey.raw.subarray(0, 32), init.identity.privateKey.publicKey.raw)
  }

  async start (): Promise<void> {
    this.started = true
    this.components.events.addEventListener('connection:open', this.onConnection)
    // a relay this node no longer reserves on (it failed over) may still hold boxes for it
    this.checkTimer = setInterval(() => { this.checkAll() }, this.init.checkInterval ?? c.CHECK_INTERVAL)
    this.checkTimer.unref?.()
  }

  /** Drain the mailbox of every configured relay, dialling those not connected */
  private checkAll (): void {
    for (const { relay, address } of this.init.relays()) {
      if (this.watching.has(relay)) continue
      this.sync(peerIdFromString(relay), { addrs: [multiaddr(address)] }).catch((err: Error) => {
        this.log('mailbox check at %s failed - %s', relay, err.message)
      })
    }
  }

  watchConnectedRelays (): void {
    for (const { relay } of this.init.relays()) {
      if (this.components.connectionManager.getConnections(peerIdFromString(relay)).length > 0) this.watch(relay)
    }
  }

  async stop (): Promise<void> {
    this.started = false
    this.components.events.removeEventListener('connection:open', this.onConnection)
    clearInterval(this.checkTimer)
    for (const channel of this.channels.values()) channel.then(ch => { ch.close() }, () => {})
    this.channels.clear()
    this.watching.clear()
  }

  async deposit (target: MailboxTarget, recipient: PeerId, message: MoltMessage, options: { signal?: AbortSignal } = {}): Promise<DepositReceipt> {
    if (recipient.publicKey == null) throw new SealError('the recipient PeerId carries no public key to seal to')
    const plaintext = Buffer.from(JSON.stringify(message), 'utf8')
    const box = Buffer.from(this.sealer.seal(plaintext, {
      sender: this.init.identity.privateKey.publicKey.raw,
      recipient: recipient.publicKey.raw,
      id: message.id
    })).toString('base64')
    const exp = message.exp ?? Date.now() + c.RETENTION
    const key = `${target.peerId.toString()}/${recipient.toString()}`
    let queue = this.queues.get(key)
    if (queue === undefined) this.queues.set(key, queue = { target, recipient, items: [], inFlight: 0 })
    const receipt = new Promise<DepositReceipt>((resolve, reject) => {
      queue.items.push({ id: message.id, exp, box, bytes: box.length, resolve, reject })
    })
    if (queue.inFlight < MAX_DEPOSITS_IN_FLIGHT) queueMicrotask(() => { this.flush(key) })
    options.signal?.throwIfAborted()
    return receipt
  }

  async sync (relay: PeerId, options: { signal?: AbortSignal, addrs?: Multiaddr[] } = {}): Promise<number> {
    const key = relay.toString()
    const running = this.syncing.get(key)
    if (running !== undefined) {
      running.again = true
      return running.done
    }
    const state = { again: false, done: Promise.resolve(0) }
    state.done = (async () => {
      let total = 0
      try {
        do {
          state.again = false
          total += await this.drain(relay, options.signal, options.addrs)
        } while (state.again && this.started)
      } finally {
        this.syncing.delete(key)
      }
      return total
    })()
    this.syncing.set(key, state)
    return state.done
  }

  async purge (sender: PeerId | string, options: { signal?: AbortSignal } = {}): Promise<PurgeResult[]> {
    const from = sender.toString()
    return Promise.all(this.init.relays().map(async ({ relay, address }): Promise<PurgeResult> => {
      try {
        const channel = await this.channel({ peerId: peerIdFromString(relay), addrs: [multiaddr(address)] }, options.signal)
        const answer = await channel.request({ t: 'purge', from }, options.signal)
        return { relay, deleted: Number(answer.deleted) }
      } catch (err: any) {
        return { relay, error: err.message ?? String(err) }
      }
    }))
  }

  /**
   * Fetch pages in a pipeline: the next page is asked for (after the last key
   * of this one) while this one is opened and written to the inbox, and each
   * page's ack travels while the next one is processed. A page is acked only
   * after `deliver` resolved (the inbox write is durable), so a crash at any
   * point leaves every unacknowledged box at the relay.
   */
  private async drain (relay: PeerId, signal?: AbortSignal, addrs: Multiaddr[] = []): Promise<number> {
    const channel = await this.channel({ peerId: relay, addrs }, signal)
    const fetchPage = async (after?: string): Promise<{ items: StoredBox[], more: boolean }> => {
      const answer = await channel.request({ t: 'fetch', limit: c.FETCH_LIMIT, ...(after !== undefined ? { after } : {}) }, signal)
      return { items: Array.isArray(answer.items) ? answer.items as StoredBox[] : [], more: answer.more === true }
    }
    const acks: Array<Promise<unknown>> = []
    let delivered = 0
    let next: Promise<{ items: StoredBox[], more: boolean }> | undefined = fetchPage()
    try {
      while (next !== undefined) {
        const { items, more } = await next
        next = undefined
        if (items.length === 0) break
        const last = items[items.length - 1].key
        if (more && typeof last === 'string') {
          next = fetchPage(last)
          // awaited on the next turn; until then a failure must not count as unhandled
          next.catch(() => {})
        }
        const opened = items.map(item => this.open(item, relay.toString())).filter((message): message is MailboxMessage => message !== undefined)
        const verified = await this.verifyProofs(opened)
        if (verified.length > 0) await this.init.deliver(verified)
        // only now, with the messages in the inbox, may the relay forget them
        // the senders whose messages opened and verified become contacts at the relay (not first-contact senders)
        const senders = [...new Set(verified.map(m => m.peer.toString()))]
        const ack = channel.request({ t: 'ack', keys: items.map(item => item.key), delivered: senders }, signal)
        ack.catch(() => {})
        acks.push(ack)
        delivered += verified.length
      }
    } finally {
      // every ack sent is waited for (and its failure reported) before the drain counts as done
      await Promise.all(acks)
    }
    return delivered
  }

  /**
   * The seal already authenticates every opened message's sender (see open()),
   * so the inner Ed25519 signature is checked here only on messages a node
   * keeps as proof for third parties: signed receipts. They are rare; the rest
   * of a page pays no signature check (protocols/mailbox.md "What the
   * recipient checks").
   */
  private async verifyProofs (opened: MailboxMessage[]): Promise<MailboxMessage[]> {
    const checks = await Promise.all(opened.map(async (item) => {
      if (!isProof(item.message)) return true
      if (await verifyMessageSourceAsync(item.message, item.json)) return true
      const err = new MoltSpeakError('E_SIGNATURE', 'a receipt from a mailbox must carry a valid signature by its sender')
      this.log('refusing box %s from %p - %s', item.message.id, item.peer, err.message)
      this.init.onRejected?.(item.peer.toString(), err)
      return false
    }))
    return opened.filter((_, i) => checks[i])
  }

  /**
   * Open and check one box; a box that fails is reported and dropped (it can
   * never become valid). Opening proves the sender: the box's key is the
   * static X25519 agreement of the depositor's and this node's identity keys
   * and its tag covers both public keys and the id, so only the depositor (or
   * this node) can have sealed these bytes. The inner `from.key` must name the
   * same key, and the message must carry a well-formed signature (kept for
   * third parties, who check it themselves); its Ed25519 verification is not
   * repeated here (see verifyProofs).
   */
  private open (item: StoredBox, relay: string): MailboxMessage | undefined {
    try {
      // a hostile relay's huge `from` would hold the event loop (base58 decoding is quadratic)
      if (typeof item.from !== 'string' || item.from.length > 128) throw new SealError('the depositor is not a PeerId')
      const { peer: sender, raw: senderRaw, key: senderKey } = this.depositor(item.from)
      if (typeof item.box !== 'string' || typeof item.id !== 'string') throw new SealError('the box or its id is missing')
      const plaintext = this.sealer.open(Buffer.from(item.box, 'base64'), {
        sender: senderRaw,
        recipient: this.init.identity.privateKey.publicKey.raw,
        id: item.id
      })
      const json = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('utf8')
      const message = parseMessage(json)
      if (message.id !== item.id) throw new MoltSpeakError('E_AUTH_FAILED', 'the sealed message id differs from the deposit id')
      if (message.from.key !== senderKey) {
        throw new MoltSpeakError('E_AUTH_FAILED', 'the message\'s from.key is not the key that sealed it (the depositor)', { field: 'from.key' })
      }
      if (typeof message.sig !== 'string' || !isSignatureForm(message.sig)) {
        throw new MoltSpeakError('E_SIGNATURE', 'a mailbox message must be signed by its depositor (sig with from.key)', { field: 'sig' })
      }
      // parseMessage already scanned the text of this signed message as speak does (no repeated key, every
      // number exact: one text, one content for every parser); a second scan cost a tenth of a drain
      this.checkTimes(message, Date.now())
      return { message, json, peer: sender, relay }
    } catch (err: any) {
      this.log('refusing box %s from %s at relay %s - %s', item.id, item.from, relay, err.message)
      this.init.onRejected?.(item.from, err)
      return undefined
    }
  }

  /**
   * The PeerId of a depositor string, parsed once: a drain holds a few senders'
   * boxes by the thousand, and a fresh PeerId per box (base58 decoding, then
   * encoding again wherever it is printed) was a fifth of the recipient's CPU
   */
  private depositor (from: string): Depositor {
    let depositor = this.depositors.get(from)
    if (depositor === undefined) {
      const peer = peerIdFromString(from)
      if (peer.publicKey == null || peer.type !== 'Ed25519') throw new SealError('the depositor is not an Ed25519 peer')
      depositor = { peer, raw: peer.publicKey.raw, key: 'ed25519:' + Buffer.from(peer.publicKey.raw).toString('base64') }
      this.depositors.set(from, depositor)
    }
    return depositor
  }

  /**
   * The time checks speak applies (services/speak/inbound.ts): a box can be
   * served again by a relay long after it was sealed, so a message without
   * `exp` is taken only within the replay window of its `ts`, never from the
   * future, and never beyond its own `exp`.
   *
   * @throws {MoltSpeakError} E_TIMEOUT or E_INVALID_PARAM naming the field
   */
  private checkTimes (message: MoltMessage, now: number): void {
    const window = this.init.replayWindow ?? REPLAY_WINDOW
    const skew = this.init.maxClockSkew ?? MAX_CLOCK_SKEW
    if (message.exp != null && message.exp < now) throw new MoltSpeakError('E_TIMEOUT', `message expired at ${new Date(message.exp).toISOString()}`, { field: 'exp' })
    if (message.ts > now + skew) throw new MoltSpeakError('E_INVALID_PARAM', `ts is more than ${skew} ms in the future`, { field: 'ts' })
    if (message.exp == null && message.ts < now - window) throw new MoltSpeakError('E_INVALID_PARAM', `ts is older than the ${window} ms replay window and there is no exp`, { field: 'ts' })
    if (message.exp != null && message.exp - message.ts > MAX_MESSAGE_LIFETIME) throw new MoltSpeakError('E_INVALID_PARAM', `exp is more than ${MAX_MESSAGE_LIFETIME / 86_400_000} days after ts`, { field: 'exp' })
  }

  private flush (key: string): void {
    const queue = this.queues.get(key)
    if (queue === undefined || queue.items.length === 0 || queue.inFlight >= MAX_DEPOSITS_IN_FLIGHT) return
    let bytes = 0
    let count = 0
    while (count < queue.items.length && count < c.MAX_ITEMS_PER_DEPOSIT && (count === 0 || bytes + queue.items[count].bytes <= c.MAX_DEPOSIT_BYTES)) {
      bytes += queue.items[count].bytes
      count++
    }
    const batch = queue.items.splice(0, count)
    queue.inFlight++
    this.send(queue, batch).finally(() => {
      queue.inFlight--
      if (queue.items.length > 0) this.flush(key)
      else if (queue.inFlight === 0) this.queues.delete(key)
    }).catch(() => {})
  }

  private async send (queue: DepositQueue, batch: QueuedItem[]): Promise<void> {
    const from = this.init.identity.peerId.toString()
    const to = queue.recipient.toString()
    const items = batch.map(({ id, exp, box }) => ({ id, exp, box }))
    try {
      const channel = await this.channel(queue.target)
      // the boxes are this node's own base64 (deposit()): the frame is written without escaping them
      const answer = await channel.request(encodeDepositRequest(from, to, items, signDeposit(this.init.identity.signingKey, from, to, items)))
      const receipt = { relay: queue.target.peerId.toString(), expires: Number(answer.expires) }
      for (const item of batch) item.resolve(receipt)
    } catch (err: any) {
      for (const item of batch) item.reject(err)
    }
  }

  /** The open channel to a relay, or a new one (dialling it if needed) */
  private async channel (target: MailboxTarget, signal?: AbortSignal): Promise<MailboxChannel> {
    const key = target.peerId.toString()
    const existing = this.channels.get(key)
    if (existing !== undefined) {
      const channel = await existing.catch(() => undefined)
      if (channel?.isOpen === true) return channel
      if (this.channels.get(key) === existing) this.channels.delete(key)
    }
    const opening = (async () => {
      const open = this.components.connectionManager.getConnections(target.peerId).find(conn => conn.status === 'open' && conn.limits == null)
      const connection = open ?? await this.components.connectionManager.openConnection(target.addrs.length > 0 ? target.addrs : target.peerId, { signal })
      const stream = await connection.newStream(this.protocol, { signal })
      const channel = new MailboxChannel(stream, this.log)
      channel.onNotify = (pending) => {
        if (pending > 0) this.sync(target.peerId).catch(err => { this.log('mailbox sync with %s failed - %e', key, err) })
      }
      channel.onClose = () => {
        if (this.channels.get(key) === opening) this.channels.delete(key)
        if (this.watching.delete(key) && this.started) {
          // the relay went away or the stream idled out: watch again if still connected
          setTimeout(() => {
            if (this.started && this.components.connectionManager.getConnections(target.peerId).length > 0) this.watch(key)
          }, 1000).unref()
        }
      }
      return channel
    })()
    this.channels.set(key, opening)
    opening.catch(() => { if (this.channels.get(key) === opening) this.channels.delete(key) })
    return opening
  }

  private readonly onConnection = (evt: CustomEvent<{ remotePeer: PeerId, limits?: unknown }>): void => {
    const relay = evt.detail.remotePeer.toString()
    if (evt.detail.limits != null || !this.init.relays().some(r => r.relay === relay)) return
    this.watch(relay)
  }

  /** Ask `relay` to tell us about deposits while connected, and drain what already waits */
  private watch (relay: string): void {
    if (this.watching.has(relay) || !this.started) return
    this.watching.add(relay)
    const peerId = peerIdFromString(relay)
    this.channel({ peerId, addrs: [] })
      .then(async channel => channel.request({ t: 'watch' }))
      .then(async (answer) => {
        if (Number(answer.pending) > 0) await this.sync(peerId)
      })
      .catch((err: Error) => {
        this.watching.delete(relay)
        // a relay without the mailbox protocol is fine: it just relays
        if (!(err instanceof MailboxClosedError) && !(err instanceof MailboxRefusedError)) this.log('cannot watch the mailbox at %s - %s', relay, err.message)
      })
  }
}

export function mailboxClient (init: MailboxClientInit): (components: MailboxClientComponents) => MailboxClient {
  return (components) => new DefaultMailboxClient(components, init)
}
