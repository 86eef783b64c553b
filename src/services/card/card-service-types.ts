import type { ComponentLogger, PeerId, Startable } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Classification } from '../../moltspeak/index.js'
import type { Identity } from '../../identity/index.js'
import type { AgentCard, Capability } from './card.js'
import type { OrgCertificate, OrgRoot, OrgVerdict } from '../../identity/org/certificate.js'

// The card service's public shapes (card-service.ts is the behaviour)

/** What the agent says about itself; read on every own() to notice changes */
export interface CardProfile {
  name: string
  org: string
  description?: string
  /** Capability names, or names with descriptions; duplicates are dropped */
  capabilities: ReadonlyArray<string | Capability>
  /** @default ['pub', 'int', 'conf'] */
  supportedCls?: readonly Classification[]
}

export interface CardInit {
  /** The node's identity; its PeerId must be the libp2p node's */
  identity: Identity
  profile: () => CardProfile
  /** Addresses to publish (at most 32 are used). @default the address manager's addresses */
  addresses?: () => string[]
  /** @default '/molt/card/1.0.0' */
  protocol?: string
  /** How long a fetched card is served from the cache, never beyond its `expires`. @default 10 min */
  cacheTtl?: number
  /** Cards kept in the cache. @default 1024 */
  cacheSize?: number
  /** Validity of the cards this node signs (≤ 7 days). @default 24 h */
  validity?: number
  /** Limit on one fetch, and on serving one card. @default 10 s */
  fetchTimeout?: number
  /** @default 8 */
  maxInboundStreams?: number
  /** The organisation certificate the card carries (`<data-dir>/org-cert.json`); read on every own() */
  certificate?: () => OrgCertificate | undefined
  /** The organisations this node trusts (config `trust.orgs`), for verdict(). @default none */
  trustedOrgs?: () => readonly OrgRoot[]
  /** Certificate revocations this node knows, for verdict(): remembered verdicts are recomputed when it returns a new array */
  revocations?: () => readonly unknown[]
}

export interface CardComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  peerId: PeerId
  addressManager: AddressManager
}

export interface CardFetchOptions {
  signal?: AbortSignal
  /** Skip the cache and ask the peer */
  force?: boolean
}

export interface CardStats {
  /** Fresh cards in the cache */
  cached: number
  /** Card streams opened to peers since start */
  fetched: number
  /** Cards served to peers since start */
  served: number
}

/** /molt/card/1.0.0: serve this agent's signed card, fetch and verify the cards of others */
export interface CardService extends Startable {
  readonly protocol: string
  /** This node's current signed card (re-signed when the profile or addresses change, or at half its validity) */
  own(): AgentCard
  /**
   * `peer`'s verified card: from the cache when fresh, else fetched over a new stream.
   *
   * @throws {InvalidCardError | CardSignatureError | CardMismatchError | CardExpiredError} the card is refused
   * @throws {CardTooLargeError | CardTruncatedError | CardTimeoutError} the frame is refused or never came
   */
  fetch(peer: PeerId, options?: CardFetchOptions): Promise<AgentCard>
  /** `peer`'s card if the cache holds a fresh one */
  cached(peer: PeerId | string): AgentCard | undefined
  /** Every fresh card in the cache */
  cachedCards(): AgentCard[]
  /** Drop `peer`'s card from the cache */
  forget(peer: PeerId | string): void
  /**
   * Whether the card's `org` claim (or `org`, e.g. a message's `from.org`) is
   * vouched for by a certificate from an organisation this node trusts
   */
  verdict(card: AgentCard, org?: string): OrgVerdict
  stats(): CardStats
}
