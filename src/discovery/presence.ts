import type { AgentCard } from '../services/card/index.js'
import type { Route } from '../services/speak/index.js'
import { PRESENCE_MAX_PEERS, STALE_AFTER } from './constants.js'

export type PeerStatus = 'connected' | 'seen' | 'stale'

/** What this node knows about another agent */
export interface KnownPeer {
  peerId: string
  /** connected now / seen within the stale window / not seen for longer */
  status: PeerStatus
  lastSeen: number
  /** How the current connection goes, when connected */
  route?: Route
  addresses: string[]
  name?: string
  org?: string
  capabilities: string[]
  /** From the last heartbeat pong */
  rttMs?: number
  load?: number
  queueDepth?: number
}

interface Entry {
  lastSeen: number
  addresses: string[]
  card?: AgentCard
  rttMs?: number
  load?: number
  queueDepth?: number
}

export interface PresenceObservation {
  addresses?: string[]
  card?: AgentCard
  rttMs?: number
  load?: number
  queueDepth?: number
}

/**
 * Agents this node has seen, with when and how. Bounded: the least recently
 * seen are forgotten first. Status is computed when read, from the live
 * connection set and the last-seen time.
 */
export class Presence {
  private readonly peers = new Map<string, Entry>()

  constructor (private readonly options: { staleAfter?: number, maxPeers?: number } = {}) {}

  /** Record a sighting: a connection, a message, a card, a pong */
  seen (peerId: string, observation: PresenceObservation = {}, now = Date.now()): void {
    const entry = this.peers.get(peerId) ?? { lastSeen: now, addresses: [] }
    this.peers.delete(peerId) // re-insert: Map order doubles as least-recently-seen order
    entry.lastSeen = now
    if (observation.addresses != null && observation.addresses.length > 0) entry.addresses = observation.addresses
    if (observation.card != null) entry.card = observation.card
    if (observation.rttMs != null) entry.rttMs = observation.rttMs
    if (observation.load != null) entry.load = observation.load
    if (observation.queueDepth != null) entry.queueDepth = observation.queueDepth
    this.peers.set(peerId, entry)
    const max = this.options.maxPeers ?? PRESENCE_MAX_PEERS
    while (this.peers.size > max) this.peers.delete(this.peers.keys().next().value as string)
  }

  card (peerId: string): AgentCard | undefined {
    return this.peers.get(peerId)?.card
  }

  has (peerId: string): boolean {
    return this.peers.has(peerId)
  }

  /** Every known agent, most recently seen first */
  list (connections: Map<string, Route>, now = Date.now()): KnownPeer[] {
    const staleAfter = this.options.staleAfter ?? STALE_AFTER
    const out: KnownPeer[] = []
    for (const [peerId, entry] of this.peers) {
      const route = connections.get(peerId)
      out.push({
        peerId,
        status: route != null ? 'connected' : now - entry.lastSeen <= staleAfter ? 'seen' : 'stale',
        lastSeen: route != null ? now : entry.lastSeen,
        route,
        addresses: entry.card?.addresses ?? entry.addresses,
        name: entry.card?.name,
        org: entry.card?.org,
        capabilities: entry.card?.capabilities.map(c => c.name) ?? [],
        rttMs: entry.rttMs,
        load: entry.load,
        queueDepth: entry.queueDepth
      })
    }
    return out.sort((a, b) => b.lastSeen - a.lastSeen)
  }
}
