import { join } from 'node:path'
import { loadavg, cpus } from 'node:os'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { baseLibp2pOptions } from './base-libp2p.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, isMultiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Ed25519PrivateKey, Logger, PeerId } from '@libp2p/interface'
import { identityFromKey, loadOrCreateKey, type Identity } from './identity/index.js'
import { resolveDataDir, loadConfig, saveConfig, parseConfig, acquireLock, type AgentProfile, type MoltConfig, type NodeLock } from './config/index.js'
import { openDatabase, type Database } from './storage/index.js'
import { Inbox, type InboxEntry } from './inbox/index.js'
import { speak, type Speak, type SpeakInit, type InboundMessage } from './services/speak/index.js'
import { peerIdOf, routeOver, type Route } from './routing/route.js'
import {
  createMessage, signMessage, MoltSpeakError, errorPayload, pong, ping as pingPayload, hello as helloPayload, replyClassification,
  helloSpeaksMolt, schemaErrorPayload, CLASSIFICATIONS, MOLT_EXTENSION, type ErrorPayload
} from './moltspeak/index.js'
import type { AgentRef, MoltMessage, Op, Classification } from './moltspeak/index.js'
import { NotStartedError, RequestTimeoutError } from './errors.js'
import { ADDRESS_DIAL_TIMEOUT, CONFIG_FILE, DB_DIR, DEFAULT_INBOX_MAX_MESSAGES, DEFAULT_REQUEST_TIMEOUT, IDENTITY_FILE, READER_GRACE } from './constants.js'
import { existsSync } from 'node:fs'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { InvalidParametersError } from '@libp2p/interface'
import { dcutr } from '@libp2p/dcutr'
import { relayClient, type RelayClient, type RelayStatus } from './services/relay-client/index.js'
import { cards, type CardService, type AgentCard } from './services/card/index.js'
import { loadInstalledCertificate, loadRevocations } from './identity/org/index.js'
import { AgentMetrics } from './metrics/index.js'
import { createHash } from 'node:crypto'
import { ReplayWindow } from './delivery/replay-window.js'
import { Outbox, type OutboxEntry, type DeadLetter } from './delivery/outbox.js'
import { Delivery, type DeliveryStatus, type MailboxRefusal } from './delivery/delivery.js'
import { DEFAULT_DELIVERY, DEFAULT_MESSAGE_TTL, DELIVERY_MODES, EXT_NAMESPACE, MAX_DEAD_LETTERS, MAX_OUTBOX_MESSAGES, type DeliveryMode } from './delivery/constants.js'
import { mailboxClient, type MailboxClient, type MailboxMessage, type MailboxTarget } from './services/mailbox/index.js'
import { REPLAY_CACHE_SIZE, REPLAY_WINDOW } from './services/speak/constants.js'
import { isRelayedAddress } from './routing/route.js'
import { Resolver } from './routing/resolver.js'
import { routingRecord, type RoutingRecordService } from './services/routing-record/index.js'
import { signingBytes } from './moltspeak/index.js'
import { Discovery, type DiscoveredAgent, type DiscoverOptions, type DhtOptions, type KnownPeer } from './discovery/index.js'
import { trust, trustPubsub, type TrustService, type TrustInit } from './services/trust/index.js'
import { createTaskService, type TaskService, type TaskServiceInit } from './services/tasks/index.js'

export interface MoltNodeOptions {
  /** Where the key, config and LevelDB live. @default $MOLT_HOME or ~/.molt */
  dataDir?: string
  /** Use this key instead of the data dir's key file */
  privateKey?: Ed25519PrivateKey
  /** Overrides of the config file's agent profile */
  agent?: Partial<AgentProfile>
  /** Multiaddrs to listen on. @default config `listen` */
  listen?: string[]
  /** Refuse unsigned inbound messages. @default config `speak.requireSignatures` */
  requireSignatures?: boolean
  /** Sign every outgoing message (costs ~45 µs each). @default false */
  signMessages?: boolean
  /** @default 100000 */
  inboxMaxMessages?: number
  /** Tuning of the speak protocol (ack timeout, in-flight window, replay window, …) */
  speak?: Partial<Omit<SpeakInit, 'localAgent' | 'receive'>>
  /** Extra libp2p options, merged over molt's (e.g. connectionManager limits) */
  libp2p?: Partial<Libp2pOptions>
  /** Take the data dir lock so no second process runs this key. @default true */
  lock?: boolean
  /**
   * Find LAN peers by mDNS (`_molt._udp.local`). It multicasts on every
   * interface: turn it on only on networks you own. @default false (`molt agent` turns it on)
   */
  mdns?: boolean | { interval?: number }
  /** DHT bootstrap multiaddrs. @default config `discovery.bootstrap` */
  bootstrap?: string[]
  /** The private DHT (`/molt/kad/1.0.0`). @default server mode, 48 h provider records */
  dht?: DhtOptions
  /** ms between presence pings of connected agents; 0 = off. @default 60000 */
  heartbeatInterval?: number
  /** ms after which an agent not seen is reported `stale`. @default 300000 */
  staleAfter?: number
  /**
   * Circuit relays to stay reachable through (multiaddrs ending in /p2p/<id>);
   * reservations are kept on up to `maxRelayReservations` of them, re-made after
   * a relay restarts and moved to another when one dies. @default config `relays`
   */
  relays?: string[]
  /** @default 2 */
  maxRelayReservations?: number
  /**
   * Publish this agent's signed routing record in the DHT (protocols/routing.md).
   * A short-lived process sending on behalf of an agent (a one-off `molt send`)
   * turns it off, so it does not replace the agent's record with its own
   * passing addresses. @default true
   */
  publishRoute?: boolean
  /** Also reserve on relays met on the network (LAN, DHT), after the configured ones. @default config `discovery.discoverRelays` (false) */
  discoverRelays?: boolean
  /** Collect prom-client's default process metrics in `node.metrics` too. @default true */
  processMetrics?: boolean
  /** Messages the outbox holds before at-least-once sends to unreachable peers are refused. @default 100000 */
  outboxMaxMessages?: number
  /** ms between checks of the mailboxes of configured relays this node is not connected to. @default 600000 */
  mailboxCheckInterval?: number
  /**
   * Also export libp2p's own metrics (`libp2p_*`: connections, streams per
   * protocol, dials, DHT) in `node.metrics`. One such node per process (the
   * exporter shares its metrics module-wide). @default false (`molt agent`: true)
   */
  libp2pMetrics?: boolean
  /** Attestations, scores and the inbox policy (protocols/trust.md). @default config `trust` */
  trust?: Partial<Omit<TrustInit, 'identity' | 'db'>>
  /**
   * A request (hello, verify, query, task, tool or consent without `re`) that
   * nothing here answers — no handler for its op, no `message` listener but
   * passive ones, no `messages()` reader (the local API's /v1/stream clients)
   * now or in the last READER_GRACE ms — is stored in the inbox either way.
   * `keep`: no reply (the requester times out). `refuse`: also answered at once
   * with an `error` E_CAPABILITY_UNKNOWN naming the op. @default 'keep' (`molt agent`: 'refuse')
   */
  unhandledRequests?: 'keep' | 'refuse'
  /** The task lifecycle and claims (protocols/tasks.md) */
  tasks?: TaskServiceInit
}

/** What a message may say when handed to send(): everything else is filled in */
export interface MessageInit {
  op: Op
  p?: Record<string, unknown>
  to?: AgentRef
  cls?: Classification
  re?: string
  exp?: number
  cap?: string[]
  ext?: Record<string, Record<string, unknown>>
  pii_meta?: MoltMessage['pii_meta']
  /** Set to re-send a message under its original id (receivers de-duplicate by id) */
  id?: string
  /** @default Date.now() */
  ts?: number
}

export interface SendOptions {
  signal?: AbortSignal
  /** Sign this message. @default the node's signMessages (messages that go to a mailbox are always signed) */
  sign?: boolean
  /**
   * `best-effort`: one attempt, throws if not acknowledged. `at-least-once`:
   * if the peer cannot be reached now, the message is kept (relay mailboxes,
   * else the outbox) and retried. `exactly-once`: the same, and the receiver
   * remembers the id across restarts. @default 'at-least-once'
   */
  delivery?: DeliveryMode
  /** Ask the recipient for a signed delivery receipt (see `receipt()`) */
  receipt?: boolean
}

export interface RequestOptions extends SendOptions {
  /** ms to wait for the reply. @default 30000 */
  timeout?: number
}

/** Where a peer may be given: its PeerId, its PeerId string, or a multiaddr ending in /p2p/<id> */
export type PeerInput = PeerId | Multiaddr | string

export interface SendResult {
  id: string
  peer: string
  /**
   * `delivered`: the peer acknowledged receipt. `stored`: relay mailboxes
   * hold it (sealed) until the peer fetches it. `queued`: it waits in this
   * node's outbox, retried until delivered or expired.
   */
  status: DeliveryStatus
  /** status === 'delivered' */
  delivered: boolean
  /** `direct`, `relayed` through `relay`, or `mailbox` when stored; absent when queued */
  route?: Route
  /** The circuit relay that carried it (relayed), or the first mailbox holding it (stored) */
  relay?: string
  /** Mailbox relays holding it, each until its expiry (stored) */
  mailboxes?: Array<{ relay: string, expires: number }>
  /** Mailbox relays that refused it, with why (quota, rate, size) */
  refusals?: MailboxRefusal[]
  /** When an undelivered message stops being retried and is reported expired */
  expires?: number
  /** Why the direct attempt failed, when not delivered */
  lastError?: string
  delivery: DeliveryMode
  message: MoltMessage
}

/** A signed proof from the recipient that a message reached its inbox */
export interface DeliveryReceipt {
  /** The message the receipt is for */
  id: string
  /** The recipient that signed it */
  peer: string
  /** SHA-256 (hex) of the message's canonical signing form, as the recipient received it */
  digest: string
  receivedAt: number
  /** The receipt message itself, signed by the recipient */
  message: MoltMessage
}

export interface ReceivedMessage extends InboxEntry {}

export interface HandlerContext {
  peer: PeerId
  route: Route
  entry: ReceivedMessage
}

/** A handler's return value becomes the reply: a payload (sent as `respond`) or a full init */
export type HandlerResult = void | undefined | Record<string, unknown> | { reply: Omit<MessageInit, 're' | 'to'> }
export type MessageHandler = (message: MoltMessage, context: HandlerContext) => HandlerResult | Promise<HandlerResult>

export interface MoltNode {
  readonly peerId: PeerId
  readonly did: string
  /** `ed25519:<base64>`, this node's MoltSpeak `from.key` */
  readonly moltKey: string
  readonly agent: AgentRef
  readonly profile: AgentProfile
  /**
   * Change the agent profile at runtime: the card is re-signed, new
   * capabilities are advertised and dropped ones withdrawn from the DHT
   * (in memory; `molt init` edits the config file).
   */
  updateProfile(patch: Partial<AgentProfile>): Promise<void>
  readonly dataDir: string
  readonly config: MoltConfig
  readonly libp2p: Libp2p<MoltServices>
  getMultiaddrs(): Multiaddr[]
  /** Send one message; resolves when the peer acknowledged receipt */
  send(peer: PeerInput, message: MessageInit, options?: SendOptions): Promise<SendResult>
  /** Send and wait for the `respond`/`error` whose `re` is this message's id */
  request(peer: PeerInput, message: MessageInit, options?: RequestOptions): Promise<MoltMessage>
  /** Answer messages of one op; the return value is sent back as the reply */
  handle(op: Op, handler: MessageHandler): void
  unhandle(op: Op): void
  /** Everything received, in order, from the inbox (nothing is lost to a slow reader) */
  messages(options?: { after?: number, signal?: AbortSignal }): AsyncGenerator<ReceivedMessage>
  inbox(options?: { after?: number, limit?: number }): Promise<ReceivedMessage[]>
  /** Cursor of the newest inbox entry (0 when empty) */
  inboxCursor(): number
  /** MoltSpeak ping → pong round trip in ms */
  ping(peer: PeerInput, options?: { signal?: AbortSignal, timeout?: number }): Promise<{ rtt: number, pong: MoltMessage }>
  /** Resolve a PeerInput, dialling a multiaddr if needed */
  resolvePeer(peer: PeerInput, options?: { signal?: AbortSignal }): Promise<PeerId>
  /** Agents offering a capability, from local knowledge (LAN, connections) and the DHT, each with its verified card */
  discover(capability: string, options?: DiscoverOptions): Promise<DiscoveredAgent[]>
  /** Every agent this node knows, with status (connected / seen / stale) and last-seen time */
  peers(): KnownPeer[]
  /** A peer's verified agent card (cached, or fetched over /molt/card/1.0.0) */
  card(peer: PeerInput, options?: { signal?: AbortSignal, force?: boolean }): Promise<AgentCard>
  /** This node's own signed card */
  ownCard(): AgentCard
  /** The configured relays and whether this node holds a reservation on each */
  relays(): RelayStatus[]
  /** Messages waiting in the outbox (undeliverable so far), in send order */
  outbox(options?: { peer?: string }): OutboxEntry[]
  /** Messages the outbox gave up on: expired before delivery, or refused by the recipient */
  deadLetters(): DeadLetter[]
  /** Retry a peer's outbox now instead of at its next backoff */
  retryOutbox(peer: PeerInput): Promise<void>
  /**
   * The signed delivery receipt of a message sent with `receipt: true`:
   * stored ones at once, otherwise waits for it (up to `timeout`, default 30 s)
   */
  receipt(id: string, options?: { signal?: AbortSignal, timeout?: number }): Promise<DeliveryReceipt>
  /** This node's Prometheus metrics (its own registry), served as GET /metrics by the local API */
  readonly metrics: AgentMetrics
  /** Signed attestations (gossip, sync) and this node's trust scores: `node.trust.score(peer, { domain })` */
  readonly trust: TrustService
  /** Tasks offered, claimed, run and finished over MoltSpeak, with "first agent wins" claims (protocols/tasks.md) */
  readonly tasks: TaskService
  /** This node's relay mailboxes: `node.mailbox.purge(sender)` deletes what a sender left there (protocols/mailbox.md "Purge") */
  readonly mailbox: Pick<MailboxClient, 'purge'>
  /** Every inbox entry as it arrives. `passive: true`: a listener that only watches (logs) and never answers requests (see `unhandledRequests`) */
  addEventListener(type: 'message', listener: (evt: CustomEvent<ReceivedMessage>) => void, options?: { passive?: boolean }): void
  /** Protocol housekeeping not kept in the inbox: ping/pong (cursor 0); see protocols/speak.md */
  addEventListener(type: 'housekeeping', listener: (evt: CustomEvent<ReceivedMessage>) => void): void
  /** An outbox message was given up on (expired or refused): the application is told, nothing is dropped silently */
  addEventListener(type: 'dead-letter', listener: (evt: CustomEvent<DeadLetter>) => void): void
  /** A queued message was delivered or handed to relay mailboxes later */
  addEventListener(type: 'outbox', listener: (evt: CustomEvent<{ id: string, peer: string, status: 'delivered' | 'stored' }>) => void): void
  addEventListener(type: 'receipt', listener: (evt: CustomEvent<DeliveryReceipt>) => void): void
  removeEventListener(type: string, listener: (evt: any) => void): void
  stop(): Promise<void>
}

export interface MoltServices extends Record<string, unknown> {
  speak: Speak
  cards: CardService
  relayClient: RelayClient
  mailbox: MailboxClient
  trust: TrustService
  routes: RoutingRecordService
  pubsub: unknown
  dht?: unknown
}

interface PendingRequest {
  peer: string
  resolve: (reply: MoltMessage) => void
  reject: (err: Error) => void
}

class DefaultMoltNode extends EventTarget implements MoltNode {
  libp2p!: Libp2p<MoltServices>
  discovery!: Discovery
  metrics!: AgentMetrics
  get trust (): TrustService { return this.libp2p.services.trust }
  get mailbox (): Pick<MailboxClient, 'purge'> { return this.libp2p.services.mailbox }
  delivery!: Delivery
  tasks!: TaskService & { start: () => void }
  resolver!: Resolver
  private get log (): Logger { return this.libp2p.logger.forComponent('molt:node') }
  readonly peerId: PeerId
  readonly did: string
  readonly moltKey: string
  agent: AgentRef
  private readonly handlers = new Map<Op, MessageHandler>()
  private readonly requests = new Map<string, PendingRequest>()
  private readonly textEncoder = new TextEncoder()
  private stopped = false
  /** Building an event per message is not free: skip it when nobody listens */
  private messageListeners = 0
  /** Peers whose `hello` listed extensions without molt's: they get schema-only messages (protocols/speak.md, Conformance) */
  private readonly plainPeers = new Set<string>()
  /** 'message' listeners added with `{ passive: true }`: they watch (the CLI's message lines) and never answer */
  private readonly passiveListeners = new Set<unknown>()
  /** messages() iterators running now: the local API's stream clients, SDK readers */
  private readers = 0
  /** When the last reader stopped (performance.now()): a stream client reconnecting within READER_GRACE still counts */
  private readerLeftAt = -Infinity
  /** See MoltNodeOptions.unhandledRequests */
  unhandledRequests: 'keep' | 'refuse' = 'keep'
  /** addEventListener's wrappers (see guarded()): listener → type → wrapper */
  private readonly guards = new WeakMap<object, Map<string, (evt: Event) => void>>()
  /**
   * `peer/id` of messages dispatched whose inbox write then failed (disk full):
   * when the sender retries them they are stored, not dispatched again.
   * Oldest forgotten beyond MAX_UNSTORED (such a retry is then dispatched again).
   */
  private readonly unstored = new Set<string>()

  constructor (
    private readonly identity: Identity,
    public profile: AgentProfile,
    readonly config: MoltConfig,
    readonly dataDir: string,
    private readonly db: Database,
    private readonly inboxStore: Inbox,
    private readonly lock: NodeLock | undefined,
    private readonly signByDefault: boolean,
    private readonly outboxStore: Outbox,
    readonly replay: ReplayWindow
  ) {
    super()
    this.peerId = identity.peerId
    this.did = identity.did
    this.moltKey = identity.moltKey
    this.agent = { agent: profile.name, org: profile.org, key: identity.moltKey }
    this.handlers.set('ping', (message) => ({
      reply: {
        op: 'pong',
        p: pong({
          nonce: String(message.p.nonce ?? ''),
          load: Math.min(1, loadavg()[0] / cpus().length),
          queue_depth: this.libp2p.services.speak.stats().inFlight
        }) as Record<string, unknown>
      }
    }))
    // answer a `hello` with ours, listing the molt extensions (a hello that answers one gets no answer: no loop)
    this.handlers.set('hello', (message) => message.re != null
      ? undefined
      : {
          reply: {
            op: 'hello',
            p: helloPayload({
              capabilities: this.ownCard().capabilities.map(c => c.name),
              extensions: [MOLT_EXTENSION],
              supported_cls: [...CLASSIFICATIONS]
            }) as Record<string, unknown>
          }
        })
    // answer `discover` from what this node knows (itself included); no DHT walk on a peer's behalf
    this.handlers.set('discover', (message) => {
      const capability = typeof message.p.capability === 'string' ? message.p.capability : undefined
      if (capability == null) throw new MoltSpeakError('E_MISSING_FIELD', 'discover needs p.capability', { field: 'p.capability' })
      const limit = Number.isInteger(message.p.limit) ? Math.min(Number(message.p.limit), 100) : 10
      const own = this.ownCard()
      const cardsFound = [
        ...(own.capabilities.some(c => c.name === capability) ? [own] : []),
        ...this.discovery.localMatches(capability).map(a => a.card)
      ].slice(0, limit)
      return {
        status: 'success',
        total: cardsFound.length,
        agents: cardsFound.map(card => ({
          agent_id: card.name, org: card.org, name: card.name, public_key: card.key, peer_id: card.peer_id,
          capabilities: card.capabilities.map(c => c.name), endpoint: { addresses: card.addresses }, card
        }))
      }
    })
  }

  getMultiaddrs (): Multiaddr[] {
    return this.libp2p.getMultiaddrs()
  }

  override addEventListener (type: string, listener: any, options?: boolean | { once?: boolean, signal?: AbortSignal, passive?: boolean }): void {
    if (type === 'message') {
      this.messageListeners++
      if (typeof options === 'object' && options.passive === true) this.passiveListeners.add(listener)
    }
    super.addEventListener(type, listener == null ? listener : this.guarded(type, listener), options)
  }

  override removeEventListener (type: string, listener: any, options?: boolean | EventListenerOptions): void {
    if (type === 'message') {
      this.messageListeners = Math.max(0, this.messageListeners - 1)
      this.passiveListeners.delete(listener)
    }
    super.removeEventListener(type, listener == null ? listener : this.guards.get(listener)?.get(type) ?? listener, options)
  }

  /**
   * The listener wrapped so that a throw (or a rejected promise) is logged,
   * never fatal: Node's EventTarget rethrows a listener's error as an uncaught
   * exception, so one bad message would take the process down. One wrapper per
   * listener and type, so removal and de-duplication still work.
   */
  private guarded (type: string, listener: ((evt: Event) => unknown) | { handleEvent(evt: Event): unknown }): (evt: Event) => void {
    let byType = this.guards.get(listener)
    if (byType == null) this.guards.set(listener, byType = new Map())
    let guard = byType.get(type)
    if (guard == null) {
      const report = (err: unknown): void => { this.listenerFailed(type, err) }
      guard = (evt: Event): void => {
        try {
          const result: unknown = typeof listener === 'function' ? listener.call(this, evt) : listener.handleEvent(evt)
          if (result instanceof Promise) result.catch(report)
        } catch (err) {
          report(err)
        }
      }
      byType.set(type, guard)
    }
    return guard
  }

  private listenerFailed (type: string, err: unknown): void {
    try {
      this.log.error('a %s event listener threw - %e', type, err)
    } catch {}
  }

  /** Whether anything may answer requests without a handler: a non-passive listener or a messages() reader (now or just gone) */
  private hasReader (): boolean {
    return this.messageListeners > this.passiveListeners.size || this.readers > 0 || performance.now() - this.readerLeftAt < READER_GRACE
  }

  async resolvePeer (peer: PeerInput, options: { signal?: AbortSignal } = {}): Promise<PeerId> {
    if (typeof peer === 'string') {
      if (!peer.startsWith('/')) return peerIdFromString(peer)
      peer = multiaddr(peer)
    }
    if (isMultiaddr(peer)) {
      const id = peerIdOf(peer)
      if (id == null) {
        const connection = await this.libp2p.dial(peer, options)
        return connection.remotePeer
      }
      const peerId = peerIdFromString(id)
      // an explicit circuit address also names the relay as a mailbox of the peer
      if (isRelayedAddress(peer)) this.resolver.hint(peer)
      if (this.libp2p.getConnections(peerId).length === 0) await this.libp2p.dial(peer, options)
      return peerId
    }
    return peer
  }

  async send (peer: PeerInput, init: MessageInit, options: SendOptions = {}): Promise<SendResult> {
    this.assertRunning()
    const delivery = options.delivery ?? DEFAULT_DELIVERY
    if (!DELIVERY_MODES.includes(delivery)) throw new InvalidParametersError(`delivery must be one of ${DELIVERY_MODES.join(', ')}`)
    let result: SendResult
    try {
      const peerId = await this.resolvePeer(peer, options).catch((err) => {
        // a peer we cannot dial now is still a recipient the outbox and mailboxes can serve
        const named = delivery === 'best-effort' ? undefined : namedPeer(peer)
        if (named === undefined) throw err
        return named
      })
      const message = this.buildMessage(peerId, withDelivery(init, delivery, options.receipt === true), options.sign)
      const outcome = await this.delivery.send(peerId, message, delivery, options)
      result = {
        id: message.id,
        peer: peerId.toString(),
        delivered: outcome.status === 'delivered',
        delivery,
        ...outcome,
        ...(outcome.status !== 'delivered' ? { expires: message.exp } : {}),
        message
      }
    } catch (err) {
      this.metrics.sendFailed(err, options.signal)
      throw err
    }
    this.metrics.sendOutcomes.inc({ status: result.status, mode: delivery })
    if (result.delivered) this.trust.observe(result.peer, true)
    if (result.status === 'delivered') this.metrics.sent(init.op, result.route ?? 'direct')
    return result
  }

  outbox (options: { peer?: string } = {}): OutboxEntry[] {
    return this.outboxStore.pending(options.peer)
  }

  deadLetters (): DeadLetter[] {
    return this.outboxStore.deadLetters()
  }

  async retryOutbox (peer: PeerInput): Promise<void> {
    const peerId = typeof peer === 'string' && !peer.startsWith('/') ? peerIdFromString(peer) : await this.resolvePeer(peer)
    this.delivery.retryNow(peerId.toString())
  }

  async receipt (id: string, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<DeliveryReceipt> {
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
    const signal = AbortSignal.any([...(options.signal != null ? [options.signal] : []), AbortSignal.timeout(timeout)])
    let onReceipt: (evt: CustomEvent<DeliveryReceipt>) => void = () => {}
    let onAbort: () => void = () => {}
    // listen before looking in the store, so a receipt landing in between is not missed
    const arrived = new Promise<DeliveryReceipt>((resolve, reject) => {
      onReceipt = (evt) => { if (evt.detail.id === id) resolve(evt.detail) }
      onAbort = () => {
        reject(options.signal?.aborted === true ? options.signal.reason : new RequestTimeoutError(`no delivery receipt for ${id} within ${timeout} ms`))
      }
    })
    // the deadline may pass while the store is read, before `arrived` is awaited:
    // without this an unhandled rejection is reported (found by test/fuzz/api.test.ts)
    arrived.catch(() => {})
    this.addEventListener('receipt', onReceipt)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const stored = await this.receiptsTable().get(id) as string | undefined
      if (stored !== undefined) return JSON.parse(stored) as DeliveryReceipt
      return await arrived
    } finally {
      this.removeEventListener('receipt', onReceipt)
      signal.removeEventListener('abort', onAbort)
    }
  }

  private receiptsTable (): ReturnType<Database['sublevel']> {
    return this.db.sublevel('receipts', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  async request (peer: PeerInput, init: MessageInit, options: RequestOptions = {}): Promise<MoltMessage> {
    this.assertRunning()
    const started = performance.now()
    let peerId: PeerId
    try {
      peerId = await this.resolvePeer(peer, options)
    } catch (err) {
      this.metrics.sendFailed(err, options.signal)
      throw err
    }
    const message = this.buildMessage(peerId, init, options.sign)
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
    const reply = new Promise<MoltMessage>((resolve, reject) => {
      this.requests.set(message.id, { peer: peerId.toString(), resolve, reject })
    })
    // the timer may reject before send() returns: never leave that rejection unhandled
    reply.catch(() => {})
    let acked = false
    const timer = setTimeout(() => {
      // say why: silence after the peer's ack means nothing there answered this op
      const why = acked
        ? `: the peer acknowledged it but sent no reply (nothing there answers "${message.op}" — no handler, no API client reading its messages — or it is still working). ` +
          'Ask its operator, wait longer (timeout), or only deliver it (send(), `molt send --no-wait`)'
        : ': the peer did not acknowledge it either (unreachable, or too busy)'
      this.requests.get(message.id)?.reject(new RequestTimeoutError(`no reply to ${message.op} ${message.id} from ${peerId} within ${timeout} ms${why}`))
    }, timeout)
    const onAbort = (): void => { this.requests.get(message.id)?.reject(options.signal?.reason) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      // a request is answered now or not at all: no outbox, no mailbox
      const sent = this.resolver.connect(peerId, { signal: AbortSignal.any([AbortSignal.timeout(timeout), ...(options.signal != null ? [options.signal] : [])]) })
        .then(async () => this.libp2p.services.speak.send(peerId, this.textEncoder.encode(JSON.stringify(message)), options)).then(
        () => {
          acked = true
          this.metrics.sent(init.op, this.routeTo(peerId).route)
        },
        (err) => {
          this.metrics.sendFailed(err, options.signal)
          throw err
        })
      // a reply proves the request arrived: it need not wait for the peer's ack, which follows
      // the peer's inbox write (a LevelDB stall there would otherwise sit in every request's tail)
      sent.catch(() => {})
      const answered = reply.then(() => undefined, () => undefined)
      await Promise.race([sent, answered])
      // the peer's answer (or silence) is direct experience for the trust score
      const answer = await reply.catch((err: Error) => {
        if (err instanceof RequestTimeoutError) this.trust.observe(peerId, false)
        throw err
      })
      this.trust.observe(peerId, answer.op !== 'error')
      this.metrics.requestDone(started)
      return answer
    } finally {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      this.requests.delete(message.id)
    }
  }

  handle (op: Op, handler: MessageHandler): void {
    this.handlers.set(op, handler)
  }

  unhandle (op: Op): void {
    this.handlers.delete(op)
  }

  async inbox (options: { after?: number, limit?: number } = {}): Promise<ReceivedMessage[]> {
    return this.inboxStore.list(options)
  }

  inboxCursor (): number {
    return this.inboxStore.lastCursor
  }

  async * messages (options: { after?: number, signal?: AbortSignal } = {}): AsyncGenerator<ReceivedMessage> {
    this.readers++
    try {
      yield * this.readInbox(options)
    } finally {
      this.readers--
      this.readerLeftAt = performance.now()
    }
  }

  private async * readInbox (options: { after?: number, signal?: AbortSignal }): AsyncGenerator<ReceivedMessage> {
    let cursor = options.after ?? this.inboxStore.lastCursor
    const signal = options.signal
    while (signal?.aborted !== true && !this.stopped) {
      // listen before reading, so an arrival during the read is never missed
      let wake: () => void = () => {}
      const arrived = new Promise<void>(resolve => { wake = resolve })
      this.addEventListener('stored', wake)
      this.addEventListener('stop', wake)
      signal?.addEventListener('abort', wake)
      try {
        const batch = await this.inboxStore.list({ after: cursor, limit: 256 })
        for (const entry of batch) {
          cursor = entry.cursor
          yield entry
        }
        if (batch.length === 0) await arrived
      } finally {
        this.removeEventListener('stored', wake)
        this.removeEventListener('stop', wake)
        signal?.removeEventListener('abort', wake)
      }
    }
  }

  async ping (peer: PeerInput, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<{ rtt: number, pong: MoltMessage }> {
    const start = performance.now()
    const peerId = await this.resolvePeer(peer, options)
    if (this.plainPeers.has(peerId.toString())) {
      throw new MoltSpeakError('E_CAPABILITY', `${peerId.toString()} listed no "${MOLT_EXTENSION}" in its hello: ping is a molt extension it does not speak`)
    }
    const p = pingPayload({}) as Record<string, unknown>
    const reply = await this.request(peerId, { op: 'ping', p }, options)
    if (reply.op !== 'pong' || reply.p.nonce !== p.nonce) {
      throw new MoltSpeakError('E_INVALID_PARAM', 'pong does not echo the ping nonce', { field: 'p.nonce' })
    }
    const rtt = performance.now() - start
    // every ping, not only the heartbeat's, is what `peers()` reports as the peer's rtt
    this.discovery?.presence.seen(peerId.toString(), {
      rttMs: rtt,
      load: typeof reply.p.load === 'number' ? reply.p.load : undefined,
      queueDepth: typeof reply.p.queue_depth === 'number' ? reply.p.queue_depth : undefined
    })
    return { rtt, pong: reply }
  }

  async discover (capability: string, options: DiscoverOptions = {}): Promise<DiscoveredAgent[]> {
    this.assertRunning()
    const found = await this.discovery.discover(capability, options)
    if (options.minTrust === undefined && options.sortByTrust !== true) return found
    return this.trust.rank(found, { ...options, trustDomain: options.trustDomain ?? capability })
  }

  peers (): KnownPeer[] {
    return this.discovery.peers()
  }

  async card (peer: PeerInput, options: { signal?: AbortSignal, force?: boolean } = {}): Promise<AgentCard> {
    this.assertRunning()
    const peerId = await this.resolvePeer(peer, options)
    await this.resolver.connect(peerId, options)
    const card = await this.libp2p.services.cards.fetch(peerId, options)
    this.discovery.presence.seen(peerId.toString(), { card })
    return card
  }

  async updateProfile (patch: Partial<AgentProfile>): Promise<void> {
    this.assertRunning()
    const profile = { ...this.profile, ...patch }
    parseConfig({ agent: profile }) // same rules as the config file; throws ConfigError naming the field
    this.profile = profile
    this.agent = { agent: profile.name, org: profile.org, key: this.moltKey }
    await this.discovery.advertise(profile.capabilities)
  }

  relays (): RelayStatus[] {
    return this.libp2p.services.relayClient.relays()
  }

  ownCard (): AgentCard {
    return this.libp2p.services.cards.own()
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.discovery?.stop()
    this.dispatchEvent(new Event('stop'))
    for (const pending of this.requests.values()) pending.reject(new NotStartedError('node stopped'))
    this.delivery?.stop()
    await this.libp2p.stop()
    await this.outboxStore.close()
    await this.db.close()
    await this.lock?.release()
  }

  /**
   * speak's receive hook. Dispatch (handlers, request replies, events) happens
   * at once; the returned promise — after which speak acknowledges — waits for
   * the inbox write.
   */
  async receive (batch: InboundMessage[]): Promise<void> {
    batch = batch.filter(item => this.trust.inboxDecision(item.peer) !== 'hold' || (this.trust.hold(item.peer, item.message), false))
    if (batch.length === 0) return
    const receivedAt = Date.now()
    // heartbeat ping/pong are answered and matched below but never stored: they would push real messages out of the bounded inbox
    const kept = batch.filter(item => !isHousekeeping(item.message))
    const { cursors, stored } = kept.length === 0 ? { cursors: [], stored: Promise.resolve() } : this.inboxStore.append(kept.map(item => ({
      json: item.json,
      peer: item.peer.toString(),
      route: item.route,
      receivedAt,
      // exactly-once ids, and every mailbox one (a relay can serve a box again), are remembered across restarts
      ...(deliveryOf(item.message) === 'exactly-once' || item.route === 'mailbox'
        ? { id: item.message.id, dedupUntil: Math.max(item.message.exp ?? 0, item.message.ts + REPLAY_WINDOW) }
        : {})
    })))
    const cursorOf = new Map(kept.map((item, i) => [item, cursors[i]]))
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]
      if (i === 0 || batch[i - 1].peer !== item.peer) this.discovery?.presence.seen(item.peer.toString())
      const cursor = cursorOf.get(item)
      if (cursor !== undefined && this.unstored.size > 0 && this.unstored.delete(`${item.peer.toString()}/${item.message.id}`)) continue
      this.metrics.received(item.message.op, item.route)
      // cursor 0: housekeeping, not in the inbox
      this.dispatch({ cursor: cursor ?? 0, receivedAt, peer: item.peer.toString(), route: item.route, message: item.message, ...this.orgFlag(item) }, item)
    }
    try {
      await stored
    } catch (err) {
      // not stored, so not acknowledged (speak REJECTs E_INTERNAL, a mailbox fetch is not acked): the sender
      // retries with the same ids, which must then be taken as new, not acked as duplicates of what was never
      // kept (test/faults/disk-full.test.ts); they were dispatched already, so they are only stored then
      for (const item of kept) {
        const key = `${item.peer.toString()}/${item.message.id}`
        this.replay.forget(key)
        this.unstored.add(key)
        if (this.unstored.size > MAX_UNSTORED) this.unstored.delete(this.unstored.values().next().value as string)
      }
      throw err
    }
    if (kept.length > 0) this.dispatchEvent(new Event('stored'))
    for (const item of kept) {
      if (molt(item.message)?.receipt === true) this.sendReceipt(item, receivedAt)
    }
  }

  /**
   * The mailbox client's deliver hook: messages opened from relay mailboxes
   * join the same inbox (and de-duplication) as direct ones, each sender's in
   * the order it sent them.
   */
  async receiveFromMailbox (messages: MailboxMessage[]): Promise<void> {
    const now = Date.now()
    const fresh: InboundMessage[] = []
    const ordered = messages
      .map((item, index) => ({ item, index }))
      .sort((a, b) => a.item.message.ts - b.item.message.ts || a.index - b.index)
    for (const { item } of ordered) {
      const { message, peer } = item
      this.metrics.mailboxFetched.inc()
      if (message.exp != null && message.exp < now) {
        this.metrics.refused('E_TIMEOUT')
        continue
      }
      // the trust inbox policy applies whatever the path (speak refuses with E_AUTH_FAILED on the stream;
      // a mailbox message has no stream to answer on, so it is dropped and counted)
      if (this.trust.inboxDecision(peer) === 'refuse') {
        this.metrics.refused('E_AUTH_FAILED')
        continue
      }
      if (this.replay.checkAndRemember(`${peer.toString()}/${message.id}`, message.ts, now, message.exp)) {
        this.metrics.duplicate()
        continue
      }
      fresh.push({ message, json: item.json, peer, route: 'mailbox' })
    }
    if (fresh.length > 0) await this.receive(fresh)
  }

  private sendReceipt (item: InboundMessage, receivedAt: number): void {
    const { message } = item
    const digest = createHash('sha256').update(signingBytes(message)).digest('hex')
    this.send(item.peer, {
      op: 'respond',
      re: message.id,
      to: { agent: message.from.agent, org: message.from.org },
      cls: replyClassification(message, {}, this.agent.org),
      p: { status: 'success', receipt: { id: message.id, digest, received_at: receivedAt } },
      ext: { [EXT_NAMESPACE]: { receipt_for: message.id } }
    }, { sign: true, delivery: 'at-least-once' }).catch((err: Error) => {
      this.log('could not send the receipt for %s to %p - %e', message.id, item.peer, err)
    })
  }

  /** A receipt arrived for a message we sent: keep it (it is the proof) and tell waiters */
  private acceptReceipt (entry: ReceivedMessage): void {
    const { message } = entry
    const receipt = message.p.receipt as { id?: unknown, digest?: unknown, received_at?: unknown } | undefined
    if (message.sig == null || typeof receipt?.id !== 'string' || typeof receipt.digest !== 'string') {
      this.log('ignoring an unsigned or malformed receipt from %s', entry.peer)
      return
    }
    const value: DeliveryReceipt = {
      id: receipt.id,
      peer: entry.peer,
      digest: receipt.digest,
      receivedAt: Number(receipt.received_at),
      message
    }
    this.receiptsTable().put(value.id, JSON.stringify(value)).then(() => {
      this.dispatchEvent(new CustomEvent('receipt', { detail: value }))
    }, (err: Error) => { this.log.error('could not store the receipt for %s - %e', value.id, err) })
  }

  /**
   * `org_verified` for a message claiming `from.org`: whether the sender's
   * cached card carries a certificate from a trusted organisation of that name
   * (no cached card: false). Flagged, not refused (protocols/identity.md)
   */
  private orgFlag (item: InboundMessage): { org_verified?: boolean } {
    const org = item.message.from?.org
    if (typeof org !== 'string' || org === '') return {}
    const card = this.libp2p.services.cards.cached(item.peer)
    return { org_verified: card !== undefined && this.libp2p.services.cards.verdict(card, org).verified }
  }

  private dispatch (entry: ReceivedMessage, item: InboundMessage): void {
    const { message } = entry
    if (typeof molt(message)?.receipt_for === 'string') {
      this.acceptReceipt(entry)
      return
    }
    if (message.re != null && (message.op === 'respond' || message.op === 'error' || message.op === 'pong')) {
      const pending = this.requests.get(message.re)
      if (pending?.peer === entry.peer) pending.resolve(message)
    }
    if (message.op === 'hello') this.noteHello(entry.peer, message)
    if (entry.cursor === 0) this.dispatchEvent(new CustomEvent('housekeeping', { detail: entry }))
    else if (this.messageListeners > 0) this.dispatchEvent(new CustomEvent('message', { detail: entry }))
    const handler = this.handlers.get(message.op)
    if (handler == null) {
      if (this.unhandledRequests === 'refuse' && message.re == null && REQUEST_OPS.has(message.op) && !this.hasReader() && !this.tasks.handles(message)) {
        this.refuseUnhandled(item.peer, message)
      }
      return
    }
    Promise.resolve()
      .then(async () => handler(message, { peer: item.peer, route: item.route, entry }))
      .then(async (result) => {
        if (result == null) return
        const reply = 'reply' in result && typeof result.reply === 'object' ? result.reply as MessageInit : { op: 'respond' as const, p: result }
        await this.sendReply(item.peer, message, reply)
      }, async (err: any) => {
        const code = err instanceof MoltSpeakError ? err.code : 'E_TASK_FAILED'
        await this.sendReply(item.peer, message, { op: 'error', p: errorPayload(code, err.message ?? String(err)) as unknown as Record<string, unknown> })
      })
      .catch((err: Error) => {
        // the requester's timeout reports an undeliverable reply to the app there
        this.log('could not deliver the reply to %s %s from %p - %e', message.op, message.id, item.peer, err)
      })
  }

  /** A request nothing here answers (unhandledRequests 'refuse'): say so now rather than let the requester wait */
  private refuseUnhandled (peer: PeerId, request: MoltMessage): void {
    const p = errorPayload('E_CAPABILITY_UNKNOWN',
      `nothing on this agent answers "${request.op}" (no handler, no API client reading its messages): the message is kept in its inbox, unanswered. ` +
      `Its operator can answer ${request.op} with an SDK handler (node.handle) or a local API client on /v1/stream (protocols/speak.md)`,
      { field: 'op', context: { op: request.op } })
    // best-effort: a requester that still waits is connected now; one that sent and left needs no queued error
    this.sendReply(peer, request, { op: 'error', p: p as unknown as Record<string, unknown> }, { delivery: 'best-effort' }).catch((err: Error) => {
      this.log('could not refuse the unanswered %s %s from %p - %e', request.op, request.id, peer, err)
    })
  }

  private async sendReply (peer: PeerId, request: MoltMessage, init: MessageInit, options?: SendOptions): Promise<void> {
    if (this.stopped) return
    // a peer that speaks only the v0.1 schema gets schema error codes
    const p = init.op === 'error' && init.p != null && this.plainPeers.has(peer.toString()) ? schemaErrorPayload(init.p as ErrorPayload) : init.p
    await this.send(peer, {
      ...init,
      p,
      re: request.id,
      to: { agent: request.from.agent, org: request.from.org },
      // never `pii` without our own pii_meta, never `sec` across orgs: the reply would be invalid
      cls: replyClassification(request, init, this.agent.org)
    }, options)
  }

  /** Remember whether a peer's hello listed molt's extensions (bounded: the oldest is forgotten first) */
  private noteHello (peer: string, message: MoltMessage): void {
    const molt = helloSpeaksMolt(message)
    if (molt === undefined) return
    this.plainPeers.delete(peer)
    if (molt) return
    if (this.plainPeers.size >= MAX_PLAIN_PEERS) this.plainPeers.delete(this.plainPeers.values().next().value as string)
    this.plainPeers.add(peer)
  }

  /** The relays whose mailboxes `peer` reads: named circuit addresses, its routing record, peer store and card */
  async mailboxTargets (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<MailboxTarget[]> {
    return this.resolver.mailboxTargets(peer, options)
  }

  private buildMessage (peer: PeerId, init: MessageInit, sign = this.signByDefault): MoltMessage {
    const message = createMessage({
      ...init,
      from: this.agent,
      to: init.to ?? { agent: peer.toString(), org: 'peer' }
    })
    return sign ? signMessage(message, this.identity.signingKey) : message
  }

  /** How messages to `peer` travel now: direct when any direct connection exists */
  private routeTo (peer: PeerId): { route: Route, relay?: string } {
    return routeOver(this.libp2p.getConnections(peer))
  }

  private assertRunning (): void {
    if (this.stopped) throw new NotStartedError('the node is stopped')
  }
}

/** Peers remembered as speaking only the v0.1 schema (DefaultMoltNode.plainPeers) */
const MAX_PLAIN_PEERS = 10_000

/** Ids remembered as dispatched but not stored (DefaultMoltNode.unstored) */
const MAX_UNSTORED = 10_000

/** Ops whose sender waits for a reply and that no built-in handler answers (ping and discover are answered by the node) */
const REQUEST_OPS: ReadonlySet<Op> = new Set<Op>(['hello', 'verify', 'query', 'task', 'tool', 'consent'])


/**
 * Protocol housekeeping: ping/pong (the presence heartbeat, `molt ping`).
 * Answered and matched, never stored in the inbox, unless the sender asked
 * for exactly-once (the inbox then keeps its id across restarts) or a receipt.
 */
function isHousekeeping (message: MoltMessage): boolean {
  if (message.op !== 'ping' && message.op !== 'pong') return false
  const ext = molt(message)
  return ext?.delivery !== 'exactly-once' && ext?.receipt !== true
}

/** Create and start a molt node: identity from the data dir, libp2p with molt's services, the inbox in LevelDB */
export async function createMoltNode (options: MoltNodeOptions = {}): Promise<MoltNode> {
  const dataDir = resolveDataDir(options.dataDir)
  const { key } = options.privateKey != null
    ? { key: options.privateKey }
    : await loadOrCreateKey(join(dataDir, IDENTITY_FILE))
  const identity = identityFromKey(key)
  const fallbackName = `agent-${identity.peerId.toString().slice(-8)}`
  const config = await loadConfig(dataDir, fallbackName)
  if (!existsSync(join(dataDir, CONFIG_FILE))) await saveConfig(dataDir, config)
  const profile: AgentProfile = { ...config.agent, ...options.agent }
  // the organisation certificate the card carries; one for another key (the agent key was replaced) is left out
  const installed = await loadInstalledCertificate(dataDir)
  const certificate = installed?.agent_key === identity.moltKey ? installed : undefined
  const revocations = await loadRevocations(dataDir)

  const lock = options.lock === false
    ? undefined
    : await acquireLock(dataDir, { pid: process.pid, peerId: identity.peerId.toString(), startedAt: Date.now() })
  let db: Database | undefined
  try {
    db = await openDatabase(join(dataDir, DB_DIR))
    const inbox = new Inbox(db, options.inboxMaxMessages ?? DEFAULT_INBOX_MAX_MESSAGES)
    await inbox.open()
    const replay = new ReplayWindow(options.speak?.replayWindow ?? REPLAY_WINDOW, options.speak?.replayCacheSize ?? REPLAY_CACHE_SIZE)
    // exactly-once: ids received before a restart are still known after it
    for await (const [key, until] of inbox.seen()) replay.remember(key, until)
    const outbox = new Outbox(db, { maxMessages: options.outboxMaxMessages ?? MAX_OUTBOX_MESSAGES, maxDeadLetters: MAX_DEAD_LETTERS })
    await outbox.open()
    const node = new DefaultMoltNode(identity, profile, config, dataDir, db, inbox, lock, options.signMessages ?? false, outbox, replay)
    node.unhandledRequests = options.unhandledRequests ?? 'keep'
    const metrics = node.metrics = new AgentMetrics({ processMetrics: options.processMetrics })
    // listening before libp2p starts: no task message is dispatched unseen
    node.tasks = await createTaskService({ node, db, get log () { return node.libp2p.logger.forComponent('molt:tasks') } }, options.tasks)

    const relays = options.relays ?? config.relays
    node.libp2p = await createLibp2p(baseLibp2pOptions({
      privateKey: key,
      listen: options.listen ?? config.listen,
      transports: [circuitRelayTransport()],
      discovery: {
        mdns: options.mdns ?? false,
        // relays are DHT servers: an agent configured with relays bootstraps from them too
        bootstrap: [...new Set([...(options.bootstrap ?? config.discovery.bootstrap), ...relays])],
        // an agent that needs relays is behind NAT: a DHT client (servers must be reachable)
        dht: { clientMode: config.discovery.dhtClient || relays.length > 0, ...options.dht }
      },
      // a private address behind someone's NAT swallows SYNs: give up on it fast so the
      // relayed address is tried (the stock 6 s per address made every relayed dial slow)
      connectionManager: { addressDialTimeout: ADDRESS_DIAL_TIMEOUT },
      metrics: options.libp2pMetrics === true ? metrics.registry : undefined,
      extra: options.libp2p
    }, {
      cards: cards({ identity, profile: () => node.profile, certificate: () => certificate, trustedOrgs: () => config.trust.orgs, revocations: () => node.trust.orgRevocations() }),
      // hole punching after a relayed connection; known to fail from Node over TCP, so relays carry the traffic
      dcutr: dcutr(),
      // attestations travel on gossipsub (relays and relayed agents included)
      pubsub: trustPubsub(),
      trust: trust({ identity, db, orgs: () => config.trust.orgs, revocations, ...options.trust, preTrusted: options.trust?.preTrusted ?? config.trust.preTrusted, inbox: options.trust?.inbox ?? config.trust.inbox }),
      relayClient: relayClient({
        relays,
        maxReservations: options.maxRelayReservations,
        discoverRelays: options.discoverRelays ?? config.discovery.discoverRelays
      }),
      // this agent's signed routing record in the DHT (protocols/routing.md)
      routes: routingRecord({ publish: options.publishRoute, mailboxRelays: () => node.libp2p == null ? [] : node.relays().map(({ relay, address }) => ({ relay, address })) }),
      mailbox: mailboxClient({
        identity,
        relays: () => node.relays().map(({ relay, address }) => ({ relay, address })),
        deliver: async (messages) => node.receiveFromMailbox(messages),
        onRejected: () => { metrics.mailboxRejected.inc() },
        checkInterval: options.mailboxCheckInterval,
        replayWindow: options.speak?.replayWindow,
        maxClockSkew: options.speak?.maxClockSkew
      }),
      speak: speak({
        ...options.speak,
        replay,
        requireSignatures: options.requireSignatures ?? config.speak.requireSignatures,
        localAgent: () => node.agent,
        receive: async (batch) => node.receive(batch),
        onRefused: (peer, error) => {
          metrics.refused(error.code)
          options.speak?.onRefused?.(peer, error)
        },
        authorize: (peer) => node.trust.inboxDecision(peer) === 'refuse'
          ? new MoltSpeakError('E_AUTH_FAILED', 'the sender is below this agent\'s trust threshold')
          : undefined,
        onDuplicate: (peer, id) => {
          metrics.duplicate()
          options.speak?.onDuplicate?.(peer, id)
        }
      })
    })) as unknown as Libp2p<MoltServices>
    node.discovery = new Discovery(node.libp2p as any, node.libp2p.logger.forComponent('molt:discovery'), {
      heartbeatInterval: options.heartbeatInterval,
      staleAfter: options.staleAfter,
      ping: async (peer, pingOptions) => node.ping(peer, pingOptions)
    })
    await node.discovery.start(profile.capabilities)
    node.resolver = new Resolver({
      peerStore: node.libp2p.peerStore,
      getConnections: (peer) => node.libp2p.getConnections(peer),
      dial: async (peer, dialOptions) => node.libp2p.dial(peer, dialOptions),
      records: node.libp2p.services.routes,
      self: node.peerId,
      cardAddresses: (peer) => node.libp2p.services.cards.cached(peer)?.addresses ?? [],
      log: node.libp2p.logger.forComponent('molt:resolver')
    })
    node.delivery = new Delivery({
      outbox,
      mailbox: node.libp2p.services.mailbox,
      events: node.libp2p as any,
      log: node.libp2p.logger.forComponent('molt:delivery'),
      speakSend: async (peer, body, sendOptions) => {
        // resolve first (peer store → routing record → direct → circuit): every attempt, retries included
        // (checked here first: no extra await per message on the hot path of an open connection)
        if (node.libp2p.getConnections(peer).length === 0) await node.resolver.connect(peer, sendOptions)
        await node.libp2p.services.speak.send(peer, body, sendOptions)
      },
      reachesVia: (peer, relay) => node.resolver.reachesVia(peer, relay),
      routeTo: (peer) => routeOver(node.libp2p.getConnections(peer)),
      isConnected: (peer) => node.libp2p.getConnections(peer).some(connection => connection.status === 'open'),
      mailboxTargets: async (peer) => node.mailboxTargets(peer),
      sign: (message) => signMessage(message, identity.signingKey),
      onDelivered: (entries, route) => {
        for (const entry of entries) {
          metrics.sent(entry.op, route)
          node.dispatchEvent(new CustomEvent('outbox', { detail: { id: entry.id, peer: entry.peer, status: 'delivered' } }))
        }
      },
      onStored: (entries) => {
        for (const entry of entries) node.dispatchEvent(new CustomEvent('outbox', { detail: { id: entry.id, peer: entry.peer, status: 'stored' } }))
      },
      onDead: (letters) => {
        for (const letter of letters) {
          metrics.outboxDead.inc({ reason: letter.reason })
          node.dispatchEvent(new CustomEvent('dead-letter', { detail: letter }))
        }
      }
    })
    node.delivery.start()
    node.tasks.start()
    node.libp2p.services.mailbox.watchConnectedRelays()
    metrics.bind({
      peers: () => node.peers(),
      inboxMessages: () => inbox.size,
      reservedRelays: () => node.relays().filter(relay => relay.reserved).length,
      outboxMessages: () => outbox.size,
      outboxBytes: () => outbox.bytes,
      trust: () => node.trust.stats()
    })
    return node
  } catch (err) {
    await db?.close().catch(() => {})
    await lock?.release()
    throw err
  }
}

/** The PeerId a PeerInput names (a PeerId, its string, or a multiaddr ending in /p2p/<id>), without dialling */
function namedPeer (peer: PeerInput): PeerId | undefined {
  if (typeof peer !== 'string' && !isMultiaddr(peer)) return peer
  const id = typeof peer === 'string' && !peer.startsWith('/') ? peer : peerIdOf(typeof peer === 'string' ? multiaddr(peer) : peer)
  return id != null ? peerIdFromString(id) : undefined
}

/** molt's own `ext` fields of a message (delivery mode, receipt request, receipt) */
function molt (message: MoltMessage): Record<string, unknown> | undefined {
  const ext = message.ext?.[EXT_NAMESPACE]
  return typeof ext === 'object' && ext !== null ? ext : undefined
}

function deliveryOf (message: MoltMessage): DeliveryMode | undefined {
  const mode = molt(message)?.delivery
  return typeof mode === 'string' && (DELIVERY_MODES as readonly string[]).includes(mode) ? mode as DeliveryMode : undefined
}

/** The message init with molt's delivery fields: an expiry for kept messages, the mode and receipt request in ext */
function withDelivery (init: MessageInit, delivery: DeliveryMode, receipt: boolean): MessageInit {
  if (delivery === 'best-effort' && !receipt) return init
  const fields: Record<string, unknown> = { ...(init.ext?.[EXT_NAMESPACE] ?? {}) }
  if (delivery === 'exactly-once') fields.delivery = delivery
  if (receipt) fields.receipt = true
  const now = init.ts ?? Date.now()
  return {
    ...init,
    exp: init.exp ?? (delivery !== 'best-effort' ? now + DEFAULT_MESSAGE_TTL : undefined),
    ...(Object.keys(fields).length > 0 ? { ext: { ...init.ext, [EXT_NAMESPACE]: fields } } : {})
  }
}
