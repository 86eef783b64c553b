import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { MailboxTarget } from '../services/mailbox/index.js'
import type { RouteRecord, RoutingRecordService } from '../services/routing-record/index.js'
import { isRelayedAddress, relayOf } from './route.js'
import { NoRouteError } from './errors.js'
import * as c from './constants.js'
import { BoundedMap } from '../utils/bounded-map.js'

export interface ResolverInit {
  peerStore: PeerStore
  getConnections: (peer: PeerId) => Connection[]
  dial: (peer: PeerId | Multiaddr, options: { signal?: AbortSignal }) => Promise<Connection>
  records: Pick<RoutingRecordService, 'lookup'>
  /** This node's PeerId (never a mailbox target of its own messages) */
  self: PeerId
  /** Addresses a peer's verified card lists (circuit addresses there name mailbox relays) */
  cardAddresses?: (peer: PeerId) => string[]
  log: Logger
}

interface CachedRecord {
  record?: RouteRecord
  fetchedAt: number
}

/**
 * Resolution of a PeerId into a connection (protocols/routing.md): an open
 * connection, else the peer store's addresses, else the peer's routing record
 * from the DHT (cached, bounded in time) whose direct then circuit addresses
 * are dialled; and the relays whose mailboxes the peer reads, for deposits.
 */
export class Resolver {
  private readonly records = new BoundedMap<string, CachedRecord>(c.RECORD_CACHE_SIZE)
  /** Relays named by explicit circuit addresses the application sent to */
  private readonly hints = new BoundedMap<string, MailboxTarget[]>(c.RECORD_CACHE_SIZE)
  /** Addresses the application named for a peer (`/…/p2p/<peer>`), newest first: retried after the peer store's */
  private readonly named = new BoundedMap<string, Multiaddr[]>(c.RECORD_CACHE_SIZE)
  private readonly connecting = new Map<string, Promise<void>>()

  constructor (private readonly init: ResolverInit) {}

  /** `<relay>/p2p-circuit/p2p/<peer>` was given: `<relay>` is a mailbox relay of `peer` */
  hint (address: Multiaddr): void {
    const parts = address.toString().split('/p2p-circuit')
    const peer = parts.length === 2 ? parts[1].match(/^\/p2p\/([^/]+)$/)?.[1] : undefined
    const relay = relayOf(address)
    if (peer == null || relay == null || relay === this.init.self.toString()) return
    const targets = this.hints.get(peer) ?? []
    if (!targets.some(t => t.peerId.toString() === relay)) targets.push({ peerId: peerIdFromString(relay), addrs: [multiaddr(parts[0])] })
    this.hints.set(peer, targets)
  }

  /**
   * `address` (ending in /p2p/<peer>) was named to reach `peer`: later
   * resolutions (the outbox's retries) dial it again, for as long as this
   * process runs — the peer store forgets an unconfirmed address after an hour
   */
  remember (peer: PeerId, address: Multiaddr): void {
    const key = peer.toString()
    const known = (this.named.get(key) ?? []).filter(a => !a.equals(address))
    this.named.set(key, [address, ...known].slice(0, c.NAMED_ADDRESSES_PER_PEER))
  }

  /**
   * Make sure a connection to `peer` is open: an open one, else the peer
   * store's addresses, else (or when those fail) the routing record's direct
   * then circuit addresses. Concurrent calls for one peer share the attempt.
   *
   * @throws {NoRouteError} when nothing names a way to the peer, else the last dial error
   */
  async connect (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.isConnected(peer)) return
    const key = peer.toString()
    let running = this.connecting.get(key)
    if (running == null) {
      // shared by every caller, so bounded on its own: each caller gives up by its own signal below
      running = this.resolveAndDial(peer, AbortSignal.timeout(c.RESOLVE_TIMEOUT)).finally(() => { this.connecting.delete(key) })
      this.connecting.set(key, running)
    }
    await abortable(running, options.signal)
  }

  /** The peer's verified routing record: from the cache while fresh (`maxAge`), else the DHT; the last known one if the DHT has none now */
  async lookup (peer: PeerId, options: { signal?: AbortSignal, maxAge?: number, first?: boolean } = {}): Promise<RouteRecord | undefined> {
    const key = peer.toString()
    const cached = this.records.get(key)
    const now = Date.now()
    const usable = cached?.record != null && cached.record.exp > now ? cached.record : undefined
    const maxAge = options.maxAge ?? (cached?.record != null ? c.RECORD_CACHE_TTL : c.NEGATIVE_CACHE_TTL)
    if (cached != null && now - cached.fetchedAt < maxAge) return usable
    const found = await this.init.records.lookup(peer, { signal: options.signal, first: options.first })
    const record = found != null && (usable == null || found.seq >= usable.seq) ? found : usable
    this.records.set(key, { record, fetchedAt: Date.now() })
    this.init.log('routing record of %p: %s', peer, record != null ? `seq ${record.seq}, ${record.addrs.length} direct, ${record.circuits.length} circuit, ${record.mailboxes.length} mailboxes` : 'none')
    return record
  }

  /** The record in the cache, without a lookup */
  cached (peer: PeerId): RouteRecord | undefined {
    const record = this.records.get(peer.toString())?.record
    return record != null && record.exp > Date.now() ? record : undefined
  }

  /**
   * Relays whose mailboxes `peer` reads, most authoritative first: circuit
   * addresses the application named, the peer's routing record (looked up if
   * not cached), then circuit addresses in the peer store and its card.
   */
  async mailboxTargets (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<MailboxTarget[]> {
    const targets = new Map<string, MailboxTarget>()
    const add = (relay: string, addrs: Multiaddr[]): void => {
      if (relay === this.init.self.toString() || relay === peer.toString()) return
      const target = targets.get(relay) ?? { peerId: peerIdFromString(relay), addrs: [] }
      for (const addr of addrs) if (!target.addrs.some(a => a.equals(addr))) target.addrs.push(addr)
      targets.set(relay, target)
    }
    for (const hint of this.hints.get(peer.toString()) ?? []) add(hint.peerId.toString(), hint.addrs)
    let record: RouteRecord | undefined
    try {
      record = await this.lookup(peer, options)
    } catch (err: any) {
      if (options.signal?.aborted === true) throw err
      this.init.log('no routing record of %p for mailboxes - %s', peer, err.message)
    }
    for (const mailbox of record?.mailboxes ?? []) {
      add(mailbox.relay, mailbox.addrs.flatMap(addr => parse(`${addr}/p2p/${mailbox.relay}`)))
    }
    const addresses: Multiaddr[] = []
    try {
      addresses.push(...(await this.init.peerStore.get(peer)).addresses.map(a => a.multiaddr))
    } catch {}
    for (const address of this.init.cardAddresses?.(peer) ?? []) addresses.push(...parse(address))
    for (const address of addresses) {
      if (!isRelayedAddress(address)) continue
      const relay = relayOf(address)
      if (relay != null) add(relay, parse(address.toString().split('/p2p-circuit')[0]))
    }
    return [...targets.values()]
  }

  /** Whether `relay` carries or holds mail for `peer` as far as this node knows (a reason to retry when it comes back) */
  reachesVia (peer: string, relay: string): boolean {
    const record = this.records.get(peer)?.record
    return (this.hints.get(peer)?.some(t => t.peerId.toString() === relay) ?? false) ||
      (record?.mailboxes.some(m => m.relay === relay) ?? false) ||
      (record?.circuits.some(circuit => relayOf(multiaddr(circuit)) === relay) ?? false)
  }

  private isConnected (peer: PeerId): boolean {
    return this.init.getConnections(peer).some(connection => connection.status === 'open')
  }

  private async resolveAndDial (peer: PeerId, signal: AbortSignal): Promise<void> {
    let lastError: Error | undefined
    // the peer store's addresses, then those the application named (each a dial; the first to connect wins)
    const targets: Array<PeerId | Multiaddr> = [...(await this.hasAddresses(peer) ? [peer] : []), ...(this.named.get(peer.toString()) ?? [])]
    for (const target of targets) {
      try {
        await this.init.dial(target, { signal })
        return
      } catch (err: any) {
        if (signal.aborted) throw err
        lastError = err
        this.init.log('%s of %p failed (%s)', target === peer ? 'known addresses' : `named address ${target.toString()}`, peer, err.message)
      }
    }
    // after a failed dial the cached record is stale by definition: ask the DHT again (re-resolution);
    // otherwise the first valid record a server returns is tried, and the newest only if that fails
    let record = await this.lookup(peer, { signal, maxAge: lastError != null ? c.REFRESH_AFTER_FAILURE : undefined, first: lastError == null })
    if (record == null) {
      // the lookup waits for DHT peers: a bootstrap or discovery connection made meanwhile may be the peer itself
      if (this.isConnected(peer)) return
      if (lastError == null && await this.hasAddresses(peer)) {
        await this.init.dial(peer, { signal })
        return
      }
      throw lastError ?? new NoRouteError(`no address and no routing record known for ${peer.toString()}`)
    }
    try {
      await this.dialRecord(peer, record, signal)
    } catch (err) {
      if (signal.aborted || lastError != null) throw err
      const newest = await this.lookup(peer, { signal, maxAge: 0 })
      if (newest == null || newest.seq <= record.seq) throw err
      record = newest
      await this.dialRecord(peer, record, signal)
    }
  }

  private async dialRecord (peer: PeerId, record: RouteRecord, signal: AbortSignal): Promise<void> {
    const multiaddrs = [...record.addrs, ...record.circuits].flatMap(parse)
    if (multiaddrs.length === 0) throw new NoRouteError(`the routing record of ${peer.toString()} names no address (only mailboxes)`)
    // the dialler tries direct addresses first and circuit addresses last
    await this.init.peerStore.merge(peer, { multiaddrs })
    await this.init.dial(peer, { signal })
  }

  private async hasAddresses (peer: PeerId): Promise<boolean> {
    try {
      return (await this.init.peerStore.get(peer)).addresses.length > 0
    } catch {
      return false
    }
  }
}

function parse (address: string): Multiaddr[] {
  try {
    return [multiaddr(address)]
  } catch {
    return []
  }
}

/** A shared attempt, given up by this caller (not by the others) when its signal aborts */
async function abortable<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return promise
  signal.throwIfAborted()
  let onAbort: () => void = () => {}
  try {
    return await Promise.race([promise, new Promise<T>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
