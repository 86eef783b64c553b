import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { DHT_K, MISPLACED_REPUBLISH_DELAY, MISPLACED_REPUBLISH_DELAY_MAX, MISPLACED_THRESHOLD, REPUBLISH_GROWTH_DEBOUNCE, REPUBLISH_GROWTH_JITTER } from './constants.js'

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
  /** Coalesce routing table additions into one check, in ms. @default REPUBLISH_GROWTH_DEBOUNCE */
  debounce?: number
  /** Up to this much more (random, ms) before a republication. @default REPUBLISH_GROWTH_JITTER */
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
 * Tells a publisher of DHT records when a record sits on the wrong servers.
 * A publication stores on the K closest servers its walk reached; a walk over
 * a network still forming (or cut short by timeouts) reaches servers that are
 * not the closest once the network has grown, and lookups, which walk to the
 * closest, miss it. The growth rule (RoutingTableGrowth) republishes only
 * when the table doubles, so a node whose early walk reached K servers went
 * out again at 2 K peers and never after: in a 100-node network 2 of the
 * first 20 publishers' records were on none of their 20 closest servers.
 *
 * So, per key, the servers that stored the last publication are kept, and on
 * every routing table addition (debounced) and after every publication the
 * key's K closest peers in the table are compared with them: when `threshold`
 * of those are not holders (and closer than the farthest holder, when there
 * are K holders), the record is misplaced and goes out again. A republication
 * for misplacement waits `delay` × 2^(republications in a row), so a network
 * too busy for stores to succeed is not fed more walks; a check that finds the
 * record placed resets the count.
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
    this.debounce = init.debounce ?? REPUBLISH_GROWTH_DEBOUNCE
    this.jitter = init.jitter ?? REPUBLISH_GROWTH_JITTER
  }

  start (): void {
    this.stopped = false
    this.table?.addEventListener('peer:add', this.onPeerAdded)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    for (const entry of this.entries.values()) clearTimeout(entry.timer)
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
    const entry: Entry = { kadId, holders: new Set(holders.map(String)), pending: false, strikes: previous?.strikes ?? 0 }
    if (holders.length >= DHT_K) {
      entry.farthest = holders.map(h => distance(kadIdOf(h.toMultihash().bytes), kadId)).sort(Buffer.compare)[holders.length - 1]
    }
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

  private check (name: string, entry: Entry): void {
    if (this.stopped || entry.pending || entry.timer != null) return
    if (this.misses(name) < this.threshold) {
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
