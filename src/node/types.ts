import type { Libp2p, Libp2pOptions } from 'libp2p'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import type { AgentProfile, MoltConfig } from '../config/index.js'
import type { Speak, SpeakInit } from '../services/speak/index.js'
import type { AgentRef, MoltMessage, Op } from '../moltspeak/index.js'
import type { RelayClient, RelayStatus } from '../services/relay-client/index.js'
import type { CardService, AgentCard } from '../services/card/index.js'
import type { AgentMetrics } from '../metrics/index.js'
import type { OutboxEntry, DeadLetter } from '../delivery/outbox.js'
import type { MailboxClient } from '../services/mailbox/index.js'
import type { RoutingRecordService } from '../services/routing-record/index.js'
import type { DiscoveredAgent, DiscoverOptions, DhtOptions, KnownPeer } from '../discovery/index.js'
import type { TrustService, TrustInit } from '../services/trust/index.js'
import type { TaskService, TaskServiceInit } from '../services/tasks/index.js'
import type { TopicService } from '../services/topics/index.js'
import type { KeyRotation } from '../identity/rotation/index.js'

/** What node.rotateKey() did */
export interface KeyRotationResult {
  /** The signed statement, as published */
  rotation: KeyRotation
  oldPeerId: string
  newPeerId: string
  /** Unix ms from which peers refuse the old key */
  refusedFrom: number
  /** Where the old key is kept until then (mode 0600) */
  retiredKeyPath: string
  /** Always true: a libp2p node cannot change its PeerId; restart on the data dir to become `newPeerId` */
  restartRequired: true
}

export interface MoltNodeOptions {
  /** Where the key, config and LevelDB live. @default $MOLT_HOME or ~/.molt */
  dataDir?: string
  /** Use this key instead of the data dir's key file */
  privateKey?: Ed25519PrivateKey
  /** Messages of agents whose certificate a trusted organisation revoked: flagged or refused. @default config `trust.revokedAgents` ('flag') */
  revokedAgents?: 'flag' | 'refuse'
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
  /** How long an inbox write nobody waits on (speak 1.1.0 REQUESTs and REPLYs) waits to share a LevelDB batch, in ms. @default 2 */
  inboxWriteDelay?: number
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

export type * from './message-types.js'
import type {
  DeliveryReceipt, MessageHandler, MessageInit, PeerInput, ReceivedMessage, RequestOptions, SendOptions, SendResult
} from './message-types.js'

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
  /**
   * Replace this agent's key (protocols/identity.md, "Key rotation"): a new
   * key is made, "old → new" is signed with both keys and published (gossip
   * and trust-sync), the data dir switches to the new key and keeps the old one
   * (0600) for the grace period. This node goes on running under the old
   * PeerId; the agent becomes the new PeerId when it restarts on the data dir.
   * Peers that hold the statement score the new PeerId with the old one's
   * trust history and refuse the old key after ROTATION_GRACE_PERIOD.
   *
   * @throws {KeyRotationError} the key did not come from the data dir (`privateKey` option), or it was rotated already and the node not restarted
   */
  rotateKey(options?: { signal?: AbortSignal }): Promise<KeyRotationResult>
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
  /** Team topics (gossipsub `molt/topic/<name>`): join, leave, publish; their messages reach the inbox with `topic` (protocols/topics.md) */
  readonly topics: TopicService
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
