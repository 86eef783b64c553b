import { describe, it, expect } from 'vitest'
import { BoundedMap } from '../../src/utils/bounded-map.js'

describe('BoundedMap', () => {
  it('keeps at most maxSize entries, dropping the least recently set first', () => {
    const map = new BoundedMap<string, number>(3)
    for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) map.set(k, v)
    map.set('a', 10) // set again: now the newest
    map.get('b') // a read does not reorder
    map.set('d', 4)
    expect([...map.keys()]).toEqual(['c', 'a', 'd'])
    for (let i = 0; i < 1000; i++) map.set(`x${i}`, i)
    expect(map.size).toBe(3)
    expect(new BoundedMap(0).set('a', 1).size).toBe(0)
  })
})
