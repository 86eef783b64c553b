import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Connection, ContentRouting, Libp2pEvents, Logger, PeerId, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { routingTableReady, type ObservableRoutingTable } from './dht-ready.js'
import type { CardService, AgentCard } from '../services/card/index.js'
import { routeOver } from '../routing/route.js'
import type { MoltMessage } from '../moltspeak/index.js'
import { capabilityCid, CapabilityAdvertiser } from './capabilities.js'
import { Presence, roleOf, type KnownPeer, type LiveConnection } from './presence.js'
import * as c from './constants.js'
import { PROTOCOL as CARD_PROTOCOL } from '../services/card/constants.js'

/** One agent found by discover() */
export interface DiscoveredAgent {
  peerId: string
  card: AgentCard
  /** where it was found: this node's knowledge (LAN/connections) or the DHT */
  source: 'local' | 'dht'
}

export interface DiscoverOptions {
  /** @default 20 */
  limit?: number
  /** Include connected agents already known (LAN, earlier exchanges). false = ask the DHT only. @default true */
  local?: boolean
  signal?: AbortSignal
  /** Drop agents this node's trust score puts below this (0..1; an unknown agent scores 0.5) */
  minTrust?: number
  /** Sort by this node's trust score, highest first */
  sortByTrust?: boolean
  /** Score trust in this domain. @default the capability searched */
  trustDomain?: string
}

export interface DiscoveryInit {
  /** ms between presence pings of connected agents; 0 = off. @default 60000 */
  heartbeatInterval?: number
  /** ms after which an agent not seen is reported `stale`. @default 300000 */
  staleAfter?: number
}

export interface DiscoveryComponents {
  peerId: PeerId
  logger: ComponentLogger
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  peerStore: PeerStore
  contentRouting: ContentRouting
  cards: CardService
  /** The private DHT, when the node runs one (a missing service throws on access: read through dhtOf) */
  dht?: unknown
  /** The agent's capabilities, advertised at start */
  moltMessages: { readonly profile: { readonly capabilities: readonly string[] } }
  /** MoltSpeak ping of a peer, for heartbeats */
  molt: { ping(peer: PeerId, options: { signal: AbortSignal }): Promise<{ rtt: number, pong: MoltMessage }> }
}

/**
 * Finding agents: remembers every agent seen (presence), fetches the card of
 * every molt peer that connects, dials peers that discovery modules (mDNS,
 * bootstrap) report, keeps capabilities advertised in the DHT, answers
 * discover() from local knowledge merged with DHT providers, and pings
 * connected agents on a heartbeat.
 */
export class Discovery implements Startable {
  readonly presence: Presence
  private advertiser?: CapabilityAdvertiser
  private heartbeat?: ReturnType<typeof setInterval>
  private readonly controller = new AbortController()
  private readonly log: Logger
  private readonly events: TypedEventTarget<Libp2pEvents>

  readonly [Symbol.toStringTag] = 'molt/discovery'
  readonly [serviceDependencies] = ['@molt/card']

  constructor (private readonly components: DiscoveryComponents, private readonly init: DiscoveryInit = {}) {
    this.presence = new Presence({ staleAfter: init.staleAfter })
    this.log = components.logger.forComponent('molt:discovery')
    this.events = components.events
  }

  start (): void {
    this.events.addEventListener('peer:discovery', this.onDiscovery)
    this.events.addEventListener('peer:identify', this.onIdentify)
    this.events.addEventListener('peer:connect', this.onConnect)
    // connected until now: its last sighting is the moment the last connection went, not the last message before it
    this.events.addEventListener('peer:disconnect', this.onConnect)
  }

  /** Once the DHT runs: advertise the capabilities, start the heartbeat */
  async afterStart (): Promise<void> {
    await this.advertise([...this.components.moltMessages.profile.capabilities])
    const interval = this.init.heartbeatInterval ?? c.HEARTBEAT_INTERVAL
    if (interval > 0) {
      this.heartbeat = setInterval(() => { this.beat().catch(() => {}) }, interval)
      this.heartbeat.unref()
    }
  }

  /** Before the connections close: no dial, card fetch or ping starts any more */
  beforeStop (): void {
    this.controller.abort()
    clearInterval(this.heartbeat)
    this.advertiser?.stop()
    this.events.removeEventListener('peer:discovery', this.onDiscovery)
    this.events.removeEventListener('peer:identify', this.onIdentify)
    this.events.removeEventListener('peer:connect', this.onConnect)
    this.events.removeEventListener('peer:disconnect', this.onConnect)
  }

  stop (): void {}

  /** Re-advertise after the profile's capabilities changed */
  async advertise (capabilities: string[]): Promise<void> {
    const dht = this.dht
    if (dht == null) return
    // created on first use: the DHT's routing table exists once the DHT service does
    this.advertiser ??= new CapabilityAdvertiser({ contentRouting: this.components.contentRouting, dht }, this.log)
    await this.advertiser.update(capabilities)
  }

  /** The DHT service, or undefined when the node runs none (libp2p's components throw on a missing one) */
  private get dht (): unknown {
    try {
      return this.components.dht
    } catch {
      return undefined
    }
  }

  private connections (peer?: PeerId): Connection[] {
    return this.components.connectionManager.getConnections(peer)
  }

  /** Known agents with their status, most recently seen first */
  peers (): KnownPeer[] {
    const byPeer = new Map<string, Connection[]>()
    for (const connection of this.connections()) {
      const peer = connection.remotePeer.toString()
      byPeer.set(peer, [...(byPeer.get(peer) ?? []), connection])
    }
    const live = new Map<string, LiveConnection>([...byPeer].map(([peer, connections]) => {
      const rtts = connections.map(connection => connection.rtt).filter((rtt): rtt is number => rtt != null)
      return [peer, { route: routeOver(connections).route, ...(rtts.length > 0 ? { rttMs: Math.min(...rtts) } : {}) }]
    }))
    return this.presence.list(live)
  }

  /** Agents offering `capability`: local knowledge first, then DHT providers, each with its verified card */
  async discover (capability: string, options: DiscoverOptions = {}): Promise<DiscoveredAgent[]> {
    const limit = options.limit ?? c.DISCOVER_LIMIT
    const found = new Map<string, DiscoveredAgent>()
    for (const agent of options.local === false ? [] : this.localMatches(capability)) {
      if (found.size >= limit) break
      found.set(agent.peerId, agent)
    }
    if (found.size >= limit || this.dht == null) return [...found.values()]

    // a node just started (a one-off CLI, molt mcp) may still be dialling its bootstrap peers
    const dht = this.dht as { routingTable?: ObservableRoutingTable }
    await routingTableReady(dht.routingTable, AbortSignal.any([AbortSignal.timeout(c.DISCOVER_DHT_READY_TIMEOUT), ...(options.signal != null ? [options.signal] : [])]))
    if (options.local !== false) {
      for (const agent of this.localMatches(capability)) {
        if (found.size < limit && !found.has(agent.peerId)) found.set(agent.peerId, agent)
      }
    }

    const self = this.components.peerId.toString()
    let candidates = 0
    const lookups: Array<Promise<void>> = []
    try {
      for await (const provider of this.components.contentRouting.findProviders(await capabilityCid(capability), { signal: options.signal })) {
        const id = provider.id.toString()
        if (id === self || found.has(id)) continue
        if (++candidates > c.DISCOVER_MAX_CANDIDATES) break
        if (provider.multiaddrs.length > 0) await this.components.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs })
        lookups.push((async () => {
          let card = await this.cardOf(provider.id, options.signal)
          // the DHT says it offers this but our cached card does not: the profile changed, ask again
          if (card != null && !offers(card, capability)) card = await this.cardOf(provider.id, options.signal, true)
          if (card != null && found.size < limit && offers(card, capability)) {
            found.set(id, { peerId: id, card, source: 'dht' })
          }
        })())
        if (lookups.length >= limit) break
      }
    } catch (err) {
      // out of time: what was found so far is still an answer
      if (options.signal?.aborted !== true) throw err
    }
    await Promise.allSettled(lookups)
    return [...found.values()].slice(0, limit)
  }

  /**
   * Connected agents (LAN peers found by mDNS are connected) whose card offers
   * `capability`. Only live connections count: a cached card of an agent that
   * went away must not be offered; the DHT answers for everyone else.
   */
  localMatches (capability: string): DiscoveredAgent[] {
    const out: DiscoveredAgent[] = []
    const connected = new Set(this.connections().map(connection => connection.remotePeer.toString()))
    for (const card of this.components.cards.cachedCards()) {
      if (connected.has(card.peer_id) && offers(card, capability)) {
        out.push({ peerId: card.peer_id, card, source: 'local' })
      }
    }
    return out
  }

  /**
   * A peer's verified card, or undefined when it cannot be had. A cached card
   * is trusted only while the peer is connected; otherwise it is fetched again,
   * which also proves the agent is alive.
   */
  async cardOf (peer: PeerId, signal?: AbortSignal, refresh = false): Promise<AgentCard | undefined> {
    try {
      const force = refresh || this.connections(peer).length === 0
      const card = await this.components.cards.fetch(peer, { signal, force })
      this.presence.seen(peer.toString(), { card })
      return card
    } catch (err: any) {
      this.log('no card from %p - %s', peer, err.message)
      return undefined
    }
  }

  private readonly onDiscovery = (evt: CustomEvent<{ id: PeerId, multiaddrs: Array<{ toString: () => string }> }>): void => {
    const { id, multiaddrs } = evt.detail
    if (id.equals(this.components.peerId)) return
    this.presence.seen(id.toString(), { addresses: multiaddrs.map(String) })
    if (this.connections(id).length > 0 || this.connections().length >= c.AUTO_DIAL_MAX_CONNECTIONS) return
    // discovery modules only report peers; connecting is ours to do
    this.components.connectionManager.openConnection(id, { priority: 75, signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(10_000)]) })
      .catch((err: Error) => { this.log('could not dial discovered %p - %s', id, err.message) })
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.presence.seen(evt.detail.toString())
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[], agentVersion?: string }>): void => {
    const { peerId, protocols, agentVersion } = evt.detail
    // what it is (agent / relay) and runs, for `molt peers`
    this.presence.seen(peerId.toString(), { role: roleOf(protocols), agentVersion })
    if (!protocols.includes(CARD_PROTOCOL)) return
    this.cardOf(peerId, this.controller.signal).catch(() => {})
  }

  /** Ping every connected molt agent; a pong refreshes presence with rtt, load and queue depth */
  private async beat (): Promise<void> {
    const peers = new Set(this.connections().map(connection => connection.remotePeer))
    await Promise.allSettled([...peers].filter(peer => this.presence.card(peer.toString()) != null).map(async (peer) => {
      const { rtt, pong } = await this.components.molt.ping(peer, { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(10_000)]) })
      this.presence.seen(peer.toString(), {
        rttMs: rtt,
        load: typeof pong.p.load === 'number' ? pong.p.load : undefined,
        queueDepth: typeof pong.p.queue_depth === 'number' ? pong.p.queue_depth : undefined
      })
    }))
  }
}

function offers (card: AgentCard, capability: string): boolean {
  return card.capabilities.some(cap => cap.name === capability)
}

export function discovery (init: DiscoveryInit = {}): (components: DiscoveryComponents) => Discovery {
  return (components) => new Discovery(components, init)
}

export { capabilityCid }
