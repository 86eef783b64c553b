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
