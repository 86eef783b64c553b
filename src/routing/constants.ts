import { second } from '../constants.js'

/** A routing record looked up is reused this long before the DHT is asked again */
export const RECORD_CACHE_TTL = 30 * second

/** A PeerId with no record found is not looked up again for this long (unless a dial just failed) */
export const NEGATIVE_CACHE_TTL = 2 * second

/** After a failed dial, a cached record older than this is fetched again (re-resolution) */
export const REFRESH_AFTER_FAILURE = 1 * second

/** Records (and explicit mailbox hints) kept in the resolver's cache; least recently used go first */
export const RECORD_CACHE_SIZE = 4096

/** Addresses the application named for one peer that the resolver keeps (newest first) for retries */
export const NAMED_ADDRESSES_PER_PEER = 4

/** Bound on one resolution (dial known addresses, look up the record, dial what it names) when the caller gives no signal */
export const RESOLVE_TIMEOUT = 20 * second
