import { REPUBLISH_GROWTH_FACTOR, REPUBLISH_GROWTH_DEBOUNCE, REPUBLISH_GROWTH_JITTER } from './constants.js'

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
 * The base is the larger of the servers that stored the publication and the
 * routing table's size when its walk began; the next publication goes out once
 * the table holds twice that (or at the first peer after one that reached
 * none). Counted from the table's size before the walk alone (1, 2, 4, … 64),
 * every node joining a 100-node network published 6–7 times: its first walk
 * reaches the K closest servers, so it now publishes again only at 2 K peers.
 * Counted from the table's size after the walk, the first publishers were
 * stranded: a node that joined through node 0 while node 0 knew nobody stored
 * its advert on node 0 alone, yet its table held 5–10 peers once the walk
 * ended, and it waited for 10–20 (never reached in a 30-node network) before
 * advertising again (protocols/routing.md, "Known limits"). Counted from the
 * servers reached alone, an overloaded network fed itself: a walk whose
 * requests timed out reached 3 of 20 servers, and a table of 26 called for
 * another walk at once. A publication that reached few servers of a table
 * that did not grow is left to the publisher's retry (when it reached none)
 * and its periodic republication.
 */
export class RoutingTableGrowth {
  /** the larger of the servers the last publication reached and the table's size when its walk began */
  private base = 0
  private sizeAtStart = 0
  /** publications under way */
  private running = 0
  private stopped = true
  private timer?: ReturnType<typeof setTimeout>

  constructor (private readonly table: ObservableRoutingTable | undefined, private readonly onGrown: (size: number) => void, private readonly debounce = REPUBLISH_GROWTH_DEBOUNCE, private readonly jitter = REPUBLISH_GROWTH_JITTER) {}

  start (): void {
    this.stopped = false
    this.table?.addEventListener('peer:add', this.onPeerAdded)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.table?.removeEventListener('peer:add', this.onPeerAdded)
  }

  /** A publication starts (or is queued): the table filling meanwhile calls for nothing until it is over */
  publishing (): void {
    if (this.running === 0) this.sizeAtStart = this.table?.size ?? 0
    this.running++
  }

  /**
   * A publication is over: `reached` servers stored it (0 when it failed). The
   * table may have filled during its walk beyond twice the base: then at once.
   */
  published (reached: number): void {
    this.running = Math.max(0, this.running - 1)
    this.base = Math.max(0, reached, this.sizeAtStart)
    this.onPeerAdded()
  }

  /**
   * Whether a table of `size` peers calls for another publication: no
   * publication under way, and twice the base, or a first peer after a
   * publication that reached none from an empty table.
   */
  grown (size: number): boolean {
    if (this.running > 0) return false
    if (this.base === 0) return size > 0
    return size >= this.base * REPUBLISH_GROWTH_FACTOR
  }

  private readonly onPeerAdded = (): void => {
    // a publication ending after stop() schedules nothing
    if (this.stopped || this.timer != null || !this.grown(this.table?.size ?? 0)) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      const size = this.table?.size ?? 0
      // a publication may have gone out meanwhile
      if (!this.grown(size)) return
      // until the publication reports how far it got, count it as reaching the whole table: no second
      // trigger before it starts
      this.base = size
      this.onGrown(size)
    }, this.debounce + Math.random() * this.jitter)
    this.timer.unref?.()
  }
}
