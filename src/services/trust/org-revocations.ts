import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import {
  classifyRevocation, decodeRevocation, revocationId, InvalidCertificateError, type OrgRevocation, type OrgRoot
} from '../../identity/org/index.js'
import { canonicalize } from '../../moltspeak/index.js'
import type { Database } from '../../storage/index.js'
import { IssuerRateLimitError, TrustStoreFullError, TrustSyncError } from './errors.js'
import { publishOnce, subscribeValidated, unsubscribeValidated } from './gossip.js'
import type { RecordIntake } from './intake.js'
import { RateLimiter } from './rate-limit.js'
import { SyncDigest, bucketOf } from './sync-digest.js'
import type { SyncSource } from './sync.js'
import type { OrgRevocationRecord } from './types.js'
import * as c from './constants.js'

export interface OrgRevocationsInit {
  db: Database
  /** @default ORG_REVOCATION_TOPIC */
  topic?: string
  /** The organisations this node trusts (config `trust.orgs`), read on every check */
  roots: () => readonly OrgRoot[]
  intake: RecordIntake
  /** @default ISSUER_BURST */
  burst?: number
  /** @default ISSUER_RATE_PER_MINUTE */
  ratePerMinute?: number
  /** @default MAX_ORG_REVOCATIONS */
  maxTrusted?: number
  /** @default MAX_UNTRUSTED_ORG_REVOCATIONS */
  maxUntrusted?: number
}

type Entry = OrgRevocationRecord & { bytes: Uint8Array }

/** The revocations a node kept in its LevelDB (`trust-orgrev`), read without starting it (`molt card` with no agent running); unreadable ones skipped */
export async function storedOrgRevocations (db: Database): Promise<OrgRevocation[]> {
  const out: OrgRevocation[] = []
  for await (const json of db.sublevel('trust-orgrev', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).values({ limit: c.MAX_ORG_REVOCATIONS })) {
    try {
      out.push(decodeRevocation(json as string))
    } catch {}
  }
  return out
}

/**
 * Organisation revocations (src/identity/org/revocation.ts) on their own
 * gossipsub topic and in trust-sync (protocols/identity.md, "Revocation
 * propagation"). Those of trusted organisations are kept in LevelDB
 * (`trust-orgrev`) and honoured by the card verdicts; those of other
 * organisations are carried in a bounded memory space, oldest evicted, so
 * they reach nodes that do trust them. A revocation naming a trusted
 * organisation but signed by another key is refused everywhere.
 */
export class OrgRevocations implements SyncSource {
  readonly topic: string
  private readonly entries = new Map<string, Entry>()
  /** Ids of untrusted entries, oldest first */
  private readonly untrusted = new Set<string>()
  private readonly buckets = new SyncDigest()
  private readonly table: ReturnType<Database['sublevel']>
  private readonly byPublisher: RateLimiter
  private readonly byOrgKey: RateLimiter
  private readonly maxTrusted: number
  private readonly maxUntrusted: number
  /** What cards' verdicts read: a new array object after every change (their cache keys on it) */
  private current: readonly OrgRevocation[] = []

  constructor (private readonly pubsub: GossipSub, private readonly init: OrgRevocationsInit) {
    this.topic = init.topic ?? c.ORG_REVOCATION_TOPIC
    this.table = init.db.sublevel('trust-orgrev', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const burst = init.burst ?? c.ISSUER_BURST
    const rate = init.ratePerMinute ?? c.ISSUER_RATE_PER_MINUTE
    this.byPublisher = new RateLimiter(burst, rate, c.MAX_RATE_BUCKETS)
    this.byOrgKey = new RateLimiter(burst, rate, c.MAX_RATE_BUCKETS)
    this.maxTrusted = init.maxTrusted ?? c.MAX_ORG_REVOCATIONS
    this.maxUntrusted = init.maxUntrusted ?? c.MAX_UNTRUSTED_ORG_REVOCATIONS
  }

  /** Load the kept revocations, checked again against today's roots (a root removed from trust.orgs no longer counts) */
  async open (): Promise<void> {
    const stale: string[] = []
    for await (const [id, json] of this.table.iterator()) {
      try {
        this.remember(decodeRevocation(json as string))
      } catch {
        stale.push(id as string)
      }
    }
    if (stale.length > 0) await this.table.batch(stale.map(key => ({ type: 'del' as const, key })))
  }

  /** gossipsub subscribes once started */
  start (): void {
    subscribeValidated(this.pubsub, this.topic, async (peer, msg) => this.validate(peer, msg))
  }

  stop (): void {
    unsubscribeValidated(this.pubsub, this.topic)
  }

  get size (): number {
    return this.entries.size
  }

  /** Every revocation held (trusted or not: a verdict checks each against its own roots) */
  all (): readonly OrgRevocation[] {
    return this.current
  }

  get (id: string): OrgRevocationRecord | undefined {
    const entry = this.entries.get(id)
    return entry === undefined ? undefined : { id: entry.id, revocation: entry.revocation, trusted: entry.trusted }
  }

  /**
   * Check and keep a revocation from the API, a file or sync; resolves with
   * it (and `added` false when it was held already)
   *
   * @throws {InvalidCertificateError | RevocationSignatureError | TrustStoreFullError}
   */
  async add (value: unknown): Promise<OrgRevocationRecord & { added: boolean }> {
    const revocation = decodeRevocation(typeof value === 'string' || value instanceof Uint8Array ? value : canonicalize(value))
    const id = revocationId(revocation)
    const known = this.get(id)
    if (known !== undefined) return { ...known, added: false }
    const entry = this.remember(revocation)
    if (entry.trusted) await this.table.put(id, canonicalize(revocation))
    this.init.intake.accepted++
    return { id, revocation, trusted: entry.trusted, added: true }
  }

  /** Keep and publish (the local API, `molt org revoke` on a running agent) */
  async publish (value: unknown): Promise<OrgRevocationRecord> {
    const { added, ...record } = await this.add(value)
    await publishOnce(this.pubsub, this.topic, (this.entries.get(record.id) as Entry).bytes)
    return record
  }

  /** A sync record (`{ id, org_revocation }`): the id must be the revocation's; true when it was new */
  async addFromSync (value: { id?: unknown, org_revocation?: unknown }): Promise<boolean> {
    const revocation = decodeRevocation(canonicalize(value.org_revocation))
    const id = revocationId(revocation)
    if (id !== value.id) throw new TrustSyncError(`the peer sent revocation ${id} as ${String(value.id)}`)
    return (await this.add(revocation)).added
  }

  /** The topic validator: size, structure, duplicates, rate, then the signature */
  async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    const { intake } = this.init
    const refuse = (err: Error): TopicValidatorResult => { intake.reject(err, 'an org revocation'); return TopicValidatorResult.Reject }
    if (msg.type !== 'signed') return refuse(new InvalidCertificateError('unsigned gossip message', 'from'))
    if (msg.data.byteLength > c.MAX_ATTESTATION_BYTES) {
      return refuse(new InvalidCertificateError(`revocation of ${msg.data.byteLength} bytes is over ${c.MAX_ATTESTATION_BYTES}`, 'revocation'))
    }
    let revocation: OrgRevocation
    try {
      revocation = decodeRevocation(msg.data)
    } catch (err: any) {
      return refuse(err)
    }
    if (this.entries.has(revocationId(revocation))) return TopicValidatorResult.Ignore
    const publisher = msg.from.toString()
    if (!this.byPublisher.take(publisher)) {
      intake.reject(new IssuerRateLimitError(`${publisher} publishes revocations over its rate`), 'an org revocation')
      // the flooder itself is penalised; a forwarder whose view of the rate differs is not
      return peer.toString() === publisher ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    if (!this.byOrgKey.take(revocation.org_key)) {
      intake.reject(new IssuerRateLimitError(`${revocation.org} revocations over their rate`), 'an org revocation')
      return TopicValidatorResult.Ignore
    }
    try {
      await this.add(revocation)
    } catch (err: any) {
      intake.reject(err, 'an org revocation')
      return err instanceof TrustStoreFullError ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    return TopicValidatorResult.Accept
  }

  // SyncSource: held revocations take part in /molt/trust-sync/1.0.0 sessions as `{ id, org_revocation }`

  digest (): string[] {
    return this.buckets.digest()
  }

  idsInBuckets (buckets: Set<number>, limit: number): string[] {
    return [...this.entries.keys()].filter(id => buckets.has(bucketOf(id))).sort().slice(0, limit)
  }

  has (id: string): boolean {
    return this.entries.has(id)
  }

  wire (id: string): unknown {
    const entry = this.entries.get(id)
    return entry === undefined ? undefined : { id, org_revocation: entry.revocation }
  }

  /**
   * Classify and hold (memory only); an untrusted one may evict the oldest untrusted
   *
   * @throws {RevocationSignatureError | TrustStoreFullError}
   */
  private remember (revocation: OrgRevocation): Entry {
    const trusted = classifyRevocation(revocation, this.init.roots()) === 'trusted'
    const id = revocationId(revocation)
    if (trusted && this.entries.size - this.untrusted.size >= this.maxTrusted) {
      throw new TrustStoreFullError(`${this.maxTrusted} organisation revocations are held already`)
    }
    if (!trusted) {
      while (this.untrusted.size >= this.maxUntrusted) {
        const [oldest] = this.untrusted
        this.untrusted.delete(oldest)
        this.entries.delete(oldest)
        this.buckets.toggle(oldest, false)
      }
      this.untrusted.add(id)
    }
    const entry: Entry = { id, revocation, trusted, bytes: Buffer.from(canonicalize(revocation), 'utf8') }
    this.entries.set(id, entry)
    this.buckets.toggle(id, true)
    this.current = [...this.entries.values()].map(e => e.revocation)
    return entry
  }
}
