import { join } from 'node:path'
import { InvalidParametersError } from '@libp2p/interface'
import type { PrivateKey } from '@libp2p/interface'
import type { ServiceFactoryMap } from 'libp2p'
import type { GossipSub } from '@libp2p/gossipsub'
import { identityFromKey, type Identity } from '../identity/index.js'
import type { AgentProfile } from '../config/index.js'
import { createDatabase, type Database } from '../storage/index.js'
import { MoltSpeakError } from '../moltspeak/index.js'
import { ReplayWindow } from '../moltspeak/replay-window.js'
import { speak, type Speak, type SpeakInit } from '../services/speak/index.js'
import { REPLAY_CACHE_SIZE, REPLAY_WINDOW } from '../services/speak/constants.js'
import { cards, type CardInit, type CardService } from '../services/card/index.js'
import { relayClient, type RelayClient } from '../services/relay-client/index.js'
import { routingRecord, type RoutingRecordService } from '../services/routing-record/index.js'
import { mailboxClient, type MailboxClient } from '../services/mailbox/index.js'
import { trust, trustPubsub, type TrustService, type TrustInit } from '../services/trust/index.js'
import { delivery, type Delivery } from '../delivery/delivery.js'
import { discovery, type Discovery } from '../discovery/index.js'
import { AgentMetrics } from '../metrics/index.js'
import { DB_DIR } from '../constants.js'
import { MoltEvents } from './events.js'
import { moltStore, type MoltStore } from './store.js'
import { MessageFactory } from './messages.js'
import { peerResolver, type PeerResolver } from './peers.js'
import { requestTracker, type RequestTracker } from './requests.js'
import { messenger, type Messenger } from './messenger.js'
import { receipts, type Receipts } from './receipts.js'
import { handlerRegistry, type HandlerRegistry } from './handlers.js'
import { inboundPipeline, type InboundPipeline } from './inbound.js'
import { mailboxReceiver, type MailboxReceiver } from './mailbox-inbound.js'
import { inboxReader, type InboxReader } from './reader.js'

export interface MoltServicesInit {
  /** Where molt keeps its LevelDB (`<dataDir>/db`); required unless `db` is given */
  dataDir?: string
  /** An open database to use instead (its owner closes it) */
  db?: Database
  /** This agent's profile. @default name `agent-<last 8 chars of the PeerId>`, org `local`, no capabilities */
  agent?: Partial<AgentProfile>
  /** Sign every outgoing message (costs ~45 µs each). @default false */
  signMessages?: boolean
  /** Refuse unsigned inbound messages. @default false */
  requireSignatures?: boolean
  /** @default 100000 */
  inboxMaxMessages?: number
  /**
   * How long the inbox write of a batch whose acknowledgement nobody waits on
   * (speak 1.1.0 REQUESTs and REPLYs) may wait to share one LevelDB batch with
   * the next ones, in ms. @default 2
   */
  inboxWriteDelay?: number
  /** @default 100000 */
  outboxMaxMessages?: number
  /** Tuning of the speak protocol (ack timeout, in-flight window, replay window, …) */
  speak?: Partial<Omit<SpeakInit, 'localAgent' | 'receive'>>
  /** Circuit relays to stay reachable through (multiaddrs ending in /p2p/<id>). @default none */
  relays?: string[]
  /** @default 2 */
  maxRelayReservations?: number
  /** @default false */
  discoverRelays?: boolean
  /** Publish this agent's signed routing record in the DHT. @default true */
  publishRoute?: boolean
  /** Some bootstrap peer, relay or mDNS will bring DHT peers (a routing-record lookup waits for the first). @default true */
  peerSource?: boolean
  /** ms between checks of the mailboxes of relays this node is not connected to. @default 600000 */
  mailboxCheckInterval?: number
  /** Attestations, scores and the inbox policy (protocols/trust.md) */
  trust?: Partial<Omit<TrustInit, 'identity' | 'db'>>
  /** ms between presence pings of connected agents; 0 = off. @default 60000 */
  heartbeatInterval?: number
  /** ms after which an agent not seen is reported `stale`. @default 300000 */
  staleAfter?: number
  /** See MoltNodeOptions.unhandledRequests. @default 'keep' */
  unhandledRequests?: 'keep' | 'refuse'
  /** The organisation certificate on the card, trusted organisations, known revocations */
  org?: Pick<CardInit, 'certificate' | 'trustedOrgs' | 'revocations'> & {
    /** `refuse`: messages from an agent whose cached card carries a revoked certificate are refused (E_AUTH_FAILED). @default 'flag' */
    revokedAgents?: 'flag' | 'refuse'
  }
  /** The key's identity, when the caller has it already. @default derived from libp2p's private key */
  identity?: Identity
  /** Metrics registry. @default a new AgentMetrics */
  metrics?: AgentMetrics
  /** The events target the node's listeners are on. @default a new one */
  events?: MoltEvents
}

/** Whether `peer`'s cached card carries a certificate revoked by an organisation this node trusts (the verdict is cached per card) */
function revokedSender (cards: CardService, peer: string): boolean {
  const card = cards.cached(peer)
  const org = (card?.cert as { org?: unknown } | undefined)?.org
  return card !== undefined && typeof org === 'string' && cards.verdict(card, org).code === 'revoked'
}

/** The services moltServices() adds, by their name in `libp2p.services` */
export interface MoltServiceMap extends Record<string, unknown> {
  cards: CardService
  pubsub: GossipSub
  trust: TrustService
  relayClient: RelayClient
  routes: RoutingRecordService
  mailbox: MailboxClient
  speak: Speak
  moltEvents: MoltEvents
  moltMetrics: AgentMetrics
  moltStore: MoltStore
  moltMessages: MessageFactory
  moltPeers: PeerResolver
  moltRequests: RequestTracker
  delivery: Delivery
  discovery: Discovery
  /** send(), request(), ping(), the outbox */
  molt: Messenger
  moltReceipts: Receipts
  /** handle(op, handler), unhandle(op) */
  moltHandlers: HandlerRegistry
  moltInbound: InboundPipeline
  moltMailboxInbound: MailboxReceiver
  /** inbox pages and messages() */
  moltInbox: InboxReader
}

/**
 * molt's messaging as libp2p services: spread into the `services` of any
 * js-libp2p node (`createLibp2p({ services: { identify: identify(), ...moltServices({ dataDir }) } })`)
 * and the node speaks MoltSpeak (`/molt/speak`), serves its agent card, reads
 * relay mailboxes and takes part in trust gossip. The node's key (Ed25519) is
 * the agent's identity. createMoltNode() is this plus molt's own defaults.
 */
export function moltServices (init: MoltServicesInit = {}): ServiceFactoryMap<MoltServiceMap> {
  if (init.db == null && init.dataDir == null) throw new InvalidParametersError('moltServices needs a dataDir (or an open db)')
  const replay = new ReplayWindow(init.speak?.replayWindow ?? REPLAY_WINDOW, init.speak?.replayCacheSize ?? REPLAY_CACHE_SIZE)
  const events = init.events ?? new MoltEvents()
  const metrics = init.metrics ?? new AgentMetrics()
  // created by the first factory that needs them, from libp2p's key
  let identity = init.identity
  let db = init.db
  let messages: MessageFactory | undefined
  const identityOf = (privateKey: PrivateKey): Identity => {
    if (identity != null) return identity
    if (privateKey.type !== 'Ed25519') throw new InvalidParametersError(`molt needs an Ed25519 node key, not ${privateKey.type}`)
    identity = identityFromKey(privateKey)
    return identity
  }
  const dbOf = (): Database => {
    db ??= createDatabase(join(init.dataDir ?? '', DB_DIR))
    return db
  }
  const mailboxRelays = (client: RelayClient): Array<{ relay: string, address: string }> => client.relays().map(({ relay, address }) => ({ relay, address }))

  return {
    moltEvents: (components) => {
      events.useLogger(components.logger)
      return events
    },
    moltMetrics: () => metrics,
    moltMessages: (components) => {
      const self = identityOf(components.privateKey)
      messages ??= new MessageFactory({
        identity: self,
        profile: { name: `agent-${self.peerId.toString().slice(-8)}`, org: 'local', capabilities: [], ...init.agent },
        signMessages: init.signMessages
      })
      return messages
    },
    moltStore: (components) => moltStore({ db: dbOf(), closeDb: init.db == null, replay, inboxMaxMessages: init.inboxMaxMessages, inboxWriteDelay: init.inboxWriteDelay, outboxMaxMessages: init.outboxMaxMessages })(components),
    cards: (components) => cards({
      identity: identityOf(components.privateKey),
      profile: () => components.moltMessages.profile,
      ...init.org,
      // what the trust service holds: file-imported revocations and those received over gossip and sync
      revocations: () => components.trust.orgRevocations()
    })(components),
    // attestations travel on gossipsub (relays and relayed agents included)
    pubsub: trustPubsub(),
    trust: (components) => trust({
      identity: identityOf(components.privateKey),
      db: dbOf(),
      orgs: init.org?.trustedOrgs,
      revocations: init.org?.revocations?.(),
      ...(init.org?.revokedAgents === 'refuse' ? { refuse: (peer: string) => revokedSender(components.cards, peer) } : {}),
      ...init.trust
    })(components),
    relayClient: relayClient({ relays: init.relays ?? [], maxReservations: init.maxRelayReservations, discoverRelays: init.discoverRelays }),
    // this agent's signed routing record in the DHT (protocols/routing.md)
    routes: (components) => routingRecord({ publish: init.publishRoute, peerSource: init.peerSource, mailboxRelays: () => mailboxRelays(components.relayClient) })(components),
    mailbox: (components) => mailboxClient({
      identity: identityOf(components.privateKey),
      relays: () => mailboxRelays(components.relayClient),
      deliver: async (opened) => components.moltMailboxInbound.receive(opened),
      onRejected: () => { metrics.mailboxRejected.inc() },
      checkInterval: init.mailboxCheckInterval,
      replayWindow: init.speak?.replayWindow,
      maxClockSkew: init.speak?.maxClockSkew
    })(components),
    speak: (components) => speak({
      ...init.speak,
      replay,
      requireSignatures: init.requireSignatures ?? false,
      localAgent: () => components.moltMessages.agent,
      receive: async (batch, options) => components.moltInbound.receive(batch, options),
      onRefused: (peer, error) => {
        metrics.refused(error.code)
        init.speak?.onRefused?.(peer, error)
      },
      authorize: (peer) => components.trust.inboxDecision(peer) === 'refuse'
        ? new MoltSpeakError('E_AUTH_FAILED', 'the sender is below this agent\'s trust threshold')
        : undefined,
      onDuplicate: (peer, id) => {
        metrics.duplicate()
        init.speak?.onDuplicate?.(peer, id)
      }
    })(components),
    moltPeers: peerResolver(),
    moltRequests: requestTracker(),
    delivery: delivery(),
    discovery: discovery({ heartbeatInterval: init.heartbeatInterval, staleAfter: init.staleAfter }),
    molt: messenger(),
    moltReceipts: receipts(),
    moltHandlers: handlerRegistry({ unhandledRequests: init.unhandledRequests }),
    moltInbound: inboundPipeline(),
    moltMailboxInbound: mailboxReceiver(),
    moltInbox: inboxReader()
  }
}
