import { InvalidParametersError, serviceCapabilities } from '@libp2p/interface'
import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import { canonicalize, PROTOCOL_VERSION } from '../../moltspeak/index.js'
import { signCard, verifyCard, type AgentCard, type Capability, type UnsignedCard } from './card.js'
import { encodeFrame, readFrame } from './frame.js'
import { BoundedMap } from '../../utils/bounded-map.js'
import { CardServiceStoppedError, CardTimeoutError, InvalidCardError } from './errors.js'
import * as c from './constants.js'
import { JsonTooDeepError, parseBoundedJson } from '../../json/index.js'
import { verifyOrgClaim, type OrgVerdict } from '../../identity/org/certificate.js'
import type { CardInit, CardComponents, CardFetchOptions, CardStats, CardService } from './card-service-types.js'
export type { CardProfile, CardInit, CardComponents, CardFetchOptions, CardStats, CardService } from './card-service-types.js'

interface CacheEntry {
  card: AgentCard
  /** Unix ms after which the entry is stale */
  until: number
}

interface OwnCard {
  card: AgentCard
  /** Canonical form of everything but the times: a change means re-signing */
  content: string
  frame?: Uint8Array
}

interface PendingFetch {
  promise: Promise<AgentCard>
  controller: AbortController
  waiters: number
}


class DefaultCardService implements CardService {
  readonly protocol: string
  private readonly log: Logger
  private readonly cacheTtl: number
  private readonly cacheSize: number
  private readonly validity: number
  private readonly fetchTimeout: number
  private readonly cache: BoundedMap<string, CacheEntry>
  private readonly pending = new Map<string, PendingFetch>()
  private verdicts = new WeakMap<AgentCard, Map<string, OrgVerdict>>()
  /** The revocations the remembered verdicts were computed with: a new list (one arrived) forgets them */
  private verdictRevocations?: readonly unknown[]
  private current?: OwnCard
  private shutdown = new AbortController()
  private started = false
  private fetched = 0
  private served = 0

  readonly [Symbol.toStringTag] = 'molt/card'
  readonly [serviceCapabilities] = ['@molt/card']

  constructor (private readonly components: CardComponents, private readonly init: CardInit) {
    this.log = components.logger.forComponent('molt:card')
    this.protocol = init.protocol ?? c.PROTOCOL
    this.cacheTtl = init.cacheTtl ?? c.CACHE_TTL
    this.cacheSize = init.cacheSize ?? c.CACHE_SIZE
    this.cache = new BoundedMap(Math.max(0, this.cacheSize))
    this.validity = init.validity ?? c.CARD_VALIDITY
    this.fetchTimeout = init.fetchTimeout ?? c.FETCH_TIMEOUT
    if (!(this.validity > 0 && this.validity <= c.MAX_CARD_VALIDITY)) {
      throw new InvalidParametersError(`card validity must be within (0, ${c.MAX_CARD_VALIDITY}] ms`)
    }
    if (!init.identity.peerId.equals(components.peerId)) {
      throw new InvalidParametersError(`card identity ${init.identity.peerId} is not this node's PeerId ${components.peerId}`)
    }
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    await this.components.registrar.handle(this.protocol, async (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: this.init.maxInboundStreams ?? c.MAX_INBOUND_STREAMS,
      // agents behind NAT are reached over circuit relays; a card is small
      runOnLimitedConnection: true
    })
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    await this.components.registrar.unhandle(this.protocol)
    this.shutdown.abort(new CardServiceStoppedError('card service stopped'))
    this.pending.clear()
  }

  stats (): CardStats {
    return { cached: this.cachedCards().length, fetched: this.fetched, served: this.served }
  }

  own (): AgentCard {
    const now = Date.now()
    const fields = this.ownFields()
    const content = canonicalize(fields)
    const current = this.current
    if (current?.content === content && now < current.card.issued + this.validity / 2) return current.card
    const card = deepFreeze(signCard({ ...fields, issued: now, expires: now + this.validity }, this.init.identity.signingKey))
    this.current = { card, content }
    return card
  }

  async fetch (peer: PeerId, options: CardFetchOptions = {}): Promise<AgentCard> {
    options.signal?.throwIfAborted()
    const key = peer.toString()
    let pending = options.force === true ? undefined : this.pending.get(key)
    if (pending === undefined) {
      if (options.force !== true) {
        const hit = this.cached(key)
        if (hit !== undefined) return hit
      }
      pending = this.startFetch(peer)
    }
    return this.wait(pending, options.signal)
  }

  cached (peer: PeerId | string): AgentCard | undefined {
    const key = peer.toString()
    const entry = this.cache.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= Date.now()) {
      this.cache.delete(key)
      return undefined
    }
    return entry.card
  }

  cachedCards (): AgentCard[] {
    const now = Date.now()
    const out: AgentCard[] = []
    for (const [key, entry] of this.cache) {
      if (entry.until <= now) this.cache.delete(key)
      else out.push(entry.card)
    }
    return out
  }

  forget (peer: PeerId | string): void {
    this.cache.delete(peer.toString())
  }

  verdict (card: AgentCard, org: string = card.org): OrgVerdict {
    // one signature check per card and org, not per message: cards are frozen, so the card object is the key
    const now = Date.now()
    const revocations = this.init.revocations?.()
    if (revocations !== this.verdictRevocations) {
      this.verdicts = new WeakMap()
      this.verdictRevocations = revocations
    }
    let byOrg = this.verdicts.get(card)
    const known = byOrg?.get(org)
    if (known !== undefined && (known.expires === undefined || known.expires > now)) return known
    const verdict = verifyOrgClaim(card, org, { roots: this.init.trustedOrgs?.() ?? [], revocations, now })
    if (verdict.code === 'not_yet_valid') return verdict
    if (byOrg === undefined) this.verdicts.set(card, byOrg = new Map())
    // a card claims one org; messages may claim others: bound what one card can make us keep
    if (byOrg.size < c.MAX_VERDICTS_PER_CARD) byOrg.set(org, verdict)
    return verdict
  }

  /** The card fields that do not depend on the time of signing */
  private ownFields (): Omit<UnsignedCard, 'issued' | 'expires'> {
    const { identity } = this.init
    const profile = this.init.profile()
    const capabilities = new Map<string, Capability>()
    for (const cap of profile.capabilities) {
      const entry = typeof cap === 'string' ? { name: cap } : cap
      if (!capabilities.has(entry.name)) capabilities.set(entry.name, entry)
    }
    const cert = this.init.certificate?.()
    const addresses = this.init.addresses?.() ?? this.components.addressManager.getAddresses().map(ma => ma.toString())
    return {
      v: 1,
      peer_id: identity.peerId.toString(),
      key: identity.moltKey,
      did: identity.did,
      name: profile.name,
      org: profile.org,
      ...(profile.description !== undefined ? { description: profile.description } : {}),
      capabilities: [...capabilities.values()],
      protocol_versions: [PROTOCOL_VERSION],
      supported_cls: [...(profile.supportedCls ?? c.DEFAULT_SUPPORTED_CLS)],
      addresses: [...new Set(addresses)].slice(0, c.MAX_ADDRESSES),
      ...(cert !== undefined ? { cert } : {})
    }
  }

  /** The own card as a frame, encoded once per signing */
  private ownFrame (): Uint8Array {
    this.own()
    const current = this.current as OwnCard
    current.frame ??= encodeFrame(JSON.stringify(current.card))
    return current.frame
  }

  private startFetch (peer: PeerId): PendingFetch {
    const key = peer.toString()
    const controller = new AbortController()
    const promise = this.request(peer, controller.signal).finally(() => {
      if (this.pending.get(key)?.promise === promise) this.pending.delete(key)
    })
    const pending: PendingFetch = { promise, controller, waiters: 0 }
    this.pending.set(key, pending)
    return pending
  }

  /** Wait for a (possibly shared) fetch; the fetch is abandoned when every waiter has given up */
  private async wait (pending: PendingFetch, signal?: AbortSignal): Promise<AgentCard> {
    pending.waiters++
    if (signal == null) {
      try {
        return await pending.promise
      } finally {
        pending.waiters--
      }
    }
    return new Promise<AgentCard>((resolve, reject) => {
      const onAbort = (): void => {
        reject(signal.reason)
        if (--pending.waiters === 0) pending.controller.abort(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      pending.promise.then(resolve, reject).finally(() => {
        if (!signal.aborted) {
          signal.removeEventListener('abort', onAbort)
          pending.waiters--
        }
      }).catch(() => {})
    })
  }

  /** Open a stream, read one frame, verify and cache the card */
  private async request (peer: PeerId, abandon: AbortSignal): Promise<AgentCard> {
    const timeout = AbortSignal.timeout(this.fetchTimeout)
    const signal = AbortSignal.any([timeout, abandon, this.shutdown.signal])
    let stream: Stream | undefined
    try {
      stream = await this.components.connectionManager.openStream(peer, this.protocol, { signal, runOnLimitedConnection: true })
      this.fetched++
      // the protocol has no request: close our writing side at once
      await stream.close({ signal })
      const body = await readFrame(stream, c.MAX_CARD_BYTES, signal)
      let value: unknown
      try {
        value = parseBoundedJson(body)
      } catch (err) {
        throw new InvalidCardError(err instanceof JsonTooDeepError ? `card ${err.message}` : 'card frame is not UTF-8 JSON', 'card')
      }
      const card = deepFreeze(verifyCard(value, { peerId: peer.toString() }))
      this.store(peer.toString(), card)
      abortIfLeftOpen(stream, timeout)
      return card
    } catch (err: any) {
      if (abandon.aborted || this.shutdown.signal.aborted) {
        this.log('gave up fetching the card of %p - %e', peer, err)
        stream?.abort(err)
        throw err
      }
      const error = timeout.aborted ? new CardTimeoutError(`${peer} sent no card within ${this.fetchTimeout} ms`) : err
      this.log.error('refused the card of %p - %e', peer, error)
      stream?.abort(error)
      throw error
    }
  }

  private store (key: string, card: AgentCard): void {
    if (this.cacheSize <= 0) return
    this.cache.set(key, { card, until: Math.min(Date.now() + this.cacheTtl, card.expires) })
  }

  /** Serve one inbound stream: our card as one frame, then close; nothing is read */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    if (!this.started) {
      stream.abort(new CardServiceStoppedError('card service is stopping'))
      return
    }
    const signal = AbortSignal.timeout(this.fetchTimeout)
    try {
      // whatever the client sends is discarded as it arrives, never buffered
      await stream.closeRead({ signal })
      if (!stream.send(this.ownFrame())) await stream.onDrain({ signal })
      await stream.close({ signal })
      this.served++
      abortIfLeftOpen(stream, signal)
    } catch (err: any) {
      this.log.error('could not serve our card to %p - %e', connection.remotePeer, err)
      stream.abort(err)
    }
  }
}

/** Both sides have sent what they had: a peer that keeps its end open is cut off at `deadline` */
function abortIfLeftOpen (stream: Stream, deadline: AbortSignal): void {
  if (stream.status !== 'open' && stream.status !== 'closing') return
  const onDeadline = (): void => { stream.abort(new CardTimeoutError('the peer kept the card stream open')) }
  deadline.addEventListener('abort', onDeadline, { once: true })
  stream.addEventListener('close', () => { deadline.removeEventListener('abort', onDeadline) }, { once: true })
}

function deepFreeze (card: AgentCard): AgentCard {
  for (const cap of card.capabilities) Object.freeze(cap)
  Object.freeze(card.capabilities)
  Object.freeze(card.protocol_versions)
  Object.freeze(card.supported_cls)
  Object.freeze(card.addresses)
  if (card.cert !== undefined) {
    Object.freeze(card.cert.capabilities)
    Object.freeze(card.cert)
  }
  return Object.freeze(card)
}

export function cards (init: CardInit): (components: CardComponents) => CardService {
  return (components) => new DefaultCardService(components, init)
}
