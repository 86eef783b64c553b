/**
 * Node-wide defaults. Every value here is documented in README.md ("Limits and
 * defaults"); change both together.
 */

export const second = 1000
export const minute = 60 * second
export const hour = 60 * minute
export const day = 24 * hour

export const KiB = 1024
export const MiB = 1024 * KiB

/**
 * Largest chunk a js-libp2p stream hands its 'message' listeners at once: a
 * paused stream keeps up to 4 MiB (`maxReadBufferLength`) and dispatches it
 * whole on resume. A frame reader holds at most a partial frame plus this.
 */
export const MAX_STREAM_CHUNK_BYTES = 4 * MiB

/** Name of the data directory under $HOME when neither --data-dir nor MOLT_HOME is set */
export const DEFAULT_DATA_DIR_NAME = '.molt'

/** Files inside the data directory */
export const IDENTITY_FILE = 'identity.key'
export const CONFIG_FILE = 'config.json'
export const API_TOKEN_FILE = 'api-token'
/** Written by a running `molt agent`: where its local API listens ({port, pid}) */
export const API_ENDPOINT_FILE = 'api.json'
export const LOCK_FILE = 'node.lock'
export const DB_DIR = 'db'

/**
 * Addresses an agent listens on when none are configured. Port 0 lets the OS
 * pick, so two agents on one machine never collide; discovery and the printed
 * multiaddrs carry the real ports.
 */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws']

/** Default port of the local control API (127.0.0.1 only). 0 = pick a free port */
export const DEFAULT_API_PORT = 0

/** Upper bound on received messages kept in the inbox; the oldest are pruned first */
export const DEFAULT_INBOX_MAX_MESSAGES = 100_000

/** How long `request()` waits for a reply when no timeout is given */
export const DEFAULT_REQUEST_TIMEOUT = 30 * second

/**
 * Per-address dial timeout. Peers behind NAT announce private addresses that
 * silently drop our SYNs; libp2p tries addresses one by one, so the stock 6 s
 * delayed every relayed dial by 6 s per unreachable address.
 */
export const ADDRESS_DIAL_TIMEOUT = 1500

/**
 * How long (ms) a `messages()` reader — a local API /v1/stream client — still
 * counts as one after it stopped: a client reconnecting gets the requests that
 * came meanwhile instead of the node refusing them (`unhandledRequests`)
 */
export const READER_GRACE = 30 * second

/**
 * How often every molt node — agent or relay — pings each of its connections,
 * ms: libp2p's connection monitor opens a new `/ipfs/ping/1.0.0` stream per
 * connection and interval (stock js-libp2p: 10 s). An agent holding a
 * reservation pings its relay with it: at 10 s, 1,000 such agents opened 100
 * ping streams per second at their relay, most of an idle relay's CPU
 * (bench/README.md "Relay capacity"). The ping is how a node notices a peer
 * that vanished without closing the connection (power cut, a NAT or firewall
 * dropping the mapping): SILENT_PEER_BOUND. A peer that closes or resets its
 * connection is noticed at once, without any ping.
 */
export const CONNECTION_PING_INTERVAL = minute

/**
 * Shortest wait for a ping answer before the connection is aborted, ms (stock
 * 5 s). Above it the wait adapts to measured round trips (1.2 × their moving
 * average). A node busy for a few seconds (a GC pause, a burst of
 * reservations after a relay restart) must not lose its connections.
 */
export const CONNECTION_PING_MIN_TIMEOUT = 15 * second

/** Longest wait for a ping answer, ms (stock 60 s): it bounds SILENT_PEER_BOUND */
export const CONNECTION_PING_MAX_TIMEOUT = 30 * second

/**
 * A connection whose peer vanished silently is aborted within this, ms (90 s;
 * stock js-libp2p: 10 s + up to 60 s): the next ping starts within one
 * interval and fails within the longest timeout. An agent whose relay
 * vanished has then lost that reservation and re-reserves or fails over at
 * once (protocols/relay.md "Agents behind NAT"). A relay pings less often:
 * it releases a vanished holder within RELAY_SILENT_HOLDER_BOUND
 * (src/relay/constants.ts).
 */
export const SILENT_PEER_BOUND = CONNECTION_PING_INTERVAL + CONNECTION_PING_MAX_TIMEOUT

/**
 * Yamux's own keep-alive (a ping frame each way every 30 s, stock) is off on
 * every molt node: it never times out, so it notices no dead peer, and the
 * connection monitor's pings (CONNECTION_PING_INTERVAL) already keep NAT and
 * firewall mappings of idle connections alive. At 1,000 reserved agents it was
 * ~65 frames per second at the relay, a fifth of its idle CPU once the pings
 * were rarer (bench/README.md "Relay capacity").
 */
export const YAMUX_KEEP_ALIVE = false
