import { createMoltNode, type DeliveryReceipt, type MoltNode } from '../node.js'
import { loadConfig } from '../config/index.js'
import { applyEnv } from '../config/env.js'
import { routingTableReady, type ObservableRoutingTable } from '../discovery/dht-ready.js'
import { describeIdentity, describePeers } from '../api/routes.js'
import type { ApiMessageInit, IdentityResponse, InboxResponse, PeerInfo, PingResponse, SendResponse, OutboxResponse } from '../api/types.js'
import type { InboxEntry } from '../inbox/index.js'
import type { MoltMessage } from '../moltspeak/index.js'
import type { AgentCard } from '../services/card/index.js'
import type { DiscoveredAgent } from '../discovery/index.js'
import type { Network, OpenOptions, SendFlags } from './network-types.js'
import { OutboxWatch, type LeftStatus } from './outbox-watch.js'

/** Listen on loopback only: a short-lived node is a client, not a server */
const SHORT_LIVED_LISTEN = ['/ip4/127.0.0.1/tcp/0']
/** How long a short-lived node waits, at most, for a bootstrap peer to enter its DHT routing table (ends as soon as one does; 3 s missed on a busy machine) */
const BOOTSTRAP_WAIT_MS = 10_000
/** How long a short-lived node waits for its outbox to deliver older messages to a peer before a new one (ms) */
const ONE_OFF_FLUSH_MS = 15_000
/** How long a short-lived node tries, at most, to reach such a peer before it leaves them all queued (ms; resolution through the DHT, then a dial) */
const ONE_OFF_PROBE_MS = 10_000

/** A short-lived node of our own on `dataDir` (no agent runs there) */
export async function openNodeNetwork (dataDir: string, signal: AbortSignal, options: OpenOptions): Promise<Network> {
  const config = applyEnv(await loadConfig(dataDir))
  const relays = [...new Set([...config.relays, ...(options.relays ?? [])])]
  const bootstrap = [...new Set([...config.discovery.bootstrap, ...(options.bootstrap ?? [])])]
  // a DHT client that publishes no routing record: it is gone in seconds, and its record would outlive it by a day
  const node = await createMoltNode({ dataDir, listen: SHORT_LIVED_LISTEN, bootstrap, relays, publishRoute: false, dht: { clientMode: true } })
  return new NodeNetwork(node, signal, bootstrap.length + relays.length > 0)
}

class NodeNetwork implements Network {
  readonly via = 'node'

  /** `bootstraps`: some bootstrap peer or relay is configured, so the DHT is worth waiting for */
  constructor (private readonly node: MoltNode, private readonly signal: AbortSignal, private readonly bootstraps = false) {}

  async identity (): Promise<IdentityResponse> {
    return describeIdentity(this.node)
  }

  async send (to: string, message: ApiMessageInit, options: SendFlags): Promise<SendResponse> {
    if (!to.startsWith('/')) await this.joinDht(this.signal)
    // watched from before the send: the outbox may deliver the message (behind older ones, on a connection
    // the bootstrap just opened) before send() has even returned its id
    const watch = new OutboxWatch(this.node)
    try {
      const result = await this.node.send(to, message, { ...options, signal: this.signal })
      // queued without an attempt: older messages to this peer wait in the outbox and go first, in order.
      // This node exits next, so flush that outbox once now rather than leave it all to the next agent
      if (result.status === 'queued' && result.lastError === undefined) return await this.flushOutbox(result, watch)
      return result
    } finally {
      watch.close()
    }
  }

  /** When the peer can be reached now, retry its outbox and wait (bounded) until `result`'s message leaves it */
  private async flushOutbox (result: SendResponse, watch: OutboxWatch): Promise<SendResponse> {
    const deadline = AbortSignal.any([this.signal, AbortSignal.timeout(ONE_OFF_FLUSH_MS)])
    const leftAlready = watch.seen(result.id)
    if (leftAlready !== undefined) return withStatus(result, leftAlready)
    // reachable? (fetching its card resolves and dials it, and leaves nothing in its inbox); else it stays queued
    const reachable = await this.node.card(result.peer, { force: true, signal: AbortSignal.any([this.signal, AbortSignal.timeout(ONE_OFF_PROBE_MS)]) })
      .then(() => true, () => false)
    if (!reachable && watch.seen(result.id) === undefined) return result
    await this.node.retryOutbox(result.peer)
    const status = await watch.wait(result.id, deadline)
    return status === undefined ? result : withStatus(result, status)
  }

  async outbox (peer?: string): Promise<OutboxResponse> {
    return {
      pending: this.node.outbox({ peer }).map(({ json, ...entry }) => ({ ...entry, bytes: Buffer.byteLength(json) })),
      dead: this.node.deadLetters().map(({ json, ...letter }) => ({ ...letter, bytes: Buffer.byteLength(json) }))
    }
  }

  async request (to: string, message: ApiMessageInit, options: { sign?: boolean, timeoutMs?: number }): Promise<MoltMessage> {
    if (!to.startsWith('/')) await this.joinDht(this.signal)
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

  async receipt (id: string, options: { timeoutMs: number }): Promise<DeliveryReceipt> {
    return this.node.receipt(id, { timeout: options.timeoutMs, signal: this.signal })
  }

  private deadline (timeoutMs: number | undefined): AbortSignal {
    return timeoutMs == null ? this.signal : AbortSignal.any([this.signal, AbortSignal.timeout(timeoutMs)])
  }

  /**
   * A node that just started knows nobody: wait (bounded) until the DHT's
   * routing table holds a peer — a bootstrap peer, connected, identified and
   * pinged — so lookups have someone to ask. Ends on the table's first
   * `peer:add`, not on a poll.
   */
  private async joinDht (signal: AbortSignal): Promise<void> {
    const dht = this.node.libp2p.services.dht as { routingTable?: ObservableRoutingTable } | undefined
    if (dht?.routingTable == null || !this.bootstraps) return
    await routingTableReady(dht.routingTable, AbortSignal.any([signal, AbortSignal.timeout(BOOTSTRAP_WAIT_MS)]))
  }

  async close (): Promise<void> {
    await this.node.stop()
  }
}

function withStatus (result: SendResponse, status: LeftStatus): SendResponse {
  return { ...result, status, delivered: status === 'delivered', ...(status === 'stored' ? { route: 'mailbox' as const } : {}) }
}
