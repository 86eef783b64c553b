/**
 * Defaults of the relay mailbox (protocols/mailbox.md "Limits"). Each is a
 * `MailboxLimits` field a relay operator can change in config.json
 * `relay.mailbox` or by flag.
 */
import { MAX_MESSAGE_BYTES } from '../../moltspeak/constants.js'
import { SEAL_OVERHEAD } from '../../crypto/index.js'
import { second, minute, hour, day, MiB } from '../../constants.js'

/** Protocol id of store-and-forward deposits and fetches */
export const PROTOCOL = '/molt/mailbox/1.0.0'

/** A sealed box holds one MoltSpeak message (≤ 1 MiB) plus the seal's framing */
export const MAX_BOX_BYTES = MAX_MESSAGE_BYTES + SEAL_OVERHEAD

/**
 * Largest frame either side reads: a deposit or fetch answer of several
 * boxes, base64 inside JSON (4/3), plus the JSON around them. Bigger frames
 * end the stream before their body is buffered.
 */
export const MAX_FRAME_BYTES = 8 * MiB

/** Boxes one deposit frame carries at most (the client splits larger batches) */
export const MAX_ITEMS_PER_DEPOSIT = 1024

/** Bytes of boxes one deposit frame carries at most (the client splits above this) */
export const MAX_DEPOSIT_BYTES = 4 * MiB

/** Boxes a relay returns per fetch */
export const FETCH_LIMIT = 512

/** Boxes waiting for one recipient; beyond it deposits are refused `mailbox-full` */
export const MAX_MESSAGES_PER_RECIPIENT = 10_000

/** Bytes of boxes waiting for one recipient */
export const MAX_BYTES_PER_RECIPIENT = 64 * MiB

/**
 * Share of one recipient's quota that one sender may fill (0..1): a flood
 * from one sender is cut off while others can still reach the recipient.
 */
export const MAX_SENDER_SHARE = 0.5

/**
 * Share of one recipient's quota that one source address (an IPv4 address or
 * an IPv6 /64) may fill (0..1): identities are free, addresses are not, so
 * many keys on one host hold no more than one key could.
 */
export const MAX_SOURCE_SHARE = 0.5

/** Share of the whole relay store (boxes and bytes) that one source address may fill (0..1) */
export const MAX_SOURCE_TOTAL_SHARE = 0.1

/**
 * Share of one recipient's quota that all first-contact senders together may
 * fill (0..1). A first-contact sender is one none of whose boxes from this
 * relay the recipient ever opened and kept (its `ack` names such senders in
 * `delivered`): any number of fresh keys fill at most this share,
 * and the senders the recipient already reads keep the rest.
 */
export const FIRST_CONTACT_SHARE = 0.1

/** Longest a first-contact sender's box is kept (its `exp` is capped to it) */
export const FIRST_CONTACT_RETENTION = 1 * day

/** Sustained deposits per second from one source address (token bucket) */
export const SOURCE_RATE = 4_000

/** Burst of deposits from one source address before its rate applies */
export const SOURCE_BURST = 40_000

/**
 * Recipients a relay keeps mailboxes for at once (registered: a reservation
 * or a mailbox session within the retention period); the least recently seen
 * is forgotten first. About 150 bytes of memory each.
 */
export const MAX_REGISTRATIONS = 100_000

/** Recipients registered from one source address (IPv4 address or IPv6 /64) */
export const MAX_REGISTRATIONS_PER_SOURCE = 1_024

/** A registration or contact seen again is written to disk at most this often */
export const REGISTRATION_REFRESH = 1 * hour

/** How long a recipient counts a sender as known after last fetching one of its boxes */
export const CONTACT_TTL = 30 * day

/** (recipient, sender) contacts remembered at once, least recently seen forgotten first (~150 bytes each) */
export const MAX_CONTACTS = 1_000_000

/**
 * Bytes of request frames one connection may have in processing at once,
 * across its mailbox streams; beyond it the relay stops reading them until
 * answers are written (without it: 8 streams × 32 requests × 8 MiB frames).
 */
export const MAX_CONNECTION_PENDING_BYTES = 32 * MiB

/** Boxes the whole relay stores; beyond it deposits are refused `store-full` */
export const MAX_TOTAL_MESSAGES = 1_000_000

/** Bytes of boxes the whole relay stores */
export const MAX_TOTAL_BYTES = 1024 * MiB

/** Longest a box is kept (a deposit's own expiry is capped to this) */
export const RETENTION = 7 * day

/** Sustained deposits per second one sender may make (token bucket) */
export const SENDER_RATE = 2_000

/** Burst of deposits one sender may make before the rate applies */
export const SENDER_BURST = 20_000

/**
 * Box bytes (base64) one fetch answer carries at most, beyond its first box.
 * Without it, 512 boxes of up to 1.4 MB made answers far over the 8 MiB frame
 * limit (MAX_FRAME_BYTES) the recipient reads, so a mailbox holding more than
 * ~6 maximum-size boxes could never be fetched (test/integration/hostile.test.ts).
 * 4 MiB plus one maximum box plus the JSON around 512 items stays under 8 MiB.
 */
export const FETCH_MAX_BYTES = 4 * MiB
/** Bytes of entries one LevelDB read of a fetch hands over at most (plus one entry): a page in a few reads, memory bounded (protocols/mailbox.md "Limits") */
export const FETCH_READ_BYTES = 1 * MiB

/** How often expired boxes are deleted */
export const SWEEP_INTERVAL = 1 * minute

/** How often an agent checks the mailboxes of configured relays it is not connected to (it may have failed over) */
export const CHECK_INTERVAL = 10 * minute

/** Depositor PeerIds a recipient keeps parsed (the most recently parsed; one pushed out is parsed again when it comes back) */
export const DEPOSITOR_CACHE_SIZE = 1024

/** Inbound mailbox streams per connection (a deposit stream and a fetch/watch stream, with slack) */
export const MAX_INBOUND_STREAMS = 8

/** How long a request may wait for its answer */
export const REQUEST_TIMEOUT = 30 * second

/** An idle mailbox stream is closed after this; a watch stream is kept alive by its notifications */
export const STREAM_IDLE_TIMEOUT = 1 * hour

export const LOG_COMPONENT = 'molt:mailbox'
