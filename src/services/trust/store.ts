import type { Database } from '../../storage/index.js'
import { GroupCommit, type CommitOp } from '../../storage/group-commit.js'
import type { Experience, Signal } from './model/index.js'
import { DEFAULT_SCORE_PARAMS } from './model/index.js'
import { peerIdOfKey, type Attestation, type VerifiedAttestation } from './attestation.js'
import { TrustStoreFullError } from './errors.js'
import { TrustPaths, isVouch } from './anchors.js'
import { MAX_UNANCHORED_BYTES, MAX_UNANCHORED_RECORDS } from './constants.js'
import { SyncDigest, bucketOf } from './sync-digest.js'

/** One stored record and what the store derived from it */
export interface StoredAttestation {
  record: Attestation
  issuer: string
  subject: string
  /** Id of the issuer's revocation of this record, once one is known */
  revokedBy?: string
}

type Sublevel = ReturnType<Database['sublevel']>

/** What issuers without a trust path may occupy (constants.ts MAX_UNANCHORED_*) */
export interface TrustStoreBounds {
  /** The roots of trust paths: this node and its pre-trusted peers */
  roots?: readonly string[]
  /** Records kept from issuers without a trust path. @default 20,000 */
  maxUnanchored?: number
  /** Bytes of records kept from issuers without a trust path. @default 16 MiB */
  maxUnanchoredBytes?: number
}

/**
 * Attestations in LevelDB, with an in-memory mirror for scoring and sync:
 * `trust-att` id → record JSON, `trust-sub` `<subject>!<id>` and `trust-iss`
 * `<issuer>!<id>` as indexes, `trust-exp` this node's observed exchanges.
 * Writes are batched without fsync: every record can be fetched again by sync.
 *
 * Records of issuers without a trust path (from the roots through
 * endorsements and completed tasks, or a successful exchange with this node)
 * live in a bounded space of their own, oldest evicted first: 10,000 free
 * identities cannot fill the store or push out anyone else's records.
 */
export class TrustStore {
  private readonly records = new Map<string, StoredAttestation>()
  /** revoked credential id → revocation ids naming it (kept until the original arrives, then checked) */
  private readonly revocations = new Map<string, Set<string>>()
  private readonly signalMap = new Map<string, Signal>()
  private readonly buckets = new SyncDigest()
  private readonly experienceMap = new Map<string, Experience>()
  private readonly att: Sublevel
  private readonly sub: Sublevel
  private readonly iss: Sublevel
  private readonly exp: Sublevel
  private readonly commit: GroupCommit
  /** Bumped on every change of the signals or the experience: score caches key on it */
  version = 0
  /** Issuers with a trust path */
  private readonly paths: TrustPaths
  /** Records of issuers without one, oldest first, with their sizes; and their ids by issuer */
  private readonly unanchored = new Map<string, number>()
  private readonly unanchoredByIssuer = new Map<string, Set<string>>()
  private unanchoredBytes = 0
  private readonly sizes = new Map<string, number>()
  private readonly maxUnanchored: number
  private readonly maxUnanchoredBytes: number

  constructor (db: Database, private readonly maxStored: number, bounds: TrustStoreBounds = {}) {
    this.paths = new TrustPaths(bounds.roots ?? [], () => this.experienceMap)
    this.maxUnanchored = bounds.maxUnanchored ?? MAX_UNANCHORED_RECORDS
    this.maxUnanchoredBytes = bounds.maxUnanchoredBytes ?? MAX_UNANCHORED_BYTES
    const opts = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const
    this.att = db.sublevel('trust-att', opts)
    this.sub = db.sublevel('trust-sub', opts)
    this.iss = db.sublevel('trust-iss', opts)
    this.exp = db.sublevel('trust-exp', opts)
    this.commit = new GroupCommit(db, { sync: false })
  }

  /** Load what the database holds (records were verified before they were written) */
  async open (): Promise<void> {
    for await (const [, json] of this.att.iterator()) {
      const record = JSON.parse(json as string) as Attestation
      this.sizes.set(record.id, (json as string).length)
      this.remember({ record, issuer: peerIdOfKey(record.issuer.key), subject: peerIdOfKey(record.subject.key) })
    }
    for await (const [peer, json] of this.exp.iterator()) {
      this.experienceMap.set(peer as string, JSON.parse(json as string) as Experience)
    }
    this.version++
    this.paths.invalidate()
    // a store written before the bound (or with a larger one) is brought within it
    await this.commit.write(this.settle())
  }

  /** Records held from issuers without a trust path */
  get unanchoredCount (): number {
    return this.unanchored.size
  }

  /** Does `issuer` have a trust path (anchors.ts)? */
  anchored (issuer: string): boolean {
    return this.paths.has(issuer)
  }

  /**
   * After the trust paths were invalidated (prune, open): sort every held
   * record into anchored or not again, evicting the oldest unanchored ones
   * beyond the bound; returns the deletes to write
   */
  private settle (): CommitOp[] {
    if (!this.paths.stale) return []
    const anchored = this.paths.get()
    this.unanchored.clear()
    this.unanchoredByIssuer.clear()
    this.unanchoredBytes = 0
    for (const [id, stored] of this.records) {
      if (!anchored.has(stored.issuer)) this.markUnanchored(id, stored.issuer)
    }
    return this.evictUnanchored(0, 0)
  }

  private markUnanchored (id: string, issuer: string): void {
    const bytes = this.sizes.get(id) ?? 0
    this.unanchored.set(id, bytes)
    this.unanchoredBytes += bytes
    let ids = this.unanchoredByIssuer.get(issuer)
    if (ids === undefined) this.unanchoredByIssuer.set(issuer, ids = new Set())
    ids.add(id)
  }

  /** `peers` gained a trust path: their records leave the unanchored space */
  private promote (peers: string[]): void {
    for (const peer of peers) {
      for (const id of this.unanchoredByIssuer.get(peer) ?? []) {
        this.unanchoredBytes -= this.unanchored.get(id) ?? 0
        this.unanchored.delete(id)
      }
      this.unanchoredByIssuer.delete(peer)
    }
  }

  /** Evict the oldest unanchored records until `count` more records and `bytes` more bytes fit; the deletes to write */
  private evictUnanchored (count: number, bytes: number): CommitOp[] {
    const ops: CommitOp[] = []
    while (this.unanchored.size > 0 && (this.unanchored.size + count > this.maxUnanchored || this.unanchoredBytes + bytes > this.maxUnanchoredBytes)) {
      const [oldest] = this.unanchored.keys()
      ops.push(...this.drop(this.records.get(oldest) as StoredAttestation))
    }
    return ops
  }

  /** Evict the oldest unanchored record, if any, to make room in the whole store; the deletes to write */
  private evictOneUnanchored (): CommitOp[] {
    const [oldest] = this.unanchored.keys()
    return oldest === undefined ? [] : this.drop(this.records.get(oldest) as StoredAttestation)
  }

  /** Forget a record and return its deletes */
  private drop (stored: StoredAttestation): CommitOp[] {
    const { record, issuer, subject } = stored
    this.forget(stored)
    return [
      { type: 'del', sublevel: this.att, key: record.id },
      { type: 'del', sublevel: this.sub, key: `${subject}!${record.id}` },
      { type: 'del', sublevel: this.iss, key: `${issuer}!${record.id}` }
    ]
  }

  async close (): Promise<void> {
    await this.commit.close()
  }

  get size (): number {
    return this.records.size
  }

  has (id: string): boolean {
    return this.records.has(id)
  }

  get (id: string): StoredAttestation | undefined {
    return this.records.get(id)
  }

  /** Valid (unrevoked, not revocation) records as score inputs; expired ones are filtered at scoring time */
  signals (): Iterable<Signal> {
    return this.signalMap.values()
  }

  experience (): ReadonlyMap<string, Experience> {
    return this.experienceMap
  }

  /**
   * Keep verified records not stored yet; resolves with the new ones once written.
   *
   * @throws {TrustStoreFullError} the store holds `maxStored` records
   */
  async add (items: VerifiedAttestation[]): Promise<StoredAttestation[]> {
    const added: StoredAttestation[] = []
    const ops: CommitOp[] = []
    for (const item of items) {
      const { record, issuer, subject } = item
      if (this.records.has(record.id)) continue
      const bytes = item.bytes.byteLength
      ops.push(...this.settle())
      const anchored = this.paths.has(issuer)
      // an unanchored record makes room among the unanchored only; an anchored one may take an unanchored one's place
      if (!anchored) ops.push(...this.evictUnanchored(1, bytes))
      if (this.records.size >= this.maxStored) ops.push(...this.evictOneUnanchored())
      if (this.records.size >= this.maxStored) {
        if (added.length === 0) throw new TrustStoreFullError(`the trust store holds ${this.maxStored} attestations`)
        break
      }
      const stored = { record, issuer, subject }
      this.sizes.set(record.id, bytes)
      if (!anchored) this.markUnanchored(record.id, issuer)
      this.remember(stored)
      added.push(stored)
      ops.push(
        { type: 'put', sublevel: this.att, key: record.id, value: Buffer.from(item.bytes).toString('utf8') },
        { type: 'put', sublevel: this.sub, key: `${subject}!${record.id}`, value: '' },
        { type: 'put', sublevel: this.iss, key: `${issuer}!${record.id}`, value: '' }
      )
    }
    if (added.length > 0) this.version++
    await this.commit.write(ops)
    // a record of this batch may have been evicted by a later one
    return added.filter(stored => this.records.has(stored.record.id))
  }

  /** Ids of records about `subject` (or by `issuer`), read from the LevelDB index */
  async ids (index: 'subject' | 'issuer', peer: string, limit = 1000): Promise<string[]> {
    const table = index === 'subject' ? this.sub : this.iss
    const out: string[] = []
    for await (const key of table.keys({ gt: `${peer}!`, lt: `${peer}!~`, limit })) {
      out.push((key as string).slice(peer.length + 1))
    }
    return out
  }

  /** Every record, newest issued first (for `molt trust list` without a filter) */
  all (limit: number): StoredAttestation[] {
    return [...this.records.values()].sort((a, b) => b.record.issued - a.record.issued || (a.record.id < b.record.id ? -1 : 1)).slice(0, limit)
  }

  /** Drop records expired before `now` (a revocation stays while the record it revokes could still count) */
  async prune (now: number): Promise<number> {
    const ops: CommitOp[] = []
    for (const stored of [...this.records.values()]) {
      const { record } = stored
      if (record.expires > now) continue
      if (record.type === 'revocation' && this.records.get(record.claims.credential_id as string)?.record.expires !== undefined &&
        (this.records.get(record.claims.credential_id as string)?.record.expires as number) > now) continue
      ops.push(...this.drop(stored))
    }
    const pruned = ops.length / 3
    if (pruned > 0) this.version++
    // an expired or revoked vouch may have been someone's trust path (worked out again here, not per record)
    this.paths.invalidate()
    ops.push(...this.settle())
    await this.commit.write(ops)
    return pruned
  }

  /** Count one exchange with `peer` that this node saw succeed or fail */
  observe (peer: string, ok: boolean, now = Date.now()): void {
    const { positiveHalfLife, negativeHalfLife } = DEFAULT_SCORE_PARAMS
    const e = this.experienceMap.get(peer)
    const age = e === undefined ? 0 : Math.max(0, now - e.at)
    const next: Experience = {
      success: (e?.success ?? 0) * Math.pow(0.5, age / positiveHalfLife) + (ok ? 1 : 0),
      failure: (e?.failure ?? 0) * Math.pow(0.5, age / negativeHalfLife) + (ok ? 0 : 1),
      at: Math.max(now, e?.at ?? 0)
    }
    // a first successful exchange gives the peer (and whom it vouches for) a trust path
    if (ok) this.promote(this.paths.succeeded(peer))
    this.experienceMap.set(peer, next)
    this.dirtyExperience.add(peer)
    this.version++
  }

  private readonly dirtyExperience = new Set<string>()

  /** Write observed exchanges changed since the last flush */
  async flushExperience (): Promise<void> {
    const ops: CommitOp[] = []
    for (const peer of this.dirtyExperience) {
      const e = this.experienceMap.get(peer)
      if (e !== undefined) ops.push({ type: 'put', sublevel: this.exp, key: peer, value: JSON.stringify(e) })
    }
    this.dirtyExperience.clear()
    await this.commit.write(ops)
  }

  /** Per-bucket `count:xor` of the ids held (sync-digest.ts) */
  digest (): string[] {
    return this.buckets.digest()
  }

  /** Ids held in the given buckets, sorted, at most `limit` */
  idsInBuckets (buckets: Set<number>, limit: number): string[] {
    const out: string[] = []
    for (const id of this.records.keys()) {
      if (buckets.has(bucketOf(id))) out.push(id)
    }
    return out.sort().slice(0, limit)
  }

  private remember (stored: StoredAttestation): void {
    const { record } = stored
    this.records.set(record.id, stored)
    this.toggleBucket(record.id)
    if (record.type === 'revocation') {
      const target = record.claims.credential_id as string
      const set = this.revocations.get(target) ?? new Set()
      set.add(record.id)
      this.revocations.set(target, set)
      const original = this.records.get(target)
      if (original !== undefined) this.applyRevocations(original)
      return
    }
    this.applyRevocations(stored)
    if (stored.revokedBy === undefined) {
      const signal = toSignal(stored)
      this.signalMap.set(record.id, signal)
      // a vouch by an issuer with a trust path gives its subject one
      if (isVouch(signal)) this.promote(this.paths.addVouch(signal.issuer, signal.subject))
    }
  }

  private forget (stored: StoredAttestation): void {
    const { record } = stored
    this.records.delete(record.id)
    this.sizes.delete(record.id)
    const bytes = this.unanchored.get(record.id)
    if (bytes !== undefined) {
      this.unanchored.delete(record.id)
      this.unanchoredBytes -= bytes
    }
    this.toggleBucket(record.id)
    this.unsignal(record.id)
    const issued = this.unanchoredByIssuer.get(stored.issuer)
    issued?.delete(record.id)
    if (issued?.size === 0) this.unanchoredByIssuer.delete(stored.issuer)
    if (record.type === 'revocation') {
      const set = this.revocations.get(record.claims.credential_id as string)
      set?.delete(record.id)
      if (set?.size === 0) this.revocations.delete(record.claims.credential_id as string)
    } else {
      this.revocations.delete(record.id)
    }
  }

  /** A revocation counts only when it comes from the record's own issuer */
  private applyRevocations (stored: StoredAttestation): void {
    if (stored.revokedBy !== undefined) return
    for (const id of [...(this.revocations.get(stored.record.id) ?? [])].sort()) {
      const revocation = this.records.get(id)
      if (revocation !== undefined && revocation.issuer === stored.issuer) {
        stored.revokedBy = id
        this.unsignal(stored.record.id)
        return
      }
    }
  }

  private unsignal (id: string): void {
    const signal = this.signalMap.get(id)
    if (signal === undefined) return
    this.signalMap.delete(id)
    if (isVouch(signal)) this.paths.removeVouch(signal.issuer, signal.subject)
  }

  private toggleBucket (id: string): void {
    this.buckets.toggle(id, this.records.has(id))
  }
}

function toSignal (stored: StoredAttestation): Signal {
  const { record, issuer, subject } = stored
  const c = record.claims
  return {
    id: record.id,
    issuer,
    subject,
    type: record.type as Signal['type'],
    ...(c.domain !== undefined ? { domain: c.domain } : {}),
    ...(c.strength !== undefined ? { strength: c.strength } : {}),
    ...(c.severity !== undefined ? { severity: c.severity } : {}),
    ...(c.outcome !== undefined ? { outcome: c.outcome } : {}),
    ...(c.quality_rating !== undefined ? { quality_rating: c.quality_rating } : {}),
    issued: record.issued,
    expires: record.expires
  }
}
