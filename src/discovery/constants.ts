import { second, minute, hour } from '../constants.js'

/** The private molt DHT; never the public IPFS one */
export const DHT_PROTOCOL = '/molt/kad/1.0.0'

/**
 * Bounds on one DHT request (dial, send, answer), in ms. kad-dht adapts the
 * timeout to recent round trips (× 1.2, × 2 after a failure) within these; its
 * own upper bound, 60 s, let one unresponsive server hold a walk past the 30 s
 * a publication or advert is given
 */
export const DHT_REQUEST_TIMEOUT_MIN = 5_000
export const DHT_REQUEST_TIMEOUT_MAX = 10_000

/**
 * Requests a DHT walk keeps in flight on each of its paths (kad-dht's
 * default). With kad-dht's 10 paths too, a walk's first requests went to all
 * 20 closest known servers at once; with one path (below) it is 10. 5 was
 * tried: a lookup takes more sequential rounds, and dht.test.ts's "a provider
 * that stops" (its discover() must end within the record's 10 s test
 * validity) failed 2 runs of 2 at load 25; with 10 it passed (1 run, load
 * 16; the load differed, so not proven the cause)
 */
export const DHT_ALPHA = 10

/**
 * Disjoint paths of a DHT walk. Each path keeps its own 20 closest responders
 * and stops only when it cannot improve them, so 10 paths (kad-dht's default)
 * each ask peers that one path would have left out as too far. One path: a
 * walk asks ≈ the 20 closest plus the closer ones they name. (Disjoint paths
 * resist a hostile peer steering a walk; molt records are signed and checked
 * on every fetch, so a steered walk can hide a record, not forge one.)
 */
export const DHT_DISJOINT_PATHS = 1

/** Where kad-dht keeps records and providers in the libp2p datastore (its default, named so the validator can read held records) */
export const DHT_DATASTORE_PREFIX = '/dht'

/** mDNS service tag; never the default `_p2p._udp.local`, which finds every IPFS node on a LAN */
export const MDNS_SERVICE_TAG = '_molt._udp.local'

/** How often mDNS queries the LAN */
export const MDNS_INTERVAL = 10 * second

/** Extra mDNS queries this long after start (ms): agents started together would otherwise wait a whole interval */
export const MDNS_EARLY_QUERIES: readonly number[] = [1 * second, 3 * second]

/** Provider records (capability adverts) expire after this unless re-provided */
export const PROVIDER_VALIDITY = 48 * hour

/** How often the DHT re-provides our records and purges expired ones it stores */
export const REPROVIDE_INTERVAL = hour

/** Retry schedule for a capability advert that found no DHT peers yet */
export const ADVERTISE_RETRY_MIN = second
export const ADVERTISE_RETRY_MAX = minute

/** Bound on one capability advert (walk to the closest servers and ADD_PROVIDER to them) from when its turn comes, in ms (as the routing record's PUBLISH_TIMEOUT) */
export const ADVERTISE_TIMEOUT = 60 * second

/** Prefix hashed with a capability name into its DHT key (a CIDv1, raw codec, sha2-256) */
export const CAPABILITY_KEY_PREFIX = 'molt/capability/'

/** Stop dialling newly discovered peers once this many connections are open */
export const AUTO_DIAL_MAX_CONNECTIONS = 64

/** Results `discover()` returns when no limit is given */
export const DISCOVER_LIMIT = 20

/** Providers tried (dialled for their card) per discover() before giving up */
export const DISCOVER_MAX_CANDIDATES = 100

/** How often connected agents are pinged (MoltSpeak ping/pong) for presence */
export const HEARTBEAT_INTERVAL = 60 * second

/** A peer not seen for this long is `stale` */
export const STALE_AFTER = 5 * minute

/** Known peers remembered by presence; least recently seen are forgotten first */
export const PRESENCE_MAX_PEERS = 10_000

/** Longest identify agent version (peer-supplied text) presence keeps, in chars */
export const MAX_AGENT_VERSION_LENGTH = 128

/** How long discover() waits for a first DHT peer when its routing table is empty (bootstrap still dialling), in ms */
export const DISCOVER_DHT_READY_TIMEOUT = 5_000

/** Coalesce a burst of routing table additions into one placement check (src/discovery/placement.ts), in ms */
export const PLACEMENT_CHECK_DEBOUNCE = 1000

/**
 * Up to this much more (uniformly random, in ms) before republishing a
 * misplaced record: nodes that joined together see their tables grow
 * together, and would otherwise all walk the DHT in the same second
 */
export const MISPLACED_REPUBLISH_JITTER = 5000

/**
 * DHT publications (routing record, capability adverts: each a walk to the
 * closest servers and a store on up to 20) one node runs at once; the others
 * wait their turn (src/discovery/publish-queue.ts)
 */
export const DHT_PUBLISH_CONCURRENCY = 1

/** Publications a node lets wait for their turn; more are refused (PublishQueueFullError) and retried later */
export const DHT_PUBLISH_MAX_QUEUED = 64

/**
 * DHT publications all the nodes of one process run at once (one node per
 * process, the usual case, is limited by DHT_PUBLISH_CONCURRENCY first)
 */
export const DHT_PUBLISH_PROCESS_CONCURRENCY = 8

/** Publications the process lets wait (a node waits here with its own turn taken, so ≤ one per node plus its retries) */
export const DHT_PUBLISH_PROCESS_MAX_QUEUED = 4096

/** Servers a DHT publication stores on: the K closest to its key (kad-dht's K) */
export const DHT_K = 20

/**
 * A published record is misplaced (src/discovery/placement.ts) once this many
 * of the K closest peers the routing table knows to its key did not store it:
 * half of them, so a walk that missed a few servers (timeouts) is not redone,
 * and one that went to another part of the network is
 */
export const MISPLACED_THRESHOLD = 10

/**
 * First delay before republishing a misplaced record, in ms; it doubles with
 * each such republication in a row (up to MISPLACED_REPUBLISH_DELAY_MAX), so
 * a network too busy to store is not fed a walk every few seconds
 */
export const MISPLACED_REPUBLISH_DELAY = 5 * second
export const MISPLACED_REPUBLISH_DELAY_MAX = 10 * minute
