import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, isMultiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Connection, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { peerIdOf, routeOver, isRelayedAddress, type Route } from '../routing/route.js'
import { Resolver } from '../routing/resolver.js'
import type { RoutingRecordService } from '../services/routing-record/index.js'
import type { CardService } from '../services/card/index.js'
import type { MailboxTarget } from '../services/mailbox/index.js'
import type { TrustService } from '../services/trust/index.js'
import type { PeerInput } from './types.js'

export interface PeerResolverComponents {
  connectionManager: ConnectionManager
  peerStore: PeerStore
  peerId: PeerId
  logger: ComponentLogger
  /** Routing records in the DHT (protocols/routing.md) */
  routes: RoutingRecordService
  /** Cached cards: the circuit addresses there name mailbox relays */
  cards: CardService
  /** Key rotations known: a PeerId whose key was rotated resolves to its newest PeerId */
  trust?: Pick<TrustService, 'currentPeer'>
}

/**
 * Turns what an application names (a PeerId, its string, a multiaddr) into a
 * PeerId and a connection, over src/routing's Resolver (peer store → routing
 * record → direct → circuit), and says how traffic to a peer travels now.
 */
export class PeerResolver {
  private routing?: Resolver

  constructor (private readonly components: PeerResolverComponents) {}

  /** Built on first use: `routes` and `cards` are services created after this one */
  get resolver (): Resolver {
    this.routing ??= new Resolver({
      peerStore: this.components.peerStore,
      getConnections: (peer) => this.connections(peer),
      dial: async (peer, options) => this.dial(peer, options),
      records: this.components.routes,
      self: this.components.peerId,
      cardAddresses: (peer) => this.components.cards.cached(peer)?.addresses ?? [],
      log: this.components.logger.forComponent('molt:resolver')
    })
    return this.routing
  }

  /** Resolve a PeerInput, dialling a multiaddr if needed */
  async resolvePeer (peer: PeerInput, options: { signal?: AbortSignal } = {}): Promise<PeerId> {
    if (typeof peer === 'string') {
      if (!peer.startsWith('/')) return this.current(peerIdFromString(peer))
      peer = multiaddr(peer)
    }
    if (isMultiaddr(peer)) {
      const id = peerIdOf(peer)
      if (id == null) {
        const connection = await this.dial(peer, options)
        return connection.remotePeer
      }
      const peerId = peerIdFromString(id)
      // an explicit circuit address also names the relay as a mailbox of the peer
      if (isRelayedAddress(peer)) this.resolver.hint(peer)
      if (this.connections(peerId).length === 0) {
        // the address the application named is where a retry looks too: the outbox re-resolves by PeerId
        if (!peerId.equals(this.components.peerId) && !peer.toString().startsWith('/p2p/')) this.resolver.remember(peerId, peer)
        await this.dial(peer, options)
      }
      return peerId
    }
    return this.current(peer)
  }

  /** An agent that rotated its key is reached under its newest PeerId (its old routing record and card are its old key's) */
  private current (peer: PeerId): PeerId {
    const id = this.components.trust?.currentPeer(peer)
    return id === undefined || id === peer.toString() ? peer : peerIdFromString(id)
  }

  /** Make sure a connection to `peer` is open (routing record, circuit, … see Resolver.connect) */
  async connect (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.resolver.connect(peer, options)
  }

  /** The relays whose mailboxes `peer` reads: named circuit addresses, its routing record, peer store and card */
  async mailboxTargets (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<MailboxTarget[]> {
    return this.resolver.mailboxTargets(peer, options)
  }

  /** Whether `relay` carries or holds mail for `peer` as far as this node knows */
  reachesVia (peer: string, relay: string): boolean {
    return this.resolver.reachesVia(peer, relay)
  }

  /** How messages to `peer` travel now: direct when any direct connection exists */
  routeTo (peer: PeerId): { route: Route, relay?: string } {
    return routeOver(this.connections(peer))
  }

  /** Whether an open connection to the peer exists */
  isConnected (peer: PeerId): boolean {
    return this.connections(peer).some(connection => connection.status === 'open')
  }

  connections (peer?: PeerId): Connection[] {
    return this.components.connectionManager.getConnections(peer)
  }

  private async dial (peer: PeerId | ReturnType<typeof multiaddr>, options: { signal?: AbortSignal }): Promise<Connection> {
    // the priority libp2p.dial() gives application dials
    return this.components.connectionManager.openConnection(peer, { priority: 75, ...options })
  }
}

/** The PeerId a PeerInput names (a PeerId, its string, or a multiaddr ending in /p2p/<id>), without dialling */
export function namedPeer (peer: PeerInput): PeerId | undefined {
  if (typeof peer !== 'string' && !isMultiaddr(peer)) return peer
  const id = typeof peer === 'string' && !peer.startsWith('/') ? peer : peerIdOf(typeof peer === 'string' ? multiaddr(peer) : peer)
  return id != null ? peerIdFromString(id) : undefined
}

export function peerResolver (): (components: PeerResolverComponents) => PeerResolver {
  return (components) => new PeerResolver(components)
}
