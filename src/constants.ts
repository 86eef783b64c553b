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
