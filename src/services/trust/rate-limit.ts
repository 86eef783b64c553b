/** Per-key token buckets, the least recently used forgotten past `maxKeys` */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly burst: number, private readonly perMinute: number, private readonly maxKeys: number) {}

  /** Take one token for `key`; false when its bucket is empty */
  take (key: string, now = Date.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    this.buckets.delete(key)
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) * this.perMinute) / 60_000)
    b.at = now
    const ok = b.tokens >= 1
    if (ok) b.tokens -= 1
    this.buckets.set(key, b)
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
    return ok
  }
}
