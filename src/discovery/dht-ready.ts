import { REPUBLISH_GROWTH_FACTOR, REPUBLISH_GROWTH_DEBOUNCE } from './constants.js'

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
 * the network was forming must go out again as the network grows, or lookups
 * walking to the truly closest servers miss it. The measure of "the network
 * it knew" is the routing table's size once the publication's walk is over
 * (`published()` after it), not before: a node joining a large network starts
 * with one peer, and its first walk both finds the closest servers and fills
 * its table. Counted from the size before the walk (1, 2, 4, … 64), every
 * node joining a 100-node network published 6–7 times, most of the cost of
 * starting many nodes. A publication made with an empty table reached no
 * server: the first peer is enough then.
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

  /** A publication's walk is over: it reached the servers this table knows now */
  published (): void {
    this.publishedAtSize = this.table?.size ?? 0
  }

  /**
   * Whether a table of `size` peers has grown enough since the last
   * publication: doubled, or a first peer after one made with none.
   */
  grown (size: number): boolean {
    if (this.publishedAtSize === 0) return size > 0
    return size >= this.publishedAtSize * REPUBLISH_GROWTH_FACTOR
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
