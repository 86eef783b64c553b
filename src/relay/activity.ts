import type { PeerId } from '@libp2p/interface'
import type { RelayNode } from './relay-node.js'
import type { CircuitRefusal, ReservationRefusal } from './policy.js'

/** What happened on a relay, for operators' logs (PeerIds and addresses only, never traffic) */
export type RelayActivity =
  | { type: 'peer:connect', peer: string, address?: string }
  | { type: 'peer:disconnect', peer: string }
  | { type: 'reservation:add', peer: string, address: string, expiresAt: number }
  | { type: 'reservation:remove', peer: string }
  | { type: 'refused', reservations: Partial<Record<ReservationRefusal, number>>, relayedConnections: Partial<Record<CircuitRefusal, number>> }

/** How often reservations and refusal counters are compared with the previous look */
export const ACTIVITY_INTERVAL = 1000

export interface WatchActivityOptions {
  /** @default ACTIVITY_INTERVAL */
  intervalMs?: number
}

/**
 * Report a relay's activity as it happens: connects and disconnects from
 * libp2p's events; new and gone reservations and new refusals by comparing
 * with the previous look every `intervalMs`, because the stock relay server
 * dispatches no reservation events (`relay:reservation` is declared but never
 * sent in @libp2p/circuit-relay-v2 4.2) and refusals are counters. One
 * `refused` report per interval at most, however many arrive. Returns stop().
 */
export function watchRelayActivity (relay: Pick<RelayNode, 'libp2p' | 'stats'>, report: (activity: RelayActivity) => void, options: WatchActivityOptions = {}): () => void {
  const { libp2p } = relay
  const onConnect = (evt: CustomEvent<PeerId>): void => {
    const address = libp2p.getConnections(evt.detail)[0]?.remoteAddr.toString()
    report({ type: 'peer:connect', peer: evt.detail.toString(), ...(address !== undefined ? { address } : {}) })
  }
  const onDisconnect = (evt: CustomEvent<PeerId>): void => { report({ type: 'peer:disconnect', peer: evt.detail.toString() }) }
  libp2p.addEventListener('peer:connect', onConnect)
  libp2p.addEventListener('peer:disconnect', onDisconnect)

  let held = new Map<string, number>()
  let refused = relay.stats()
  const look = (): void => {
    const now = new Map<string, number>()
    for (const [peer, reservation] of libp2p.services.relay.reservations.entries()) {
      const key = peer.toString()
      const expiresAt = reservation.expiry.getTime()
      now.set(key, expiresAt)
      // a refresh moves the expiry: not a new reservation
      if (!held.has(key)) report({ type: 'reservation:add', peer: key, address: reservation.addr.toString(), expiresAt })
    }
    for (const key of held.keys()) {
      if (!now.has(key)) report({ type: 'reservation:remove', peer: key })
    }
    held = now
    const stats = relay.stats()
    const reservations = increase(refused.reservationsRefused, stats.reservationsRefused)
    const relayedConnections = increase(refused.relayedConnectionsRefused, stats.relayedConnectionsRefused)
    if (Object.keys(reservations).length > 0 || Object.keys(relayedConnections).length > 0) {
      report({ type: 'refused', reservations, relayedConnections })
    }
    refused = stats
  }
  const timer = setInterval(look, options.intervalMs ?? ACTIVITY_INTERVAL)
  timer.unref()
  return () => {
    clearInterval(timer)
    libp2p.removeEventListener('peer:connect', onConnect)
    libp2p.removeEventListener('peer:disconnect', onDisconnect)
  }
}

/** The counters that went up, by how much */
function increase<K extends string> (before: Record<K, number>, after: Record<K, number>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {}
  for (const key of Object.keys(after) as K[]) {
    const delta = after[key] - (before[key] ?? 0)
    if (delta > 0) out[key] = delta
  }
  return out
}
