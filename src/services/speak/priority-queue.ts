/**
 * Priority bands of outbound messages (protocols/speak.md, "Priority bands").
 *
 * Three FIFO bands served by weighted round-robin: in every round of
 * PRIORITY_WEIGHTS.high + normal + low (8 + 4 + 1) turns, each band that has
 * items waiting is served up to its weight, high first. So a high-priority
 * item waits behind at most the other high items, and — while it waits — a
 * low band with items gets at least one turn in every 13: low is slowed under
 * load, never starved.
 */

export const PRIORITIES = Object.freeze(['high', 'normal', 'low'] as const)
export type Priority = typeof PRIORITIES[number]

/** Turns per round-robin round of each band */
export const PRIORITY_WEIGHTS: Readonly<Record<Priority, number>> = Object.freeze({ high: 8, normal: 4, low: 1 })

/** The band of a send option or a MoltSpeak `task.priority` (`urgent` travels in the high band) */
export function priorityOf (value: unknown): Priority | undefined {
  if (value === 'urgent') return 'high'
  return (PRIORITIES as readonly unknown[]).includes(value) ? value as Priority : undefined
}

/** A FIFO with O(1) shift (an array with a moving head, compacted once half of it is consumed) */
class Fifo<T> {
  private items: T[] = []
  private head = 0

  get size (): number {
    return this.items.length - this.head
  }

  push (item: T): void {
    this.items.push(item)
  }

  shift (): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined as T
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  drain (): T[] {
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
  }
}

export class PriorityQueue<T> {
  private readonly bands: Record<Priority, Fifo<T>> = { high: new Fifo(), normal: new Fifo(), low: new Fifo() }
  private credits: Record<Priority, number> = { ...PRIORITY_WEIGHTS }

  constructor (private readonly weights: Readonly<Record<Priority, number>> = PRIORITY_WEIGHTS) {
    this.credits = { ...weights }
  }

  get size (): number {
    return this.bands.high.size + this.bands.normal.size + this.bands.low.size
  }

  sizeOf (priority: Priority): number {
    return this.bands[priority].size
  }

  push (item: T, priority: Priority = 'normal'): void {
    this.bands[priority].push(item)
  }

  /**
   * The next item by weighted round-robin, among the bands `eligible` allows
   * (a band that may not take a turn now — e.g. low at its in-flight cap —
   * keeps its place and its credit)
   */
  shift (eligible: (priority: Priority) => boolean = () => true): T | undefined {
    for (let pass = 0; pass < 2; pass++) {
      let blocked = false
      for (const band of PRIORITIES) {
        if (this.bands[band].size === 0 || !eligible(band)) continue
        if (this.credits[band] > 0) {
          this.credits[band]--
          return this.bands[band].shift()
        }
        blocked = true
      }
      // every band with a turn to take has spent its credit: a new round
      if (!blocked) return undefined
      this.credits = { ...this.weights }
    }
    return undefined
  }

  /** Every item, emptying the queue (high first) */
  drain (): T[] {
    return [...this.bands.high.drain(), ...this.bands.normal.drain(), ...this.bands.low.drain()]
  }
}
