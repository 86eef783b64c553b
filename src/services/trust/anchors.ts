import type { Experience, Signal } from './model/index.js'

/** Does a signal give its subject a trust path from its issuer? Endorsements and completed tasks do */
export function isVouch (signal: Pick<Signal, 'type' | 'outcome'>): boolean {
  return signal.type === 'endorsement' || (signal.type === 'task_completion' && signal.outcome === 'completed')
}

/**
 * Which issuers have a trust path: the roots (this node, its pre-trusted
 * peers), peers this node exchanged with successfully, and whoever such an
 * issuer vouches for, transitively. Everyone else is a free identity as far
 * as storage goes (store.ts bounds what they may occupy).
 *
 * A new vouch or a first successful exchange extends the set at once; a
 * vouch that goes away (revoked, expired) only counts after `invalidate()`,
 * which the store calls when it prunes: recomputing costs a pass over every
 * signal, too much to do per record during a sync.
 */
export class TrustPaths {
  /** issuer → subjects it vouches for → how many live signals say so */
  private readonly vouches = new Map<string, Map<string, number>>()
  private set?: Set<string>

  constructor (private readonly roots: readonly string[], private readonly experience: () => ReadonlyMap<string, Experience>) {}

  /** True when the set must be worked out again (the holders of records may change class) */
  get stale (): boolean {
    return this.set === undefined
  }

  has (peer: string): boolean {
    return this.get().has(peer)
  }

  get (): Set<string> {
    if (this.set !== undefined) return this.set
    const set = new Set(this.roots)
    for (const [peer, e] of this.experience()) if (e.success > 0) set.add(peer)
    this.set = set
    for (const root of [...set]) this.extendFrom(root)
    return set
  }

  invalidate (): void {
    this.set = undefined
  }

  /** A vouch was stored; returns the peers it gave a trust path */
  addVouch (issuer: string, subject: string): string[] {
    let subjects = this.vouches.get(issuer)
    if (subjects === undefined) this.vouches.set(issuer, subjects = new Map())
    subjects.set(subject, (subjects.get(subject) ?? 0) + 1)
    if (this.set === undefined || !this.set.has(issuer) || this.set.has(subject)) return []
    this.set.add(subject)
    return [subject, ...this.extendFrom(subject)]
  }

  /** A vouch was forgotten: counts at the next `invalidate()` */
  removeVouch (issuer: string, subject: string): void {
    const subjects = this.vouches.get(issuer)
    const left = (subjects?.get(subject) ?? 1) - 1
    if (left > 0) subjects?.set(subject, left)
    else subjects?.delete(subject)
    if (subjects?.size === 0) this.vouches.delete(issuer)
  }

  /** A successful exchange with `peer`; returns the peers that gained a trust path */
  succeeded (peer: string): string[] {
    if (this.set === undefined || this.set.has(peer)) return []
    this.set.add(peer)
    return [peer, ...this.extendFrom(peer)]
  }

  /** Add whoever `from` vouches for, transitively; returns them */
  private extendFrom (from: string): string[] {
    const set = this.set as Set<string>
    const added: string[] = []
    const queue = [from]
    while (queue.length > 0) {
      for (const subject of this.vouches.get(queue.pop() as string)?.keys() ?? []) {
        if (set.has(subject)) continue
        set.add(subject)
        added.push(subject)
        queue.push(subject)
      }
    }
    return added
  }
}
