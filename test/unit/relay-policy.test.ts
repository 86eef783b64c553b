import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerMap } from '@libp2p/peer-collections'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { RelayReservation } from '@libp2p/circuit-relay-v2'
import { RelayPolicy } from '../../src/relay/policy.js'
import { resolveRelayLimits } from '../../src/relay/limits.js'
import { relayCapacitySizes } from '../../bench/relay.js'

/** A policy over a reservation store the test fills itself (what the circuit relay server does after the gater admits a peer) */
function policyWith (limits: { maxReservations: number, maxReservationsPerIp: number }): {
  policy: RelayPolicy
  store: (peer: PeerId, ip: string) => void
} {
  const reservations = new PeerMap<RelayReservation>()
  const policy = new RelayPolicy(resolveRelayLimits(limits), {
    log: defaultLogger().forComponent('test'),
    // every holder connects from 127.0.0.1 (what the gater's ipOf() reads)
    connections: () => [{ remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1'), status: 'open' } as any],
    reservations: () => reservations,
    peerCount: () => reservations.size
  })
  return {
    policy,
    store: (peer, ip) => {
      const addr: Multiaddr = multiaddr(`/ip4/${ip}/tcp/4001`)
      reservations.set(peer, {
        expiry: new Date(Date.now() + 60_000),
        addr,
        signal: { clear: () => {} }
      } as unknown as RelayReservation)
    }
  }
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('relay policy: reservation caps', () => {
  it('applies the per-IP cap to stored reservations; a refresh never counts', async () => {
    const { policy, store } = policyWith({ maxReservations: 5, maxReservationsPerIp: 2 })
    const a = [await peer(), await peer()]
    for (const p of a) {
      expect(policy.denyReservation(p)).toBe(false)
      store(p, '127.0.0.1')
    }
    // a third from the same address: per-IP cap
    expect(policy.denyReservation(await peer())).toBe(true)
    expect(policy.stats().reservationsRefused['per-ip-limit']).toBe(1)
    // a refresh of a held reservation never counts against the caps
    expect(policy.denyReservation(a[0])).toBe(false)
  })

  it('counts admitted-but-not-yet-stored reservations against the global cap', async () => {
    const { policy } = policyWith({ maxReservations: 2, maxReservationsPerIp: 10 })
    expect(policy.denyReservation(await peer())).toBe(false)
    expect(policy.denyReservation(await peer())).toBe(false)
    expect(policy.denyReservation(await peer())).toBe(true)
    expect(policy.stats().reservationsRefused['global-limit']).toBe(1)
  })
})

describe('relay bench options', () => {
  it('MOLT_BENCH_RELAY_SIZES replaces the capacity rows; none runs only relayed vs direct', () => {
    expect(relayCapacitySizes([100, 500], undefined)).toEqual([100, 500])
    expect(relayCapacitySizes([100, 500], 'none')).toEqual([])
    expect(relayCapacitySizes([100, 500], '')).toEqual([])
    expect(relayCapacitySizes([100], '5000')).toEqual([5000])
    expect(relayCapacitySizes([100], '1000, 5000')).toEqual([1000, 5000])
    expect(() => relayCapacitySizes([100], 'lots')).toThrow(/MOLT_BENCH_RELAY_SIZES/)
  })
})
