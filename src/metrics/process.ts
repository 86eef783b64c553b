import { collectDefaultMetrics, type Registry } from 'prom-client'

/**
 * prom-client's default process metrics under the `molt_` prefix, less the
 * three gauges it names `_total` (promtool refuses a non-counter `_total`):
 * `molt_nodejs_active_{handles,requests,resources}` by type remain.
 */
export function collectProcessMetrics (registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'molt_' })
  for (const name of ['molt_nodejs_active_handles_total', 'molt_nodejs_active_requests_total', 'molt_nodejs_active_resources_total']) {
    registry.removeSingleMetric(name)
  }
}
