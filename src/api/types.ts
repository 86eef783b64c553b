import type { MessageInit, SendResult } from '../node.js'
import type { InboxEntry } from '../inbox/index.js'
import type { ErrorCode, MoltMessage } from '../moltspeak/index.js'
import type { Route } from '../services/speak/index.js'

/** JSON shapes of the local API (/v1), shared by the server and ApiClient */

/** What a client may say about a message; the node fills in v, id, ts, from (and `to` from the peer) */
export type ApiMessageInit = Pick<MessageInit, 'op' | 'p' | 'cls' | 're' | 'exp' | 'cap' | 'ext' | 'to' | 'pii_meta'>

export interface HealthResponse { status: 'ok', peerId: string, uptimeMs: number }

export interface IdentityResponse {
  peerId: string
  did: string
  /** `ed25519:<base64>` */
  key: string
  agent: { name: string, org: string, description?: string, capabilities: string[] }
  addresses: string[]
}

export interface SendRequest { to: string, message: ApiMessageInit, sign?: boolean }
export type SendResponse = SendResult

export interface RequestRequest extends SendRequest { timeoutMs?: number }
export interface RequestResponse { reply: MoltMessage }

export interface InboxResponse {
  messages: InboxEntry[]
  /** Pass as `after` to get what came later */
  next: number
}

export interface PingRequest { to: string, timeoutMs?: number }
export interface PingResponse { rttMs: number, pong: MoltMessage }

export interface PeerInfo { peerId: string, addresses: string[], route: Route }
export interface PeersResponse { peers: PeerInfo[] }

export interface ErrorResponse { error: { code: ErrorCode, message: string, field?: string } }
