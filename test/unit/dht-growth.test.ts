import { describe, it, expect } from 'vitest'
import { RoutingTableGrowth } from '../../src/discovery/dht-ready.js'
import { REPUBLISH_GROWTH_MIN_PEERS } from '../../src/discovery/constants.js'

/** A routing table as RoutingTableGrowth sees it: a size and `peer:add` events */
class Table extends EventTarget {
  size = 0
  add (n = 1): void {
    for (let i = 0; i < n; i++) {
      this.size++
      this.dispatchEvent(new Event('peer:add'))
    }
  }
}

/** Grows the table by `n` peers and resolves to the sizes the growth reported once the debounce ran */
async function grow (table: Table, fired: number[], n: number): Promise<number[]> {
  table.add(n)
  await new Promise(resolve => setTimeout(resolve, 30))
  return fired
}

describe('RoutingTableGrowth (when DHT records are published again as the network grows)', () => {
  it('a publication that found an empty table goes out again at the first peer', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10)
    growth.start()
    growth.published()
    expect(await grow(table, fired, 1)).toEqual([1])
    growth.stop()
  })

  it('then only once the table has doubled and gained K peers, not at every doubling of a small table', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10)
    growth.start()
    table.add(1)
    growth.published()
    // 1 → 2 → 4 → 8 → 16 → 20 doubled four times: no republication yet
    expect(await grow(table, fired, REPUBLISH_GROWTH_MIN_PEERS - 1)).toEqual([])
    expect(await grow(table, fired, 1)).toEqual([REPUBLISH_GROWTH_MIN_PEERS + 1])
    // from 21: 20 more is not enough, doubling to 42 is
    expect(await grow(table, fired, 20)).toEqual([REPUBLISH_GROWTH_MIN_PEERS + 1])
    expect(await grow(table, fired, 1)).toEqual([REPUBLISH_GROWTH_MIN_PEERS + 1, 42])
    growth.stop()
    // stopped: no more
    expect(await grow(table, fired, 100)).toEqual([REPUBLISH_GROWTH_MIN_PEERS + 1, 42])
  })

  it('a burst of additions is one republication', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10)
    growth.start()
    expect(await grow(table, fired, 50)).toEqual([50])
    growth.stop()
  })
})
