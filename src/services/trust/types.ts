import type { ComponentLogger, PeerId, Startable } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identity } from '../../identity/index.js'
import type { MoltMessage } from '../../moltspeak/index.js'
import type { Database } from '../../storage/index.js'
import type { TrustModel, ScoreOptions, ScoreParams, TrustScore } from './model/index.js'
import type { Attestation, AttestationType, Evidence, Outcome, Severity, Strength } from './attestation.js'
import type { SyncLimits } from './sync.js'
import type { OrgRevocation, OrgRoot } from '../../identity/org/index.js'
import type { KeyRotationRecord } from './key-rotations.js'

/*
 * The trust service's public types: `node.trust.*` and `trust(init)`.
 * Kept apart from the classes so the modules that implement them import no cycle.
 */

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
  /** Scoring parameters (model/params.ts). @default DEFAULT_SCORE_PARAMS */
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
  /** The organisations this node trusts (config `trust.orgs`): their revocations are kept and honoured. @default none */
  orgs?: () => readonly OrgRoot[]
  /** Revocations imported from files (`<data-dir>/org-revocations.json`), taken in at start. @default [] */
  revocations?: readonly unknown[]
  /** @default 'molt/org-revocation/1' */
  orgRevocationTopic?: string
  /** @default 'molt/key-rotation/1' */
  keyRotationTopic?: string
  /** This agent's own key rotation statements (`<data-dir>/key-rotations.json`): kept, and published again whenever a peer joins the rotation topic. @default [] */
  announceRotations?: readonly unknown[]
  /** Senders refused whatever their score (the node refuses agents whose certificate was revoked this way, config `trust.revokedAgents`). @default none */
  refuse?: (peer: string) => boolean
  /** The clock key rotations' grace periods are read with (tests inject one). @default Date.now */
  now?: () => number
}

/** An organisation's certificate revocation as this node holds it */
export interface OrgRevocationRecord {
  /** hex SHA-256 of the canonical signed revocation */
  id: string
  revocation: OrgRevocation
  /** Signed by a root in `trust.orgs` (else only carried on, in a bounded space) */
  trusted: boolean
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
  /** Organisation revocations held (trusted or carried on) */
  orgRevocations: number
  /** Key rotation statements held */
  keyRotations: number
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
  /**
   * Keep an organisation's certificate revocation and publish it on its topic
   * (`molt org revoke` on a running agent); it reaches offline nodes by sync.
   *
   * @throws {InvalidCertificateError | RevocationSignatureError | TrustStoreFullError}
   */
  publishOrgRevocation(revocation: unknown): Promise<OrgRevocationRecord>
  /** Every organisation revocation held: what card verdicts check (a new array after each change) */
  orgRevocations(): readonly OrgRevocation[]
  /**
   * Keep an agent's key rotation statement (signed by both keys) and publish it
   * on its topic; it reaches offline nodes by sync (protocols/identity.md, "Key rotation")
   *
   * @throws {InvalidRotationError | RotationSignatureError | RotationConflictError | TrustStoreFullError}
   */
  publishKeyRotation(rotation: unknown): Promise<KeyRotationRecord>
  /** Every key rotation held */
  keyRotations(): KeyRotationRecord[]
  /** The newest PeerId of `peer`'s identity: `peer` itself unless its key was rotated */
  currentPeer(peer: PeerId | string): string
  /** The rotation that retired `peer`'s key, if any (its `refusedFrom` says from when it is refused) */
  retired(peer: PeerId | string): KeyRotationRecord | undefined
}
