import type { AgentCard } from '../services/card/index.js'
import type { Route } from '../services/speak/index.js'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { PROTOCOL as SPEAK_PROTOCOL } from '../services/speak/constants.js'
import { PROTOCOL as MAILBOX_PROTOCOL } from '../services/mailbox/constants.js'
import { MAX_AGENT_VERSION_LENGTH, PRESENCE_MAX_PEERS, STALE_AFTER } from './constants.js'

export type PeerStatus = 'connected' | 'seen' | 'stale'

/** What a peer is: a molt agent (it speaks /molt/speak) or a relay (circuit hop or mailbox server, no speak) */
export type PeerRole = 'agent' | 'relay'

/** A peer's role from the protocols identify says it serves; undefined for anything else (or before identify) */
export function roleOf (protocols: readonly string[]): PeerRole | undefined {
  if (protocols.includes(SPEAK_PROTOCOL)) return 'agent'
  if (protocols.includes(RELAY_V2_HOP_CODEC) || protocols.includes(MAILBOX_PROTOCOL)) return 'relay'
  return undefined
}

/** A connected peer's live figures: how the connection goes and libp2p's last measured round trip */
export interface LiveConnection {
  route: Route
  /** The connection monitor's last ping round trip (ms), if it measured one */
  rttMs?: number
}

/** What this node knows about another agent */
export interface KnownPeer {
  peerId: string
  /** connected now / seen within the stale window / not seen for longer */
  status: PeerStatus
  lastSeen: number
  /** How the current connection goes, when connected */
  route?: Route
  /** From the protocols it serves (identify); absent until identified or for other software */
  role?: PeerRole
  /** Identify's agent version, e.g. `molt/0.1.0 js-libp2p/3.3.11 node/22.23.3` (peer-supplied text, ≤ 128 chars) */
  agentVersion?: string
  addresses: string[]
  name?: string
  org?: string
  capabilities: string[]
  /**
   * Round trip in ms: the last MoltSpeak ping (heartbeat or `ping()`), else,
   * while connected, libp2p's connection monitor (relays answer no MoltSpeak ping)
   */
  rttMs?: number
  load?: number
  queueDepth?: number
}

interface Entry {
  lastSeen: number
  addresses: string[]
  card?: AgentCard
  role?: PeerRole
  agentVersion?: string
  rttMs?: number
  load?: number
  queueDepth?: number
}

export interface PresenceObservation {
  addresses?: string[]
  card?: AgentCard
  role?: PeerRole
  agentVersion?: string
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
    if (observation.role != null) entry.role = observation.role
    if (observation.agentVersion != null) entry.agentVersion = printable(observation.agentVersion.slice(0, MAX_AGENT_VERSION_LENGTH))
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
  list (connections: Map<string, LiveConnection>, now = Date.now()): KnownPeer[] {
    const staleAfter = this.options.staleAfter ?? STALE_AFTER
    const out: KnownPeer[] = []
    for (const [peerId, entry] of this.peers) {
      const live = connections.get(peerId)
      const route = live?.route
      out.push({
        peerId,
        status: route != null ? 'connected' : now - entry.lastSeen <= staleAfter ? 'seen' : 'stale',
        lastSeen: route != null ? now : entry.lastSeen,
        route,
        ...(entry.role != null ? { role: entry.role } : entry.card != null ? { role: 'agent' as const } : {}),
        ...(entry.agentVersion != null ? { agentVersion: entry.agentVersion } : {}),
        addresses: entry.card?.addresses ?? entry.addresses,
        name: entry.card?.name,
        org: entry.card?.org,
        capabilities: entry.card?.capabilities.map(c => c.name) ?? [],
        rttMs: entry.rttMs ?? live?.rttMs,
        load: entry.load,
        queueDepth: entry.queueDepth
      })
    }
    return out.sort((a, b) => b.lastSeen - a.lastSeen)
  }
}

/** Peer-supplied text with control characters replaced, safe to print on a terminal */
function printable (text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}
