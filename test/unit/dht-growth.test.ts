import { describe, it, expect } from 'vitest'
import { RoutingTableGrowth } from '../../src/discovery/dht-ready.js'

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

  it('then once the table has doubled since the last publication\'s walk ended, not since it began', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10)
    growth.start()
    table.add(5)
    growth.published()
    expect(await grow(table, fired, 4)).toEqual([])
    expect(await grow(table, fired, 1)).toEqual([10])
    // that republication's walk fills the table (a joining node meets the network): it is the new base
    table.add(20)
    growth.published()
    expect(await grow(table, fired, 0)).toEqual([10])
    expect(await grow(table, fired, 29)).toEqual([10])
    expect(await grow(table, fired, 1)).toEqual([10, 60])
    growth.stop()
    // stopped: no more
    expect(await grow(table, fired, 100)).toEqual([10, 60])
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
