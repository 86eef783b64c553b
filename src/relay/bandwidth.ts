/**
 * Bytes per second over a sliding window, kept in a ring of fixed buckets:
 * recording is O(1), reading sums the buckets that are still inside the
 * window. The rate is bytes in the last `windowMs` divided by `windowMs`, so a
 * burst counts for a whole window and a relay that just started reads low.
 */
export class BandwidthMeter {
  private readonly bucketMs: number
  private readonly counts: Float64Array
  /** Which bucket number (time / bucketMs) each slot currently holds */
  private readonly slots: Float64Array
  /** Bytes recorded since creation */
  total = 0

  constructor (readonly windowMs: number, buckets: number, private readonly now: () => number = Date.now) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError('windowMs must be > 0 and buckets a positive integer')
    this.bucketMs = windowMs / buckets
    this.counts = new Float64Array(buckets)
    this.slots = new Float64Array(buckets).fill(-Infinity)
  }

  record (bytes: number): void {
    const slot = Math.floor(this.now() / this.bucketMs)
    const i = slot % this.counts.length
    if (this.slots[i] !== slot) {
      this.slots[i] = slot
      this.counts[i] = 0
    }
    this.counts[i] += bytes
    this.total += bytes
  }

  /** Bytes per second over the last window */
  rate (): number {
    const slot = Math.floor(this.now() / this.bucketMs)
    let sum = 0
    for (let i = 0; i < this.counts.length; i++) {
      if (this.slots[i] > slot - this.counts.length) sum += this.counts[i]
    }
    return sum * 1000 / this.windowMs
  }
}
