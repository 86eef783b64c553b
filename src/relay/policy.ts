import type { Connection, Logger, PeerId, Stream, StreamMiddleware } from '@libp2p/interface'
import type { RelayReservation } from '@libp2p/circuit-relay-v2'
import { BandwidthMeter } from './bandwidth.js'
import type { RelayLimits } from './limits.js'
import * as c from './constants.js'
import { RelayMemoryLimitError } from './errors.js'
import { ipKey } from '../utils/ip-key.js'

export { ipKey }

/** Why a reservation was refused */
export type ReservationRefusal = 'global-limit' | 'per-ip-limit' | 'bandwidth' | 'shutting-down'
/** Why a relayed connection (circuit) was refused */
export type CircuitRefusal = 'bandwidth' | 'shutting-down'

export const RESERVATION_REFUSALS: readonly ReservationRefusal[] = ['global-limit', 'per-ip-limit', 'bandwidth', 'shutting-down']
export const CIRCUIT_REFUSALS: readonly CircuitRefusal[] = ['bandwidth', 'shutting-down']

export interface RelayStats {
  /** Reservations held now */
  reservations: number
  /** Refused reservation requests since start, by reason */
  reservationsRefused: Record<ReservationRefusal, number>
  /** Relayed connections open now */
  relayedConnections: number
  /** Relayed connections opened since start */
  relayedConnectionsTotal: number
  /** Refused relayed connections since start, by reason */
  relayedConnectionsRefused: Record<CircuitRefusal, number>
  /** Bytes received on hop/stop streams (what the relay forwarded, plus a few hundred bytes of circuit handshakes) since start */
  relayedBytes: number
  /** relayedBytes per second over the bandwidth window */
  relayedBytesPerSecond: number
  /** Bytes the dialling sides sent over the relayed connections open now, held until each closes (constants.ts MAX_HELD_HOP_BYTES) */
  heldBytes: number
  /** Relayed connections closed since start because heldBytes went over the limit */
  relayedConnectionsCut: number
  /** Connected peers */
  peers: number
  /** stop() was called: new reservations and circuits are refused */
  shuttingDown: boolean
}

/** The relay server's reservations, as much of a PeerMap as the policy uses */
export interface ReservationMap {
  readonly size: number
  has(peer: PeerId): boolean
  get(peer: PeerId): RelayReservation | undefined
  delete(peer: PeerId): boolean
  entries(): IterableIterator<[PeerId, RelayReservation]>
}

export interface RelayPolicyDeps {
  log: Logger
  /** Open connections to a peer */
  connections(peer: PeerId): Connection[]
  /** The circuit relay server's reservation store */
  reservations(): ReservationMap
  /** Connected peers */
  peerCount(): number
}

interface Pending {
  ip: string
  at: number
}

/**
 * molt's relay policy on top of the stock circuit relay server, which only has
 * a global reservation cap: per-IP and global caps and a bandwidth budget
 * through the connection gater, byte and circuit accounting through stream
 * middleware on the hop/stop protocols, and the shutdown drain.
 */
export class RelayPolicy {
  private readonly meter: BandwidthMeter
  private readonly refused: Record<ReservationRefusal, number> = { 'global-limit': 0, 'per-ip-limit': 0, bandwidth: 0, 'shutting-down': 0 }
  private readonly circuitsRefused: Record<CircuitRefusal, number> = { bandwidth: 0, 'shutting-down': 0 }
  /** Admitted by the gater, maybe not stored by the relay server yet: keyed by PeerId string */
  private readonly pending = new Map<string, Pending>()
  private circuits = 0
  private circuitsTotal = 0
  /** Bytes received so far on each open inbound hop stream: what the stock relay keeps buffered for it */
  private readonly held = new Map<Stream, number>()
  private heldBytes = 0
  private circuitsCut = 0
  private draining = false
  private readonly drainWaiters = new Set<() => void>()

  constructor (readonly limits: RelayLimits, private readonly deps: RelayPolicyDeps, private readonly now: () => number = Date.now) {
    this.meter = new BandwidthMeter(limits.bandwidthWindowMs, c.BANDWIDTH_BUCKETS, now)
  }

  /** connectionGater.denyInboundRelayReservation: true refuses (the client gets PERMISSION_DENIED) */
  denyReservation (peer: PeerId): boolean {
    const reservations = this.deps.reservations()
    const ip = this.ipOf(peer)
    const refuse = (reason: ReservationRefusal, detail: string): true => {
      this.refused[reason]++
      this.deps.log('refused reservation for %p from %s: %s (%s)', peer, ip, reason, detail)
      return true
    }
    if (this.draining) return refuse('shutting-down', 'the relay is stopping')
    // a refresh of a reservation already held never counts against the caps
    if (reservations.has(peer)) return false
    if (this.overBudget()) return refuse('bandwidth', this.budgetDetail())
    const { total, sameIp } = this.count(reservations, ip)
    if (total >= this.limits.maxReservations) return refuse('global-limit', `${total}/${this.limits.maxReservations} reservations held`)
    if (sameIp >= this.limits.maxReservationsPerIp) return refuse('per-ip-limit', `${sameIp}/${this.limits.maxReservationsPerIp} reservations held from ${ip}`)
    this.pending.set(peer.toString(), { ip, at: this.now() })
    this.deps.log('admitted reservation for %p from %s (%d held)', peer, ip, total + 1)
    return false
  }

  /** connectionGater.denyOutboundRelayedConnection: asked before the relay opens a circuit from source to destination */
  denyCircuit (source: PeerId, destination: PeerId): boolean {
    const refuse = (reason: CircuitRefusal, detail: string): true => {
      this.circuitsRefused[reason]++
      this.deps.log('refused relayed connection %p -> %p: %s (%s)', source, destination, reason, detail)
      return true
    }
    if (this.draining) return refuse('shutting-down', 'the relay is stopping')
    if (this.overBudget()) return refuse('bandwidth', this.budgetDetail())
    return false
  }

  /** Count the bytes of an inbound hop stream (call it as the hop handler starts) */
  countHopStream (stream: Stream): void {
    this.countBytes(stream, (bytes) => { this.hold(stream, bytes) })
    stream.addEventListener('close', () => { this.release(stream) }, { once: true })
  }

  /** Bytes of an open hop stream the stock relay now holds; over the limit, close the circuits holding most */
  private hold (stream: Stream, bytes: number): void {
    if (stream.status !== 'open') return
    this.held.set(stream, (this.held.get(stream) ?? 0) + bytes)
    this.heldBytes += bytes
    while (this.heldBytes > this.limits.maxHeldHopBytes && this.held.size > 0) {
      let largest = stream
      let most = -1
      for (const [candidate, count] of this.held) {
        if (count > most) {
          largest = candidate
          most = count
        }
      }
      this.circuitsCut++
      this.deps.log('closing a relayed connection holding %d bytes: %d bytes held for open circuits, limit %d', most, this.heldBytes, this.limits.maxHeldHopBytes)
      this.release(largest)
      largest.abort(new RelayMemoryLimitError(`relayed connection closed: ${most} bytes held for it, ${this.limits.maxHeldHopBytes} allowed for all`))
    }
  }

  private release (stream: Stream): void {
    const count = this.held.get(stream)
    if (count === undefined) return
    this.held.delete(stream)
    this.heldBytes -= count
  }

  /** Middleware for the stop streams the relay opens: one per relayed connection */
  readonly stopMiddleware: StreamMiddleware = (stream, connection, next) => {
    this.circuits++
    this.circuitsTotal++
    stream.addEventListener('close', () => {
      this.circuits--
      if (this.circuits === 0) for (const wake of this.drainWaiters) wake()
    }, { once: true })
    next(stream, connection)
    this.countBytes(stream)
  }

  /** A peer's last connection closed: its reservation (if any) is useless now, free the slot */
  peerDisconnected (peer: PeerId): void {
    this.pending.delete(peer.toString())
    const reservations = this.deps.reservations()
    const reservation = reservations.get(peer)
    if (reservation == null) return
    // clear() first: the expiry timer would otherwise later delete a newer reservation of the same peer
    reservation.signal.clear()
    reservations.delete(peer)
    this.deps.log('released the reservation of %p: disconnected', peer)
  }

  /** Refuse every new reservation and circuit from now on */
  startDraining (): void {
    this.draining = true
  }

  /** Resolves once no relayed connection is open, or after `ms` */
  async drained (ms: number): Promise<void> {
    if (this.circuits === 0 || ms <= 0) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.drainWaiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.drainWaiters.add(done)
    })
  }

  overBudget (): boolean {
    return this.limits.bandwidthBytesPerSecond > 0 && this.meter.rate() > this.limits.bandwidthBytesPerSecond
  }

  stats (): RelayStats {
    return {
      reservations: this.deps.reservations().size,
      reservationsRefused: { ...this.refused },
      relayedConnections: this.circuits,
      relayedConnectionsTotal: this.circuitsTotal,
      relayedConnectionsRefused: { ...this.circuitsRefused },
      relayedBytes: this.meter.total,
      relayedBytesPerSecond: Math.round(this.meter.rate()),
      heldBytes: this.heldBytes,
      relayedConnectionsCut: this.circuitsCut,
      peers: this.deps.peerCount(),
      shuttingDown: this.draining
    }
  }

  private budgetDetail (): string {
    return `${Math.round(this.meter.rate())} B/s relayed over the last ${this.limits.bandwidthWindowMs} ms, budget ${this.limits.bandwidthBytesPerSecond} B/s`
  }

  /**
   * A 'message' listener present while the stream's consumer has none takes
   * the data away from it (v3 streams dispatch instead of buffering). The relay
   * server attaches its reader synchronously when it gets the stream, so ours
   * joins on the next macrotask, once the reader is there.
   */
  private countBytes (stream: Stream, onBytes?: (bytes: number) => void): void {
    setTimeout(() => {
      if (stream.status !== 'open') return
      stream.addEventListener('message', (evt) => {
        this.meter.record(evt.data.byteLength)
        onBytes?.(evt.data.byteLength)
      })
    }, 0)
  }

  /** Reservations held or admitted: in all, and from `ip` */
  private count (reservations: ReservationMap, ip: string): { total: number, sameIp: number } {
    let total = 0
    let sameIp = 0
    const held = new Set<string>()
    for (const [peer, reservation] of reservations.entries()) {
      const key = peer.toString()
      held.add(key)
      total++
      if ((this.pending.get(key)?.ip ?? ipKey(reservation.addr)) === ip) sameIp++
    }
    const now = this.now()
    for (const [key, pending] of this.pending) {
      if (held.has(key)) continue
      if (now - pending.at > c.PENDING_RESERVATION_GRACE) {
        // stored and since expired, or never stored
        this.pending.delete(key)
        continue
      }
      total++
      if (pending.ip === ip) sameIp++
    }
    return { total, sameIp }
  }

  /** The IP key of the peer's direct connection (the relay refuses reservations over relayed ones) */
  ipOf (peer: PeerId): string {
    const connections = this.deps.connections(peer).filter(conn => conn.limits == null && conn.status === 'open')
    for (const conn of connections.reverse()) {
      const key = ipKey(conn.remoteAddr)
      if (key !== 'unknown') return key
    }
    return 'unknown'
  }
}
