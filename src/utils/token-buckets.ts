/** Token buckets kept for idle keys before the oldest is forgotten (a forgotten key starts with a full bucket) */
const MAX_RATE_BUCKETS = 100_000

/**
 * Token buckets by key (a sender, a source address), least recently used
 * forgotten first beyond MAX_RATE_BUCKETS.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly rate: number, private readonly burst: number) {}

  /** Take `count` tokens for `key`; returns the ms to wait when there are not enough (nothing is taken then) */
  take (key: string, count: number, now: number): number | undefined {
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_RATE_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = { tokens: this.burst, at: now }
    } else {
      this.buckets.delete(key) // re-inserted below: the map stays in least-recently-used order
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate / 1000)
    bucket.at = now
    this.buckets.set(key, bucket)
    if (bucket.tokens < count) return Math.ceil((count - bucket.tokens) * 1000 / this.rate)
    bucket.tokens -= count
    return undefined
  }

  /** Give back tokens taken for a deposit another limit then refused */
  refund (key: string, count: number): void {
    const bucket = this.buckets.get(key)
    if (bucket !== undefined) bucket.tokens = Math.min(this.burst, bucket.tokens + count)
  }
}
