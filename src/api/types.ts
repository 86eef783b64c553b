import type { DeliveryMode } from '../delivery/constants.js'
import type { OutboxEntry, DeadLetter } from '../delivery/outbox.js'
import type { DeliveryReceipt, MessageInit, SendResult } from '../node.js'
import type { InboxEntry, UnserializableEntry } from '../inbox/index.js'
import type { ErrorCode, MoltMessage } from '../moltspeak/index.js'
import type { AgentCard } from '../services/card/index.js'
import type { DiscoveredAgent, KnownPeer } from '../discovery/index.js'

/** JSON shapes of the local API (/v1), shared by the server and ApiClient */

/** What a client may say about a message; the node fills in v, id, ts, from (and `to` from the peer) */
export type ApiMessageInit = Pick<MessageInit, 'op' | 'p' | 'cls' | 're' | 'exp' | 'cap' | 'ext' | 'to' | 'pii_meta'>

export interface HealthResponse {
  status: 'ok'
  peerId: string
  uptimeMs: number
  /** Highest inbox cursor a client acknowledged with POST /v1/messages/ack since this server started (0: none) */
  acked: number
}

export interface AckRequest { cursor: number }
export interface AckResponse { acked: number }

export interface IdentityResponse {
  peerId: string
  did: string
  /** `ed25519:<base64>` */
  key: string
  agent: { name: string, org: string, description?: string, capabilities: string[] }
  addresses: string[]
}

export interface SendRequest { to: string, message: ApiMessageInit, sign?: boolean, delivery?: DeliveryMode, receipt?: boolean }
/** `status` says where the message is: delivered, stored (relay mailboxes) or queued (outbox) */
export type SendResponse = SendResult

/** GET /v1/outbox: what waits (without the message bodies) and what was given up on */
export interface OutboxResponse {
  pending: Array<Omit<OutboxEntry, 'json'> & { bytes: number }>
  dead: Array<Omit<DeadLetter, 'json'> & { bytes: number }>
}

/** GET /v1/receipts?id=: the signed delivery receipt of a message sent with receipt: true */
export interface ReceiptResponse { receipt: DeliveryReceipt }

export interface RequestRequest extends SendRequest { timeoutMs?: number }
export interface RequestResponse { reply: MoltMessage }

export interface InboxResponse {
  /** An entry that cannot be serialized is an UnserializableEntry (its cursor and an `error`) */
  messages: Array<InboxEntry | UnserializableEntry>
  /** Pass as `after` to get what came later */
  next: number
}

export interface PingRequest { to: string, timeoutMs?: number }
export interface PingResponse { rttMs: number, pong: MoltMessage }

/**
 * A known agent: `peerId`, `addresses` and `route` as before (route only while
 * connected), plus presence — status, last seen, its card's name/org/capabilities
 * and the last heartbeat's rtt/load/queue depth
 */
export type PeerInfo = KnownPeer
export interface PeersResponse { peers: PeerInfo[] }

export interface DiscoverQuery {
  capability: string
  /** 1-100. @default 20 */
  limit?: number
  /** Give up after this many ms (504). @default no limit beyond the client's */
  timeoutMs?: number
}
export interface DiscoverResponse { agents: DiscoveredAgent[] }

export interface CardQuery {
  /** PeerId or multiaddr; none = this node's own card */
  peer?: string
  /** Fetch again even when a cached card is still valid */
  force?: boolean
  timeoutMs?: number
}
export interface CardResponse { card: AgentCard }

export interface ErrorResponse { error: { code: ErrorCode, message: string, field?: string } }
