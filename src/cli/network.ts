import { setTimeout as sleep } from 'node:timers/promises'
import type { DeliveryReceipt } from '../node.js'
import type { LockInfo } from '../config/lock.js'
import { connectToRunningAgent } from '../api/local-agent.js'
import type { ApiClient } from '../api/client.js'
import type { ApiMessageInit, IdentityResponse, InboxResponse, PeerInfo, PingResponse, SendResponse } from '../api/types.js'
import type { OutboxResponse } from '../api/types.js'
import type { InboxEntry, UnserializableEntry } from '../inbox/index.js'
import type { MoltMessage } from '../moltspeak/index.js'
import type { AgentCard } from '../services/card/index.js'
import type { DiscoveredAgent } from '../discovery/index.js'

import type { Network, OpenOptions, SendFlags } from './network-types.js'
export type { Network, OpenOptions, SendFlags } from './network-types.js'

/** How often `follow` polls a running agent's inbox when nothing new came (ms) */
const FOLLOW_POLL_MS = 500

/**
 * The agent running with `dataDir` (through its API), else a short-lived node
 * with the data dir's identity. That node takes the data dir lock, so two
 * nodes never run one key at once. It never runs mDNS: only `molt agent` does.
 * It bootstraps from what `molt agent` would (config.json, MOLT_BOOTSTRAP,
 * MOLT_RELAYS) plus `options`: a message to a bare PeerId needs the DHT.
 */
export async function openNetwork (dataDir: string, signal: AbortSignal, options: OpenOptions = {}): Promise<Network> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running != null) return new ApiNetwork(running.client, signal, running.lock)
  // libp2p is loaded only here: commands served by a running agent never pay for it
  const { openNodeNetwork } = await import('./node-network.js')
  return openNodeNetwork(dataDir, signal, options)
}

class ApiNetwork implements Network {
  readonly via = 'api'
  readonly agentPid: number

  constructor (private readonly client: ApiClient, private readonly signal: AbortSignal, lock: LockInfo) {
    this.agentPid = lock.pid
  }

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

  async receipt (id: string, options: { timeoutMs: number }): Promise<DeliveryReceipt> {
    return (await this.client.receipt(id, { timeoutMs: options.timeoutMs, signal: this.signal })).receipt
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

