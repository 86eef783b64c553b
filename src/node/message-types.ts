import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { InboxEntry } from '../inbox/index.js'
import type { Priority } from '../services/speak/index.js'
import type { Route } from '../routing/route.js'
import type { AgentRef, MoltMessage, Op, Classification } from '../moltspeak/index.js'
import type { DeliveryStatus, MailboxRefusal } from '../delivery/delivery.js'
import type { DeliveryMode } from '../delivery/constants.js'

// The message-level types of the SDK: what send(), request() and handlers take and give.
// Apart from MoltNode (types.ts) so that services the node composes (tasks) can use them
// without an import cycle back to the node.

/** What a message may say when handed to send(): everything else is filled in */
export interface MessageInit {
  op: Op
  p?: Record<string, unknown>
  to?: AgentRef
  cls?: Classification
  re?: string
  exp?: number
  cap?: string[]
  ext?: Record<string, Record<string, unknown>>
  pii_meta?: MoltMessage['pii_meta']
  /** Set to re-send a message under its original id (receivers de-duplicate by id) */
  id?: string
  /** @default Date.now() */
  ts?: number
}

export interface SendOptions {
  signal?: AbortSignal
  /** Sign this message. @default the node's signMessages (messages that go to a mailbox are always signed) */
  sign?: boolean
  /**
   * `best-effort`: one attempt, throws if not acknowledged. `at-least-once`:
   * if the peer cannot be reached now, the message is kept (relay mailboxes,
   * else the outbox) and retried. `exactly-once`: the same, and the receiver
   * remembers the id across restarts. @default 'at-least-once'
   */
  delivery?: DeliveryMode
  /** Ask the recipient for a signed delivery receipt (see `receipt()`) */
  receipt?: boolean
  /**
   * Its band in this node's per-peer queues (protocols/speak.md, "Priority
   * bands"): high overtakes a backlog of normal and low, low is never starved.
   * @default a `task` message's `p.priority` (`urgent` = high), else 'normal'
   */
  priority?: Priority
}

export interface RequestOptions extends SendOptions {
  /** ms to wait for the reply. @default 30000 */
  timeout?: number
}

/** Where a peer may be given: its PeerId, its PeerId string, or a multiaddr ending in /p2p/<id> */
export type PeerInput = PeerId | Multiaddr | string

export interface SendResult {
  id: string
  peer: string
  /**
   * `delivered`: the peer acknowledged receipt. `stored`: relay mailboxes
   * hold it (sealed) until the peer fetches it. `queued`: it waits in this
   * node's outbox, retried until delivered or expired.
   */
  status: DeliveryStatus
  /** status === 'delivered' */
  delivered: boolean
  /** `direct`, `relayed` through `relay`, or `mailbox` when stored; absent when queued */
  route?: Route
  /** The circuit relay that carried it (relayed), or the first mailbox holding it (stored) */
  relay?: string
  /** Mailbox relays holding it, each until its expiry (stored) */
  mailboxes?: Array<{ relay: string, expires: number }>
  /** Mailbox relays that refused it, with why (quota, rate, size) */
  refusals?: MailboxRefusal[]
  /** When an undelivered message stops being retried and is reported expired */
  expires?: number
  /** Why the direct attempt failed, when not delivered */
  lastError?: string
  delivery: DeliveryMode
  message: MoltMessage
}

/** A signed proof from the recipient that a message reached its inbox */
export interface DeliveryReceipt {
  /** The message the receipt is for */
  id: string
  /** The recipient that signed it */
  peer: string
  /** SHA-256 (hex) of the message's canonical signing form, as the recipient received it */
  digest: string
  receivedAt: number
  /** The receipt message itself, signed by the recipient */
  message: MoltMessage
}

export interface ReceivedMessage extends InboxEntry {}

export interface HandlerContext {
  peer: PeerId
  route: Route
  entry: ReceivedMessage
}

/** A handler's return value becomes the reply: a payload (sent as `respond`) or a full init */
export type HandlerResult = void | undefined | Record<string, unknown> | { reply: Omit<MessageInit, 're' | 'to'> }
export type MessageHandler = (message: MoltMessage, context: HandlerContext) => HandlerResult | Promise<HandlerResult>
