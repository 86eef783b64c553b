import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { collectProcessMetrics } from './process.js'
import { exposition } from './exposition.js'
import { trustMetrics, type TrustMetricsSource } from './trust.js'

/** What the agent gauges read on every scrape */
export interface AgentMetricsSource {
  /** Known peers, each with its presence status (connected / seen / stale) */
  peers(): Array<{ status: string }>
  /** Messages held in the inbox */
  inboxMessages(): number
  /** Relays this node holds a reservation on */
  reservedRelays(): number
  /** Messages waiting in the outbox */
  outboxMessages(): number
  /** Bytes of the messages waiting in the outbox */
  outboxBytes(): number
  /** The trust service's counters */
  trust(): TrustMetricsSource
}

export interface MetricsOptions {
  /** Also collect prom-client's default process metrics (`molt_process_*`, `molt_nodejs_*`). @default true */
  processMetrics?: boolean
}

/** Presence statuses, always exported (0 when none) so a series never disappears */
const PEER_STATUSES = ['connected', 'seen', 'stale'] as const

/** Request → reply latency buckets, in seconds (a relayed round trip is ~10–500 ms) */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * One agent node's metrics, in a registry of its own (never prom-client's
 * global one: several nodes may run in one process). Counters are bumped by
 * the node as messages move; gauges are read from `source` on scrape.
 */
export class AgentMetrics {
  readonly registry = new Registry()
  readonly messagesSent: Counter<'op' | 'route'>
  readonly messagesReceived: Counter<'op' | 'route'>
  readonly messagesRefused: Counter<'code'>
  readonly messagesDuplicate: Counter
  readonly sendFailures: Counter<'reason'>
  readonly requestDuration: Histogram
  readonly sendOutcomes: Counter<'status' | 'mode'>
  readonly outboxDead: Counter<'reason'>
  readonly mailboxFetched: Counter
  readonly mailboxRejected: Counter
  private source?: AgentMetricsSource

  constructor (options: MetricsOptions = {}) {
    const registers = [this.registry]
    this.messagesSent = new Counter({
      name: 'molt_messages_sent_total', help: 'MoltSpeak messages sent and acknowledged by the peer, by op and route', labelNames: ['op', 'route'], registers
    })
    this.messagesReceived = new Counter({
      name: 'molt_messages_received_total', help: 'MoltSpeak messages received and accepted, by op and route', labelNames: ['op', 'route'], registers
    })
    this.messagesRefused = new Counter({
      name: 'molt_messages_refused_total', help: 'Inbound MoltSpeak messages refused, by MoltSpeak error code', labelNames: ['code'], registers
    })
    this.messagesDuplicate = new Counter({
      name: 'molt_messages_duplicate_total', help: 'Inbound MoltSpeak messages dropped as duplicates (already received)', registers
    })
    this.sendFailures = new Counter({
      name: 'molt_send_failures_total', help: 'Outbound messages that were not acknowledged, by reason', labelNames: ['reason'], registers
    })
    this.requestDuration = new Histogram({
      name: 'molt_request_duration_seconds', help: 'Time from sending a request to receiving its reply', buckets: REQUEST_BUCKETS, registers
    })
    this.sendOutcomes = new Counter({
      name: 'molt_send_outcomes_total', help: 'Sends by what they resolved with (delivered, stored in relay mailboxes, queued in the outbox) and delivery mode', labelNames: ['status', 'mode'], registers
    })
    this.outboxDead = new Counter({
      name: 'molt_outbox_dead_total', help: 'Outbox messages given up on, by reason (expired, refused by the recipient)', labelNames: ['reason'], registers
    })
    this.mailboxFetched = new Counter({
      name: 'molt_mailbox_fetched_total', help: 'Messages fetched from relay mailboxes, opened and verified', registers
    })
    this.mailboxRejected = new Counter({
      name: 'molt_mailbox_rejected_total', help: 'Mailbox boxes that failed to open or verify (tampered, forged) and were dropped', registers
    })
    const self = this
    /** A gauge read from the bound source on every scrape (0 until bound, or if the read fails) */
    const sourceGauge = (name: string, help: string, value: (source: AgentMetricsSource) => number): void => {
      // eslint-disable-next-line no-new
      new Gauge({ name, help, registers, collect () { this.set(read(() => self.source != null ? value(self.source) : 0, 0)) } })
    }
    sourceGauge('molt_outbox_messages', 'Messages waiting in the outbox for an unreachable peer', source => source.outboxMessages())
    sourceGauge('molt_outbox_bytes', 'Bytes of the messages waiting in the outbox', source => source.outboxBytes())
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'molt_peers',
      help: 'Agents this node knows, by presence status',
      labelNames: ['status'],
      registers,
      collect () {
        const counts = new Map<string, number>(PEER_STATUSES.map(status => [status, 0]))
        for (const peer of read(() => self.source?.peers(), []) ?? []) counts.set(peer.status, (counts.get(peer.status) ?? 0) + 1)
        for (const [status, count] of counts) this.set({ status }, count)
      }
    })
    sourceGauge('molt_inbox_messages', 'Messages held in the inbox', source => source.inboxMessages())
    sourceGauge('molt_relay_reservations', 'Circuit relays this node holds a reservation on', source => source.reservedRelays())
    trustMetrics(() => read(() => self.source?.trust(), undefined), registers)
    if (options.processMetrics !== false) collectProcessMetrics(this.registry)
  }

  /** Where the gauges read from (set once the node is up) */
  bind (source: AgentMetricsSource): void {
    this.source = source
  }

  sent (op: string, route: string): void {
    this.messagesSent.inc({ op, route })
  }

  received (op: string, route: string): void {
    this.messagesReceived.inc({ op, route })
  }

  refused (code: string): void {
    this.messagesRefused.inc({ code })
  }

  duplicate (): void {
    this.messagesDuplicate.inc()
  }

  sendFailed (err: unknown, signal?: AbortSignal): void {
    this.sendFailures.inc({ reason: sendFailureReason(err, signal) })
  }

  /** Seconds since `start` (a performance.now() value) */
  requestDone (start: number): void {
    this.requestDuration.observe((performance.now() - start) / 1000)
  }

  /** The text exposition (format 0.0.4) */
  async text (): Promise<string> {
    return exposition(this.registry)
  }

  get contentType (): string {
    return this.registry.contentType
  }
}

/** A source read that must not fail a scrape (a stopping node) */
function read<T> (fn: () => T, fallback: T): T {
  try {
    return fn()
  } catch {
    return fallback
  }
}

/** A bounded label for why a send failed */
export function sendFailureReason (err: unknown, signal?: AbortSignal): string {
  if (signal?.aborted === true) return 'aborted'
  const name = (err as { name?: unknown } | null)?.name
  switch (name) {
    case 'AbortError': return 'aborted'
    case 'AckTimeoutError':
    case 'RequestTimeoutError':
    case 'TimeoutError': return 'timeout'
    case 'MoltSpeakError': return 'refused'
    case 'MessageTooLargeError': return 'too_large'
    case 'SessionClosedError':
    case 'ConnectionClosedError':
    case 'StreamResetError': return 'closed'
    case 'NotStartedError': return 'stopped'
    case 'DialError':
    case 'NoValidAddressesError':
    case 'ConnectionFailedError':
    case 'UnsupportedProtocolError':
    case 'DialDeniedError':
    case 'NotFoundError': return 'unreachable'
    default: return 'other'
  }
}
