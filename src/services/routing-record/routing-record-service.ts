import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Libp2pEvents, Logger, PeerId, PrivateKey, Startable, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import { isRelayedAddress, relayOf } from '../../routing/route.js'
import { decodeRouteRecord, encodeRouteRecord, routeKey, signRouteRecord, type MailboxRelay, type RouteRecord, type UnsignedRouteRecord } from './record.js'
import * as c from './constants.js'
import { routingTableReady } from '../../discovery/dht-ready.js'
import { publishQueue } from '../../discovery/publish-queue.js'
import { PlacementWatch, type ClosestPeersTable, type PlacementInit } from '../../discovery/placement.js'

/** What the service needs of the DHT (a @libp2p/kad-dht instance) */
interface Dht {
  get(key: Uint8Array, options?: { signal?: AbortSignal }): AsyncIterable<{ name: string, value?: Uint8Array, messageName?: string, record?: { value: Uint8Array } }>
  put(key: Uint8Array, value: Uint8Array, options?: { signal?: AbortSignal }): AsyncIterable<{ name: string, messageName?: string, from?: PeerId }>
  routingTable?: ClosestPeersTable
}

export interface RoutingRecordComponents {
  peerId: PeerId
  privateKey: PrivateKey
  addressManager: AddressManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  /** The private DHT; without it nothing is published or looked up */
  dht?: Dht
  /** Open connections: a DHT peer may still come from one (identify) when no peer source is configured */
  connectionManager?: { getConnections(): unknown[] }
}

export interface RoutingRecordInit {
  /** Relays whose mailboxes this agent reads (its configured relays), besides those it holds reservations on. @default none */
  mailboxRelays?: () => Array<{ relay: string, address: string }>
  /** Publish records at all (a node that only looks others up sets false). @default true */
  publish?: boolean
  /** ms a published record stays valid. @default 24 h */
  ttl?: number
  /** ms between republications when nothing changed. @default 30 min */
  republishInterval?: number
  /** ms to wait for more address changes before publishing. @default 1000 */
  debounce?: number
  /**
   * Whether anything will bring this node DHT peers: bootstrap peers, relays
   * or mDNS. Without one, and with no open connection, a lookup does not wait
   * for a first DHT peer (nothing would add one: it waited out LOOKUP_TIMEOUT).
   * A node dialled or dialling by hand still waits: identify may bring one.
   * @default true
   */
  peerSource?: boolean
  /** When the published record counts as misplaced on the DHT (defaults: src/discovery/constants.ts) */
  placement?: PlacementInit
}

export interface RoutingRecordService extends Startable {
  /** The record this node last signed, if any */
  current(): RouteRecord | undefined
  /** Sign and publish a record of the current addresses now; resolves to the number of DHT servers that stored it */
  publish(options?: { signal?: AbortSignal }): Promise<number>
  /**
   * A peer's record from the DHT, verified (signature, key, expiry), or
   * undefined when none is found. `first`: stop at the first valid record a
   * server returns instead of walking to every closest server for the newest
   * (faster; a caller whose dial then fails looks up again without it).
   */
  lookup(peer: PeerId, options?: { signal?: AbortSignal, first?: boolean }): Promise<RouteRecord | undefined>
}

/** The routing record's name in its PlacementWatch (one key per node) */
const PLACEMENT_NAME = 'record'

/**
 * Keeps this agent's routing record (protocols/routing.md) in the private DHT:
 * publishes it once the node listens, again (debounced) whenever its addresses
 * or relay reservations change, when its DHT routing table has grown enough
 * that the record may sit on the wrong servers, and before it expires; and
 * looks up and verifies other agents' records.
 */
class DefaultRoutingRecordService implements RoutingRecordService {
  private readonly log: Logger
  private record?: RouteRecord
  private published = '' // fingerprint of the contents last published
  private debounceTimer?: ReturnType<typeof setTimeout>
  private republishTimer?: ReturnType<typeof setTimeout>
  private retryTimer?: ReturnType<typeof setTimeout>
  private retryDelay = c.PUBLISH_RETRY_MIN
  private publishing?: Promise<number>
  private again = false
  private controller = new AbortController()
  private placement?: PlacementWatch
  private readonly ttl: number
  private readonly republishInterval: number
  private readonly debounce: number

  constructor (private readonly components: RoutingRecordComponents, private readonly init: RoutingRecordInit) {
    this.log = components.logger.forComponent('molt:routing-record')
    this.ttl = Math.min(init.ttl ?? c.RECORD_TTL, c.MAX_RECORD_TTL)
    this.republishInterval = Math.min(init.republishInterval ?? c.REPUBLISH_INTERVAL, Math.floor(this.ttl / 2))
    this.debounce = init.debounce ?? c.PUBLISH_DEBOUNCE
  }

  readonly [Symbol.toStringTag] = 'molt/routing-record'

  /** libp2p's components throw on a service that is not configured (a node without the DHT) */
  private get dht (): Dht | undefined {
    try {
      return this.components.dht
    } catch {
      return undefined
    }
  }

  start (): void {
    this.controller = new AbortController()
    if (this.init.publish === false) return
    this.components.events.addEventListener('self:peer:update', this.onChange)
  }

  afterStart (): void {
    if (this.init.publish === false || this.dht == null) return
    // republishes when the closest servers the node now knows are not those the record reached
    this.placement = new PlacementWatch(this.dht.routingTable, () => {
      // a publication that reached no server has its retry scheduled (backing off) already
      if (this.retryDelay !== c.PUBLISH_RETRY_MIN) return
      this.log('routing record not on the closest DHT servers known now (%d of them lack it), publishing it again', this.placement?.misses(PLACEMENT_NAME))
      this.schedule(0)
    }, this.init.placement)
    this.placement.start()
    this.schedule(0)
  }

  stop (): void {
    this.controller.abort()
    this.components.events.removeEventListener('self:peer:update', this.onChange)
    this.placement?.stop()
    clearTimeout(this.debounceTimer)
    clearTimeout(this.republishTimer)
    clearTimeout(this.retryTimer)
  }

  current (): RouteRecord | undefined {
    return this.record
  }

  async publish (options: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.publishing != null) {
      this.again = true
      return this.publishing
    }
    this.publishing = this.publishOnce(options).finally(() => { this.publishing = undefined })
    const stored = await this.publishing
    if (this.again) {
      this.again = false
      this.schedule(0)
    }
    return stored
  }

  async lookup (peer: PeerId, options: { signal?: AbortSignal, first?: boolean } = {}): Promise<RouteRecord | undefined> {
    const dht = this.dht
    if (dht == null) return undefined
    const signal = AbortSignal.any([AbortSignal.timeout(c.LOOKUP_TIMEOUT), this.controller.signal, ...(options.signal != null ? [options.signal] : [])])
    // no configured peer source and no connection at all (a one-off CLI send): nothing would add a DHT peer
    const nothingComing = this.init.peerSource === false && (this.components.connectionManager?.getConnections().length ?? 0) === 0
    if (!nothingComing) await routingTableReady(dht.routingTable, signal)
    else if (dht.routingTable?.size === 0) this.log('looking up %p from an empty routing table without waiting - no peer source, no connection', peer)
    let best: RouteRecord | undefined
    try {
      for await (const event of dht.get(routeKey(peer), { signal })) {
        // each server's answer arrives as PEER_RESPONSE (with its record) before kad-dht's final pick (VALUE)
        const value = event.name === 'VALUE' ? event.value : event.name === 'PEER_RESPONSE' ? event.record?.value : undefined
        if (value == null) continue
        try {
          const record = await decodeRouteRecord(value, { expected: peer })
          if (best == null || record.seq > best.seq) best = record
        } catch (err: any) {
          this.log('refused a routing record of %p - %s', peer, err.message)
        }
        if (options.first === true && best != null) break
      }
    } catch (err: any) {
      // not found, out of time, or a correction to a stale server failed: what was verified still counts
      this.log('routing record lookup of %p ended - %s', peer, err.message)
      if (best == null && options.signal?.aborted === true) throw options.signal.reason
    }
    return best
  }

  private readonly onChange = (): void => {
    clearTimeout(this.debounceTimer)
    this.debounceTimer = setTimeout(() => {
      if (this.fingerprint(this.contents()) !== this.published) this.schedule(0)
    }, this.debounce)
    this.debounceTimer.unref?.()
  }

  private schedule (delay: number): void {
    if (this.controller.signal.aborted) return
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      this.publish({ signal: this.controller.signal }).catch((err: Error) => {
        this.log.error('could not publish the routing record - %e', err)
      })
    }, delay)
    this.retryTimer.unref?.()
  }

  private async publishOnce (options: { signal?: AbortSignal }): Promise<number> {
    const dht = this.dht
    if (dht == null) return 0
    const contents = this.contents()
    const now = Math.max(Date.now(), (this.record?.seq ?? 0) + 1)
    const record = await signRouteRecord({ ...contents, seq: now, exp: now + this.ttl }, this.components.privateKey)
    this.record = record
    this.published = this.fingerprint(contents)
    let stored = 0
    const holders: PeerId[] = []
    const key = routeKey(this.components.peerId)
    this.placement?.publishing(PLACEMENT_NAME)
    try {
      // one walk at a time per node (shared with its capability adverts); the time bound starts with the walk
      await publishQueue(dht).run(async () => {
        const signal = AbortSignal.any([AbortSignal.timeout(c.PUBLISH_TIMEOUT), this.controller.signal, ...(options.signal != null ? [options.signal] : [])])
        for await (const event of dht.put(key, encodeRouteRecord(record), { signal })) {
          if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') {
            stored++
            if (event.from != null) holders.push(event.from)
          }
        }
      }, { signal: AbortSignal.any([this.controller.signal, ...(options.signal != null ? [options.signal] : [])]) })
    } catch (err: any) {
      if (this.controller.signal.aborted) return stored
      this.log('publishing the routing record ended early - %s', err.message)
    } finally {
      this.placement?.published(PLACEMENT_NAME, key, holders)
    }
    clearTimeout(this.republishTimer)
    if (stored === 0) {
      // no server took it (none known yet, or all gone): try again soon, backing off
      this.log('routing record seq %d reached no DHT server, retrying in %d ms', record.seq, this.retryDelay)
      this.republishTimer = setTimeout(() => { this.schedule(0) }, this.retryDelay)
      this.retryDelay = Math.min(this.retryDelay * 2, c.PUBLISH_RETRY_MAX)
    } else {
      this.log('published routing record seq %d to %d DHT servers (%d direct, %d circuit addresses, %d mailboxes)',
        record.seq, stored, record.addrs.length, record.circuits.length, record.mailboxes.length)
      this.retryDelay = c.PUBLISH_RETRY_MIN
      this.republishTimer = setTimeout(() => { this.schedule(0) }, this.republishInterval)
    }
    this.republishTimer.unref?.()
    return stored
  }

  /** What the record says now: addresses worth publishing, circuits, mailbox relays */
  private contents (): Omit<UnsignedRouteRecord, 'seq' | 'exp'> {
    const me = this.components.peerId.toString()
    const all = this.components.addressManager.getAddresses()
    const circuits = all.filter(isRelayedAddress)
    const direct = all.filter(addr => !isRelayedAddress(addr)).map(addr => withoutPeer(addr, me))
    const mailboxes = new Map<string, MailboxRelay>()
    for (const circuit of circuits) {
      const relay = relayOf(circuit)
      if (relay == null || mailboxes.has(relay)) continue
      mailboxes.set(relay, { relay, addrs: [withoutPeer(multiaddr(circuit.toString().split('/p2p-circuit')[0]), relay).toString()] })
    }
    for (const { relay, address } of this.init.mailboxRelays?.() ?? []) {
      const entry = mailboxes.get(relay) ?? { relay, addrs: [] }
      let addr = ''
      try { addr = withoutPeer(multiaddr(address), relay).toString() } catch {}
      // a relay met on the network is known only as /p2p/<id>: listed without addresses
      if (addr !== '' && addr !== '/' && !entry.addrs.includes(addr)) entry.addrs.push(addr)
      mailboxes.set(relay, entry)
    }
    return {
      peer: me,
      addrs: publishable(direct).map(String).slice(0, c.MAX_DIRECT_ADDRS),
      circuits: circuits.map(String).filter(addr => addr.length <= c.MAX_ADDR_LENGTH).slice(0, c.MAX_CIRCUIT_ADDRS),
      mailboxes: [...mailboxes.values()].slice(0, c.MAX_MAILBOXES).map(m => ({ relay: m.relay, addrs: m.addrs.slice(0, c.MAX_MAILBOX_ADDRS) }))
    }
  }

  private fingerprint (contents: Omit<UnsignedRouteRecord, 'seq' | 'exp'>): string {
    return JSON.stringify(contents)
  }
}

/**
 * The direct addresses worth publishing: loopback and link-local ones are
 * useless to anyone else, so they are left out — unless they are all the node
 * has (a node listening only on 127.0.0.1 is reachable only from its host, and
 * that is what its record then says). Private (LAN) addresses are kept: molt
 * networks are private, and a LAN peer dials them first.
 */
export function publishable (addrs: Multiaddr[]): Multiaddr[] {
  const useful = addrs.filter(addr => !isLocalOnly(addr))
  return (useful.length > 0 ? useful : addrs).filter(addr => addr.toString().length <= c.MAX_ADDR_LENGTH)
}

function isLocalOnly (addr: Multiaddr): boolean {
  const host = addr.getComponents()[0]
  if (host == null) return true
  const value = host.value ?? ''
  if (host.name === 'ip4') return value.startsWith('127.') || value.startsWith('169.254.') || value === '0.0.0.0'
  if (host.name === 'ip6') return value === '::1' || value === '::' || value.toLowerCase().startsWith('fe80')
  return host.name === 'dns4' || host.name === 'dns6' || host.name === 'dns' ? value === 'localhost' : false
}

function withoutPeer (addr: Multiaddr, peer: string): Multiaddr {
  const text = addr.toString()
  const suffix = `/p2p/${peer}`
  return text.endsWith(suffix) ? multiaddr(text.slice(0, -suffix.length)) : addr
}

export function routingRecord (init: RoutingRecordInit = {}): (components: RoutingRecordComponents) => RoutingRecordService {
  return (components) => new DefaultRoutingRecordService(components, init)
}
