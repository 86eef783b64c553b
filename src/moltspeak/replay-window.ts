/**
 * Remembers message ids for a time window so a replayed or re-sent message is
 * recognised. Bounded: ids live in two generations of at most maxEntries/2
 * each; when the newer one fills, the older one is dropped whole. That keeps
 * every operation O(1) (deleting one-by-one from the front of a large Map is
 * not: V8 walks the holes) at the price of forgetting ids in blocks, oldest
 * first, once more than maxEntries arrive inside the window (README "Limits").
 */
export class ReplayWindow {
  private current = new Map<string, number>()
  private previous = new Map<string, number>()
  private readonly generationSize: number

  constructor (private readonly windowMs: number, maxEntries: number) {
    this.generationSize = Math.max(1, Math.floor(maxEntries / 2))
  }

  get size (): number {
    return this.current.size + this.previous.size
  }

  /**
   * True when `key` was seen within the window; otherwise records it and
   * returns false. It is remembered for the window after `ts`, or until
   * `until` if that is later (a message valid until its `exp`).
   */
  checkAndRemember (key: string, ts: number, now = Date.now(), until = 0): boolean {
    const expires = this.current.get(key) ?? this.previous.get(key)
    if (expires !== undefined && expires > now) return true
    this.remember(key, Math.max(until, Math.max(ts, now) + this.windowMs))
    return false
  }

  /** Stop recognising `key`: it was not kept after all (its inbox write failed), so a re-send must be accepted */
  forget (key: string): void {
    this.current.delete(key)
    this.previous.delete(key)
  }

  /** Record `key` as seen until `until` (ms), e.g. when reloading persisted ids */
  remember (key: string, until: number): void {
    if (this.current.size >= this.generationSize) {
      this.previous = this.current
      this.current = new Map()
    }
    this.current.set(key, until)
  }
}
