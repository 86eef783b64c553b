import { second, minute, hour } from '../../constants.js'
import type { Classification } from '../../moltspeak/index.js'

/** Protocol id of agent-card exchange (protocols/card.md) */
export const PROTOCOL = '/molt/card/1.0.0'

/** Largest card frame body (UTF-8 JSON) a fetcher accepts; a larger length prefix is refused unread */
export const MAX_CARD_BYTES = 64 * 1024

/** How long a card this node signs stays valid (`expires = issued + CARD_VALIDITY`) */
export const CARD_VALIDITY = 24 * hour

/** Longest validity (`expires - issued`) a verifier accepts: a leaked old card cannot be replayed for months */
export const MAX_CARD_VALIDITY = 7 * 24 * hour

/** A card `issued` further than this in the future is refused (clock skew allowance) */
export const MAX_CLOCK_SKEW = 5 * minute

/** How long a fetched card is served from the cache (never beyond the card's own `expires`) */
export const CACHE_TTL = 10 * minute

/** Cards kept in the cache; beyond it the oldest inserted is dropped first */
export const CACHE_SIZE = 1024

/** Limit on one fetch: open the stream, read the frame; also bounds the server's write */
export const FETCH_TIMEOUT = 10 * second

/** Concurrent inbound card streams per connection: a fetch needs one, a few more cover retries */
export const MAX_INBOUND_STREAMS = 8

/** Classifications a card advertises when the profile names none */
export const DEFAULT_SUPPORTED_CLS: readonly Classification[] = Object.freeze(['pub', 'int', 'conf'])

// field limits of a version 1 card (protocols/card.md, "Fields")
export const MAX_DESCRIPTION_LENGTH = 1024
export const MAX_CAPABILITIES = 256
export const MAX_CAPABILITY_NAME_LENGTH = 128
export const MAX_PROTOCOL_VERSIONS = 16
export const MAX_PROTOCOL_VERSION_LENGTH = 32
export const MAX_ADDRESSES = 32
export const MAX_ADDRESS_LENGTH = 1024
export const MAX_PEER_ID_LENGTH = 128
export const MAX_DID_LENGTH = 128

/** Org verdicts remembered per card (the card's own org, and orgs that messages claimed); more are computed, not kept */
export const MAX_VERDICTS_PER_CARD = 4
