import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { verifyAttestation, type VerifiedAttestation } from './attestation.js'
import { AttestationExpiredError, TrustStoreFullError, TrustSyncError } from './errors.js'
import { RotationConflictError } from '../../identity/rotation/index.js'
import type { RecordIntake } from './intake.js'
import type { OrgRevocations } from './org-revocations.js'
import type { KeyRotations } from './key-rotations.js'
import type { TrustStore } from './store.js'
import { pullSync, serveSync, unionSource, type SyncLimits, type SyncSource } from './sync.js'
import type { SyncResult } from './types.js'
import * as c from './constants.js'

export interface SyncSchedulerComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
}

export interface SyncSchedulerInit {
  protocol: string
  store: TrustStore
  /** Organisation revocations: reconciled in the same session with clients that name the kind */
  orgRevocations: OrgRevocations
  /** Key rotation statements: reconciled with clients that name the kind */
  keyRotations: KeyRotations
  intake: RecordIntake
  limits: SyncLimits
  /** Limit on one session, both sides, in ms */
  timeout: number
  /** Peers synced with as soon as they connect after start */
  initialPeers: number
  /** ms between background syncs with one random connected peer; 0 = off */
  interval: number
  log: Logger
}

/**
 * When and with whom /molt/trust-sync/1.0.0 runs (the session itself is
 * sync.ts): the first peers after start (how a returning node catches up),
 * one random peer every `interval`, and inbound sessions at most once per
 * peer per SYNC_MIN_PEER_INTERVAL
 */
export class SyncScheduler {
  /** Sessions this node pulled, and the records they brought, since start */
  sessions = 0
  synced = 0
  private readonly lastSync = new Map<string, number>()
  private readonly lastServed = new Map<string, number>()
  private initialSyncs = 0
  private shutdown = new AbortController()
  private timer?: ReturnType<typeof setInterval>
  private topologyId?: string
  private started = false
  private readonly attestations: SyncSource
  private readonly everything: SyncSource
  private readonly kinds: Record<string, SyncSource>

  constructor (private readonly components: SyncSchedulerComponents, private readonly init: SyncSchedulerInit) {
    const { store } = init
    this.attestations = {
      digest: () => store.digest(),
      idsInBuckets: (buckets, limit) => store.idsInBuckets(buckets, limit),
      has: (id) => store.has(id),
      wire: (id) => store.get(id)?.record
    }
    this.kinds = { [c.SYNC_KIND_ORG_REVOCATION]: init.orgRevocations, [c.SYNC_KIND_KEY_ROTATION]: init.keyRotations }
    this.everything = unionSource(this.attestations, init.orgRevocations, init.keyRotations)
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    await this.components.registrar.handle(this.init.protocol, async (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: c.MAX_SYNC_INBOUND_STREAMS,
      // agents behind NAT sync through their relay; the session is bounded by the sync limits
      runOnLimitedConnection: true
    })
    this.topologyId = await this.components.registrar.register(this.init.protocol, {
      notifyOnLimitedConnection: true,
      onConnect: (peer) => { this.onPeerConnected(peer) }
    })
    this.started = true
  }

  /** Background syncs start once the node is up (gossip subscribed) */
  afterStart (): void {
    if (this.init.interval > 0) this.timer = setInterval(() => { this.background() }, this.init.interval)
  }

  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort(new TrustSyncError('trust service stopped'))
    clearInterval(this.timer)
    if (this.topologyId != null) this.components.registrar.unregister(this.topologyId)
    await this.components.registrar.unhandle(this.init.protocol)
  }

  /** Pull the records `peer` has and this node lacks */
  async sync (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<SyncResult> {
    const { intake, limits, log } = this.init
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.init.timeout), this.shutdown.signal, ...(options.signal != null ? [options.signal] : [])
    ])
    this.lastSync.set(peer.toString(), Date.now())
    let stream: Stream | undefined
    let accepted = 0
    try {
      stream = await this.components.connectionManager.openStream(peer, this.init.protocol, { signal, runOnLimitedConnection: true })
      const { offered, received } = await pullSync(stream, this.everything, Object.keys(this.kinds), limits, signal, async (records) => {
        const valid: VerifiedAttestation[] = []
        for (const record of records) {
          try {
            if (isOrgRevocation(record)) {
              if (await this.init.orgRevocations.addFromSync(record)) accepted++
              continue
            }
            if (isKeyRotation(record)) {
              if (await this.init.keyRotations.addFromSync(record)) accepted++
              continue
            }
            valid.push(intake.check(verifyAttestation(record)))
          } catch (err: any) {
            // an expired record is a race with the clock, a full store is ours, a rotation conflicting with one
            // seen first may be a race seen in the other order: anything else is the peer's fault
            intake.reject(err)
            if (!(err instanceof AttestationExpiredError) && !(err instanceof TrustStoreFullError) && !(err instanceof RotationConflictError)) throw err
          }
        }
        accepted += (await intake.keep(valid)).length
      })
      this.sessions++
      this.synced += accepted
      log('synced with %p: %d offered, %d received, %d new', peer, offered, received, accepted)
      return { peer: peer.toString(), offered, received, accepted }
    } catch (err: any) {
      stream?.abort(err)
      throw err
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const last = this.lastServed.get(peer) ?? 0
    if (!this.started || Date.now() - last < c.SYNC_MIN_PEER_INTERVAL) {
      stream.abort(new TrustSyncError('sync refused: too soon'))
      return
    }
    this.lastServed.set(peer, Date.now())
    if (this.lastServed.size > c.MAX_SYNC_PEERS_REMEMBERED) this.lastServed.delete(this.lastServed.keys().next().value as string)
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeout), this.shutdown.signal])
    try {
      const served = await serveSync(stream, (kinds) => this.sourceFor(kinds), this.init.limits, signal)
      this.init.log('served %d records to %p', served, connection.remotePeer)
    } catch (err: any) {
      this.init.log('sync session with %p failed - %e', connection.remotePeer, err)
      stream.abort(err)
    }
  }

  /** Attestations and the record kinds the client named (a client that names none gets attestations only) */
  private sourceFor (kinds: string[]): SyncSource {
    const extra = Object.keys(this.kinds).filter(kind => kinds.includes(kind))
    if (extra.length === Object.keys(this.kinds).length) return this.everything
    return extra.length === 0 ? this.attestations : unionSource(this.attestations, ...extra.map(kind => this.kinds[kind]))
  }

  /** The first peers that speak the sync protocol are synced with at once: that is how a returning node catches up */
  private onPeerConnected (peer: PeerId): void {
    if (!this.started || this.initialSyncs >= this.init.initialPeers) return
    this.initialSyncs++
    this.sync(peer).catch((err: Error) => {
      this.initialSyncs--
      this.init.log('initial sync with %p failed - %e', peer, err)
    })
  }

  private background (): void {
    const now = Date.now()
    const peers = this.components.connectionManager.getConnections()
      .map(conn => conn.remotePeer)
      .filter(p => now - (this.lastSync.get(p.toString()) ?? 0) > c.SYNC_MIN_PEER_INTERVAL)
    if (peers.length === 0) return
    const peer = peers[Math.floor(Math.random() * peers.length)]
    this.sync(peer).catch((err: Error) => { this.init.log('background sync with %p failed - %e', peer, err) })
  }
}

/** A sync record that carries an organisation revocation rather than an attestation */
function isOrgRevocation (record: unknown): record is { id?: unknown, org_revocation?: unknown } {
  return typeof record === 'object' && record !== null && 'org_revocation' in record
}

/** A sync record that carries a key rotation statement */
function isKeyRotation (record: unknown): record is { id?: unknown, key_rotation?: unknown } {
  return typeof record === 'object' && record !== null && 'key_rotation' in record
}
