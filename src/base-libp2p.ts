import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2pOptions } from 'libp2p'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Registry } from 'prom-client'
import type { PrivateKey } from '@libp2p/interface'
import { dhtService, peerDiscoveryModules, type DiscoveryOptions } from './discovery/config.js'
import { moltAgentVersion } from './version.js'
import { moltNoise } from './transport/noise.js'
import { CONNECTION_PING_INTERVAL, CONNECTION_PING_MIN_TIMEOUT, CONNECTION_PING_MAX_TIMEOUT, YAMUX_KEEP_ALIVE } from './constants.js'

/**
 * libp2p's connection monitor as every molt node runs it: one ping per
 * connection a minute (stock 10 s), so a relay is not kept busy answering the
 * pings of its idle reserved agents, with a bounded wait for the answer so a
 * peer that vanished silently is still dropped within SILENT_PEER_BOUND
 * (constants.ts).
 */
export const CONNECTION_MONITOR = {
  pingInterval: CONNECTION_PING_INTERVAL,
  pingTimeout: { minTimeout: CONNECTION_PING_MIN_TIMEOUT, maxTimeout: CONNECTION_PING_MAX_TIMEOUT },
  abortConnectionOnPingFailure: true
} satisfies NonNullable<Libp2pOptions['connectionMonitor']>

export interface BaseLibp2pInit {
  privateKey: PrivateKey
  listen: string[]
  /** Addresses to announce instead of the listen ones (a public address behind NAT) */
  announce?: string[]
  /** Transports beyond TCP and WebSockets (e.g. the circuit relay transport) */
  transports?: NonNullable<Libp2pOptions['transports']>
  /** mDNS, bootstrap list and DHT settings */
  discovery: DiscoveryOptions
  /** molt's connection manager defaults; the caller's `extra.connectionManager` wins */
  connectionManager?: Libp2pOptions['connectionManager']
  /** The embedder's own libp2p options, merged over molt's */
  extra?: Partial<Libp2pOptions>
  /**
   * Export libp2p's own metrics (connections, streams per protocol, dials,
   * DHT, …) into this registry. @libp2p/prometheus-metrics keeps its metric
   * objects in a module-wide map, so only one node per process should use it:
   * the CLI daemons do, embedded nodes opt in.
   */
  metrics?: Registry
}

/**
 * What every molt node — agent or relay — runs: TCP and WebSockets, Noise,
 * Yamux, identify (agent version `molt/<version> js-libp2p/<version> node/<version>`),
 * ping (connections pinged every CONNECTION_PING_INTERVAL), the private DHT
 * and the discovery modules, with the embedder's
 * options merged in. Callers add their own services on top.
 */
export function baseLibp2pOptions (init: BaseLibp2pInit, services: Record<string, unknown>): Libp2pOptions<any> {
  const extra = init.extra ?? {}
  const dht = dhtService(init.discovery.dht)
  return {
    ...extra,
    privateKey: init.privateKey,
    // identify's agent version names molt first (`molt/0.1.0 js-libp2p/… node/…`), not only libp2p
    nodeInfo: { userAgent: moltAgentVersion(), ...extra.nodeInfo },
    ...(init.metrics != null ? { metrics: prometheusMetrics({ registry: init.metrics, collectDefaultMetrics: false }) } : {}),
    connectionManager: { ...init.connectionManager, ...extra.connectionManager },
    // the embedder's settings win field by field (a test's short interval keeps molt's timeouts unless it sets its own)
    connectionMonitor: {
      ...CONNECTION_MONITOR,
      ...extra.connectionMonitor,
      pingTimeout: { ...CONNECTION_MONITOR.pingTimeout, ...extra.connectionMonitor?.pingTimeout }
    },
    addresses: { listen: init.listen, ...(init.announce != null ? { announce: init.announce } : {}), ...extra.addresses },
    transports: [tcp(), webSockets(), ...(init.transports ?? []), ...(extra.transports ?? [])],
    // Noise with one socket write per Noise message and OpenSSL's cipher from 600 bytes (transport/noise.ts)
    connectionEncrypters: [moltNoise()],
    // no Yamux keep-alive: the connection monitor's pings keep idle connections alive (constants.ts)
    streamMuxers: [yamux({ enableKeepAlive: YAMUX_KEEP_ALIVE })],
    peerDiscovery: [...peerDiscoveryModules(init.discovery), ...(extra.peerDiscovery ?? [])],
    services: {
      ...(extra.services ?? {}),
      identify: identify(),
      ping: ping(),
      ...(dht != null ? { dht } : {}),
      ...services
    } as any
  }
}
