import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { loadOrCreateKey, identityFromKey } from '../../identity/index.js'
import { loadConfig, parseConfig, saveConfig } from '../../config/index.js'
import { applyEnv } from '../../config/env.js'
import type { RelayConfig } from '../../config/config.js'
import { IDENTITY_FILE } from '../../constants.js'
import { ConfigError } from '../../errors.js'
import { createRelayNode, defaultRelayLimits, RELAY_LIMIT_BOUNDS, RELAY_LISTEN, DRAIN_TIMEOUT, type OpenFilesCap, type RelayLimitsInit } from '../../relay/index.js'
import { RELAY_DRAIN_TIMEOUT_BOUNDS } from '../../config/relay-limits.js'
import { UsageError } from '../errors.js'
import { booleanFlag, integerFlag, listFlag, logFlags, noPositionals, stringFlag, LOG_OPTIONS, type OptionValues } from '../args.js'
import { formatBytes, formatMailboxStats, formatRelayLimits, formatRelayStats, type Output } from '../output.js'
import type { Command } from '../command.js'
import { createRelayMetrics, startMetricsServer, type MetricsServer } from '../../metrics/index.js'
import { Registry } from 'prom-client'
import { createRelayDashboard, type RelayDashboard } from '../../relay/dashboard/index.js'
import { watchRelayActivity, type RelayActivity } from '../../relay/activity.js'
import { LOG_FORMAT_ENV, LOG_LEVEL_ENV } from '../../logging/index.js'

/** Default period of the stats lines */
const STATS_INTERVAL = 10_000

/** Limit flags and the config.json `relay` field each one overrides */
const LIMIT_FLAGS: Array<[flag: string, field: keyof typeof RELAY_LIMIT_BOUNDS]> = [
  ['max-reservations', 'maxReservations'],
  ['max-reservations-per-ip', 'maxReservationsPerIp'],
  ['reservation-ttl', 'reservationTtlMs'],
  ['connection-data-limit', 'connectionDataLimitBytes'],
  ['connection-duration-limit', 'connectionDurationLimitMs'],
  ['bandwidth', 'bandwidthBytesPerSecond']
]

export const relay: Command = {
  spec: {
    name: 'relay',
    details: [
      'A relay lets agents behind NAT be reached: they reserve a slot and advertise <relay>/p2p-circuit/p2p/<agent>.',
      'It runs no agent services (no speak, no cards). Limits come from the flags, else config.json "relay",',
      'else the defaults (see protocols/relay.md); --init writes the defaults into config.json and exits.',
      '',
      'Prints the PeerId and every listen address (with /p2p/<id>), then a stats line every 10 s.',
      'With --json the first line is {"event":"listening","peerId":…,"addresses":[…],"limits":{…}},',
      'then {"event":"stats",…} lines, and {"event":"stopped",…} after a graceful stop: SIGINT/SIGTERM refuse',
      'new reservations, wait up to --drain-timeout (config.json relay.drainTimeoutMs, else',
      `${DRAIN_TIMEOUT} ms) for relayed connections to finish, then exit 0; a second signal exits 130 at once.`,
      'Where the open-file limit (ulimit -n) is below the default 1024 reservations + 256, the relay holds',
      'fewer (limit - 256) and warns after the listening line (--json: {"event":"open-files","limit",…});',
      'a --max-reservations (or config value) that does not fit is refused (exit 1).',
      'The data dir is locked: an agent and a relay cannot run one data dir (one key) at once.',
      '',
      'With --metrics-port the same 127.0.0.1 port serves Prometheus metrics (/metrics) and a dashboard',
      '(open http://127.0.0.1:<port>/ in a browser; its JSON is /api/status): peers, reservations,',
      'relayed connections, a throughput chart, refusals by reason, the mailbox. Reach it from elsewhere',
      'through an SSH tunnel (ssh -L 9464:127.0.0.1:<port> relay-host), never by exposing the port.',
      '',
      '--log-format json turns every event line (listening, stats, stopping, stopped, errors and the',
      'debug-level peer:connect, peer:disconnect, reservation:add, reservation:remove; refused at warn)',
      'into one {"ts","level","msg",…} object per line on stdout. DEBUG=molt:*,libp2p:* still adds',
      'libp2p\'s own debug lines, on stderr.'
    ].join('\n'),
    options: {
      init: { type: 'boolean', description: 'create the identity and config.json with a "relay" section (defaults, overridden by the flags given), print it, exit' },
      listen: { type: 'string', multiple: true, arg: '<multiaddr>', description: `listen address (default: config.json relay.listen, else ${RELAY_LISTEN.join(' ')})` },
      announce: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'address to announce instead of the listen addresses (public IP / DNS behind NAT)' },
      'max-reservations': { type: 'string', arg: '<n>', description: 'reservations held at once (default 1024)' },
      'max-reservations-per-ip': { type: 'string', arg: '<n>', description: 'reservations from one IPv4 address or IPv6 /64 (default 16)' },
      'reservation-ttl': { type: 'string', arg: '<ms>', description: 'reservation lifetime unless refreshed (default 7200000 = 2 h)' },
      'connection-data-limit': { type: 'string', arg: '<bytes>', description: 'bytes per relayed connection, both directions together (default 67108864 = 64 MiB)' },
      'connection-duration-limit': { type: 'string', arg: '<ms>', description: 'lifetime of a relayed connection (default 1800000 = 30 min)' },
      bandwidth: { type: 'string', arg: '<bytes/s>', description: 'relayed bytes/s (10 s average) above which new reservations and relayed connections are refused; 0 = no budget (default 8388608 = 8 MiB/s)' },
      bootstrap: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'DHT bootstrap peer, a multiaddr ending in /p2p/<PeerId>; added to config.json discovery.bootstrap' },
      'drain-timeout': { type: 'string', arg: '<ms>', description: `on SIGINT/SIGTERM, wait up to this for relayed connections to finish; 0 = stop at once (default: config.json relay.drainTimeoutMs, else ${DRAIN_TIMEOUT})` },
      'stats-interval': { type: 'string', arg: '<ms>', description: `period of the stats lines, 0 = none (default ${STATS_INTERVAL})` },
      'no-mailbox': { type: 'boolean', description: 'run without the store-and-forward mailbox for offline agents (config.json relay.mailbox holds its limits; see protocols/mailbox.md)' },
      'metrics-port': { type: 'string', arg: '<port>', description: 'serve Prometheus metrics at http://127.0.0.1:<port>/metrics and the dashboard at http://127.0.0.1:<port>/ (loopback only; 0 = any free port)' },
      ...LOG_OPTIONS
    }
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    const listen = multiaddrFlags(args.values, 'listen')
    const announce = multiaddrFlags(args.values, 'announce')
    const bootstrapFlags = (listFlag(args.values, 'bootstrap') ?? []).map(checkBootstrap)
    const limits: RelayLimitsInit = {}
    for (const [flag, field] of LIMIT_FLAGS) {
      const { min, max } = RELAY_LIMIT_BOUNDS[field]
      const value = integerFlag(stringFlag(args.values, flag), flag, min, max)
      if (value !== undefined) limits[field] = value
    }
    const drainFlag = integerFlag(stringFlag(args.values, 'drain-timeout'), 'drain-timeout', RELAY_DRAIN_TIMEOUT_BOUNDS.min, RELAY_DRAIN_TIMEOUT_BOUNDS.max)
    const statsInterval = integerFlag(stringFlag(args.values, 'stats-interval'), 'stats-interval', 0, 86_400_000) ?? STATS_INTERVAL
    const metricsPort = integerFlag(stringFlag(args.values, 'metrics-port'), 'metrics-port', 0, 65_535)
    // a bad --log-* value is a usage error before anything else happens
    logFlags(args.values, {})

    if (booleanFlag(args.values, 'init')) {
      const { key, created } = await loadOrCreateKey(join(dataDir, IDENTITY_FILE))
      const identity = identityFromKey(key)
      const current = await loadConfig(dataDir, `agent-${identity.peerId.toString().slice(-8)}`)
      const relayConfig: RelayConfig = {
        listen: listen ?? current.relay?.listen ?? [...RELAY_LISTEN],
        ...defaultRelayLimits(),
        drainTimeoutMs: DRAIN_TIMEOUT,
        ...withoutListen(current.relay),
        ...limits,
        ...(drainFlag !== undefined ? { drainTimeoutMs: drainFlag } : {})
      }
      let config
      try {
        config = parseConfig({ ...current, relay: relayConfig })
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message)
        throw err
      }
      await saveConfig(dataDir, config)
      const result = { peerId: identity.peerId.toString(), created, dataDir, relay: config.relay }
      out.result([
        `${created ? 'Created' : 'Kept'} identity in ${dataDir}`,
        `PeerId  ${result.peerId}`,
        `Wrote the "relay" section of ${join(dataDir, 'config.json')}:`,
        ...JSON.stringify(config.relay, null, 2).split('\n').map(line => `  ${line}`)
      ], result)
      return 0
    }

    const config = await loadConfig(dataDir)
    // only the MOLT_LOG_* variables: the other MOLT_* ones configure agents
    out.useLogging(logFlags(args.values, applyEnv(config, { [LOG_LEVEL_ENV]: process.env[LOG_LEVEL_ENV], [LOG_FORMAT_ENV]: process.env[LOG_FORMAT_ENV] }).log))
    const bootstrap = [...new Set([...config.discovery.bootstrap, ...bootstrapFlags])]
    const drainMs = drainFlag ?? config.relay?.drainTimeoutMs ?? DRAIN_TIMEOUT
    // made before the node, so libp2p's own metrics land in it too
    const metricsRegistry = metricsPort !== undefined ? new Registry() : undefined
    // told after the listening line, which stays the first --json line
    let openFilesCap: OpenFilesCap | undefined
    const node = await createRelayNode({ dataDir, listen, announce, bootstrap, ...limits, ...(booleanFlag(args.values, 'no-mailbox') ? { mailbox: false as const } : {}), metricsRegistry, onOpenFilesCap: (cap) => { openFilesCap = cap } })
    let metricsServer: MetricsServer | undefined
    let dashboard: RelayDashboard | undefined
    if (metricsPort !== undefined) {
      try {
        dashboard = createRelayDashboard(node)
        metricsServer = await startMetricsServer(createRelayMetrics(node, { registry: metricsRegistry }), metricsPort, { routes: dashboard.handle })
      } catch (err) {
        dashboard?.close()
        await node.stop({ drainMs: 0 })
        throw err
      }
    }
    const dashboardUrl = metricsServer?.url.replace(/\/metrics$/, '/')
    const peerId = node.peerId.toString()
    const addresses = node.getMultiaddrs().map(ma => {
      const text = ma.toString()
      return text.endsWith(`/p2p/${peerId}`) ? text : `${text}/p2p/${peerId}`
    })
    out.event('info', 'listening', {
      human: [
        'molt relay',
        `PeerId ${peerId}`,
        'Listening on:',
        ...addresses.map(a => `  ${a}`),
        ...formatRelayLimits(node.limits),
        node.mailbox != null
          ? `Mailbox for offline agents: ${node.mailbox.limits.maxMessagesPerRecipient} boxes / ${formatBytes(node.mailbox.limits.maxBytesPerRecipient)} per agent, kept up to ${Math.round(node.mailbox.limits.retentionMs / 3_600_000)} h`
          : 'Mailbox: off',
        `${bootstrap.length > 0 ? `DHT server, ${bootstrap.length} bootstrap peer${bootstrap.length === 1 ? '' : 's'}` : 'DHT server, no bootstrap peers'}${dhtKept(node)}`,
        ...(metricsServer != null ? [`Metrics at ${metricsServer.url}`, `Dashboard at ${dashboardUrl as string}`] : [])
      ],
      fields: { peerId, addresses, limits: node.limits, mailbox: node.mailbox?.limits ?? false, bootstrap, ...(metricsServer != null ? { metrics: metricsServer.url, dashboard: dashboardUrl } : {}) }
    })
    if (openFilesCap !== undefined) openFilesWarning(out, openFilesCap)
    const stopWatching = out.enabled('warn') ? watchRelayActivity(node, (activity) => { logActivity(out, activity) }) : undefined

    const timer = statsInterval > 0
      ? setInterval(() => {
        const stats = node.stats()
        const mailbox = node.mailbox?.stats()
        const human = `${new Date().toISOString()} ${formatRelayStats(stats)}${mailbox != null ? `; ${formatMailboxStats(mailbox)}` : ''}`
        out.event('info', 'stats', { human, fields: { ...stats, mailbox }, json: { event: 'stats', time: Date.now(), ...stats, mailbox } })
      }, statsInterval)
      : undefined
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => { resolve() }, { once: true })
    })
    clearInterval(timer)
    stopWatching?.()
    out.event('info', 'stopping', {
      human: `molt: stopping (refusing new reservations, draining relayed connections for up to ${drainMs / 1000} s)`,
      note: true,
      fields: { drainMs, relayedConnections: node.stats().relayedConnections }
    })
    await node.stop({ drainMs })
    dashboard?.close()
    await metricsServer?.close()
    const stats = node.stats()
    out.event('info', 'stopped', { human: `${new Date().toISOString()} stopped; ${formatRelayStats(stats)}`, fields: { ...stats }, json: { event: 'stopped', time: Date.now(), ...stats } })
    return 0
  }
}

/** The open-file limit capped the default reservations: one warning (stderr, or a JSON log line) */
function openFilesWarning (out: Output, cap: OpenFilesCap): void {
  out.event('warn', 'open-files', { human: `molt: warning: ${cap.message}`, fields: { ...cap } })
}

/** Relay activity as log lines: peers and reservations at debug, refusals at warn */
function logActivity (out: Output, activity: RelayActivity): void {
  const { type, ...fields } = activity
  out.event(type === 'refused' ? 'warn' : 'debug', type, { fields })
}

function withoutListen (relayConfig: RelayConfig | undefined): Omit<RelayConfig, 'listen'> {
  const { listen: _listen, ...rest } = relayConfig ?? {}
  return rest
}

function multiaddrFlags (values: OptionValues, name: string): string[] | undefined {
  const addresses = listFlag(values, name)
  for (const address of addresses ?? []) {
    try {
      multiaddr(address)
    } catch (err: any) {
      throw new UsageError(`--${name} ${address} is not a multiaddr: ${err.message}`)
    }
  }
  return addresses
}

/** A --bootstrap value: a multiaddr whose last component is /p2p/<PeerId> */
function checkBootstrap (address: string): string {
  let last
  try {
    last = multiaddr(address).getComponents().at(-1)
  } catch (err: any) {
    throw new UsageError(`--bootstrap ${address} is not a multiaddr: ${err.message}`)
  }
  if (last?.name !== 'p2p' || last.value == null) throw new UsageError(`--bootstrap ${address} must end in /p2p/<PeerId>`)
  try {
    peerIdFromString(last.value)
  } catch (err: any) {
    throw new UsageError(`--bootstrap ${address} does not end in a valid PeerId: ${err.message}`)
  }
  return address
}

/** What the relay's DHT store brought back from the data dir, for the listening line */
function dhtKept (node: { dhtStore?: () => { records: number, providers: number } }): string {
  const kept = node.dhtStore?.()
  return kept != null ? `; keeps ${kept.records} routing records and ${kept.providers} capability adverts in the data dir` : ''
}
