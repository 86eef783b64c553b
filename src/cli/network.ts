import { setTimeout as sleep } from 'node:timers/promises'
import { createMoltNode, type MoltNode } from '../node.js'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import {
  connectToRunningAgent, describeIdentity, describePeers, type ApiClient, type ApiMessageInit, type IdentityResponse,
  type InboxResponse, type PeerInfo, type PingResponse, type SendResponse
} from '../api/index.js'
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
  close(): Promise<void>
}

export interface SendFlags { sign?: boolean, delivery?: DeliveryMode, receipt?: boolean }

/** Listen on loopback only: a short-lived node is a client, not a server */
const SHORT_LIVED_LISTEN = ['/ip4/127.0.0.1/tcp/0']
const FOLLOW_POLL_MS = 500
/** How long a short-lived node waits for a bootstrap peer to enter its DHT routing table */
const BOOTSTRAP_WAIT_MS = 3000
const DHT_POLL_MS = 25

/**
 * The agent running with `dataDir` (through its API), else a short-lived node
 * with the data dir's identity. That node takes the data dir lock, so two
 * nodes never run one key at once. It never runs mDNS: only `molt agent` does.
 */
export async function openNetwork (dataDir: string, signal: AbortSignal): Promise<Network> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running != null) return new ApiNetwork(running.client, signal)
  return new NodeNetwork(await createMoltNode({ dataDir, listen: SHORT_LIVED_LISTEN }), signal)
}

class ApiNetwork implements Network {
  readonly via = 'api'

  constructor (private readonly client: ApiClient, private readonly signal: AbortSignal) {}

  async identity (): Promise<IdentityResponse> {
    return this.client.identity({ signal: this.signal })
  }

  async send (to: string, message: ApiMessageInit, options: SendFlags): Promise<SendResponse> {
    return this.client.send(to, message, { ...options, signal: this.signal })
  }

  async outbox (peer?: string): Promise<OutboxResponse> {
    return this.client.outbox(peer, { signal: this.signal })
  }

  async request (to: string, message: ApiMessageInit, options: { sign?: boolean, timeoutMs?: number }): Promise<MoltMessage> {
    return (await this.client.request(to, message, { ...options, signal: this.signal })).reply
  }

  async ping (to: string, options: { timeoutMs?: number }): Promise<PingResponse> {
    return this.client.ping(to, { ...options, signal: this.signal })
  }

  async inbox (query: { after?: number, limit?: number }): Promise<InboxResponse> {
    return this.client.inbox(query, { signal: this.signal })
  }

  async discover (capability: string, options: { limit?: number, timeoutMs?: number }): Promise<DiscoveredAgent[]> {
    return (await this.client.discover({ capability, ...options }, { signal: this.signal })).agents
  }

  async card (peer: string | undefined, options: { force?: boolean, timeoutMs?: number }): Promise<AgentCard> {
    return (await this.client.card({ peer, ...options }, { signal: this.signal })).card
  }

  async peers (): Promise<PeerInfo[]> {
    return (await this.client.peers({ signal: this.signal })).peers
  }

  async * follow (after: number, signal: AbortSignal): AsyncGenerator<InboxEntry | UnserializableEntry> {
    while (!signal.aborted) {
      const page = await this.client.inbox({ after, limit: 1000 }, { signal })
      for (const entry of page.messages) yield entry
      after = page.next
      if (page.messages.length === 0) await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => {})
    }
  }

  async close (): Promise<void> {}
}

class NodeNetwork implements Network {
  readonly via = 'node'

  constructor (private readonly node: MoltNode, private readonly signal: AbortSignal) {}

  async identity (): Promise<IdentityResponse> {
    return describeIdentity(this.node)
  }

  async send (to: string, message: ApiMessageInit, options: SendFlags): Promise<SendResponse> {
    return this.node.send(to, message, { ...options, signal: this.signal })
  }

  async outbox (peer?: string): Promise<OutboxResponse> {
    return {
      pending: this.node.outbox({ peer }).map(({ json, ...entry }) => ({ ...entry, bytes: Buffer.byteLength(json) })),
      dead: this.node.deadLetters().map(({ json, ...letter }) => ({ ...letter, bytes: Buffer.byteLength(json) }))
    }
  }

  async request (to: string, message: ApiMessageInit, options: { sign?: boolean, timeoutMs?: number }): Promise<MoltMessage> {
    return this.node.request(to, message, { sign: options.sign, timeout: options.timeoutMs, signal: this.signal })
  }

  async ping (to: string, options: { timeoutMs?: number }): Promise<PingResponse> {
    const { rtt, pong } = await this.node.ping(to, { timeout: options.timeoutMs, signal: this.signal })
    return { rttMs: rtt, pong }
  }

  async inbox (query: { after?: number, limit?: number }): Promise<InboxResponse> {
    const messages = await this.node.inbox(query)
    return { messages, next: messages.at(-1)?.cursor ?? query.after ?? 0 }
  }

  async * follow (after: number, signal: AbortSignal): AsyncGenerator<InboxEntry> {
    yield * this.node.messages({ after, signal })
  }

  async discover (capability: string, options: { limit?: number, timeoutMs?: number }): Promise<DiscoveredAgent[]> {
    const signal = this.deadline(options.timeoutMs)
    await this.joinDht(signal)
    return this.node.discover(capability, { limit: options.limit, signal })
  }

  async card (peer: string | undefined, options: { force?: boolean, timeoutMs?: number }): Promise<AgentCard> {
    if (peer === undefined) return this.node.ownCard()
    return this.node.card(peer, { force: options.force, signal: this.deadline(options.timeoutMs) })
  }

  async peers (): Promise<PeerInfo[]> {
    return describePeers(this.node)
  }

  private deadline (timeoutMs: number | undefined): AbortSignal {
    return timeoutMs == null ? this.signal : AbortSignal.any([this.signal, AbortSignal.timeout(timeoutMs)])
  }

  /**
   * A node that just started knows nobody: wait (briefly) until the DHT's
   * routing table holds a peer — a bootstrap peer, connected, identified and
   * pinged — so findProviders has someone to ask.
   */
  private async joinDht (signal: AbortSignal): Promise<void> {
    const dht = this.node.libp2p.services.dht as Partial<SingleKadDHT> | undefined
    if (dht?.routingTable == null || this.node.config.discovery.bootstrap.length === 0) return
    const deadline = Date.now() + BOOTSTRAP_WAIT_MS
    while (dht.routingTable.size === 0 && Date.now() < deadline && !signal.aborted) {
      await sleep(DHT_POLL_MS, undefined, { signal }).catch(() => {})
    }
  }

  async close (): Promise<void> {
    await this.node.stop()
  }
}
