import { SYNC_BUCKETS } from './constants.js'

/**
 * The reconciliation digest of a set of 64-hex ids (protocols/trust.md,
 * "Sync"): per bucket (the id's first byte) the count and the XOR of the
 * ids' first 16 bytes. Toggling an id in and out is O(1).
 */
export class SyncDigest {
  private readonly count = new Uint32Array(SYNC_BUCKETS)
  private readonly xor: Uint8Array[] = Array.from({ length: SYNC_BUCKETS }, () => new Uint8Array(16))

  /** `id` joined (`present`) or left the set */
  toggle (id: string, present: boolean): void {
    const b = bucketOf(id)
    const bytes = Buffer.from(id.slice(0, 32), 'hex')
    const acc = this.xor[b]
    for (let i = 0; i < 16; i++) acc[i] ^= bytes[i]
    this.count[b] += present ? 1 : -1
  }

  /** Per-bucket `count:xor`: equal strings mean (almost surely) equal buckets */
  digest (): string[] {
    const out: string[] = []
    for (let b = 0; b < SYNC_BUCKETS; b++) {
      out.push(this.count[b] === 0 ? '' : `${this.count[b]}:${Buffer.from(this.xor[b]).toString('hex')}`)
    }
    return out
  }
}

/** The reconciliation bucket of an id: its first byte */
export function bucketOf (id: string): number {
  return parseInt(id.slice(0, 2), 16) % SYNC_BUCKETS
}

/** The digest of the union of two disjoint sets, from their digests */
export function mergeDigests (a: readonly string[], b: readonly string[]): string[] {
  return a.map((x, i) => {
    const y = b[i]
    if (x === '' || y === '') return x === '' ? y : x
    const [cx, hx] = x.split(':')
    const [cy, hy] = y.split(':')
    const xor = Buffer.from(hx, 'hex')
    const other = Buffer.from(hy, 'hex')
    for (let k = 0; k < xor.length; k++) xor[k] ^= other[k]
    return `${Number(cx) + Number(cy)}:${xor.toString('hex')}`
  })
}
