import type { Registry } from 'prom-client'

/**
 * The registry's text exposition, with one upstream naming slip mended:
 * some of libp2p's own gauges end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` rejects them). Such a family is exported
 * without the suffix (e.g. `libp2p_tcp_inbound_connections`), plural where
 * that would end in another reserved suffix (`…_kad_bucket_total` →
 * `…_kad_buckets`); everything else is left as it is.
 */
export async function exposition (registry: Registry): Promise<string> {
  const text = await registry.metrics()
  const misnamed = new Set<string>()
  for (const match of text.matchAll(/^# TYPE (\w+_total) (gauge|histogram|summary|untyped)$/gm)) misnamed.add(match[1])
  if (misnamed.size === 0) return text
  return text.split('\n').map(line => {
    const name = /^(?:# (?:HELP|TYPE) )?(\w+)/.exec(line)?.[1]
    if (name == null || !misnamed.has(name)) return line
    return line.replace(name, renamed(name))
  }).join('\n')
}

function renamed (name: string): string {
  const stripped = name.slice(0, -'_total'.length)
  return /_(bucket|count|sum)$/.test(stripped) ? `${stripped}s` : stripped
}
