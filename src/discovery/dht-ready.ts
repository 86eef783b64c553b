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
 * closest servers the publisher's walk reached *at that moment*: one published
 * while the network was forming must go out again as the network grows, or
 * lookups walking to the truly closest servers miss it.
 *
 * The measure of "the network the publication reached" is the number of
 * servers that stored it, not the routing table's size. Counted from the
 * table's size before the walk (1, 2, 4, … 64), every node joining a 100-node
 * network published 6–7 times, most of the cost of starting many nodes. Counted
 * from the table's size after the walk, the first publishers were stranded: a
 * node that joined through node 0 while node 0 knew nobody stored its advert on
 * node 0 alone, yet its table had filled to 5–10 peers by the time the walk
 * ended, so it waited for 10–20 peers (never reached in a 30-node network)
 * before advertising again (protocols/routing.md, "Known limits"). A joining
 * node whose walk reached the K closest servers of a formed network publishes
 * again only once its table holds twice K peers; a publication that reached
 * one server goes out again at the second peer. One that reached none goes out
 * again at the first peer.
 */
export class RoutingTableGrowth {
  /** servers the last publication reached */
  private reached = 0
  /** publications under way */
  private running = 0
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

  /** A publication starts: the table filling during its walk calls for nothing until it is over */
  publishing (): void {
    this.running++
  }

  /**
   * A publication is over: `reached` servers stored it (0 when it failed). The
   * table may have filled during its walk beyond twice that: then at once.
   */
  published (reached: number): void {
    this.running = Math.max(0, this.running - 1)
    this.reached = Math.max(0, reached)
    this.onPeerAdded()
  }

  /**
   * Whether a table of `size` peers calls for another publication: it holds
   * twice as many peers as the last publication reached, or a first peer
   * after one that reached none.
   */
  grown (size: number): boolean {
    if (this.running > 0) return false
    if (this.reached === 0) return size > 0
    return size >= this.reached * REPUBLISH_GROWTH_FACTOR
  }

  private readonly onPeerAdded = (): void => {
    if (this.timer != null || !this.grown(this.table?.size ?? 0)) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      const size = this.table?.size ?? 0
      // a publication may have gone out meanwhile
      if (!this.grown(size)) return
      // until the publication reports how far it got, count it as reaching the whole table: no second
      // trigger while it runs
      this.reached = size
      this.onGrown(size)
    }, this.debounce)
    this.timer.unref?.()
  }
}
