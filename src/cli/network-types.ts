import type { DeliveryReceipt } from '../node.js'
import type { ApiMessageInit, IdentityResponse, InboxResponse, PeerInfo, PingResponse, SendResponse } from '../api/types.js'
import type { OutboxResponse } from '../api/types.js'
import type { DeliveryMode } from '../delivery/constants.js'
import type { InboxEntry, UnserializableEntry } from '../inbox/index.js'
import type { MoltMessage } from '../moltspeak/index.js'
import type { AgentCard } from '../services/card/index.js'
import type { DiscoveredAgent } from '../discovery/index.js'

/** What the commands need from "the network": a running agent's API, or a node of our own */
export interface Network {
  /** 'api' when a running agent does the work */
  readonly via: 'api' | 'node'
  /** The running agent's pid (via 'api') */
  readonly agentPid?: number
  identity(): Promise<IdentityResponse>
  send(to: string, message: ApiMessageInit, options: SendFlags): Promise<SendResponse>
  /** What waits in the outbox and what it gave up on */
  outbox(peer?: string): Promise<OutboxResponse>
  request(to: string, message: ApiMessageInit, options: { sign?: boolean, timeoutMs?: number }): Promise<MoltMessage>
  ping(to: string, options: { timeoutMs?: number }): Promise<PingResponse>
  inbox(query: { after?: number, limit?: number }): Promise<InboxResponse>
  /** Every message after `after`, then new ones as they arrive, until `signal` aborts */
  follow(after: number, signal: AbortSignal): AsyncGenerator<InboxEntry | UnserializableEntry>
  discover(capability: string, options: { limit?: number, timeoutMs?: number }): Promise<DiscoveredAgent[]>
  /** A peer's verified card, or this agent's own without `peer` */
  card(peer: string | undefined, options: { force?: boolean, timeoutMs?: number }): Promise<AgentCard>
  peers(): Promise<PeerInfo[]>
  /** The signed receipt of a message sent with receipt: stored ones at once, else waits up to `timeoutMs` */
  receipt(id: string, options: { timeoutMs: number }): Promise<DeliveryReceipt>
  close(): Promise<void>
}

export interface OpenOptions {
  /** More relays (`--relay`) for a short-lived node, after config.json relays and MOLT_RELAYS */
  relays?: string[]
  /** More DHT bootstrap peers (`--bootstrap`), after config.json discovery.bootstrap and MOLT_BOOTSTRAP */
  bootstrap?: string[]
}

export interface SendFlags { sign?: boolean, delivery?: DeliveryMode, receipt?: boolean }
