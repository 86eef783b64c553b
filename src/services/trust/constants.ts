import { second, minute, day } from '../../constants.js'

/** Gossipsub topic attestations are published on (protocols/trust.md) */
export const TOPIC = 'molt/trust/1'

/** Protocol id of the catch-up set reconciliation (protocols/trust.md, "Sync") */
export const SYNC_PROTOCOL = '/molt/trust-sync/1.0.0'

/** Record `version` this node writes and accepts */
export const RECORD_VERSION = '1.0'

/** Largest attestation (canonical JSON with its signature) accepted from gossip, sync or the API */
export const MAX_ATTESTATION_BYTES = 4096

/** Validity given to an attestation when the issuer names none (the reference's endorsement default: 1 year) */
export const DEFAULT_VALIDITY = 365 * day

/** Longest `expires - issued` accepted: a leaked old record cannot be replayed for ever */
export const MAX_VALIDITY = 2 * 365 * day

/** An attestation `issued` further ahead than this is refused (clock skew allowance) */
export const MAX_CLOCK_SKEW = 5 * minute

/** Records from one issuer accepted from gossip in a burst (token bucket size) */
export const ISSUER_BURST = 30

/** Records per minute one issuer may publish once its burst is spent (token refill rate) */
export const ISSUER_RATE_PER_MINUTE = 30

/** Issuers whose rate buckets are remembered; the least recently seen is forgotten first */
export const MAX_RATE_BUCKETS = 10_000

/** Attestations (revocations included) kept in the store; new ones beyond it are refused until expired ones are pruned */
export const MAX_STORED = 200_000

/**
 * Records (revocations included) kept from issuers without a trust path:
 * not this node, not pre-trusted, not endorsed (endorsement or completed task)
 * by an issuer with a trust path, and no successful exchange with this node.
 * Issuers cost nothing to make, so they share this space, separate from
 * everyone else's: beyond it the oldest such record is evicted, never one of
 * an issuer with a trust path.
 */
export const MAX_UNANCHORED_RECORDS = 20_000

/** Bytes (canonical JSON) of records kept from issuers without a trust path, all together */
export const MAX_UNANCHORED_BYTES = 16 * 1024 * 1024

/** How often expired attestations are pruned from the store and the sync digests */
export const PRUNE_INTERVAL = 10 * minute

/** Buckets of the reconciliation digest: the first byte of an attestation id picks one */
export const SYNC_BUCKETS = 256

/** Largest sync frame body */
export const MAX_SYNC_FRAME_BYTES = 1024 * 1024

/** Ids a sync server lists in one reply (differing buckets beyond it wait for the next sync) */
export const MAX_SYNC_IDS = 20_000

/** Ids a sync client asks for in one `want` frame (records come back in frames of at most this many) */
export const MAX_SYNC_WANT = 200

/** Records one sync session transfers at most */
export const MAX_SYNC_RECORDS = 50_000

/** Limit on a whole sync session, both sides */
export const SYNC_TIMEOUT = 60 * second

/** Concurrent inbound sync streams per connection */
export const MAX_SYNC_INBOUND_STREAMS = 2

/** Peers a node syncs with right after it starts (the first ones it connects to) */
export const INITIAL_SYNC_PEERS = 3

/** Between two background syncs, each with one connected peer chosen at random; 0 = off */
export const SYNC_INTERVAL = 5 * minute

/** A peer is not synced with again within this time (inbound: sessions it opens are refused) */
export const SYNC_MIN_PEER_INTERVAL = 10 * second

/** How long observed exchange outcomes wait before they are written to the store */
export const EXPERIENCE_FLUSH_DELAY = 5 * second

/** Gossipsub peer score (P4) weight of each invalid message a peer delivers on the trust topic (squared counter) */
export const INVALID_MESSAGE_WEIGHT = -10

/** Peers in the gossipsub scoring may come from these IPs without the IP-colocation penalty (many agents per host) */
export const COLOCATION_WHITELIST = ['127.0.0.1', '::1']

/** Messages the inbox policy holds back; beyond it the oldest is dropped */
export const MAX_HELD = 1000

/** Peers whose last inbound sync time is remembered (for SYNC_MIN_PEER_INTERVAL); the oldest is forgotten first */
export const MAX_SYNC_PEERS_REMEMBERED = 10_000

/** How long a computed trust model is reused while no record changes (decay over a minute is ~1e-5), in ms */
export const MODEL_CACHE_TTL = minute

/** Sender verdicts the inbox policy caches per trust model; beyond it the cache starts again */
export const MAX_INBOX_DECISIONS = 10_000

/** Gossipsub topic organisation certificate revocations are published on (protocols/identity.md, "Revocation propagation") */
export const ORG_REVOCATION_TOPIC = 'molt/org-revocation/1'

/** Sync `k` (kinds) value a client sends when it takes organisation revocations in the session */
export const SYNC_KIND_ORG_REVOCATION = 'org-revocation'

/** Revocations kept from organisations this node trusts; beyond it new ones are refused (TrustStoreFullError) */
export const MAX_ORG_REVOCATIONS = 10_000

/** Revocations kept (in memory only) from organisations this node does not trust, so they travel on; oldest evicted first */
export const MAX_UNTRUSTED_ORG_REVOCATIONS = 1024

/** Gossipsub topic agents' key rotation statements are published on (protocols/identity.md, "Key rotation") */
export const KEY_ROTATION_TOPIC = 'molt/key-rotation/1'

/** Sync `k` (kinds) value a client sends when it takes key rotations in the session */
export const SYNC_KIND_KEY_ROTATION = 'key-rotation'

/** Key rotation statements kept; beyond it new ones are refused (TrustStoreFullError) */
export const MAX_KEY_ROTATIONS = 10_000
