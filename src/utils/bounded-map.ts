/**
 * A Map that keeps at most `maxSize` entries: `set` drops the least recently
 * set first. Reads do not reorder (cheaper than full LRU bookkeeping, and
 * enough for caches of peers, keys and records).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor (readonly maxSize: number) {
    super()
  }

  override set (key: K, value: V): this {
    // re-inserted: a key set again counts as the newest
    super.delete(key)
    super.set(key, value)
    while (this.size > this.maxSize) super.delete(super.keys().next().value as K)
    return this
  }
}
