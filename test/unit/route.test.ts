import { describe, it, expect } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { connectionRoute, peerIdOf, relayOf, routeOver } from '../../src/routing/route.js'

const RELAY = '12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5'
const PEER = '12D3KooWJ8ZashAkt5V1iGT5GDwGwKLqZh6z7BBGbfG4z7qmEZUM'
const circuit = multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`)
const direct = multiaddr(`/ip4/127.0.0.1/tcp/5001/p2p/${PEER}`)
const conn = (remoteAddr: typeof direct, limits?: object): any => ({ remoteAddr, limits })

describe('routes', () => {
  it('reads relay and peer ids out of addresses', () => {
    expect(relayOf(circuit)).toBe(RELAY)
    expect(peerIdOf(circuit)).toBe(PEER)
    expect(relayOf(direct)).toBeUndefined()
  })

  it('a circuit connection is relayed even when the relay set no limits', () => {
    expect(connectionRoute(conn(circuit))).toBe('relayed')
    expect(connectionRoute(conn(direct))).toBe('direct')
    expect(connectionRoute(conn(direct, { bytes: 1n }))).toBe('relayed')
  })

  it('a peer is direct as soon as one connection is', () => {
    expect(routeOver([conn(circuit)])).toEqual({ route: 'relayed', relay: RELAY })
    expect(routeOver([conn(circuit), conn(direct)])).toEqual({ route: 'direct' })
    expect(routeOver([])).toEqual({ route: 'direct' })
  })
})
