/** Bytes relayed during one sample period, which ended at `t` (ms since the epoch) */
export type ThroughputSample = [t: number, bytes: number]

export interface ThroughputHistoryInit {
  /** Sample period in ms */
  intervalMs: number
  /** Samples kept; older ones are overwritten */
  capacity: number
  /** @default Date.now */
  now?: () => number
}

/**
 * A ring buffer of relayed-bytes samples: every `intervalMs` it reads the
 * relay's running byte total and keeps the difference. The relay's own
 * counters are since-start totals and a 10 s rate; the chart needs history,
 * which only the relay process can keep.
 */
export class ThroughputHistory {
  readonly intervalMs: number
  private readonly times: Float64Array
  private readonly bytes: Float64Array
  private readonly now: () => number
  /** Next slot to write */
  private head = 0
  private size = 0
  private last: number
  private timer?: ReturnType<typeof setInterval>

  /** `total` reads the relay's relayed bytes since start (a counter that never goes down) */
  constructor (private readonly total: () => number, init: ThroughputHistoryInit) {
    if (!(init.intervalMs > 0) || !Number.isInteger(init.capacity) || init.capacity < 1) {
      throw new RangeError('intervalMs must be > 0 and capacity a positive integer')
    }
    this.intervalMs = init.intervalMs
    this.times = new Float64Array(init.capacity)
    this.bytes = new Float64Array(init.capacity)
    this.now = init.now ?? Date.now
    this.last = total()
  }

  /** Sample every intervalMs until stop(); the timer never keeps the process alive */
  start (): void {
    if (this.timer != null) return
    this.timer = setInterval(() => { this.sample() }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Record the bytes relayed since the previous sample */
  sample (): void {
    const total = this.total()
    this.times[this.head] = this.now()
    this.bytes[this.head] = Math.max(0, total - this.last)
    this.last = total
    this.head = (this.head + 1) % this.times.length
    this.size = Math.min(this.size + 1, this.times.length)
  }

  /** The samples held, oldest first */
  samples (): ThroughputSample[] {
    const out: ThroughputSample[] = []
    const start = (this.head - this.size + this.times.length) % this.times.length
    for (let i = 0; i < this.size; i++) {
      const slot = (start + i) % this.times.length
      out.push([this.times[slot], this.bytes[slot]])
    }
    return out
  }
}
