import { second, minute, hour } from '../../constants.js'

/** DHT key namespace of routing records: the key is `/molt-route/` + the PeerId's multihash bytes */
export const NAMESPACE = 'molt-route'

/** Record format version (`v`) */
export const VERSION = 1

/** Prefixed to the canonical record before signing, so a route signature is never valid as anything else */
export const SIGNATURE_DOMAIN = 'molt-route/1\n'

/** How long a record this node signs stays valid (`exp = seq time + RECORD_TTL`) */
export const RECORD_TTL = 24 * hour

/** Longest validity (`exp - now`) a verifier accepts: a leaked record cannot be replayed for months */
export const MAX_RECORD_TTL = 7 * 24 * hour

/** A record whose `seq` (ms timestamp) is further than this in the future is refused (clock skew) */
export const MAX_CLOCK_SKEW = 5 * minute

/** Republish this often even when nothing changed (DHT servers come and go; well within RECORD_TTL) */
export const REPUBLISH_INTERVAL = 30 * minute

/** Coalesce bursts of address/reservation changes into one publication */
export const PUBLISH_DEBOUNCE = 1 * second

/** Retry schedule of a publication that reached no DHT server */
export const PUBLISH_RETRY_MIN = 1 * second
export const PUBLISH_RETRY_MAX = 1 * minute

/** Largest encoded record (bytes) accepted or produced; checked before parsing */
export const MAX_RECORD_BYTES = 8 * 1024

/** Deepest JSON nesting accepted (record → mailboxes → entry → addrs is 4); checked before parsing */
export const MAX_RECORD_DEPTH = 4

/** Per-record list limits */
export const MAX_DIRECT_ADDRS = 16
export const MAX_CIRCUIT_ADDRS = 8
export const MAX_MAILBOXES = 4
export const MAX_MAILBOX_ADDRS = 4
/** Longest multiaddr string (characters) */
export const MAX_ADDR_LENGTH = 512

/** Bound on one DHT lookup of a record */
export const LOOKUP_TIMEOUT = 5 * second

/**
 * Bound on one publication (walk to the closest peers and PUT_VALUE to them),
 * from when its turn in the node's publication queue comes. Each DHT request
 * is bounded to 10 s, so a walk ends on its own; this catches one that does
 * not. 30 s cut off walks of 100 nodes joining in one busy process that had
 * 11–22 answers and needed ≈ 40 s: they stored nothing and went again.
 */
export const PUBLISH_TIMEOUT = 60 * second
