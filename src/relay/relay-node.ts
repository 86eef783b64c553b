import { join } from 'node:path'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import type { Identify } from '@libp2p/identify'
import type { Registry } from 'prom-client'
import type { Ping } from '@libp2p/ping'
import { circuitRelayServer, RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Logger, PeerId, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { loadOrCreateKey, identityFromKey } from '../identity/index.js'
import { trust, trustPubsub, type TrustService, type TrustStats } from '../services/trust/index.js'
import { resolveDataDir, loadConfig, acquireLock } from '../config/index.js'
import { IDENTITY_FILE } from '../constants.js'
import type { DhtOptions } from '../discovery/config.js'
import { baseLibp2pOptions } from '../base-libp2p.js'
import { type RelayLimits, type RelayLimitsInit, type RelayTuningInit } from './limits.js'
import { RelayPolicy, type RelayStats } from './policy.js'
import { askedReservations, fitOpenFiles, type OpenFilesCap } from './open-files.js'
import { HolderPings } from './holder-pings.js'
import { relayInfoHandler, type RelayInfo } from './info.js'
import * as c from './constants.js'
import { openDatabase, type Database } from '../storage/index.js'
import { DB_DIR } from '../constants.js'
import { DhtStore, type DhtStoreLimitsInit, type DhtStoreStats } from './dht-store.js'
import { mailboxServer, MailboxStore, resolveMailboxLimits, type MailboxLimits, type MailboxLimitsInit, type MailboxServer, type MailboxStats } from '../services/mailbox/index.js'

export interface RelayNodeOptions extends RelayLimitsInit, RelayTuningInit {
  /** Where the key and config live. @default $MOLT_HOME or ~/.molt */
  dataDir?: string
  /** Use this key instead of the data dir's key file */
  privateKey?: Ed25519PrivateKey
  /** Multiaddrs to listen on. @default config `relay.listen`, else `/ip4/0.0.0.0/tcp/4001` and `/ip4/0.0.0.0/tcp/4002/ws` */
  listen?: string[]
  /** Addresses to announce instead of the listen addresses (public IP or DNS name behind NAT/port mapping) */
  announce?: string[]
  /** DHT bootstrap multiaddrs (with /p2p/<id>). @default config `discovery.bootstrap` */
  bootstrap?: string[]
  /** The private DHT (`/molt/kad/1.0.0`). @default server mode */
  dht?: DhtOptions
  /** Take the data dir lock, so an agent and a relay never run one key at once. @default true */
  lock?: boolean
  /** Extra libp2p options merged over molt's (connectionManager fields are merged one by one) */
  libp2p?: Partial<Libp2pOptions>
  /**
   * Store-and-forward for offline agents (`/molt/mailbox/1.0.0`, LevelDB in
   * the data dir): limits over config `relay.mailbox` over the defaults, or
   * `false` to run without. @default enabled with the defaults
   */
  mailbox?: false | MailboxLimitsInit
  /**
   * Keep the DHT routing records and provider records this relay stores for
   * agents in its data dir (LevelDB, bounded by these limits over the
   * defaults), so a restart loses none; `false` keeps them in memory only.
   * Unused when the DHT is disabled or `libp2p.datastore` is given.
   * @default enabled with the defaults
   */
  dhtStore?: false | DhtStoreLimitsInit
  /**
   * Told when the open-file limit caps the default maxReservations
   * (protocols/relay.md "Limits"). @default process.emitWarning
   */
  onOpenFilesCap?: (cap: OpenFilesCap) => void
  /** Export libp2p's own metrics (`libp2p_*`) into this registry (one such node per process). @default none */
  metricsRegistry?: Registry
  /**
   * Take part in the trust gossip (`molt/trust/1`) and sync (`/molt/trust-sync/1.0.0`),
   * so agents reachable only through this relay still get attestations. @default true
   */
  trust?: boolean
}

export interface RelayServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  relay: CircuitRelayService
  mailbox?: MailboxServer
  trust?: TrustService
  dht?: unknown
}

/** The relay's mailbox as operators see it */
export interface RelayMailbox {
  readonly limits: MailboxLimits
  stats(): MailboxStats & { watchers: number }
}

export interface RelayStopOptions {
  /** How long to wait for open relayed connections to finish before stopping. @default 5000 */
  drainMs?: number
}

/** A running molt relay: circuit relay v2 with molt's limits, the private DHT in server mode, no agent services */
export interface RelayNode {
  readonly peerId: PeerId
  readonly dataDir: string
  readonly libp2p: Libp2p<RelayServices>
  /** The policy this relay applies (what to trust, rather than a relayed connection's `limits`) */
  readonly limits: RelayLimits
  /** Listen addresses, each ending in /p2p/<PeerId> */
  getMultiaddrs(): Multiaddr[]
  stats(): RelayStats
  /** What `/molt/relay/info/1.0.0` answers */
  info(): RelayInfo
  /** The store-and-forward mailbox, unless disabled */
  readonly mailbox?: RelayMailbox
  /** The trust gossip's counters, unless disabled */
  trust?: () => TrustStats | undefined
  /** What the persistent DHT store holds, unless disabled */
  dhtStore?: () => DhtStoreStats
  /**
   * Refuse new reservations and relayed connections (reason `shutting-down`),
   * wait up to `drainMs` for open relayed connections to finish, then stop
   * libp2p and release the data dir lock. Calling it again returns the same promise.
   */
  stop(options?: RelayStopOptions): Promise<void>
}

/** Create and start a molt relay: identity and lock from the data dir, limits from options over config `relay` over defaults */
export async function createRelayNode (options: RelayNodeOptions = {}): Promise<RelayNode> {
  const dataDir = resolveDataDir(options.dataDir)
  const key = options.privateKey ?? (await loadOrCreateKey(join(dataDir, IDENTITY_FILE))).key
  const peerId = peerIdFromPrivateKey(key)
  const config = await loadConfig(dataDir)
  const { listen: configListen, ...configLimits } = config.relay ?? {}
  const limits = await fitOpenFiles({ ...defined(configLimits), ...defined(pickLimits(options)) },
    askedReservations(options.maxReservations, configLimits.maxReservations), { warn: options.onOpenFilesCap })
  const listen = options.listen ?? configListen ?? c.RELAY_LISTEN
  const bootstrap = options.bootstrap ?? config.discovery.bootstrap

  const lock = options.lock === false
    ? undefined
    : await acquireLock(dataDir, { pid: process.pid, peerId: peerId.toString(), startedAt: Date.now() })
  let libp2p: Libp2p<RelayServices> | undefined
  let db: Database | undefined
  let dhtStore: DhtStore | undefined
  try {
    const mailboxInit = options.mailbox === false || (options.mailbox == null && config.relay?.mailbox === false)
      ? undefined
      : { ...(typeof config.relay?.mailbox === 'object' ? config.relay.mailbox : {}), ...(typeof options.mailbox === 'object' ? defined(options.mailbox) : {}) }
    const mailboxLimits = mailboxInit !== undefined ? resolveMailboxLimits(mailboxInit) : undefined
    const runTrust = options.trust !== false
    const persistDht = options.dhtStore !== false && options.dht?.enabled !== false && options.libp2p?.datastore == null
    let store: MailboxStore | undefined
    let log: Logger | undefined
    if (mailboxLimits !== undefined || runTrust || persistDht) db = await openDatabase(join(dataDir, DB_DIR))
    // routing and provider records the relay serves outlive a restart (protocols/routing.md "Relays keep records across restarts")
    dhtStore = persistDht && db !== undefined
      ? new DhtStore(db, { ...(typeof options.dhtStore === 'object' ? options.dhtStore : {}), providerValidity: options.dht?.providerValidity })
      : undefined
    if (mailboxLimits !== undefined && db !== undefined) {
      store = new MailboxStore(db, mailboxLimits, (err) => { log?.error('could not write a mailbox registration - %e', err) })
      await store.open()
    }
    // the gater runs only once libp2p is started, after `policy` is set
    let policy: RelayPolicy | undefined
    // idle holders cost a ping stream per connection and interval: the relay pings rarely (constants.ts)
    const extra: Partial<Libp2pOptions> = {
      ...options.libp2p,
      // the relay pings its holders itself, spread over the interval (holder-pings.ts), unless the embedder configures libp2p's monitor
      connectionMonitor: options.libp2p?.connectionMonitor ?? { enabled: false }
    }
    libp2p = await createLibp2p({
      ...baseLibp2pOptions({
        privateKey: key,
        listen,
        announce: options.announce,
        discovery: { mdns: false, bootstrap, dht: { clientMode: false, ...options.dht } },
        metrics: options.metricsRegistry,
        connectionManager: {
          maxConnections: limits.maxConnections,
          maxIncomingPendingConnections: c.MAX_INCOMING_PENDING_CONNECTIONS
        },
        extra
      }, {
        relay: circuitRelayServer({
          hopTimeout: limits.hopTimeoutMs,
          maxInboundHopStreams: limits.maxInboundHopStreams,
          maxOutboundStopStreams: limits.maxOutboundStopStreams,
          reservations: {
            // our gater refuses first (and counts why); this is the store's own backstop
            maxReservations: limits.maxReservations,
            reservationTtl: limits.reservationTtlMs,
            applyDefaultLimit: true,
            defaultDataLimit: BigInt(limits.connectionDataLimitBytes),
            // the server enforces this in ms (and sends it as is, where the spec says seconds)
            defaultDurationLimit: limits.connectionDurationLimitMs
          }
        }),
        ...(store !== undefined ? { mailbox: mailboxServer({ store, refusing: () => policy?.stats().shuttingDown ?? false }) } : {}),
        // relays join the trust gossip mesh: agents behind NAT are often connected to nothing else,
        // and the relay validates (and so never forwards) bad attestations like any node
        ...(runTrust && db !== undefined ? { pubsub: trustPubsub(), trust: trust({ identity: identityFromKey(key), db }) } : {})
      }),
      // unset when the embedder gives libp2p.datastore (persistDht)
      ...(dhtStore !== undefined ? { datastore: dhtStore } : {}),
      start: false,
      connectionGater: {
        ...extra.connectionGater,
        denyInboundRelayReservation: (source) => {
          const denied = policy?.denyReservation(source) ?? true
          // a peer holding a reservation here is registered: the relay keeps a mailbox for it (protocols/mailbox.md "Registration")
          if (!denied && policy !== undefined) store?.registry.register(source.toString(), policy.ipOf(source))
          return denied
        },
        denyOutboundRelayedConnection: (source, destination) => policy?.denyCircuit(source, destination) ?? true
      }
    }) as unknown as Libp2p<RelayServices>
    const node = libp2p
    log = node.logger.forComponent(c.LOG_COMPONENT)
    const activePolicy = policy = new RelayPolicy(limits, {
      log,
      connections: (peer) => node.getConnections(peer),
      reservations: () => node.services.relay.reservations,
      peerCount: () => node.getPeers().length
    })
    // outbound only: js-libp2p 3.3 appends the handler to the registered middleware array on every
    // inbound stream (fixed upstream by js-libp2p#3534), so inbound hop streams are wrapped below instead
    node.use(RELAY_V2_STOP_CODEC, activePolicy.stopMiddleware)
    node.addEventListener('peer:disconnect', (evt) => { activePolicy.peerDisconnected(evt.detail) })
    const info = (): RelayInfo => {
      const stats = activePolicy.stats()
      return {
        v: 1,
        peerId: peerId.toString(),
        limits,
        load: { reservations: stats.reservations, overBudget: activePolicy.overBudget(), shuttingDown: stats.shuttingDown }
      }
    }
    await node.handle(c.RELAY_INFO_PROTOCOL, relayInfoHandler(info, log), { maxInboundStreams: 2 })
    await dhtStore?.open(log)
    const openStore = dhtStore
    await node.start()
    const server = node.services.relay as unknown as { onHop?: StreamHandler }
    if (typeof server.onHop === 'function') {
      const onHop = server.onHop.bind(server)
      await node.handle(RELAY_V2_HOP_CODEC, async (stream, connection) => {
        activePolicy.countHopStream(stream)
        await onHop(stream, connection)
      }, { maxInboundStreams: limits.maxInboundHopStreams, runOnLimitedConnection: true, force: true })
    }
    const pings = options.libp2p?.connectionMonitor == null
      ? new HolderPings({ intervalMs: limits.pingIntervalMs, timeoutMs: limits.pingTimeoutMs }, { connections: () => node.getConnections(), ping: async (connection, { signal }) => node.services.ping.ping(connection.remotePeer, { signal }), log })
      : undefined
    pings?.start()
    log('relay %p listening on %s; limits %o', peerId, node.getMultiaddrs().map(String).join(', '), limits)

    let stopping: Promise<void> | undefined
    return {
      peerId,
      dataDir,
      libp2p: node,
      limits,
      getMultiaddrs: () => node.getMultiaddrs(),
      stats: () => activePolicy.stats(),
      info,
      ...(node.services.trust != null ? { trust: () => (node.services.trust as TrustService).stats() } : {}),
      ...(openStore !== undefined ? { dhtStore: () => openStore.stats() } : {}),
      ...(mailboxLimits !== undefined && node.services.mailbox != null
        ? { mailbox: { limits: mailboxLimits, stats: () => (node.services.mailbox as MailboxServer).stats() } }
        : {}),
      async stop (stopOptions: RelayStopOptions = {}): Promise<void> {
        stopping ??= (async () => {
          activePolicy.startDraining()
          const drainMs = stopOptions.drainMs ?? c.DRAIN_TIMEOUT
          log('stopping: refusing new reservations, draining %d relayed connections for up to %d ms', activePolicy.stats().relayedConnections, drainMs)
          await activePolicy.drained(drainMs)
          pings?.stop()
          try {
            await node.stop()
            await openStore?.close()
            await store?.close()
            await db?.close()
          } finally {
            await lock?.release()
          }
        })()
        return stopping
      }
    }
  } catch (err) {
    await Promise.resolve(libp2p?.stop()).catch(() => {})
    await dhtStore?.close().catch(() => {})
    await db?.close().catch(() => {})
    await lock?.release()
    throw err
  }
}

function pickLimits (options: RelayLimitsInit & RelayTuningInit): RelayLimitsInit & RelayTuningInit {
  return {
    maxReservations: options.maxReservations,
    maxReservationsPerIp: options.maxReservationsPerIp,
    reservationTtlMs: options.reservationTtlMs,
    connectionDataLimitBytes: options.connectionDataLimitBytes,
    connectionDurationLimitMs: options.connectionDurationLimitMs,
    bandwidthBytesPerSecond: options.bandwidthBytesPerSecond,
    bandwidthWindowMs: options.bandwidthWindowMs,
    maxConnections: options.maxConnections,
    maxInboundHopStreams: options.maxInboundHopStreams,
    maxOutboundStopStreams: options.maxOutboundStopStreams,
    hopTimeoutMs: options.hopTimeoutMs,
    maxHeldHopBytes: options.maxHeldHopBytes,
    pingIntervalMs: options.pingIntervalMs,
    pingTimeoutMs: options.pingTimeoutMs
  }
}

/** The fields whose value is not undefined: an unset option must not hide a config value */
function defined<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
