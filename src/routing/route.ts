import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * How a message travels: straight to the peer, through a circuit relay, or
 * sealed and held in a relay's mailbox until the recipient fetched it
 */
export type Route = 'direct' | 'relayed' | 'mailbox'

/** `…/p2p-circuit/…`: an address (or connection) that goes through a relay */
export function isRelayedAddress (addr: Multiaddr): boolean {
  return addr.getComponents().some(part => part.name === 'p2p-circuit')
}

/** The relay's PeerId in `/…/p2p/<relay>/p2p-circuit/…`, if any */
export function relayOf (addr: Multiaddr): string | undefined {
  const parts = addr.getComponents()
  const circuit = parts.findIndex(part => part.name === 'p2p-circuit')
  if (circuit < 1) return undefined
  return parts.slice(0, circuit).findLast(part => part.name === 'p2p')?.value
}

/** The PeerId an address ends in (`…/p2p/<id>`), if any */
export function peerIdOf (addr: Multiaddr): string | undefined {
  return addr.getComponents().findLast(part => part.name === 'p2p')?.value
}

/**
 * A connection is relayed when its address goes through a circuit. Its
 * `limits` alone do not tell: a relay may apply none.
 */
export function connectionRoute (connection: Connection): Route {
  return connection.limits != null || isRelayedAddress(connection.remoteAddr) ? 'relayed' : 'direct'
}

/** The route to a peer over these connections: direct as soon as one is direct (or none is open) */
export function routeOver (connections: Connection[]): { route: Route, relay?: string } {
  if (connections.length === 0 || connections.some(c => connectionRoute(c) === 'direct')) return { route: 'direct' }
  return { route: 'relayed', relay: relayOf(connections[0].remoteAddr) }
}
