import { setTimeout as sleep } from 'node:timers/promises'
import { createMoltNode, type MoltNode } from '../node.js'
import { connectToRunningAgent, describeIdentity, type ApiClient, type ApiMessageInit, type IdentityResponse, type InboxResponse, type PingResponse, type SendResponse } from '../api/index.js'
import type { InboxEntry } from '../inbox/index.js'
import type { MoltMessage } from '../moltspeak/index.js'

/** What the commands need from "the network": a running agent's API, or a node of our own */
export interface Network {
  /** 'api' when a running agent does the work */
  readonly via: 'api' | 'node'
  identity(): Promise<IdentityResponse>
  send(to: string, message: ApiMessageInit, options: { sign?: boolean }): Promise<SendResponse>
  request(to: string, message: ApiMessageInit, options: { sign?: boolean, timeoutMs?: number }): Promise<MoltMessage>
  ping(to: string, options: { timeoutMs?: number }): Promise<PingResponse>
  inbox(query: { after?: number, limit?: number }): Promise<InboxResponse>
  /** Every message after `after`, then new ones as they arrive, until `signal` aborts */
  follow(after: number, signal: AbortSignal): AsyncGenerator<InboxEntry>
  close(): Promise<void>
}

/** Listen on loopback only: a short-lived node is a client, not a server */
const SHORT_LIVED_LISTEN = ['/ip4/127.0.0.1/tcp/0']
const FOLLOW_POLL_MS = 500

/**
 * The agent running with `dataDir` (through its API), else a short-lived node
 * with the data dir's identity. That node takes the data dir lock, so two
 * nodes never run one key at once.
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

  async send (to: string, message: ApiMessageInit, options: { sign?: boolean }): Promise<SendResponse> {
    return this.client.send(to, message, { ...options, signal: this.signal })
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

  async * follow (after: number, signal: AbortSignal): AsyncGenerator<InboxEntry> {
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

  async send (to: string, message: ApiMessageInit, options: { sign?: boolean }): Promise<SendResponse> {
    return this.node.send(to, message, { ...options, signal: this.signal })
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

  async close (): Promise<void> {
    await this.node.stop()
  }
}
