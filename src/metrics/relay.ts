import { Counter, Gauge, Registry } from 'prom-client'
import { collectProcessMetrics } from './process.js'
import { RESERVATION_REFUSALS, type RelayStats } from '../relay/policy.js'
import type { MetricsOptions } from './agent.js'
import type { MailboxStats } from '../services/mailbox/index.js'
import type { DhtStoreStats } from '../relay/dht-store.js'
import { trustMetrics, type TrustMetricsSource } from './trust.js'

/** Refusal reasons of the mailbox, always exported (0 when none) so a series never disappears */
const MAILBOX_REFUSALS = ['mailbox-full', 'sender-quota', 'store-full', 'rate-limited', 'too-large', 'expired', 'shutting-down', 'storage-error', 'unknown-recipient', 'source-quota', 'first-contact-quota'] as const

/**
 * A relay's metrics, read from `stats()` on every scrape, in a registry of its
 * own. The `_total` values are the relay's own since-start counters, exported
 * as Prometheus counters.
 */
export function createRelayMetrics (relay: { stats(): RelayStats, mailbox?: { stats(): MailboxStats }, trust?: () => TrustMetricsSource | undefined, dhtStore?: () => DhtStoreStats }, options: MetricsOptions & { registry?: Registry } = {}): Registry {
  const registry = options.registry ?? new Registry()
  const registers = [registry]
  const stats = (): RelayStats => relay.stats()
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'molt_relay_reservations',
    help: 'Reservations held now',
    registers,
    collect () { this.set(stats().reservations) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_relay_reservations_refused_total',
    help: 'Reservation requests refused since start, by reason',
    labelNames: ['reason'],
    registers,
    collect () {
      const refused = stats().reservationsRefused
      this.reset()
      for (const reason of RESERVATION_REFUSALS) this.inc({ reason }, refused[reason] ?? 0)
    }
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'molt_relay_connections_relayed',
    help: 'Relayed connections open now',
    registers,
    collect () { this.set(stats().relayedConnections) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_relay_connections_relayed_total',
    help: 'Relayed connections opened since start',
    registers,
    collect () {
      this.reset()
      this.inc(stats().relayedConnectionsTotal)
    }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_relay_bytes_total',
    help: 'Bytes received on relay hop/stop streams since start (forwarded traffic plus circuit handshakes)',
    registers,
    collect () {
      this.reset()
      this.inc(stats().relayedBytes)
    }
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'molt_relay_held_bytes',
    help: 'Bytes the dialling sides sent over the relayed connections open now, held until each closes (limit: maxHeldHopBytes)',
    registers,
    collect () { this.set(stats().heldBytes) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_relay_connections_cut_total',
    help: 'Relayed connections closed since start because the bytes held for open circuits went over maxHeldHopBytes',
    registers,
    collect () {
      this.reset()
      this.inc(stats().relayedConnectionsCut)
    }
  })
  if (relay.trust != null) trustMetrics(relay.trust, registers)
  if (relay.mailbox != null) mailboxMetrics(() => (relay.mailbox as { stats(): MailboxStats }).stats(), registers)
  if (relay.dhtStore != null) dhtStoreMetrics(relay.dhtStore, registers)
  if (options.processMetrics !== false) collectProcessMetrics(registry)
  return registry
}

/** The DHT records the relay keeps for agents in its data dir (protocols/routing.md "Relays keep records across restarts") */
function dhtStoreMetrics (stats: () => DhtStoreStats, registers: Registry[]): void {
  /* eslint-disable no-new */
  new Gauge({ name: 'molt_relay_dht_records', help: 'Routing records this relay keeps for agents (DHT, persisted)', registers, collect () { this.set(stats().records) } })
  new Gauge({ name: 'molt_relay_dht_providers', help: 'Provider entries (capability adverts) this relay keeps (DHT, persisted)', registers, collect () { this.set(stats().providers) } })
  new Counter({ name: 'molt_relay_dht_refused_total', help: 'DHT records and provider entries refused since start: the store was at its limit or the value too large', registers, collect () { this.reset(); this.inc(stats().refused) } })
  /* eslint-enable no-new */
}

/** The store-and-forward mailbox: depth, bytes, age, and its since-start counters */
function mailboxMetrics (stats: () => MailboxStats, registers: Registry[]): void {
  const gauge = (name: string, help: string, read: (s: MailboxStats) => number): void => {
    // eslint-disable-next-line no-new
    new Gauge({ name, help, registers, collect () { this.set(read(stats())) } })
  }
  const counter = (name: string, help: string, read: (s: MailboxStats) => number): void => {
    // eslint-disable-next-line no-new
    new Counter({ name, help, registers, collect () { this.reset(); this.inc(read(stats())) } })
  }
  gauge('molt_mailbox_messages', 'Sealed boxes held for offline agents', s => s.messages)
  gauge('molt_mailbox_bytes', 'Bytes of sealed boxes held (base64, as stored)', s => s.bytes)
  gauge('molt_mailbox_recipients', 'Agents with boxes waiting', s => s.recipients)
  gauge('molt_mailbox_oldest_age_seconds', 'Age of the oldest box held (0 when empty)', s => s.oldestAt != null ? (Date.now() - s.oldestAt) / 1000 : 0)
  counter('molt_mailbox_deposited_total', 'Boxes stored since start', s => s.deposited)
  counter('molt_mailbox_delivered_total', 'Boxes fetched and acknowledged by their recipient since start', s => s.delivered)
  counter('molt_mailbox_expired_total', 'Boxes deleted unfetched at their expiry since start', s => s.expired)
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_mailbox_deposits_refused_total',
    help: 'Deposits refused since start, by reason',
    labelNames: ['reason'],
    registers,
    collect () {
      const refused = stats().refused
      this.reset()
      for (const reason of new Set<string>([...MAILBOX_REFUSALS, ...Object.keys(refused)])) this.inc({ reason }, refused[reason] ?? 0)
    }
  })
}
