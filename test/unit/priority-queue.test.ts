import { describe, expect, it } from 'vitest'
import { PriorityQueue, PRIORITY_WEIGHTS, priorityOf } from '../../src/services/speak/priority-queue.js'

describe('PriorityQueue (weighted round-robin bands)', () => {
  it('serves a high item pushed behind a backlog of low ones first', () => {
    const q = new PriorityQueue<string>()
    for (let i = 0; i < 100_000; i++) q.push(`low-${i}`, 'low')
    q.push('high', 'high')
    expect(q.shift()).toBe('high')
    expect(q.shift()).toBe('low-0')
    expect(q.size).toBe(99_999)
  })

  it('never starves low: with every band backlogged, low gets a turn in every round', () => {
    const q = new PriorityQueue<string>()
    for (let i = 0; i < 1000; i++) {
      q.push('high', 'high')
      q.push('normal', 'normal')
      q.push('low', 'low')
    }
    const round = PRIORITY_WEIGHTS.high + PRIORITY_WEIGHTS.normal + PRIORITY_WEIGHTS.low
    const served = Array.from({ length: round * 20 }, () => q.shift())
    for (let at = 0; at + round <= served.length; at += round) {
      const window = served.slice(at, at + round)
      expect(window.filter(x => x === 'low')).toHaveLength(PRIORITY_WEIGHTS.low)
      expect(window.filter(x => x === 'high')).toHaveLength(PRIORITY_WEIGHTS.high)
    }
  })

  it('keeps FIFO order within a band, and skips a band that may not take a turn without losing its place', () => {
    const q = new PriorityQueue<number>()
    for (let i = 0; i < 5; i++) q.push(i, 'low')
    q.push(100, 'normal')
    expect(q.shift(band => band !== 'low')).toBe(100)
    expect(q.shift(band => band !== 'low')).toBeUndefined()
    expect([q.shift(), q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([0, 1, 2, 3, 4])
    expect(q.shift()).toBeUndefined()
  })

  it('maps MoltSpeak task priorities to bands', () => {
    expect(priorityOf('urgent')).toBe('high')
    expect(priorityOf('low')).toBe('low')
    expect(priorityOf('bogus')).toBeUndefined()
  })
})
