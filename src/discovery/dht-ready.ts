import { REPUBLISH_GROWTH_FACTOR, REPUBLISH_GROWTH_MIN_PEERS, REPUBLISH_GROWTH_DEBOUNCE } from './constants.js'

/** The part of kad-dht's routing table this waits on */
export interface ObservableRoutingTable extends EventTarget {
  size: number
}

/**
 * An empty routing table answers every DHT query with nothing: wait until it
 * holds a first peer (a bootstrap or discovery connection still being made),
 * or until `signal` aborts; then the caller queries either way.
 */
export async function routingTableReady (table: ObservableRoutingTable | undefined, signal: AbortSignal): Promise<void> {
  if (table == null || table.size > 0 || signal.aborted) return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      table.removeEventListener('peer:add', done)
      signal.removeEventListener('abort', done)
      resolve()
    }
    table.addEventListener('peer:add', done)
    signal.addEventListener('abort', done)
  })
}

/**
 * Tells a publisher of DHT records (routing record, capability adverts) when
 * to publish again because the network grew. A record is stored on the
 * closest servers the publisher knows *at that moment*: one published while
 * the network was forming (or while the node knew only its bootstrap peer)
 * must go out again as the network grows, or lookups walking to the truly
 * closest servers miss it. Each publication is a walk plus a store on up to
 * K servers, so it fires only when the routing table has both doubled and
 * gained REPUBLISH_GROWTH_MIN_PEERS peers since the last publication, or
 * got its first peer after a publication that found none (debounced): counting doublings from a table of 1 made every node publish
 * 6–7 times while joining a 100-node network, and the joins of many nodes
 * at once slowed to seconds each. While fewer than that many peers joined, a
 * lookup's walk, which asks at least K servers near the key, still meets a
 * server that stored the record.
 */
export class RoutingTableGrowth {
  private publishedAtSize = 0
  private timer?: ReturnType<typeof setTimeout>

  constructor (private readonly table: ObservableRoutingTable | undefined, private readonly onGrown: (size: number) => void, private readonly debounce = REPUBLISH_GROWTH_DEBOUNCE) {}

  start (): void {
    this.table?.addEventListener('peer:add', this.onPeerAdded)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.table?.removeEventListener('peer:add', this.onPeerAdded)
  }

  /** A publication is going out now, to the servers this table knows */
  published (): void {
    this.publishedAtSize = Math.max(this.publishedAtSize, this.table?.size ?? 0)
  }

  /**
   * Whether a table of `size` peers has grown enough since the last
   * publication. One that went out while the table was empty reached no
   * server: the first peer is enough then.
   */
  grown (size: number): boolean {
    if (this.publishedAtSize === 0) return size > 0
    return size >= Math.max(this.publishedAtSize * REPUBLISH_GROWTH_FACTOR, this.publishedAtSize + REPUBLISH_GROWTH_MIN_PEERS)
  }

  private readonly onPeerAdded = (): void => {
    if (this.timer != null || !this.grown(this.table?.size ?? 0)) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      const size = this.table?.size ?? 0
      // a publication may have gone out meanwhile
      if (!this.grown(size)) return
      this.publishedAtSize = size
      this.onGrown(size)
    }, this.debounce)
    this.timer.unref?.()
  }
}
