import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult, type GossipSub, type Message, type SubscriptionChangeData } from '@libp2p/gossipsub'
import {
  decodeRotation, rotationId, verifyRotation, RotationChain, RotationConflictError, type KeyRotation, type RotationLink
} from '../../identity/rotation/index.js'
import { canonicalize } from '../../moltspeak/index.js'
import type { Database } from '../../storage/index.js'
import { IssuerRateLimitError, TrustStoreFullError, TrustSyncError } from './errors.js'
import { publishOnce, subscribeValidated, unsubscribeValidated } from './gossip.js'
import type { RecordIntake } from './intake.js'
import { RateLimiter } from './rate-limit.js'
import { SyncDigest, bucketOf } from './sync-digest.js'
import type { SyncSource } from './sync.js'
import * as c from './constants.js'

export interface KeyRotationsInit {
  db: Database
  intake: RecordIntake
  /** @default KEY_ROTATION_TOPIC */
  topic?: string
  /** The clock the chain checks and the grace period read. @default Date.now */
  now?: () => number
  /** @default ROTATION_GRACE_PERIOD (src/identity/rotation/constants.ts) */
  gracePeriod?: number
  /** @default ISSUER_BURST */
  burst?: number
  /** @default ISSUER_RATE_PER_MINUTE */
  ratePerMinute?: number
  /** @default MAX_KEY_ROTATIONS */
  maxStored?: number
  /** This agent's own statements: published again whenever a peer subscribes to the topic (a peer away during the rotation learns it). @default [] */
  announce?: readonly unknown[]
}

/** A key rotation as a node holds it */
export interface KeyRotationRecord {
  /** hex SHA-256 of the canonical signed statement */
  id: string
  rotation: KeyRotation
  /** PeerId retired */
  from: string
  /** PeerId that took over */
  to: string
  /** Unix ms from which `from` is refused */
  refusedFrom: number
}

/**
 * Agents' key rotation statements (src/identity/rotation/) on their own
 * gossipsub topic and in trust-sync, kept in LevelDB (`trust-rotation`) and
 * as chains of PeerIds (protocols/identity.md, "Key rotation"). The trust
 * service scores an identity under its newest PeerId with the records of all
 * its keys, and refuses an old key once its grace period is over.
 */
export class KeyRotations implements SyncSource {
  readonly topic: string
  readonly chain: RotationChain
  private readonly buckets = new SyncDigest()
  private readonly bytes = new Map<string, Uint8Array>()
  private readonly table: ReturnType<Database['sublevel']>
  private readonly byPublisher: RateLimiter
  private readonly maxStored: number
  readonly now: () => number

  constructor (private readonly pubsub: GossipSub, private readonly init: KeyRotationsInit) {
    this.topic = init.topic ?? c.KEY_ROTATION_TOPIC
    this.chain = new RotationChain(init.gracePeriod)
    this.now = init.now ?? Date.now
    this.table = init.db.sublevel('trust-rotation', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.byPublisher = new RateLimiter(init.burst ?? c.ISSUER_BURST, init.ratePerMinute ?? c.ISSUER_RATE_PER_MINUTE, c.MAX_RATE_BUCKETS)
    this.maxStored = init.maxStored ?? c.MAX_KEY_ROTATIONS
  }

  /** Load the kept statements, in chain order (seq) so each finds the one before it */
  async open (): Promise<void> {
    const kept: KeyRotation[] = []
    for await (const [, json] of this.table.iterator()) {
      try {
        kept.push(verifyRotation(decodeRotation(json as string)))
      } catch {}
    }
    kept.sort((a, b) => a.seq - b.seq || a.issued - b.issued)
    for (const rotation of kept) {
      try {
        this.remember(rotation)
      } catch {}
    }
  }

  start (): void {
    subscribeValidated(this.pubsub, this.topic, async (peer, msg) => this.validate(peer, msg))
    if (this.announced.length > 0) this.pubsub.addEventListener('subscription-change', this.onSubscription)
  }

  stop (): void {
    this.pubsub.removeEventListener('subscription-change', this.onSubscription)
    unsubscribeValidated(this.pubsub, this.topic)
  }

  /** Take in this agent's own statements (those that no longer fit the chains known are dropped, not fatal) */
  async announceOwn (): Promise<void> {
    for (const value of this.init.announce ?? []) {
      try {
        this.announced.push((await this.add(value)).id)
      } catch (err: any) {
        this.init.intake.reject(err, 'an own key rotation')
      }
    }
  }

  private readonly announced: string[] = []

  /** A peer joined the topic: publish the own statements again (gossipsub drops what a peer has seen) */
  private readonly onSubscription = (evt: CustomEvent<SubscriptionChangeData>): void => {
    if (!evt.detail.subscriptions.some(s => s.topic === this.topic && s.subscribe)) return
    for (const id of this.announced) {
      const bytes = this.bytes.get(id)
      // a repeat within gossipsub's seen-cache time is refused as a duplicate: that peer gets it by gossip or sync
      if (bytes !== undefined) publishOnce(this.pubsub, this.topic, bytes).catch(() => {})
    }
  }

  get size (): number {
    return this.chain.size
  }

  all (): KeyRotationRecord[] {
    return [...this.chain.links()].map(record)
  }

  /**
   * Verify (both signatures), check against the chains and keep; `added`
   * false when it was held already
   *
   * @throws {InvalidRotationError | RotationSignatureError | RotationConflictError | TrustStoreFullError}
   */
  async add (value: unknown): Promise<KeyRotationRecord & { added: boolean }> {
    const rotation = verifyRotation(decodeRotation(typeof value === 'string' || value instanceof Uint8Array ? value : canonicalize(value)))
    const known = this.chain.get(rotationId(rotation))
    if (known !== undefined) return { ...record(known), added: false }
    const link = this.remember(rotation)
    await this.table.put(link.id, canonicalize(rotation))
    this.init.intake.accepted++
    return { ...record(link), added: true }
  }

  /** Keep and publish (`molt key rotate`, a restart republishing the agent's own statements) */
  async publish (value: unknown): Promise<KeyRotationRecord> {
    const { added, ...kept } = await this.add(value)
    await publishOnce(this.pubsub, this.topic, this.bytes.get(kept.id) as Uint8Array)
    return kept
  }

  /** A sync record (`{ id, key_rotation }`): the id must be the statement's; true when it was new */
  async addFromSync (value: { id?: unknown, key_rotation?: unknown }): Promise<boolean> {
    const rotation = decodeRotation(canonicalize(value.key_rotation))
    const id = rotationId(rotation)
    if (id !== value.id) throw new TrustSyncError(`the peer sent rotation ${id} as ${String(value.id)}`)
    return (await this.add(rotation)).added
  }

  /** The topic validator: size, structure, duplicates, rate, signatures, the chain rules */
  async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    const { intake } = this.init
    const what = 'a key rotation'
    if (msg.type !== 'signed' || msg.data.byteLength > c.MAX_ATTESTATION_BYTES) {
      intake.reject(new TrustSyncError('unsigned or oversized key rotation message'), what)
      return TopicValidatorResult.Reject
    }
    let rotation: KeyRotation
    try {
      rotation = decodeRotation(msg.data)
    } catch (err: any) {
      intake.reject(err, what)
      return TopicValidatorResult.Reject
    }
    if (this.chain.has(rotationId(rotation))) return TopicValidatorResult.Ignore
    const publisher = msg.from.toString()
    if (!this.byPublisher.take(publisher)) {
      intake.reject(new IssuerRateLimitError(`${publisher} publishes key rotations over its rate`), what)
      return peer.toString() === publisher ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    try {
      await this.add(rotation)
    } catch (err: any) {
      intake.reject(err, what)
      // a conflict may be an honest race seen in another order elsewhere: not the forwarder's fault
      return err instanceof RotationConflictError || err instanceof TrustStoreFullError ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    return TopicValidatorResult.Accept
  }

  // SyncSource: statements take part in /molt/trust-sync/1.0.0 sessions as `{ id, key_rotation }`

  digest (): string[] {
    return this.buckets.digest()
  }

  idsInBuckets (buckets: Set<number>, limit: number): string[] {
    return [...this.bytes.keys()].filter(id => buckets.has(bucketOf(id))).sort().slice(0, limit)
  }

  has (id: string): boolean {
    return this.chain.has(id)
  }

  wire (id: string): unknown {
    const link = this.chain.get(id)
    return link === undefined ? undefined : { id, key_rotation: link.rotation }
  }

  /** @throws {RotationConflictError | TrustStoreFullError} */
  private remember (rotation: KeyRotation): RotationLink {
    if (this.chain.size >= this.maxStored) throw new TrustStoreFullError(`${this.maxStored} key rotations are held already`)
    this.chain.add(rotation, this.now())
    const link = this.chain.get(rotationId(rotation)) as RotationLink
    this.bytes.set(link.id, Buffer.from(canonicalize(rotation), 'utf8'))
    this.buckets.toggle(link.id, true)
    return link
  }
}

function record (link: RotationLink): KeyRotationRecord {
  return { id: link.id, rotation: link.rotation, from: link.from, to: link.to, refusedFrom: link.refusedFrom }
}
