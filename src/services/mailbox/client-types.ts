import type { ComponentLogger, Libp2pEvents, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Identity } from '../../identity/index.js'
import type { MoltMessage } from '../../moltspeak/index.js'

// The mailbox client's public shapes (client.ts is the behaviour)

export interface MailboxClientInit {
  identity: Identity
  /** The relays whose mailboxes this node reads (its configured relays): PeerId and a multiaddr to dial */
  relays: () => Array<{ relay: string, address: string }>
  /** How often the mailboxes of configured relays this node is not connected to are checked. @default 10 min */
  checkInterval?: number
  /** Hand opened messages to the node; their boxes are deleted at the relay once this resolves */
  deliver: (messages: MailboxMessage[]) => Promise<void>
  /** A box that did not open or verify (it is deleted, never delivered) */
  onRejected?: (from: string, error: Error) => void
  /** @default '/molt/mailbox/1.0.0' */
  protocol?: string
  /** Oldest `ts` accepted from a message without `exp`, ms (as speak's replay window). @default 24 h */
  replayWindow?: number
  /** Furthest ahead a message's `ts` may be, ms (as speak). @default 5 min */
  maxClockSkew?: number
}

export interface MailboxClientComponents {
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** A message opened from a mailbox: the sender's signature and seal checked */
export interface MailboxMessage {
  message: MoltMessage
  json: string
  /** The sender, as the seal and signature prove */
  peer: PeerId
  /** The relay that held it */
  relay: string
}

/** A relay to deposit with: its PeerId and where to dial it */
export interface MailboxTarget {
  peerId: PeerId
  addrs: Multiaddr[]
}

export interface DepositReceipt {
  relay: string
  /** When the relay will drop the box if nobody fetched it */
  expires: number
}

/** The agent side of /molt/mailbox/1.0.0 */
export interface MailboxClient extends Startable {
  /**
   * Seal a signed message for `recipient` and deposit it with `relay`;
   * resolves once the relay wrote it durably. Concurrent deposits to one
   * relay and recipient travel together in one signed frame.
   *
   * @throws {MailboxRefusedError} a quota, the rate, a size limit or a check refused it
   */
  deposit(relay: MailboxTarget, recipient: PeerId, message: MoltMessage, options?: { signal?: AbortSignal }): Promise<DepositReceipt>
  /** Watch (and drain) the mailboxes of the relays already connected; later connections are watched as they open */
  watchConnectedRelays(): void
  /** Fetch, deliver and acknowledge every box waiting at `relay`; resolves with how many were delivered */
  sync(relay: PeerId, options?: { signal?: AbortSignal, addrs?: Multiaddr[] }): Promise<number>
  /**
   * Delete every box `sender` left for this node at its configured relays;
   * `sender` becomes a first-contact sender there again (a small share of the
   * mailbox, a short retention). One result per relay: how many boxes it
   * deleted, or why it could not be asked.
   */
  purge(sender: PeerId | string, options?: { signal?: AbortSignal }): Promise<PurgeResult[]>
}

export interface PurgeResult {
  relay: string
  /** Boxes of the sender the relay deleted */
  deleted?: number
  /** Why this relay could not purge (unreachable, refused) */
  error?: string
}
