import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { DHT_K, MISPLACED_REPUBLISH_DELAY, MISPLACED_REPUBLISH_DELAY_MAX, MISPLACED_REPUBLISH_JITTER, MISPLACED_THRESHOLD, PLACEMENT_CHECK_DEBOUNCE } from './constants.js'

/** The part of kad-dht's routing table the watch reads */
export interface ClosestPeersTable extends EventTarget {
  size: number
  /** the `count` peers of the table closest to a kad id (sha256 of a key) */
  closestPeers?(kadId: Uint8Array, options?: { count?: number }): PeerId[]
}

export interface PlacementInit {
  /** Non-holders among the K closest known peers that call for a republication. @default MISPLACED_THRESHOLD */
  threshold?: number
  /** First delay of a republication for misplacement, doubling with each in a row, in ms. @default MISPLACED_REPUBLISH_DELAY */
  delay?: number
  /** Longest such delay, in ms. @default MISPLACED_REPUBLISH_DELAY_MAX */
  maxDelay?: number
  /** Coalesce routing table additions into one check, in ms. @default PLACEMENT_CHECK_DEBOUNCE */
  debounce?: number
  /** Up to this much more (random, ms) before a republication. @default MISPLACED_REPUBLISH_JITTER */
  jitter?: number
}

interface Entry {
  kadId: Uint8Array
  holders: Set<string>
  /** XOR distance of the farthest holder to the key (when there are K holders) */
  farthest?: Buffer
  /** a publication of it is queued or running: it is checked again when it is over */
  pending: boolean
  /** republications for misplacement in a row (each waits twice as long) */
  strikes: number
  /** routing table size when it was last published */
  tableSize: number
  timer?: ReturnType<typeof setTimeout>
}

/** The kad-dht distance space: sha256 of a key (for a peer, of its multihash) */
export function kadIdOf (bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

function distance (a: Uint8Array, b: Uint8Array): Buffer {
  return Buffer.from(a.map((x, i) => x ^ b[i]))
}

/**
 * Tells a publisher of DHT records (routing record, capability adverts) when
 * to publish again because the record sits on the wrong servers. A
 * publication stores on the K closest servers its walk reached; a walk over a
 * network still forming (or cut short by timeouts) reaches servers that are
 * not the closest once the network has grown, and lookups, which walk to the
 * closest, miss it.
 *
 * So, per key, the servers that stored the last publication are kept, and
 * after every publication and on routing table additions (debounced) the
 * key's K closest peers in the table are compared with them: the record is
 * misplaced when `threshold` of those (or half of them, while the table holds
 * fewer than 2 × threshold) are not holders and are closer than the farthest
 * holder (any non-holder, when fewer than K stored it). It then goes out again
 * after `delay` × 2^(misplaced republications in a row) plus jitter: a walk
 * that stored on fewer than half the closest it could (an overloaded network)
 * keeps the count, so such a network is not fed a walk every few seconds; a
 * walk that stored on half or more, or a check that finds the record placed,
 * resets it. A publication that reached none from an empty table goes out
 * again at the first peer.
 *
 * It replaced the growth rule (publish again when the routing table holds
 * twice the servers the last publication reached): that rule sent a node
 * whose early walk reached 20 servers out again at 40 peers and never after
 * (2 of the first 20 publishers' adverts on none of their 20 closest servers
 * after 240 s in a 100-node run), and sent every node joining a full network
 * out a second time at 40 peers although its first walk had reached the
 * closest servers: half of a 100-node network's publications, which delayed
 * the first publishers' corrections in the publication queue
 * (protocols/routing.md, Publication).
 */
export class PlacementWatch {
  private readonly entries = new Map<string, Entry>()
  private timer?: ReturnType<typeof setTimeout>
  private stopped = true
  private readonly threshold: number
  private readonly delay: number
  private readonly maxDelay: number
  private readonly debounce: number
  private readonly jitter: number

  constructor (private readonly table: ClosestPeersTable | undefined, private readonly onMisplaced: (name: string) => void, init: PlacementInit = {}) {
    this.threshold = init.threshold ?? MISPLACED_THRESHOLD
    this.delay = init.delay ?? MISPLACED_REPUBLISH_DELAY
    this.maxDelay = init.maxDelay ?? MISPLACED_REPUBLISH_DELAY_MAX
    this.debounce = init.debounce ?? PLACEMENT_CHECK_DEBOUNCE
    this.jitter = init.jitter ?? MISPLACED_REPUBLISH_JITTER
  }

  start (): void {
    this.stopped = false
    this.table?.addEventListener('peer:add', this.onPeerAdded)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timer)
      // a restarted watch checks every entry again
      entry.timer = undefined
      entry.pending = false
    }
    this.table?.removeEventListener('peer:add', this.onPeerAdded)
  }

  /** A publication of `name` starts (or is queued): no republication for it until it is over */
  publishing (name: string): void {
    const entry = this.entries.get(name)
    if (entry == null) return
    entry.pending = true
    clearTimeout(entry.timer)
    entry.timer = undefined
  }

  /** A publication of `name` (DHT key `key`) is over: `holders` stored it */
  published (name: string, key: Uint8Array, holders: PeerId[]): void {
    const kadId = kadIdOf(key)
    const previous = this.entries.get(name)
    clearTimeout(previous?.timer)
    const tableSize = this.table?.size ?? 0
    const entry: Entry = { kadId, holders: new Set(holders.map(String)), pending: false, strikes: previous?.strikes ?? 0, tableSize }
    if (holders.length >= DHT_K) {
      entry.farthest = holders.map(h => distance(kadIdOf(h.toMultihash().bytes), kadId)).sort(Buffer.compare)[holders.length - 1]
    }
    // a walk that stored on half the closest it could, in a table that grew since the last one: later
    // misplacement is the network growing, not an overloaded one, so no backing off. A table that did not
    // grow keeps the count: its misses are peers that stay unreachable (kad-dht keeps a dead peer until its
    // bucket is full), and another walk every few seconds would not place the record on them
    if (holders.length * 2 >= Math.min(DHT_K, tableSize) && tableSize > (previous?.tableSize ?? -1)) entry.strikes = 0
    this.entries.set(name, entry)
    this.check(name, entry)
  }

  /** `name` is no longer published */
  forget (name: string): void {
    clearTimeout(this.entries.get(name)?.timer)
    this.entries.delete(name)
  }

  /** How many of the K closest peers the table knows to `name`'s key do not hold its last publication */
  misses (name: string): number {
    const entry = this.entries.get(name)
    if (entry == null || this.table?.closestPeers == null) return 0
    let misses = 0
    for (const peer of this.table.closestPeers(entry.kadId, { count: DHT_K })) {
      if (entry.holders.has(peer.toString())) continue
      // with K holders, a peer farther than all of them is where it should not be anyway
      if (entry.farthest != null && Buffer.compare(distance(kadIdOf(peer.toMultihash().bytes), entry.kadId), entry.farthest) >= 0) continue
      misses++
    }
    return misses
  }

  /** Whether `name` calls for a republication: `threshold` misses, or half the closest known while fewer are known */
  misplaced (name: string): boolean {
    const known = Math.min(DHT_K, this.table?.size ?? 0)
    const misses = this.misses(name)
    return misses > 0 && misses >= Math.min(this.threshold, Math.ceil(known / 2))
  }

  private check (name: string, entry: Entry): void {
    if (this.stopped || entry.pending || entry.timer != null) return
    if (!this.misplaced(name)) {
      entry.strikes = 0
      return
    }
    const wait = Math.min(this.delay * 2 ** entry.strikes, this.maxDelay) + Math.random() * this.jitter
    entry.strikes++
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      // a publication may have gone out meanwhile, or been withdrawn
      if (this.stopped || entry.pending || this.entries.get(name) !== entry) return
      entry.pending = true
      this.onMisplaced(name)
    }, wait)
    entry.timer.unref?.()
  }

  private readonly onPeerAdded = (): void => {
    if (this.stopped || this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      for (const [name, entry] of this.entries) this.check(name, entry)
    }, this.debounce)
    this.timer.unref?.()
  }
}
