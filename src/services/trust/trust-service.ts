import { createHash } from 'node:crypto'
import { InvalidParametersError, serviceCapabilities } from '@libp2p/interface'
import type { ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { gossipsub, TopicValidatorResult, type GossipSub, type GossipsubOpts, type Message } from '@libp2p/gossipsub'
import type { Identity } from '../../identity/index.js'
import type { MoltMessage } from '../../moltspeak/index.js'
import type { Database } from '../../storage/index.js'
import { TrustModel, type ScoreOptions, type ScoreParams, type TrustScore } from '../../trust/index.js'
import {
  decodeAttestation, keyOfPeerId, signAttestation, verifyAttestation,
  type Attestation, type AttestationType, type Claims, type Evidence, type Outcome, type Severity, type Strength, type VerifiedAttestation
} from './attestation.js'
import {
  AttestationExpiredError, InvalidAttestationError, IssuerRateLimitError, RevocationMismatchError, TrustStoreFullError
} from './errors.js'
import { RateLimiter } from './rate-limit.js'
import { TrustStore, type StoredAttestation } from './store.js'
import { pullSync, serveSync, type SyncLimits } from './sync.js'
import * as c from './constants.js'

export interface TrustInit {
  /** The node's identity: it signs this node's attestations */
  identity: Identity
  /** The node's LevelDB (sublevels `trust-*`) */
  db: Database
  /** PeerIds trusted from the start: the roots of this node's EigenTrust view. @default [] */
  preTrusted?: string[]
  /** @default 'molt/trust/1' */
  topic?: string
  /** @default '/molt/trust-sync/1.0.0' */
  syncProtocol?: string
  /** Scoring parameters (src/trust/params.ts). @default DEFAULT_SCORE_PARAMS */
  scoreParams?: Partial<ScoreParams>
  /** Records one issuer may publish in a burst. @default 30 */
  issuerBurst?: number
  /** Records per minute one issuer may publish after its burst. @default 30 */
  issuerRatePerMinute?: number
  /** @default 200000 */
  maxStored?: number
  /** Records kept from issuers without a trust path (oldest evicted first). @default 20,000 */
  maxUnanchored?: number
  /** Bytes of records kept from issuers without a trust path. @default 16 MiB */
  maxUnanchoredBytes?: number
  /** ms between background syncs with a random connected peer; 0 = off. @default 300000 */
  syncInterval?: number
  /** Peers synced with right after start. @default 3 */
  initialSyncPeers?: number
  /** @default 60000 */
  syncTimeout?: number
  /** Sync limits per session. @default MAX_SYNC_IDS, MAX_SYNC_WANT, MAX_SYNC_RECORDS */
  syncLimits?: Partial<SyncLimits>
  /** Inbox policy: messages from agents scoring below `threshold` are held or refused (E_AUTH_FAILED). @default none */
  inbox?: InboxPolicy
}

export interface InboxPolicy {
  /** Senders whose score is below this are acted on (an unknown agent scores 0.5) */
  threshold: number
  /** `refuse`: the sender gets E_AUTH_FAILED; `hold`: acknowledged but kept out of the inbox (see `held()`) */
  action: 'hold' | 'refuse'
  /** Score in this domain only */
  domain?: string
}

export interface RankOptions {
  /** Drop agents scoring below this */
  minTrust?: number
  /** Highest score first */
  sortByTrust?: boolean
  /** Score in this domain (e.g. the capability searched) */
  trustDomain?: string
}

/** A message the inbox policy held back */
export interface HeldMessage {
  peer: string
  receivedAt: number
  score: number
  message: MoltMessage
}

export interface TrustComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  peerId: PeerId
  /** The gossipsub service, registered as `pubsub` */
  pubsub: GossipSub
}

/** What `attest()` needs: the claim fields by name, the rest is filled in */
export interface AttestInput {
  subject: PeerId | string
  type: Exclude<AttestationType, 'revocation'>
  domain?: string
  strength?: Strength
  severity?: Severity
  outcome?: Outcome
  /** task_completion quality 1..5 */
  rating?: number
  taskId?: string
  taskType?: string
  endorsementType?: string
  skills?: string[]
  evidenceHash?: string
  context?: string
  evidence?: Evidence
  /** ms from now until it expires. @default 365 days */
  validity?: number
  /** @default Date.now() */
  issued?: number
}

export interface ListOptions {
  subject?: PeerId | string
  issuer?: PeerId | string
  /** @default 100 */
  limit?: number
  /** Include revoked records and revocations. @default true */
  includeRevoked?: boolean
}

export interface TrustRecord {
  attestation: Attestation
  issuer: string
  subject: string
  revoked: boolean
  revokedBy?: string
}

export interface TrustStats {
  stored: number
  /** Records accepted from gossip, sync and the API since start */
  accepted: number
  /** Records refused, by reason (error name) */
  rejected: Record<string, number>
  /** Records received by sync since start */
  synced: number
  syncSessions: number
}

export interface SyncResult {
  peer: string
  offered: number
  received: number
  accepted: number
}

/** Signed attestations over gossipsub, their store, catch-up sync and this node's trust scores */
export interface TrustService extends Startable {
  readonly topic: string
  /** Sign, store and publish an attestation about another agent */
  attest(input: AttestInput): Promise<Attestation>
  /** Withdraw one of this node's attestations: a signed revocation, published like any record */
  revoke(id: string, reason?: string): Promise<Attestation>
  /**
   * Take a record signed elsewhere (API, tests): verified and stored; published on
   * gossip only when this node is its issuer (others' records spread by sync).
   *
   * @throws {InvalidAttestationError | AttestationSignatureError | AttestationExpiredError | AttestationFutureError | SelfAttestationError | AttestationTooLargeError | RevocationMismatchError}
   */
  submit(record: unknown): Promise<TrustRecord>
  /** This node's view of `peer`: score, confidence, band and the contributions behind them */
  score(peer: PeerId | string, options?: ScoreOptions): TrustScore
  list(options?: ListOptions): Promise<TrustRecord[]>
  get(id: string): TrustRecord | undefined
  /** Count one exchange with `peer` that succeeded or failed (node.send / node.request outcomes) */
  observe(peer: PeerId | string, ok: boolean): void
  /** Pull the records `peer` has and this node lacks over /molt/trust-sync/1.0.0 */
  sync(peer: PeerId, options?: { signal?: AbortSignal }): Promise<SyncResult>
  /** The gossipsub score this node gives `peer` (negative after invalid messages) */
  gossipScore(peer: PeerId | string): number
  /** A snapshot model of the current records, to score many peers at one time */
  model(): TrustModel
  stats(): TrustStats
  /**
   * Discovery results with this node's score of each; those under `minTrust`
   * dropped, sorted by score (stable) when `sortByTrust`
   */
  rank<T extends { peerId: string }>(items: T[], options?: RankOptions): Array<T & { trust: TrustScore }>
  /** What the inbox policy does with a message from `peer` (always `accept` without a policy) */
  inboxDecision(peer: PeerId | string): 'accept' | 'hold' | 'refuse'
  /** Keep a message the policy holds (at most MAX_HELD, oldest dropped) */
  hold(peer: PeerId | string, message: MoltMessage): void
  /** Messages held by the inbox policy, oldest first */
  held(): HeldMessage[]
  /** Take a held message out of the hold (returns it, or undefined) */
  release(id: string): HeldMessage | undefined
}

/** gossipsub configured for the trust topic: content ids, relayed connections, scoring that penalises invalid records */
export function trustPubsub (init: Partial<GossipsubOpts> = {}): ReturnType<typeof gossipsub> {
  return gossipsub({
    // agents behind NAT reach the mesh through circuit relays
    runOnLimitedConnection: true,
    // a quiet LAN must not make attest() throw: sync catches up later
    allowPublishToZeroTopicPeers: true,
    // an attestation is its own id: the same record from two routes is one message
    msgIdFn: (msg: Message) => createHash('sha256').update(msg.data).digest().subarray(0, 20),
    ...init,
    scoreParams: {
      IPColocationFactorWhitelist: new Set(c.COLOCATION_WHITELIST),
      ...init.scoreParams,
      topics: {
        [c.TOPIC]: {
          topicWeight: 1,
          timeInMeshWeight: 0.01,
          timeInMeshQuantum: 1000,
          timeInMeshCap: 100,
          firstMessageDeliveriesWeight: 0.5,
          firstMessageDeliveriesDecay: 0.9,
          firstMessageDeliveriesCap: 20,
          // attestations are rare: a delivery quota would punish honest quiet peers
          meshMessageDeliveriesWeight: 0,
          meshMessageDeliveriesDecay: 0.5,
          meshMessageDeliveriesCap: 10,
          meshMessageDeliveriesThreshold: 1,
          meshMessageDeliveriesWindow: 10,
          meshMessageDeliveriesActivation: 60_000,
          meshFailurePenaltyWeight: 0,
          meshFailurePenaltyDecay: 0.5,
          invalidMessageDeliveriesWeight: c.INVALID_MESSAGE_WEIGHT,
          invalidMessageDeliveriesDecay: 0.99
        },
        ...init.scoreParams?.topics
      }
    }
  })
}

class DefaultTrustService implements TrustService {
  readonly topic: string
  private readonly log: Logger
  private readonly store: TrustStore
  private readonly limiter: RateLimiter
  private readonly syncProtocol: string
  private readonly syncLimits: SyncLimits
  private readonly preTrusted: string[]
  private readonly lastSync = new Map<string, number>()
  private shutdown = new AbortController()
  private timers: Array<ReturnType<typeof setInterval> | ReturnType<typeof setTimeout>> = []
  private topologyId?: string
  private initialSyncs = 0
  private cached?: { version: number, at: number, model: TrustModel }
  private flushTimer?: ReturnType<typeof setTimeout>
  private counters = { accepted: 0, synced: 0, syncSessions: 0 }
  private readonly rejected: Record<string, number> = {}
  private started = false

  readonly [Symbol.toStringTag] = 'molt/trust'
  readonly [serviceCapabilities] = ['@molt/trust']

  constructor (private readonly components: TrustComponents, private readonly init: TrustInit) {
    this.log = components.logger.forComponent('molt:trust')
    this.topic = init.topic ?? c.TOPIC
    this.syncProtocol = init.syncProtocol ?? c.SYNC_PROTOCOL
    // this node and its pre-trusted peers are the roots of trust paths: issuers without one share a bounded space
    this.store = new TrustStore(init.db, init.maxStored ?? c.MAX_STORED, {
      roots: [components.peerId.toString(), ...(init.preTrusted ?? [])],
      maxUnanchored: init.maxUnanchored,
      maxUnanchoredBytes: init.maxUnanchoredBytes
    })
    this.limiter = new RateLimiter(init.issuerBurst ?? c.ISSUER_BURST, init.issuerRatePerMinute ?? c.ISSUER_RATE_PER_MINUTE, c.MAX_RATE_BUCKETS)
    this.syncLimits = {
      maxIds: init.syncLimits?.maxIds ?? c.MAX_SYNC_IDS,
      maxWant: init.syncLimits?.maxWant ?? c.MAX_SYNC_WANT,
      maxRecords: init.syncLimits?.maxRecords ?? c.MAX_SYNC_RECORDS
    }
    this.preTrusted = [...new Set(init.preTrusted ?? [])]
    if (!init.identity.peerId.equals(components.peerId)) {
      throw new InvalidParametersError(`trust identity ${init.identity.peerId} is not this node's PeerId ${components.peerId}`)
    }
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    await this.store.open()
    await this.components.registrar.handle(this.syncProtocol, async (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: c.MAX_SYNC_INBOUND_STREAMS,
      // agents behind NAT sync through their relay; the session is bounded by the sync limits
      runOnLimitedConnection: true
    })
    this.topologyId = await this.components.registrar.register(this.syncProtocol, {
      notifyOnLimitedConnection: true,
      onConnect: (peer) => { this.onPeerConnected(peer) }
    })
    this.started = true
  }

  /** gossipsub only subscribes once started, which is after every service's start() */
  afterStart (): void {
    const pubsub = this.components.pubsub
    pubsub.topicValidators.set(this.topic, async (peer, msg) => this.validate(peer, msg))
    pubsub.subscribe(this.topic)
    this.timers.push(setInterval(() => { this.prune() }, c.PRUNE_INTERVAL))
    const interval = this.init.syncInterval ?? c.SYNC_INTERVAL
    if (interval > 0) this.timers.push(setInterval(() => { this.backgroundSync() }, interval))
  }

  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort(new Error('trust service stopped'))
    for (const t of this.timers) clearInterval(t)
    this.timers = []
    clearTimeout(this.flushTimer)
    try {
      this.components.pubsub.topicValidators.delete(this.topic)
      this.components.pubsub.unsubscribe(this.topic)
    } catch {}
    if (this.topologyId != null) this.components.registrar.unregister(this.topologyId)
    await this.components.registrar.unhandle(this.syncProtocol)
    await this.store.flushExperience().catch(() => {})
    await this.store.close()
  }

  async attest (input: AttestInput): Promise<Attestation> {
    const subject = typeof input.subject === 'string' ? input.subject : input.subject.toString()
    const issued = input.issued ?? Date.now()
    const claims: Claims = dropUndefined({
      domain: input.domain,
      strength: input.strength ?? (input.type === 'endorsement' ? 'moderate' : undefined),
      severity: input.severity ?? (input.type === 'warning' || input.type === 'incident_report' ? 'medium' : undefined),
      outcome: input.outcome ?? (input.type === 'task_completion' ? 'completed' : undefined),
      quality_rating: input.rating,
      task_id: input.taskId ?? (input.type === 'task_completion' ? `task-${issued}` : undefined),
      task_type: input.taskType,
      endorsement_type: input.endorsementType,
      skills: input.skills,
      evidence_hash: input.evidenceHash,
      context: input.context
    })
    return this.signAndPublish({
      type: input.type,
      version: c.RECORD_VERSION,
      issued,
      expires: issued + (input.validity ?? c.DEFAULT_VALIDITY),
      issuer: { type: 'agent', key: this.init.identity.moltKey },
      subject: { key: keyOfPeerId(subject) },
      claims,
      ...(input.evidence !== undefined ? { evidence: input.evidence } : {})
    })
  }

  async revoke (id: string, reason?: string): Promise<Attestation> {
    const original = this.store.get(id)
    if (original === undefined) throw new InvalidParametersError(`no attestation ${id} is stored`)
    if (original.issuer !== this.components.peerId.toString()) {
      throw new RevocationMismatchError(`attestation ${id} was issued by ${original.issuer}, not by this node`)
    }
    const issued = Math.max(Date.now(), original.record.issued + 1)
    return this.signAndPublish({
      type: 'revocation',
      version: c.RECORD_VERSION,
      issued,
      // it must outlive the record it withdraws
      expires: Math.max(original.record.expires, issued + 1),
      issuer: { type: 'agent', key: this.init.identity.moltKey },
      subject: { key: original.record.subject.key },
      claims: dropUndefined({ credential_id: id, reason })
    })
  }

  async submit (record: unknown): Promise<TrustRecord> {
    const verified = this.check(verifyAttestation(record))
    const stored = await this.keep([verified])
    // gossip takes records only from their issuer (validate() refuses a forwarded one and the
    // mesh penalises its publisher): another agent's record spreads by /molt/trust-sync instead
    if (verified.issuer === this.components.peerId.toString()) await this.publish(verified)
    return this.view(stored[0] ?? this.store.get(verified.record.id) as StoredAttestation)
  }

  score (peer: PeerId | string, options: ScoreOptions = {}): TrustScore {
    return this.model().score(peer.toString(), options)
  }

  model (): TrustModel {
    const now = Date.now()
    // decay over a minute is ~1e-5: reuse the model until the records change
    if (this.cached?.version !== this.store.version || now - this.cached.at > 60_000) {
      this.cached = {
        version: this.store.version,
        at: now,
        model: new TrustModel({
          self: this.components.peerId.toString(),
          preTrusted: this.preTrusted,
          signals: this.store.signals(),
          experience: new Map(this.store.experience()),
          params: this.init.scoreParams
        })
      }
    }
    return this.cached.model
  }

  async list (options: ListOptions = {}): Promise<TrustRecord[]> {
    const limit = options.limit ?? 100
    let stored: StoredAttestation[]
    if (options.subject != null || options.issuer != null) {
      const index = options.subject != null ? 'subject' : 'issuer'
      const peer = String(options.subject ?? options.issuer)
      const ids = await this.store.ids(index, peer, c.MAX_STORED)
      stored = ids.map(id => this.store.get(id)).filter((s): s is StoredAttestation => s !== undefined)
      if (options.subject != null && options.issuer != null) stored = stored.filter(s => s.issuer === String(options.issuer))
      stored.sort((a, b) => b.record.issued - a.record.issued || (a.record.id < b.record.id ? -1 : 1))
    } else {
      stored = this.store.all(c.MAX_STORED)
    }
    if (options.includeRevoked === false) stored = stored.filter(s => s.revokedBy === undefined && s.record.type !== 'revocation')
    return stored.slice(0, limit).map(s => this.view(s))
  }

  get (id: string): TrustRecord | undefined {
    const stored = this.store.get(id)
    return stored === undefined ? undefined : this.view(stored)
  }

  observe (peer: PeerId | string, ok: boolean): void {
    const id = peer.toString()
    if (id === this.components.peerId.toString()) return
    this.store.observe(id, ok)
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined
      this.store.flushExperience().catch((err: Error) => { this.log.error('could not write observed exchanges - %e', err) })
    }, c.EXPERIENCE_FLUSH_DELAY)
  }

  rank<T extends { peerId: string }>(items: T[], options: RankOptions = {}): Array<T & { trust: TrustScore }> {
    const model = this.model()
    const now = Date.now()
    const scored = items.map(item => ({ ...item, trust: model.score(item.peerId, { now, ...(options.trustDomain !== undefined ? { domain: options.trustDomain } : {}) }) }))
      .filter(item => options.minTrust === undefined || item.trust.score >= options.minTrust)
    if (options.sortByTrust === true) scored.sort((a, b) => b.trust.score - a.trust.score || b.trust.confidence - a.trust.confidence)
    return scored
  }

  inboxDecision (peer: PeerId | string): 'accept' | 'hold' | 'refuse' {
    const policy = this.init.inbox
    if (policy === undefined) return 'accept'
    // called per inbound message: one score per sender per model
    return this.senderDecision(this.currentDecisionModel(), policy, peer.toString()).decision
  }

  /** The inbox policy's verdict on a sender and the score behind it, computed once per sender per model */
  private senderDecision (model: TrustModel, policy: InboxPolicy, key: string): { decision: 'accept' | 'hold' | 'refuse', score: number } {
    let verdict = this.decisions.bySender.get(key)
    if (verdict === undefined) {
      const { score } = model.score(key, policy.domain !== undefined ? { domain: policy.domain } : {})
      verdict = { decision: score < policy.threshold ? policy.action : 'accept', score }
      this.decisions.bySender.set(key, verdict)
    }
    return verdict
  }

  hold (peer: PeerId | string, message: MoltMessage): void {
    const policy = this.init.inbox
    const key = peer.toString()
    // the score inboxDecision() just computed for this sender (a flood of held messages costs no more scoring)
    const score = policy !== undefined
      ? this.senderDecision(this.currentDecisionModel(), policy, key).score
      : this.score(key).score
    this.heldMessages.push({ peer: key, receivedAt: Date.now(), score, message })
    if (this.heldMessages.length > c.MAX_HELD) this.heldMessages.shift()
  }

  held (): HeldMessage[] {
    return [...this.heldMessages]
  }

  release (id: string): HeldMessage | undefined {
    const i = this.heldMessages.findIndex(h => h.message.id === id)
    return i === -1 ? undefined : this.heldMessages.splice(i, 1)[0]
  }

  private readonly heldMessages: HeldMessage[] = []
  private decisions: { model?: TrustModel, bySender: Map<string, { decision: 'accept' | 'hold' | 'refuse', score: number }> } = { bySender: new Map() }

  /** The model decisions are cached for, the cache cleared when the model changed */
  private currentDecisionModel (): TrustModel {
    const model = this.model()
    if (this.decisions.model !== model) this.decisions = { model, bySender: new Map() }
    return model
  }

  gossipScore (peer: PeerId | string): number {
    return (this.components.pubsub as unknown as { getScore(id: string): number }).getScore(peer.toString())
  }

  stats (): TrustStats {
    return { stored: this.store.size, ...this.counters, rejected: { ...this.rejected } }
  }

  async sync (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<SyncResult> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.init.syncTimeout ?? c.SYNC_TIMEOUT), this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])
    ])
    this.lastSync.set(peer.toString(), Date.now())
    let stream: Stream | undefined
    let accepted = 0
    try {
      stream = await this.components.connectionManager.openStream(peer, this.syncProtocol, { signal, runOnLimitedConnection: true })
      const { offered, received } = await pullSync(stream, this.store, this.syncLimits, signal, async (records) => {
        const valid: VerifiedAttestation[] = []
        for (const record of records) {
          try {
            valid.push(this.check(verifyAttestation(record)))
          } catch (err: any) {
            // an expired record is a race with the clock, anything else is the peer's fault
            this.reject(err)
            if (!(err instanceof AttestationExpiredError)) throw err
          }
        }
        accepted += (await this.keep(valid)).length
      })
      this.counters.syncSessions++
      this.counters.synced += accepted
      this.log('synced with %p: %d offered, %d received, %d new', peer, offered, received, accepted)
      return { peer: peer.toString(), offered, received, accepted }
    } catch (err: any) {
      stream?.abort(err)
      throw err
    }
  }

  private async signAndPublish (fields: Omit<Attestation, 'id' | 'signature'>): Promise<Attestation> {
    const record = signAttestation(fields, this.init.identity.signingKey)
    const verified = this.check(verifyAttestation(record))
    await this.keep([verified])
    await this.publish(verified)
    return record
  }

  private async publish (verified: VerifiedAttestation): Promise<void> {
    // gossipsub refuses messages it has seen (its own included): a known record is not news
    await this.components.pubsub.publish(this.topic, verified.bytes).catch((err: Error) => {
      if (!err.message.includes('Duplicate')) throw err
    })
  }

  /** Checks beyond the record itself: a revocation must come from the revoked record's issuer */
  private check (verified: VerifiedAttestation): VerifiedAttestation {
    const { record, issuer } = verified
    if (record.type === 'revocation') {
      const original = this.store.get(record.claims.credential_id as string)
      if (original !== undefined && original.issuer !== issuer) {
        throw new RevocationMismatchError(`${issuer} cannot revoke ${original.record.id} of ${original.issuer}`)
      }
    }
    return verified
  }

  private async keep (items: VerifiedAttestation[]): Promise<StoredAttestation[]> {
    if (items.length === 0) return []
    const added = await this.store.add(items)
    this.counters.accepted += added.length
    return added
  }

  /** The topic validator: every record is checked before it is stored or forwarded */
  private async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    if (msg.type !== 'signed') return this.refuse(new InvalidAttestationError('unsigned gossip message', 'from'))
    let verified: VerifiedAttestation
    try {
      verified = this.check(decodeAttestation(msg.data))
    } catch (err: any) {
      // a record expiring while it travels is nobody's fault: drop it without a penalty
      if (err instanceof AttestationExpiredError) {
        const record = tryParse(msg.data)
        if (record !== undefined && Date.now() - record.expires < c.MAX_CLOCK_SKEW) {
          this.reject(err)
          return TopicValidatorResult.Ignore
        }
      }
      return this.refuse(err)
    }
    const { record, issuer } = verified
    // the issuer publishes its own records: a forwarded replay of someone else's is refused
    if (msg.from.toString() !== issuer) {
      return this.refuse(new InvalidAttestationError(`published by ${msg.from}, issued by ${issuer}`, 'issuer'))
    }
    if (this.store.has(record.id)) return TopicValidatorResult.Ignore
    if (!this.limiter.take(issuer)) {
      this.reject(new IssuerRateLimitError(`${issuer} is over its rate`))
      // the flooder itself is penalised; a forwarder whose view of the rate differs is not
      return peer.toString() === issuer ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    try {
      await this.keep([verified])
    } catch (err: any) {
      this.reject(err)
      return err instanceof TrustStoreFullError ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    return TopicValidatorResult.Accept
  }

  private refuse (err: Error): TopicValidatorResult {
    this.reject(err)
    return TopicValidatorResult.Reject
  }

  private reject (err: Error): void {
    const name = err.name ?? 'Error'
    this.rejected[name] = (this.rejected[name] ?? 0) + 1
    this.log('refused an attestation - %e', err)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const last = this.lastServed.get(peer) ?? 0
    if (!this.started || Date.now() - last < c.SYNC_MIN_PEER_INTERVAL) {
      stream.abort(new Error('sync refused: too soon'))
      return
    }
    this.lastServed.set(peer, Date.now())
    if (this.lastServed.size > 10_000) this.lastServed.delete(this.lastServed.keys().next().value as string)
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.syncTimeout ?? c.SYNC_TIMEOUT), this.shutdown.signal])
    try {
      const served = await serveSync(stream, this.store, this.syncLimits, signal)
      this.log('served %d records to %p', served, connection.remotePeer)
    } catch (err: any) {
      this.log('sync session with %p failed - %e', connection.remotePeer, err)
      stream.abort(err)
    }
  }

  private readonly lastServed = new Map<string, number>()

  /** The first peers that speak the sync protocol are synced with at once: that is how a returning node catches up */
  private onPeerConnected (peer: PeerId): void {
    if (!this.started || this.initialSyncs >= (this.init.initialSyncPeers ?? c.INITIAL_SYNC_PEERS)) return
    this.initialSyncs++
    this.sync(peer).catch((err: Error) => {
      this.initialSyncs--
      this.log('initial sync with %p failed - %e', peer, err)
    })
  }

  private backgroundSync (): void {
    const now = Date.now()
    const peers = this.components.connectionManager.getConnections()
      .map(conn => conn.remotePeer)
      .filter(p => now - (this.lastSync.get(p.toString()) ?? 0) > c.SYNC_MIN_PEER_INTERVAL)
    if (peers.length === 0) return
    const peer = peers[Math.floor(Math.random() * peers.length)]
    this.sync(peer).catch((err: Error) => { this.log('background sync with %p failed - %e', peer, err) })
  }

  private prune (): void {
    this.store.prune(Date.now()).catch((err: Error) => { this.log.error('could not prune attestations - %e', err) })
  }

  private view (s: StoredAttestation): TrustRecord {
    return {
      attestation: s.record,
      issuer: s.issuer,
      subject: s.subject,
      revoked: s.revokedBy !== undefined,
      ...(s.revokedBy !== undefined ? { revokedBy: s.revokedBy } : {})
    }
  }
}

function dropUndefined<T extends Record<string, unknown>> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

function tryParse (data: Uint8Array): Attestation | undefined {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as Attestation
  } catch {
    return undefined
  }
}

export function trust (init: TrustInit): (components: TrustComponents) => TrustService {
  return (components) => new DefaultTrustService(components, init)
}
