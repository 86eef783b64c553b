/**
 * Defaults of a molt relay, sized for a 2-core / 4 GB volunteer box with a
 * ~100 Mbit/s uplink. protocols/relay.md explains every number; change both
 * together.
 */
import { second, minute, hour, KiB, MiB } from '../constants.js'

/**
 * Listen addresses of `molt relay`. Fixed, well-known ports (unlike agents):
 * a relay's address is written into other nodes' configs.
 */
export const RELAY_LISTEN = ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']

/**
 * Reservations held at once (stock js relay: 15). Each costs one kept-alive
 * connection (~50 KiB of noise/yamux state) plus a few hundred bytes of
 * bookkeeping: 1024 of them fit in well under 100 MB of heap.
 */
export const MAX_RESERVATIONS = 1024

/**
 * Reservations from one IPv4 address or one IPv6 /64. High enough for a
 * household or an office behind one NAT, low enough that one host cannot
 * take the whole relay (16 × 64 = 1024).
 */
export const MAX_RESERVATIONS_PER_IP = 16

/** How long a reservation lasts unless refreshed (clients refresh before expiry) */
export const RESERVATION_TTL = 2 * hour

/**
 * Bytes one relayed connection may carry, both directions together (that is
 * how js-libp2p counts), before the relay closes it (stock: 128 KiB, which
 * cuts off a single 1 MB MoltSpeak message). 64 MiB is ~60 maximum-size
 * messages or tens of thousands of typical 1-10 KB ones; agents that need
 * more re-dial (speak re-sends what was not acknowledged) or, better, connect
 * directly. It bounds what one abusive circuit can take: 64 MiB is ~8 s of
 * the whole bandwidth budget.
 */
export const CONNECTION_DATA_LIMIT = 64 * MiB

/**
 * Lifetime of one relayed connection before the relay closes it (stock: 2 min).
 * 30 min covers a long conversation or task; after it agents re-dial. It keeps
 * circuits from being pinned forever by idle peers.
 */
export const CONNECTION_DURATION_LIMIT = 30 * minute

/**
 * Relayed bytes per second, averaged over BANDWIDTH_WINDOW, above which new
 * reservations and new relayed connections are refused (open ones continue).
 * 8 MiB/s ≈ 67 Mbit/s in and the same out again: most of a 100 Mbit/s
 * uplink, and what one core can decrypt/encrypt with room to spare. 0 = no budget.
 */
export const BANDWIDTH_BYTES_PER_SECOND = 8 * MiB

/** The sliding window the bandwidth is measured over */
export const BANDWIDTH_WINDOW = 10 * second

/** Buckets of the sliding window (1 s each with the default window) */
export const BANDWIDTH_BUCKETS = 10

/**
 * Connections the relay keeps before pruning: one per reservation holder,
 * as many again for peers that dial through it, plus DHT traffic.
 */
export const MAX_CONNECTIONS = 2 * MAX_RESERVATIONS + 256

/**
 * Open files a relay keeps beside one socket per reservation holder: its
 * listeners, LevelDB (its own file cache is small), the DHT's and diallers'
 * connections, pipes and the runtime's own. A relay needs maxReservations +
 * this; with fewer it holds fewer reservations than the default, or refuses
 * an operator's own number (protocols/relay.md "Limits"; Node raises the soft
 * limit to the hard one at start-up).
 */
export const OPEN_FILES_HEADROOM = 256

/**
 * Open files a relay keeps besides its connections' sockets (LevelDB,
 * listeners, stdio, pipes, the runtime's own): a derived maxConnections is
 * bounded to the open-file limit less this, so the connection manager prunes
 * before the process runs out of descriptors (EMFILE).
 */
export const OPEN_FILES_BESIDE_CONNECTIONS = 64

/**
 * Fewest reservations a relay caps its default down to when the open-file
 * limit is low (1,024 files: 768 reservations). Below this it refuses to
 * start: a relay for a few dozen agents is a misconfigured box, not a relay.
 */
export const MIN_CAPPED_RESERVATIONS = 64

/** Connections being upgraded at once (stock 10): a restart brings every holder back at once */
export const MAX_INCOMING_PENDING_CONNECTIONS = 64

/**
 * Bytes the dialling sides have sent over the relayed connections open now,
 * which the relay holds in memory until each closes: the stock relay
 * (@libp2p/circuit-relay-v2 4.2.x `createLimitedRelay`) pipes the hop stream
 * as both source and sink, and @libp2p/utils' `pipe()` wraps it twice; the
 * sink-side wrapper buffers every chunk the dialler sends and is never read.
 * Without a cap that is up to CONNECTION_DATA_LIMIT per circuit, for up to
 * CONNECTION_DURATION_LIMIT, times every circuit. Over this total the circuit
 * holding the most is closed (its agents re-dial; speak re-sends what was not
 * acknowledged). 256 MiB fits a 4 GB box beside 1,024 reservations.
 */
export const MAX_HELD_HOP_BYTES = 256 * MiB

/** Hop streams one connection may have open: reservations plus circuits it is dialling (stock 32) */
export const MAX_INBOUND_HOP_STREAMS = 32

/** Stop streams the relay opens on one connection: circuits into one agent at once (stock 300) */
export const MAX_OUTBOUND_STOP_STREAMS = 64

/** A hop request (reserve, or connect including the stop handshake) must finish within this (stock 30 s) */
export const HOP_TIMEOUT = 15 * second

/**
 * How often the relay pings each connection, ms: one `/ipfs/ping/1.0.0`
 * stream per connection per interval, spread evenly over it (holder-pings.ts;
 * libp2p's own connection monitor, which pings every connection in one tick,
 * is off on a relay). Agents ping their relay every CONNECTION_PING_INTERVAL
 * (src/constants.ts) to notice a relay that vanished; the relay's own pings
 * only find holders that vanished without closing their connection, whose
 * slots are then released — no one waits on that, so the relay pings 5× less
 * often than agents (stock js-libp2p: 10 s; 1,000 holders cost 100 ping
 * streams per second each way, most of an idle relay's CPU: bench/README.md
 * "Relay capacity"). Holders that close or reset their connection are
 * released at once (policy.ts).
 */
export const RELAY_PING_INTERVAL = 5 * minute

/**
 * Wait for a ping answer before the relay drops the connection, ms (stock
 * 5 s, adaptive up to 60 s). Spread pings do not queue behind each other, so
 * this measures the holder and the path; it stays long because a holder on a
 * phone or a congested uplink is slow, not gone.
 */
export const RELAY_PING_TIMEOUT = minute

/**
 * A holder that vanished silently has its connection and reservation dropped
 * within this, ms (11 min): a connection is pinged once per round of
 * RELAY_PING_INTERVAL, at its place in the round, so two pings of it are at
 * most two intervals apart (first in one round, last in the next), and the
 * failed one ends after RELAY_PING_TIMEOUT. (A dead peer's TCP connection
 * would also end by itself once the pings' bytes go unacknowledged for the
 * kernel's retransmission timeout, ~15 min on Linux.)
 */
export const RELAY_SILENT_HOLDER_BOUND = 2 * RELAY_PING_INTERVAL + RELAY_PING_TIMEOUT

/** How long stop() waits for relayed connections to finish */
export const DRAIN_TIMEOUT = 5 * second

/**
 * A reservation admitted by the gater counts against the limits until the
 * relay server has stored it (or for this long, if it never does).
 */
export const PENDING_RESERVATION_GRACE = 5 * second

/**
 * Routing records (protocols/routing.md) the relay keeps for agents in its
 * data dir (`dht` sublevel of its LevelDB), so a restart loses none. A stored
 * record is at most DHT_STORE_MAX_VALUE_BYTES (typically ~1 KiB): at most
 * ~800 MiB of disk, ~50 MiB typical. Each record is validated again after a
 * restart (~0.7 ms on a loaded 2-core box), in the background: ~35 s of work
 * at this size, which does not hold up the start. A full store refuses records of new
 * agents (their PUT fails; they publish to the other closest servers);
 * updates of held ones always pass.
 */
export const DHT_STORE_MAX_RECORDS = 50_000

/**
 * Provider entries (capability adverts, one per provider and capability, ~100
 * bytes each) the relay keeps in its data dir: ~20 MiB at most.
 */
export const DHT_STORE_MAX_PROVIDERS = 200_000

/** Largest value the DHT store takes (bytes): a routing record of 8 KiB in kad-dht's record wrapper fits */
export const DHT_STORE_MAX_VALUE_BYTES = 16 * KiB

/** How often the DHT store deletes expired routing records and provider entries */
export const DHT_STORE_SWEEP_INTERVAL = hour

/**
 * A stored DHT record is void this long after the relay received it, whatever
 * its own expiry says (kad-dht's rule for records it serves, 48 h): an agent
 * republishes every 30 min.
 */
export const DHT_RECORD_MAX_AGE = 48 * hour

/** `/molt/relay/info/1.0.0`: the relay's policy and load as one length-prefixed JSON document */
export const RELAY_INFO_PROTOCOL = '/molt/relay/info/1.0.0'
export const RELAY_INFO_MAX_BYTES = 16 * KiB
export const RELAY_INFO_TIMEOUT = 10 * second

/** Log component (`DEBUG=molt:relay`) */
export const LOG_COMPONENT = 'molt:relay'

export { RELAY_LIMIT_BOUNDS, type RelayLimitName } from '../config/relay-limits.js'
