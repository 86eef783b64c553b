import { serviceCapabilities } from '@libp2p/interface'
import type { ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { rawPublicKeyToKeyObject } from '../../moltspeak/keys.js'
import { ConnectionLoad, MailboxSession, Watchers, type Answer } from './session.js'
import { EncodedFrame } from './frames.js'
import { MailboxRefusedError } from './errors.js'
import { verifyDeposit } from './deposit-signature.js'
import type { DepositItem, MailboxStats, MailboxStore } from './store.js'
import { ipKey } from '../../utils/ip-key.js'
import * as c from './constants.js'

export interface MailboxServerInit {
  store: MailboxStore
  /** @default '/molt/mailbox/1.0.0' */
  protocol?: string
  /** Refuse deposits (`shutting-down`) while this returns true */
  refusing?: () => boolean
}

export interface MailboxServerComponents {
  registrar: Registrar
  logger: ComponentLogger
}

/** The relay side of /molt/mailbox/1.0.0: accepts sealed deposits, serves each recipient its own boxes */
export interface MailboxServer extends Startable {
  readonly protocol: string
  stats(): MailboxStats & { watchers: number }
}

const ID_PATTERN = /^[\x21-\x7e]{1,128}$/
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/
/** Longest PeerId string parsed (an Ed25519 PeerId is 52 characters in base58btc, ~62 as a CID) */
const MAX_PEER_ID_LENGTH = 128
/** A box is opaque to the relay: only its shape is checked (a regex over every byte cost ~10 µs a box) */
const isBase64Shaped = (text: string): boolean => text.length > 0 && text.length % 4 === 0

class DefaultMailboxServer implements MailboxServer {
  readonly protocol: string
  private readonly log: Logger
  private readonly watchers = new Watchers()
  /** Request bytes in processing per connection id, shared by its mailbox streams */
  private readonly loads = new Map<string, ConnectionLoad>()
  private unsubscribe?: () => void
  private sweeper?: ReturnType<typeof setInterval>

  readonly [Symbol.toStringTag] = 'molt/mailbox-server'
  readonly [serviceCapabilities] = ['@molt/mailbox-server']

  constructor (private readonly components: MailboxServerComponents, private readonly init: MailboxServerInit) {
    this.log = components.logger.forComponent(c.LOG_COMPONENT)
    this.protocol = init.protocol ?? c.PROTOCOL
  }

  async start (): Promise<void> {
    this.unsubscribe = this.init.store.onDeposit((recipient) => {
      this.watchers.notify(recipient, this.init.store.pending(recipient))
    })
    await this.components.registrar.handle(this.protocol, (stream, connection) => { this.serve(stream, connection) }, {
      maxInboundStreams: c.MAX_INBOUND_STREAMS
    })
    this.sweeper = setInterval(() => {
      this.init.store.sweep().then(
        (n) => { if (n > 0) this.log('deleted %d expired boxes', n) },
        (err) => { this.log.error('sweeping expired boxes failed - %e', err) }
      )
    }, c.SWEEP_INTERVAL)
    this.sweeper.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.sweeper)
    this.unsubscribe?.()
    await this.components.registrar.unhandle(this.protocol)
    this.watchers.clear()
  }

  stats (): MailboxStats & { watchers: number } {
    return { ...this.init.store.stats(), watchers: this.watchers.size }
  }

  /** One inbound stream: a session reading its request frames, sharing its connection's load */
  private serve (stream: Stream, connection: Connection): void {
    let load = this.loads.get(connection.id)
    if (load === undefined) this.loads.set(connection.id, load = new ConnectionLoad())
    const source = ipKey(connection.remoteAddr)
    MailboxSession.open(stream, connection, {
      log: this.log,
      load,
      watchers: this.watchers,
      request: async (frame, watch) => this.request(frame, connection.remotePeer, source, watch)
    })
    const connectionLoad = load
    stream.addEventListener('close', () => {
      if (connectionLoad.streams.size === 0 && this.loads.get(connection.id) === connectionLoad) this.loads.delete(connection.id)
    })
  }

  /** One request frame → its answer frame (without rid), or a MailboxRefusedError */
  private async request (frame: Record<string, unknown>, peer: PeerId, source: string, watch: (pending: number) => number): Promise<Answer> {
    const rid = frame.rid
    const recipient = peer.toString()
    // a peer reading its own mailbox here is registered: deposits for it are accepted (protocols/mailbox.md "Registration")
    if (frame.t === 'fetch' || frame.t === 'watch' || frame.t === 'ack' || frame.t === 'purge') this.init.store.registry.register(recipient, source)
    switch (frame.t) {
      case 'deposit': {
        if (this.init.refusing?.() === true) throw new MailboxRefusedError('the relay is shutting down', 'E_RATE_LIMIT', 'shutting-down')
        const { to, items, sig } = checkDeposit(frame)
        if (frame.from !== peer.toString()) {
          throw new MailboxRefusedError('from is not the authenticated depositor', 'E_AUTH_FAILED', 'not-sender')
        }
        if (peer.publicKey == null || peer.type !== 'Ed25519' ||
            !verifyDeposit(rawPublicKeyToKeyObject(peer.publicKey.raw), sig, peer.toString(), to, items)) {
          throw new MailboxRefusedError('the deposit signature does not verify against the depositor key', 'E_SIGNATURE', 'bad-signature')
        }
        const result = await this.init.store.deposit(peer.toString(), to, items, { source })
        return { t: 'stored', rid, ...result }
      }
      case 'fetch': {
        const limit = Number.isSafeInteger(frame.limit) ? Math.min(Math.max(1, frame.limit as number), c.FETCH_LIMIT) : c.FETCH_LIMIT
        if (frame.after !== undefined && typeof frame.after !== 'string') throw malformed('after must be a key string')
        const { items, more } = await this.init.store.fetchEncoded(recipient, { after: frame.after as string | undefined, limit })
        // the page is written as stored (record.ts): rid was checked to be a positive integer (session.ts)
        return new EncodedFrame(`{"t":"items","rid":${rid as number},"items":${items},"more":${more}}`)
      }
      case 'ack': {
        if (!Array.isArray(frame.keys) || frame.keys.length > c.FETCH_LIMIT * 4 || !frame.keys.every(k => typeof k === 'string')) {
          throw malformed(`keys must be an array of at most ${c.FETCH_LIMIT * 4} key strings`)
        }
        // senders whose boxes the recipient opened and kept: it knows them from now on (protocols/mailbox.md "First contact")
        const delivered = frame.delivered ?? []
        if (!Array.isArray(delivered) || delivered.length > c.FETCH_LIMIT * 4 || !delivered.every(p => typeof p === 'string' && p.length <= MAX_PEER_ID_LENGTH)) {
          throw malformed(`delivered must be an array of at most ${c.FETCH_LIMIT * 4} PeerId strings`)
        }
        const deleted = await this.init.store.ack(recipient, frame.keys as string[], delivered as string[])
        return { t: 'acked', rid, deleted }
      }
      case 'watch':
        return { t: 'notify', rid, pending: watch(this.init.store.pending(recipient)) }
      case 'purge': {
        const sender = checkPeerId(frame.from, 'from must be the PeerId of the sender to purge')
        const deleted = await this.init.store.purge(recipient, sender)
        return { t: 'purged', rid, deleted }
      }
      default:
        throw malformed(`unknown request type ${JSON.stringify(frame.t)}`)
    }
  }
}

function malformed (message: string): MailboxRefusedError {
  return new MailboxRefusedError(message, 'E_SCHEMA', 'malformed')
}

function checkDeposit (frame: Record<string, unknown>): { to: string, items: DepositItem[], sig: string } {
  if (typeof frame.from !== 'string') throw malformed('from must be the depositor PeerId')
  const to = checkPeerId(frame.to, 'to must be an Ed25519 PeerId')
  if (typeof frame.sig !== 'string' || !BASE64_PATTERN.test(frame.sig)) throw malformed('sig must be base64')
  if (!Array.isArray(frame.items) || frame.items.length === 0 || frame.items.length > c.MAX_ITEMS_PER_DEPOSIT) {
    throw malformed(`items must hold 1 to ${c.MAX_ITEMS_PER_DEPOSIT} boxes`)
  }
  const items: DepositItem[] = []
  for (const item of frame.items as unknown[]) {
    const { id, exp, box } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw malformed('an item id must be 1-128 printable ASCII characters')
    if (!Number.isSafeInteger(exp)) throw malformed('an item exp must be an integer (ms)')
    if (typeof box !== 'string' || !isBase64Shaped(box)) throw malformed('an item box must be base64')
    items.push({ id, exp: exp as number, box })
  }
  return { to, items, sig: frame.sig }
}

/** An Ed25519 PeerId string, or a `malformed` refusal saying `why` */
function checkPeerId (value: unknown, why: string): string {
  // base58 decoding is quadratic: a 300,000-character `to` held the relay's event loop
  // for about a minute (test/fuzz/mailbox.test.ts). PeerId strings are ≤ 128 characters.
  if (typeof value !== 'string' || value.length > MAX_PEER_ID_LENGTH) throw malformed(why)
  let type: string
  try {
    type = peerIdFromString(value).type
  } catch {
    throw malformed(why)
  }
  if (type !== 'Ed25519') throw malformed(why)
  return value
}

export function mailboxServer (init: MailboxServerInit): (components: MailboxServerComponents) => MailboxServer {
  return (components) => new DefaultMailboxServer(components, init)
}
