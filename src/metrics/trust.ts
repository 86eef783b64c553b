import { Counter, Gauge, type Registry } from 'prom-client'

/** What the trust metrics read (TrustService.stats()) */
export interface TrustMetricsSource {
  stored: number
  accepted: number
  rejected: Record<string, number>
  synced: number
}

/**
 * Attestations stored, accepted and rejected (by reason, the error's name),
 * and received by sync: on agents and on relays, which both run the gossip.
 */
export function trustMetrics (stats: () => TrustMetricsSource | undefined, registers: Registry[]): void {
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'molt_trust_attestations',
    help: 'Trust attestations stored (valid, not expired)',
    registers,
    collect () { this.set(stats()?.stored ?? 0) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_trust_attestations_accepted_total',
    help: 'Attestations accepted since start (gossip, sync, local)',
    registers,
    collect () { this.reset(); this.inc(stats()?.accepted ?? 0) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_trust_attestations_synced_total',
    help: 'Attestations received by catch-up sync since start',
    registers,
    collect () { this.reset(); this.inc(stats()?.synced ?? 0) }
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'molt_trust_attestations_rejected_total',
    help: 'Attestations refused since start, by reason',
    labelNames: ['reason'],
    registers,
    collect () {
      this.reset()
      for (const [reason, count] of Object.entries(stats()?.rejected ?? {})) this.inc({ reason }, count)
    }
  })
}
