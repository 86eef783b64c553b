import { mdns } from '@libp2p/mdns'
import { bootstrap } from '@libp2p/bootstrap'
import { kadDHT, passthroughMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht'
import type { PeerDiscovery, ComponentLogger } from '@libp2p/interface'
import * as c from './constants.js'
import { Libp2pRecord } from '@libp2p/record'
import { Key, type Datastore } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { ROUTE_NAMESPACE, selectRouteRecord, validateRouteRecord } from '../services/routing-record/index.js'

export interface DhtOptions {
  /** Run the DHT at all. @default true */
  enabled?: boolean
  /** Client mode (no records stored for others) — for agents behind NAT. @default false: LAN nodes and relays serve */
  clientMode?: boolean
  /** Provider record validity in ms. @default 48 h */
  providerValidity?: number
  /** Re-provide/cleanup period in ms. @default 1 h */
  reprovideInterval?: number
  /** Requests a DHT walk keeps in flight on each of its paths. @default DHT_ALPHA */
  alpha?: number
  /** Disjoint paths a DHT walk takes. @default DHT_DISJOINT_PATHS */
  disjointPaths?: number
}

export interface DiscoveryOptions {
  /** LAN discovery by mDNS on `_molt._udp.local`. Run it only on networks you own. @default false (the CLI agent turns it on) */
  mdns?: boolean | { interval?: number }
  /** Multiaddrs (with /p2p/<id>) of DHT bootstrap peers. No built-in list. @default [] */
  bootstrap?: string[]
  dht?: DhtOptions
}

/** The libp2p peerDiscovery modules for these options */
export function peerDiscoveryModules (options: DiscoveryOptions): Array<(components: any) => PeerDiscovery> {
  const modules: Array<(components: any) => PeerDiscovery> = []
  if (options.mdns != null && options.mdns !== false) {
    const interval = typeof options.mdns === 'object' ? options.mdns.interval : undefined
    modules.push(withEarlyQueries(mdns({ serviceTag: c.MDNS_SERVICE_TAG, interval: interval ?? c.MDNS_INTERVAL })))
  }
  if (options.bootstrap != null && options.bootstrap.length > 0) {
    modules.push(bootstrap({ list: options.bootstrap, timeout: 100 }))
  }
  return modules
}

/**
 * mDNS that asks the LAN again shortly after it starts. @libp2p/mdns queries
 * once at start and then every interval (10 s): agents started together each
 * query before the other listens, and then find each other only 10 s later
 * (seen in the LAN bench on a busy machine). A restart of the module re-sends
 * the query; a shorter interval would instead multiply queries — and every
 * agent's responses to them — for as long as the agents run. (Sending the
 * extra query on the running module's socket instead, `mdns.query(…)`, was
 * measured slower: LAN bench p50 1,537 ms against 647 ms with the restart.)
 */
function withEarlyQueries (factory: (components: any) => PeerDiscovery): (components: any) => PeerDiscovery {
  return (components) => {
    const discovery = factory(components) as PeerDiscovery & { start: () => Promise<void>, stop: () => Promise<void> }
    const start = discovery.start.bind(discovery)
    const stop = discovery.stop.bind(discovery)
    let timers: Array<ReturnType<typeof setTimeout>> = []
    let running = false
    discovery.start = async () => {
      await start()
      running = true
      timers = c.MDNS_EARLY_QUERIES.map(delay => setTimeout(() => {
        // a stop() while this restart is under way must not be followed by a start that reopens the socket
        stop().then(async () => { if (running) await start() }).catch(() => {})
      }, delay))
      for (const timer of timers) timer.unref?.()
    }
    discovery.stop = async () => {
      running = false
      for (const timer of timers) clearTimeout(timer)
      timers = []
      await stop()
    }
    return discovery
  }
}

/** The private molt DHT service, or undefined when disabled */
export function dhtService (options: DhtOptions = {}): ((components: any) => KadDHT) | undefined {
  if (options.enabled === false) return undefined
  const validity = options.providerValidity ?? c.PROVIDER_VALIDITY
  const interval = Math.min(options.reprovideInterval ?? c.REPROVIDE_INTERVAL, validity)
  return (components: KadDHTComponents) => kadDHT({
    protocol: c.DHT_PROTOCOL,
    datastorePrefix: c.DHT_DATASTORE_PREFIX,
    clientMode: options.clientMode ?? false,
    // molt networks are private: keep LAN and loopback addresses that the public-DHT default strips
    peerInfoMapper: passthroughMapper,
    allowQueryWithZeroPeers: true,
    alpha: options.alpha ?? c.DHT_ALPHA,
    disjointPaths: options.disjointPaths ?? c.DHT_DISJOINT_PATHS,
    // a walk waits on its slowest requests: kad-dht's adaptive timeout doubles after each failure up to
    // 60 s, and walks on a busy network then outlasted the publication's own bound and stored nothing
    networkDialTimeout: { minTimeout: c.DHT_REQUEST_TIMEOUT_MIN, maxTimeout: c.DHT_REQUEST_TIMEOUT_MAX },
    // routing records (protocols/routing.md): servers store only records signed by the PeerId in the key, newest seq wins
    validators: { [ROUTE_NAMESPACE]: async (key, value) => validateRouteRecord(key, value, async (k) => storedRecord(components.datastore, k)) },
    selectors: { [ROUTE_NAMESPACE]: selectRouteRecord },
    reprovide: { validity, interval, threshold: Math.floor(validity / 2) }
  })(components)
}

/** The value kad-dht holds in its datastore for a record key (its layout: `/dht/record/<base32 key>`), if any */
async function storedRecord (datastore: Datastore, key: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    return Libp2pRecord.deserialize(await datastore.get(new Key(`${c.DHT_DATASTORE_PREFIX}/record/${uint8ArrayToString(key, 'base32')}`, false))).value
  } catch {
    return undefined
  }
}

export type { ComponentLogger }
