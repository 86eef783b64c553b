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
  it('a publication that reached no server goes out again at the first peer', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    growth.published(0)
    expect(await grow(table, fired, 1)).toEqual([1])
    growth.stop()
  })

  it('then once the table holds twice as many peers as the last publication reached', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    table.add(5)
    growth.publishing()
    growth.published(5)
    expect(await grow(table, fired, 4)).toEqual([])
    expect(await grow(table, fired, 1)).toEqual([10])
    // no second trigger while that republication runs
    expect(await grow(table, fired, 9)).toEqual([10])
    // its walk reached the 20 closest servers of the network: twice that is the next trigger
    table.add(1)
    growth.publishing()
    growth.published(20)
    expect(await grow(table, fired, 19)).toEqual([10])
    expect(await grow(table, fired, 1)).toEqual([10, 40])
    growth.stop()
    // stopped: no more
    expect(await grow(table, fired, 100)).toEqual([10, 40])
  })

  it('a publication that reached fewer servers than the table held goes out again soon (the first publishers)', async () => {
    // node 1 joined through node 0 while node 0 knew nobody: its advert reached node 0 alone, yet its
    // table had 6 peers by the time the walk ended. Counted from the table, it waited for 12 peers
    // (never reached in a small network) and its advert stayed on node 0 alone.
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    growth.publishing()
    // the walk fills the table: nothing while it runs
    expect(await grow(table, fired, 6)).toEqual([])
    growth.published(1)
    expect(await grow(table, fired, 0)).toEqual([6])
    growth.stop()
  })

  it('a publication that reached the servers the table holds waits for it to double', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    table.add(1)
    growth.publishing()
    expect(await grow(table, fired, 19)).toEqual([])
    growth.published(20)
    expect(await grow(table, fired, 19)).toEqual([])
    expect(await grow(table, fired, 1)).toEqual([40])
    growth.stop()
  })

  it('a publication that reached few servers of a table that did not grow waits for it to double (an overloaded network)', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    table.add(26)
    growth.publishing()
    // the walk's requests timed out: 3 of the 20 closest servers stored it
    growth.published(3)
    expect(await grow(table, fired, 25)).toEqual([])
    expect(await grow(table, fired, 1)).toEqual([52])
    growth.stop()
  })

  it('a burst of additions is one republication', async () => {
    const table = new Table()
    const fired: number[] = []
    const growth = new RoutingTableGrowth(table, size => fired.push(size), 10, 0)
    growth.start()
    expect(await grow(table, fired, 50)).toEqual([50])
    growth.stop()
  })
})
