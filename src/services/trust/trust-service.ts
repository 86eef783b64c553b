import { InvalidParametersError, serviceCapabilities } from '@libp2p/interface'
import type { Logger, PeerId } from '@libp2p/interface'
import type { MoltMessage } from '../../moltspeak/index.js'
import { TrustModel, type ScoreOptions, type TrustScore } from './model/index.js'
import { keyOfPeerId, signAttestation, verifyAttestation, type Attestation, type Claims } from './attestation.js'
import { RevocationMismatchError } from './errors.js'
import { TrustGossip } from './gossip.js'
import { InboxPolicyQueue } from './inbox-policy.js'
import { RecordIntake } from './intake.js'
import { OrgRevocations } from './org-revocations.js'
import { KeyRotations, type KeyRotationRecord } from './key-rotations.js'
import { rotatedInputs } from './rotated-model.js'
import { RateLimiter } from './rate-limit.js'
import { TrustStore, type StoredAttestation } from './store.js'
import { SyncScheduler } from './sync-scheduler.js'
import type {
  AttestInput, HeldMessage, ListOptions, OrgRevocationRecord, RankOptions, SyncResult, TrustComponents, TrustInit, TrustRecord, TrustService, TrustStats
} from './types.js'
import type { OrgRevocation } from '../../identity/org/index.js'
import * as c from './constants.js'

/**
 * The composition: the store (store.ts), gossip (gossip.ts), organisation
 * revocations (org-revocations.ts), sync scheduling (sync-scheduler.ts over
 * sync.ts), the inbox policy (inbox-policy.ts) and the score model (model/),
 * with the operations `node.trust` offers on top
 */
export class DefaultTrustService implements TrustService {
  readonly topic: string
  private readonly log: Logger
  private readonly store: TrustStore
  private readonly intake: RecordIntake
  private readonly gossip: TrustGossip
  private readonly revocations: OrgRevocations
  private readonly rotations: KeyRotations
  private readonly syncs: SyncScheduler
  private readonly inbox: InboxPolicyQueue
  private readonly preTrusted: string[]
  private pruneTimer?: ReturnType<typeof setInterval>
  private flushTimer?: ReturnType<typeof setTimeout>
  private cached?: { version: number, rotations: number, at: number, model: TrustModel }

  readonly [Symbol.toStringTag] = 'molt/trust'
  readonly [serviceCapabilities] = ['@molt/trust']

  constructor (private readonly components: TrustComponents, private readonly init: TrustInit) {
    if (!init.identity.peerId.equals(components.peerId)) {
      throw new InvalidParametersError(`trust identity ${init.identity.peerId} is not this node's PeerId ${components.peerId}`)
    }
    this.log = components.logger.forComponent('molt:trust')
    this.topic = init.topic ?? c.TOPIC
    this.preTrusted = [...new Set(init.preTrusted ?? [])]
    // this node and its pre-trusted peers are the roots of trust paths: issuers without one share a bounded space
    this.store = new TrustStore(init.db, init.maxStored ?? c.MAX_STORED, {
      roots: [components.peerId.toString(), ...this.preTrusted],
      maxUnanchored: init.maxUnanchored,
      maxUnanchoredBytes: init.maxUnanchoredBytes
    })
    this.intake = new RecordIntake(this.store, this.log)
    this.gossip = new TrustGossip(components.pubsub, {
      topic: this.topic,
      store: this.store,
      intake: this.intake,
      limiter: new RateLimiter(init.issuerBurst ?? c.ISSUER_BURST, init.issuerRatePerMinute ?? c.ISSUER_RATE_PER_MINUTE, c.MAX_RATE_BUCKETS)
    })
    this.revocations = new OrgRevocations(components.pubsub, {
      db: init.db,
      topic: init.orgRevocationTopic,
      roots: init.orgs ?? (() => []),
      intake: this.intake,
      burst: init.issuerBurst,
      ratePerMinute: init.issuerRatePerMinute
    })
    this.rotations = new KeyRotations(components.pubsub, {
      db: init.db,
      intake: this.intake,
      topic: init.keyRotationTopic,
      now: init.now,
      burst: init.issuerBurst,
      ratePerMinute: init.issuerRatePerMinute,
      announce: init.announceRotations
    })
    this.syncs = new SyncScheduler(components, {
      protocol: init.syncProtocol ?? c.SYNC_PROTOCOL,
      store: this.store,
      orgRevocations: this.revocations,
      keyRotations: this.rotations,
      intake: this.intake,
      limits: {
        maxIds: init.syncLimits?.maxIds ?? c.MAX_SYNC_IDS,
        maxWant: init.syncLimits?.maxWant ?? c.MAX_SYNC_WANT,
        maxRecords: init.syncLimits?.maxRecords ?? c.MAX_SYNC_RECORDS
      },
      timeout: init.syncTimeout ?? c.SYNC_TIMEOUT,
      initialPeers: init.initialSyncPeers ?? c.INITIAL_SYNC_PEERS,
      interval: init.syncInterval ?? c.SYNC_INTERVAL,
      log: this.log
    })
    this.inbox = new InboxPolicyQueue({ policy: init.inbox, model: () => this.model() })
  }

  async start (): Promise<void> {
    await this.store.open()
    await this.revocations.open()
    await this.rotations.open()
    await this.rotations.announceOwn()
    for (const revocation of this.init.revocations ?? []) {
      // imported from a file: one that no longer verifies (its root left trust.orgs) is skipped, not fatal
      await this.revocations.add(revocation).catch((err: Error) => { this.intake.reject(err, 'an imported org revocation') })
    }
    await this.syncs.start()
  }

  /** gossipsub only subscribes once started, which is after every service's start() */
  afterStart (): void {
    this.gossip.start()
    this.revocations.start()
    this.rotations.start()
    this.pruneTimer = setInterval(() => { this.prune() }, c.PRUNE_INTERVAL)
    this.syncs.afterStart()
  }

  async stop (): Promise<void> {
    clearInterval(this.pruneTimer)
    clearTimeout(this.flushTimer)
    this.gossip.stop()
    this.revocations.stop()
    this.rotations.stop()
    await this.syncs.stop()
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
    const verified = this.intake.check(verifyAttestation(record))
    const stored = await this.intake.keep([verified])
    // gossip takes records only from their issuer (the validator refuses a forwarded one and the
    // mesh penalises its publisher): another agent's record spreads by /molt/trust-sync instead
    if (verified.issuer === this.components.peerId.toString()) await this.gossip.publish(verified)
    return view(stored[0] ?? this.store.get(verified.record.id) as StoredAttestation)
  }

  score (peer: PeerId | string, options: ScoreOptions = {}): TrustScore {
    return this.model().score(this.currentPeer(peer), options)
  }

  model (): TrustModel {
    const now = Date.now()
    // decay over a minute is ~1e-5: reuse the model until the records change
    const rotations = this.rotations.chain.version
    if (this.cached?.version !== this.store.version || this.cached.rotations !== rotations || now - this.cached.at > c.MODEL_CACHE_TTL) {
      // an identity that rotated its key is scored under its newest PeerId with the records of all its keys
      const { signals, experience } = this.rotations.size === 0
        ? { signals: this.store.signals(), experience: new Map(this.store.experience()) }
        : rotatedInputs(this.store.signals(), this.store.experience(), peer => this.rotations.chain.current(peer))
      this.cached = {
        version: this.store.version,
        rotations,
        at: now,
        model: new TrustModel({
          self: this.components.peerId.toString(),
          preTrusted: this.preTrusted.map(peer => this.rotations.chain.current(peer)),
          signals,
          experience,
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
    return stored.slice(0, limit).map(view)
  }

  get (id: string): TrustRecord | undefined {
    const stored = this.store.get(id)
    return stored === undefined ? undefined : view(stored)
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
    const scored = items.map(item => ({ ...item, trust: model.score(this.currentPeer(item.peerId), { now, ...(options.trustDomain !== undefined ? { domain: options.trustDomain } : {}) }) }))
      .filter(item => options.minTrust === undefined || item.trust.score >= options.minTrust)
    if (options.sortByTrust === true) scored.sort((a, b) => b.trust.score - a.trust.score || b.trust.confidence - a.trust.confidence)
    return scored
  }

  inboxDecision (peer: PeerId | string): 'accept' | 'hold' | 'refuse' {
    // an old key past its rotation's grace period is refused whatever its score
    if (this.rotations.chain.refused(peer.toString(), this.rotations.now())) return 'refuse'
    if (this.init.refuse?.(peer.toString()) === true) return 'refuse'
    return this.inbox.decision(this.currentPeer(peer))
  }

  hold (peer: PeerId | string, message: MoltMessage): void {
    this.inbox.hold(peer, message)
  }

  held (): HeldMessage[] {
    return this.inbox.held()
  }

  release (id: string): HeldMessage | undefined {
    return this.inbox.release(id)
  }

  gossipScore (peer: PeerId | string): number {
    return this.gossip.score(peer)
  }

  stats (): TrustStats {
    return {
      stored: this.store.size,
      accepted: this.intake.accepted,
      synced: this.syncs.synced,
      syncSessions: this.syncs.sessions,
      orgRevocations: this.revocations.size,
      keyRotations: this.rotations.size,
      rejected: { ...this.intake.rejected }
    }
  }

  async publishOrgRevocation (revocation: unknown): Promise<OrgRevocationRecord> {
    return this.revocations.publish(revocation)
  }

  orgRevocations (): readonly OrgRevocation[] {
    return this.revocations.all()
  }

  async publishKeyRotation (rotation: unknown): Promise<KeyRotationRecord> {
    return this.rotations.publish(rotation)
  }

  keyRotations (): KeyRotationRecord[] {
    return this.rotations.all()
  }

  currentPeer (peer: PeerId | string): string {
    return this.rotations.chain.current(peer.toString())
  }

  retired (peer: PeerId | string): KeyRotationRecord | undefined {
    const link = this.rotations.chain.retiredBy(peer.toString())
    return link === undefined ? undefined : this.rotations.all().find(r => r.id === link.id)
  }

  async sync (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<SyncResult> {
    return this.syncs.sync(peer, options)
  }

  private async signAndPublish (fields: Omit<Attestation, 'id' | 'signature'>): Promise<Attestation> {
    const record = signAttestation(fields, this.init.identity.signingKey)
    const verified = this.intake.check(verifyAttestation(record))
    await this.intake.keep([verified])
    await this.gossip.publish(verified)
    return record
  }

  private prune (): void {
    this.store.prune(Date.now()).catch((err: Error) => { this.log.error('could not prune attestations - %e', err) })
  }
}

function view (s: StoredAttestation): TrustRecord {
  return {
    attestation: s.record,
    issuer: s.issuer,
    subject: s.subject,
    revoked: s.revokedBy !== undefined,
    ...(s.revokedBy !== undefined ? { revokedBy: s.revokedBy } : {})
  }
}

function dropUndefined<T extends Record<string, unknown>> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}
