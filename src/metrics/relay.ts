import { Counter, Gauge, Registry } from 'prom-client'
import { collectProcessMetrics } from './process.js'
import { RESERVATION_REFUSALS, type RelayStats } from '../relay/policy.js'
import type { MetricsOptions } from './agent.js'

/**
 * A relay's metrics, read from `stats()` on every scrape, in a registry of its
 * own. The `_total` values are the relay's own since-start counters, exported
 * as Prometheus counters.
 */
export function createRelayMetrics (relay: { stats(): RelayStats }, options: MetricsOptions = {}): Registry {
  const registry = new Registry()
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
  if (options.processMetrics !== false) collectProcessMetrics(registry)
  return registry
}
