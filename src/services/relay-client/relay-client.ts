import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Connection, Listener, Logger, PeerId, PeerStore, Startable, TypedEventTarget, Libp2pEvents } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, TransportManager } from '@libp2p/interface-internal'
import * as c from './constants.js'
import { RelayClientStoppedError, ReservationTimeoutError } from './errors.js'
import { isRelayedAddress, peerIdOf, relayOf } from '../../routing/route.js'

export interface RelayClientInit {
  /** Relay multiaddrs ending in /p2p/<relay PeerId>; no built-in list. @default [] */
  relays?: string[]
  /**
   * Also use relays this node meets (LAN, DHT, connections) whose identify
   * lists the circuit relay hop protocol, after the configured ones. Off by
   * default: a directly reachable agent should not take relay slots. @default false
   */
  discoverRelays?: boolean
  /** @default 2 */
  maxReservations?: number
  /** @default 5000 */
  checkInterval?: number
  /** Time for one reservation attempt (dial and reservation), in ms; it is aborted after. @default 10 s */
  reserveTimeout?: number
}

export interface RelayClientComponents {
  peerStore: PeerStore
  transportManager: TransportManager
  connectionManager: ConnectionManager
  addressManager: AddressManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** One configured relay as this agent sees it */
export interface RelayStatus {
  relay: string
  address: string
  /** We hold a reservation and advertise a /p2p-circuit address through it */
  reserved: boolean
  /** Consecutive failed attempts */
  failures: number
  /** `config` (configured) or `discovered` (met on the network) */
  source: 'config' | 'discovered'
  lastError?: string
  /** When the current reservation was first seen (ms) */
  reservedSince?: number
}

/** Outcome of direct-connection upgrades after relayed connections (DCUtR hole punching) */
export interface HolePunchStats {
  /** Relayed connections opened (either direction) */
  relayedConnections: number
  /** Times a direct connection to a peer appeared while a relayed one to it was open */
  upgradedToDirect: number
}

export interface RelayClient extends Startable {
  holePunch(): HolePunchStats
  /** The configured relays and whether we hold a reservation on each */
  relays(): RelayStatus[]
  /** Check reservations now (also runs on a timer and when a relay disconnects) */
  maintain(): Promise<void>
}

/** The circuit relay v2 hop protocol: a peer that serves it is a relay */
const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
/** Relays met on the network that are remembered as candidates */
const MAX_DISCOVERED_RELAYS = 8

interface Candidate {
  address: Multiaddr
  relay: string
  source: 'config' | 'discovered'
  failures: number
  retryAt: number
  lastError?: string
  reservedSince?: number
  /** The circuit listener reserving on this relay, reused by every later attempt */
  listener?: Listener
}

/**
 * Keeps this agent reachable through circuit relays: holds reservations on up
 * to `maxReservations` of the configured relays, re-reserves when a relay
 * restarts (js-libp2p does not re-reserve a pinned relay: libp2p issue 3601)
 * and fails over to another configured relay when one dies.
 */
class DefaultRelayClient implements RelayClient {
  private readonly log: Logger
  private readonly candidates: Candidate[]
  private readonly max: number
  private timer?: ReturnType<typeof setInterval>
  private running?: Promise<void>
  private started = false
  /** Aborts the attempt in progress when the service stops */
  private shutdown = new AbortController()
  private readonly punch: HolePunchStats = { relayedConnections: 0, upgradedToDirect: 0 }

  constructor (private readonly components: RelayClientComponents, init: RelayClientInit) {
    this.log = components.logger.forComponent('molt:relay-client')
    this.max = init.maxReservations ?? c.MAX_RESERVATIONS
    this.candidates = (init.relays ?? []).map(address => {
      const ma = multiaddr(address)
      const relay = peerIdOf(ma)
      if (relay == null) throw new TypeError(`relay address ${address} must end in /p2p/<relay PeerId>`)
      return { address: ma, relay, source: 'config' as const, failures: 0, retryAt: 0 }
    })
    this.discoverRelays = init.discoverRelays ?? false
    this.checkInterval = init.checkInterval ?? c.CHECK_INTERVAL
    this.reserveTimeout = init.reserveTimeout ?? c.RESERVE_TIMEOUT
  }

  private readonly checkInterval: number
  private readonly reserveTimeout: number
  private readonly discoverRelays: boolean

  async start (): Promise<void> {
    this.started = true
    this.shutdown = new AbortController()
    this.components.events.addEventListener('connection:open', this.onConnection)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    if (this.discoverRelays) this.components.events.addEventListener('peer:identify', this.onIdentify)
    this.timer = setInterval(() => { if (this.candidates.length > 0) this.maintain().catch(() => {}) }, this.checkInterval)
    this.timer.unref()
  }

  /** After start: the first reservations are made once the node listens */
  afterStart (): void {
    if (this.candidates.length > 0) this.maintain().catch(() => {})
  }

  /** A peer serving the hop protocol is a relay: remember it as a candidate */
  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    const { peerId, protocols } = evt.detail
    const id = peerId.toString()
    if (!protocols.includes(HOP_PROTOCOL) || this.candidates.some(x => x.relay === id)) return
    if (this.candidates.filter(x => x.source === 'discovered').length >= MAX_DISCOVERED_RELAYS) return
    this.candidates.push({ address: multiaddr(`/p2p/${id}`), relay: id, source: 'discovered', failures: 0, retryAt: 0 })
    this.log('met relay %s', id)
    this.maintain().catch(() => {})
  }

  holePunch (): HolePunchStats {
    return { ...this.punch }
  }

  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort(new RelayClientStoppedError('the relay client stopped'))
    this.components.events.removeEventListener('connection:open', this.onConnection)
    clearInterval(this.timer)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  relays (): RelayStatus[] {
    const reserved = this.reservedRelays()
    return this.candidates.map(candidate => ({
      relay: candidate.relay,
      address: candidate.address.toString(),
      source: candidate.source,
      reserved: reserved.has(candidate.relay),
      failures: candidate.failures,
      lastError: candidate.lastError,
      reservedSince: reserved.has(candidate.relay) ? candidate.reservedSince : undefined
    }))
  }

  async maintain (): Promise<void> {
    // one pass at a time; callers share the running one
    this.running ??= this.pass().finally(() => { this.running = undefined })
    return this.running
  }

  private async pass (): Promise<void> {
    if (!this.started) return
    const reserved = this.reservedRelays()
    for (const candidate of this.candidates) {
      if (!reserved.has(candidate.relay)) candidate.reservedSince = undefined
    }
    const now = Date.now()
    for (const candidate of this.candidates) {
      if (this.reservedRelays().size >= this.max) return
      if (reserved.has(candidate.relay) || candidate.retryAt > now) continue
      try {
        await this.reserve(candidate)
        candidate.failures = 0
        candidate.lastError = undefined
        candidate.reservedSince = Date.now()
        this.log('reserved a slot on relay %s', candidate.relay)
      } catch (err: any) {
        candidate.failures++
        candidate.lastError = err.message
        const delay = Math.min(c.RETRY_MAX, c.RETRY_MIN * 2 ** (candidate.failures - 1))
        candidate.retryAt = Date.now() + delay
        // retry when the backoff ends, not at the next check tick
        setTimeout(() => { this.maintain().catch(() => {}) }, delay).unref()
        this.log('no reservation on relay %s (attempt %d): %s', candidate.relay, candidate.failures, err.message)
      }
    }
  }

  /**
   * One reservation attempt, given up after `reserveTimeout` or when the
   * service stops. Giving up aborts the attempt: the dial to the relay is
   * cancelled. (The circuit listener's own reservation request takes no
   * signal; it ends by its own timeout, and a reservation it makes late is
   * simply found reserved by the next pass.)
   */
  private async reserve (candidate: Candidate): Promise<void> {
    const deadline = new AbortController()
    const timer = setTimeout(() => {
      deadline.abort(new ReservationTimeoutError(`no reservation on ${candidate.relay} within ${this.reserveTimeout} ms`))
    }, this.reserveTimeout)
    const signal = AbortSignal.any([deadline.signal, this.shutdown.signal])
    try {
      await untilAborted(this.listen(candidate, signal), signal)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Reserve on the candidate's relay. The transport manager keeps every
   * listener it made until libp2p stops, also those whose listen() failed or
   * whose relay went away (each still subscribed to the reservation store), so
   * a transportManager.listen() per attempt piles one up per relay restart and
   * per failed retry: make one listener per relay and listen on it again.
   */
  private async listen (candidate: Candidate, signal: AbortSignal): Promise<void> {
    const addr = candidate.address.encapsulate('/p2p-circuit')
    const { transportManager, connectionManager } = this.components
    // dialled here, where the dial can be aborted: the listener then finds the connection open
    await connectionManager.openConnection(candidate.address, { signal })
    signal.throwIfAborted()
    if (candidate.listener != null && transportManager.getListeners().includes(candidate.listener)) {
      await candidate.listener.listen(addr)
      return
    }
    const before = new Set(transportManager.getListeners())
    const listening = transportManager.listen([addr])
    // created before listen()'s first await, and kept by libp2p even if listening fails
    candidate.listener = transportManager.getListeners().find(listener => !before.has(listener))
    await listening
  }

  /** Relays through which we currently advertise a /p2p-circuit address */
  private reservedRelays (): Set<string> {
    const relays = new Set<string>()
    for (const addr of this.components.addressManager.getAddresses()) {
      const relay = relayOf(addr)
      if (relay != null) relays.add(relay)
    }
    return relays
  }

  /** Tracks whether DCUtR (or any dial) replaced relayed connections with direct ones */
  private readonly relayedPeers = new Map<string, number>()
  private readonly onConnection = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    const peer = connection.remotePeer.toString()
    if (isRelayedAddress(connection.remoteAddr)) {
      // A relayed connection's remote address is a dialable way back to that peer
      // (unlike an inbound TCP source port): keep it, or a reply after the relay
      // cut the connection finds no address if identify had not finished
      this.components.peerStore.merge(connection.remotePeer, { multiaddrs: [connection.remoteAddr] })
        .catch((err: Error) => { this.log('could not store relayed address of %p - %s', connection.remotePeer, err.message) })
      this.punch.relayedConnections++
      this.relayedPeers.set(peer, (this.relayedPeers.get(peer) ?? 0) + 1)
      connection.addEventListener?.('close', () => {
        const left = (this.relayedPeers.get(peer) ?? 1) - 1
        if (left <= 0) this.relayedPeers.delete(peer)
        else this.relayedPeers.set(peer, left)
      })
    } else if (this.relayedPeers.has(peer)) {
      this.punch.upgradedToDirect++
      this.log('direct connection to %s replaces a relayed one', peer)
    }
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString()
    const candidate = this.candidates.find(x => x.relay === id)
    if (candidate == null) return
    this.log('relay %s disconnected; re-reserving', id)
    candidate.retryAt = 0
    // give the transport a moment to drop the dead reservation's addresses
    setTimeout(() => { this.maintain().catch(() => {}) }, 200).unref()
  }
}

/** `promise`, or `signal.reason` as soon as `signal` aborts (the work behind `promise` was told by the same signal) */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

export function relayClient (init: RelayClientInit = {}): (components: RelayClientComponents) => RelayClient {
  return (components) => new DefaultRelayClient(components, init)
}
