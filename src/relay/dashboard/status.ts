import type { Connection, PeerId } from '@libp2p/interface'
import type { RelayNode } from '../relay-node.js'
import type { CircuitRefusal, ReservationRefusal } from '../policy.js'
import type { ThroughputSample } from './throughput.js'
import * as c from './constants.js'

/** A connected peer as the dashboard lists it */
export interface PeerStatus {
  peerId: string
  /** Remote address of its oldest open connection, without /p2p/<id> */
  address: string
  direction: 'inbound' | 'outbound'
  /** Open connections to it */
  connections: number
  /** When its oldest open connection opened (ms since the epoch) */
  since: number
  /** It holds a reservation */
  reserved: boolean
  /** Identify's agent version: peer-supplied text, truncated, to be shown as text only */
  agent?: string
}

export interface ReservationStatus {
  peerId: string
  /** The address it reserved from (what the per-IP limit counts) */
  address: string
  /** When the reservation lapses unless refreshed (ms since the epoch) */
  expiresAt: number
}

/** `relayNode.mailbox.stats()`, when the relay runs a mailbox for offline agents */
export type MailboxStatus =
  | { enabled: false }
  | { enabled: true, recipients: number, messages: number, bytes: number, oldestAt: number | null, oldestAgeMs: number | null }
  | { enabled: true, error: string }

/** The relay's trust gossip counters (`relayNode.trust()`), when it runs the gossip */
export type TrustStatus =
  | { enabled: false }
  | { enabled: true, stored: number, accepted: number, rejected: number, synced: number }

/** GET /api/status: everything the dashboard page shows */
export interface RelayStatus {
  v: 1
  /** molt package version */
  version: string
  /** When this document was made (ms since the epoch) */
  now: number
  startedAt: number
  uptimeMs: number
  peerId: string
  /** Listen/announce addresses with /p2p/<id> */
  addresses: string[]
  shuttingDown: boolean
  /** Over the bandwidth budget: new reservations and relayed connections are being refused */
  overBudget: boolean
  limits: Pick<RelayNode['limits'], 'maxReservations' | 'maxReservationsPerIp' | 'reservationTtlMs' | 'connectionDataLimitBytes' | 'connectionDurationLimitMs' | 'bandwidthBytesPerSecond'>
  /** Connected peers: exact count, first MAX_LISTED by connection age */
  peers: { count: number, list: PeerStatus[], truncated: boolean }
  /** Reservations held: exact count, first MAX_LISTED by expiry */
  reservations: { count: number, list: ReservationStatus[], truncated: boolean }
  relayed: { open: number, total: number, bytes: number, bytesPerSecond: number, heldBytes: number, cut: number }
  /** Relayed bytes per sample period, oldest first */
  throughput: { intervalMs: number, samples: ThroughputSample[] }
  refused: { reservations: Record<ReservationRefusal, number>, relayedConnections: Record<CircuitRefusal, number> }
  mailbox: MailboxStatus
  trust: TrustStatus
}

/** What the status is read from: a RelayNode (its `mailbox`, if any, is looked up defensively) */
export type StatusSource = Pick<RelayNode, 'peerId' | 'libp2p' | 'limits' | 'getMultiaddrs' | 'stats' | 'info'>

export interface StatusContext {
  version: string
  startedAt: number
  now: number
  throughput: { intervalMs: number, samples: ThroughputSample[] }
}

export async function relayStatus (relay: StatusSource, context: StatusContext): Promise<RelayStatus> {
  const stats = relay.stats()
  const peerId = relay.peerId.toString()
  const reservations = [...relay.libp2p.services.relay.reservations.entries()]
    .map(([peer, reservation]): ReservationStatus => ({ peerId: peer.toString(), address: withoutPeer(reservation.addr.toString()), expiresAt: reservation.expiry.getTime() }))
    .sort((a, b) => a.expiresAt - b.expiresAt)
  const reserved = new Set(reservations.map(r => r.peerId))
  const peers = await listPeers(relay, reserved)
  const { limits } = relay
  return {
    v: 1,
    version: context.version,
    now: context.now,
    startedAt: context.startedAt,
    uptimeMs: Math.max(0, context.now - context.startedAt),
    peerId,
    addresses: relay.getMultiaddrs().map(ma => {
      const text = ma.toString()
      return text.endsWith(`/p2p/${peerId}`) ? text : `${text}/p2p/${peerId}`
    }),
    shuttingDown: stats.shuttingDown,
    overBudget: relay.info().load.overBudget,
    limits: {
      maxReservations: limits.maxReservations,
      maxReservationsPerIp: limits.maxReservationsPerIp,
      reservationTtlMs: limits.reservationTtlMs,
      connectionDataLimitBytes: limits.connectionDataLimitBytes,
      connectionDurationLimitMs: limits.connectionDurationLimitMs,
      bandwidthBytesPerSecond: limits.bandwidthBytesPerSecond
    },
    peers: { count: peers.count, list: peers.list, truncated: peers.count > peers.list.length },
    reservations: { count: reservations.length, list: reservations.slice(0, c.MAX_LISTED), truncated: reservations.length > c.MAX_LISTED },
    relayed: { open: stats.relayedConnections, total: stats.relayedConnectionsTotal, bytes: stats.relayedBytes, bytesPerSecond: stats.relayedBytesPerSecond, heldBytes: stats.heldBytes, cut: stats.relayedConnectionsCut },
    throughput: context.throughput,
    refused: { reservations: stats.reservationsRefused, relayedConnections: stats.relayedConnectionsRefused },
    mailbox: await mailboxStatus(relay, context.now),
    trust: trustStatus(relay)
  }
}

async function listPeers (relay: StatusSource, reserved: Set<string>): Promise<{ count: number, list: PeerStatus[] }> {
  const byPeer = new Map<string, { peer: PeerId, connections: Connection[] }>()
  for (const connection of relay.libp2p.getConnections()) {
    if (connection.status !== 'open') continue
    const key = connection.remotePeer.toString()
    const entry = byPeer.get(key) ?? { peer: connection.remotePeer, connections: [] }
    entry.connections.push(connection)
    byPeer.set(key, entry)
  }
  const listed = [...byPeer.values()]
    .map(({ peer, connections }) => {
      const oldest = connections.reduce((a, b) => a.timeline.open <= b.timeline.open ? a : b)
      return { peer, oldest, connections: connections.length }
    })
    .sort((a, b) => a.oldest.timeline.open - b.oldest.timeline.open)
    .slice(0, c.MAX_LISTED)
  const list = await Promise.all(listed.map(async ({ peer, oldest, connections }): Promise<PeerStatus> => {
    const key = peer.toString()
    const agent = await agentVersion(relay, peer)
    return {
      peerId: key,
      address: withoutPeer(oldest.remoteAddr.toString()),
      direction: oldest.direction,
      connections,
      since: oldest.timeline.open,
      reserved: reserved.has(key),
      ...(agent !== undefined ? { agent } : {})
    }
  }))
  return { count: byPeer.size, list }
}

/** The peer's identify agent version, cut to MAX_AGENT_LENGTH; undefined when unknown */
async function agentVersion (relay: StatusSource, peer: PeerId): Promise<string | undefined> {
  try {
    const bytes = (await relay.libp2p.peerStore.get(peer)).metadata.get('AgentVersion')
    if (bytes == null) return undefined
    const text = new TextDecoder().decode(bytes)
    return text.length > c.MAX_AGENT_LENGTH ? `${text.slice(0, c.MAX_AGENT_LENGTH)}…` : text
  } catch {
    // not in the peer store (yet): identify has not finished
    return undefined
  }
}

/**
 * The relay's mailbox figures if it runs one (`relay.mailbox.stats()`,
 * sync or async, `{ recipients, messages, bytes, oldestAt }`). Read
 * defensively: a relay without a mailbox, or one whose stats fail or have
 * another shape, must not break the dashboard.
 */
export async function mailboxStatus (relay: object, now: number): Promise<MailboxStatus> {
  const mailbox = (relay as { mailbox?: unknown }).mailbox
  const stats = (mailbox as { stats?: unknown } | null | undefined)?.stats
  if (typeof stats !== 'function') return { enabled: false }
  let raw: unknown
  try {
    raw = await stats.call(mailbox)
  } catch (err: any) {
    return { enabled: true, error: String(err?.message ?? err) }
  }
  const value = (raw ?? {}) as Record<string, unknown>
  const count = (name: string): number | undefined => {
    const n = value[name]
    return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined
  }
  const recipients = count('recipients')
  const messages = count('messages')
  const bytes = count('bytes')
  if (recipients === undefined || messages === undefined || bytes === undefined) {
    return { enabled: true, error: 'mailbox stats lack recipients, messages or bytes' }
  }
  const oldest = value.oldestAt instanceof Date ? value.oldestAt.getTime() : value.oldestAt
  const oldestAt = typeof oldest === 'number' && Number.isFinite(oldest) && messages > 0 ? oldest : null
  return { enabled: true, recipients, messages, bytes, oldestAt, oldestAgeMs: oldestAt != null ? Math.max(0, now - oldestAt) : null }
}

/** The relay's trust gossip figures (`relay.trust()`), read as defensively as the mailbox's */
export function trustStatus (relay: object): TrustStatus {
  const read = (relay as { trust?: unknown }).trust
  if (typeof read !== 'function') return { enabled: false }
  try {
    const stats = read.call(relay) as { stored?: unknown, accepted?: unknown, rejected?: unknown, synced?: unknown } | undefined
    if (stats == null) return { enabled: false }
    const n = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) ? v : 0
    const rejected = typeof stats.rejected === 'object' && stats.rejected !== null
      ? Object.values(stats.rejected as Record<string, unknown>).reduce<number>((sum, v) => sum + n(v), 0)
      : 0
    return { enabled: true, stored: n(stats.stored), accepted: n(stats.accepted), rejected, synced: n(stats.synced) }
  } catch {
    return { enabled: false }
  }
}

/** `/ip4/…/tcp/…/p2p/<id>` → `/ip4/…/tcp/…`: the PeerId has its own column */
function withoutPeer (address: string): string {
  return address.replace(/\/p2p\/[^/]+$/, '')
}
